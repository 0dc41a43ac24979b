//! Reads: projection rows back into model types. Nothing here loads automerge.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::projection::fragment_phrase;
use crate::crdt::{
    decode_building_status, decode_date, decode_household_status, decode_location, decode_organization_status,
    decode_resident_status,
};
use crate::model::*;
use crate::{Error, Result};

/// Decodes a stored column, naming the record and field when it cannot be read.
fn decode<T>(
    record: &str,
    field: &'static str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T> {
    let value =
        value.ok_or_else(|| Error::StoredValue { record: record.to_owned(), field, reason: "missing".into() })?;
    parse(&value).ok_or_else(|| Error::StoredValue {
        record: record.to_owned(),
        field,
        reason: "not a valid value".into(),
    })
}

fn decode_opt<T>(
    record: &str,
    field: &'static str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>> {
    value.map(|value| decode(record, field, Some(value), parse)).transpose()
}

pub(crate) fn grids(conn: &Connection, format: CodeFormat) -> Result<Vec<Grid>> {
    let mut statement =
        conn.prepare("SELECT code, name, kind, status, successors, predecessors FROM grids ORDER BY code")?;
    let rows: Vec<[String; 6]> = statement
        .query_map([], |row| Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?]))?
        .collect::<Result<_, _>>()?;
    let codes = |list: &str| -> Result<Vec<GridCode>> {
        list.split(',').filter(|code| !code.is_empty()).map(|code| Ok(GridCode::parse(code, format)?)).collect()
    };
    rows.into_iter()
        .map(|[code, name, kind, status, successors, predecessors]| {
            let kind = decode(&code, "kind", Some(kind), GridKind::from_code)?;
            let status = match status.split_once('@') {
                None => GridStatus::Active,
                Some((reason, on)) => GridStatus::Retired {
                    on: decode(&code, "status", Some(on.to_owned()), decode_date)?,
                    reason: if reason == "split" { Succession::Split } else { Succession::Merged },
                    successors: codes(&successors)?,
                },
            };
            Ok(Grid { code: GridCode::parse(&code, format)?, name, kind, predecessors: codes(&predecessors)?, status })
        })
        .collect()
}

pub(crate) fn grid_of(conn: &Connection, record: RecordRef) -> Result<Option<String>> {
    let table = record.kind().plural();
    Ok(conn
        .prepare_cached(&format!("SELECT grid_code FROM {table} WHERE id = ?1"))?
        .query_row([record.uuid().hyphenated().to_string()], |row| row.get(0))
        .optional()?)
}

/// How many records refer to this one (households and organizations to a building,
/// residents to a household).
pub(crate) fn count_referrers(conn: &Connection, record: RecordRef) -> Result<usize> {
    let sql = match record {
        RecordRef::Building(_) => {
            "SELECT (SELECT count(*) FROM households WHERE building = ?1)
                  + (SELECT count(*) FROM organizations WHERE building = ?1)"
        }
        RecordRef::Household(_) => "SELECT count(*) FROM residents WHERE household = ?1",
        _ => return Ok(0),
    };
    let n: i64 = conn.prepare_cached(sql)?.query_row([record.uuid().hyphenated().to_string()], |row| row.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn grid_code(record: &str, format: CodeFormat, value: String) -> Result<GridCode> {
    decode(record, "grid_code", Some(value), |code| GridCode::parse(code, format).ok())
}

const BUILDING_COLUMNS: &str = "id, grid_code, name, address, location, floors, units, usage, status";

fn building_from_row(row: &Row<'_>, format: CodeFormat) -> Result<Building> {
    let id: String = row.get(0)?;
    let floors: Option<i64> = row.get(5)?;
    let units: Option<i64> = row.get(6)?;
    Ok(Building {
        id: BuildingId::parse(&id)?,
        grid: grid_code(&id, format, row.get(1)?)?,
        name: decode(&id, "name", row.get(2)?, |s| Label::parse(s).ok())?,
        address: decode(&id, "address", row.get(3)?, |s| Address::parse(s).ok())?,
        location: decode_opt(&id, "location", row.get(4)?, decode_location)?,
        floors: floors.and_then(|n| u16::try_from(n).ok()),
        units: units.and_then(|n| u16::try_from(n).ok()),
        usage: decode(&id, "usage", row.get(7)?, BuildingUse::from_code)?,
        status: decode(&id, "status", row.get(8)?, decode_building_status)?,
    })
}

const HOUSEHOLD_COLUMNS: &str = "id, grid_code, building, room, address, residence_type, status";

fn household_from_row(row: &Row<'_>, format: CodeFormat) -> Result<Household> {
    let id: String = row.get(0)?;
    Ok(Household {
        id: HouseholdId::parse(&id)?,
        grid: grid_code(&id, format, row.get(1)?)?,
        building: decode_opt(&id, "building", row.get(2)?, |s| BuildingId::parse(s).ok())?,
        room: decode_opt(&id, "room", row.get(3)?, |s| Room::parse(s).ok())?,
        address: decode_opt(&id, "address", row.get(4)?, |s| Address::parse(s).ok())?,
        residence_type: decode(&id, "residence_type", row.get(5)?, ResidenceType::from_code)?,
        status: decode(&id, "status", row.get(6)?, decode_household_status)?,
    })
}

const RESIDENT_COLUMNS: &str = "r.id, r.grid_code, r.household, r.name, r.gender, r.relation, r.residence_type, \
     r.status, d.resident_id, d.id_number, d.phone, d.birth_date";

fn resident_from_row(conn: &Connection, row: &Row<'_>, format: CodeFormat) -> Result<Resident> {
    let id: String = row.get(0)?;
    let has_details: Option<String> = row.get(8)?;
    let sensitive = match has_details {
        None => None,
        Some(_) => {
            let tags: Vec<String> = conn
                .prepare_cached("SELECT tag FROM resident_tags WHERE resident_id = ?1 ORDER BY tag")?
                .query_map([&id], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            Some(ResidentSensitive {
                id_number: decode_opt(&id, "id_number", row.get(9)?, |s| IdNumber::parse_stored(s).ok())?,
                phone: decode_opt(&id, "phone", row.get(10)?, |s| Phone::parse(s).ok())?,
                birth_date: decode_opt(&id, "birth_date", row.get(11)?, decode_date)?,
                // A tag this version does not know (written by a newer one) is left out.
                tags: tags.iter().filter_map(|tag| PersonTag::from_code(tag)).collect::<BTreeSet<_>>(),
            })
        }
    };
    Ok(Resident {
        id: ResidentId::parse(&id)?,
        grid: grid_code(&id, format, row.get(1)?)?,
        household: decode_opt(&id, "household", row.get(2)?, |s| HouseholdId::parse(s).ok())?,
        name: decode(&id, "name", row.get(3)?, |s| PersonName::parse(s).ok())?,
        gender: decode_opt(&id, "gender", row.get(4)?, Gender::from_code)?,
        relation: decode(&id, "relation", row.get(5)?, Relation::from_code)?,
        residence_type: decode(&id, "residence_type", row.get(6)?, ResidenceType::from_code)?,
        status: decode(&id, "status", row.get(7)?, decode_resident_status)?,
        sensitive,
    })
}

const ORGANIZATION_COLUMNS: &str =
    "id, grid_code, name, uscc, kind, address, location, building, contact_name, contact_phone, status";

fn organization_from_row(row: &Row<'_>, format: CodeFormat) -> Result<Organization> {
    let id: String = row.get(0)?;
    Ok(Organization {
        id: OrganizationId::parse(&id)?,
        grid: grid_code(&id, format, row.get(1)?)?,
        name: decode(&id, "name", row.get(2)?, |s| Label::parse(s).ok())?,
        uscc: decode_opt(&id, "uscc", row.get(3)?, |s| Uscc::parse(s).ok())?,
        kind: decode(&id, "kind", row.get(4)?, OrganizationKind::from_code)?,
        address: decode(&id, "address", row.get(5)?, |s| Address::parse(s).ok())?,
        location: decode_opt(&id, "location", row.get(6)?, decode_location)?,
        building: decode_opt(&id, "building", row.get(7)?, |s| BuildingId::parse(s).ok())?,
        contact_name: decode_opt(&id, "contact_name", row.get(8)?, |s| PersonName::parse(s).ok())?,
        contact_phone: decode_opt(&id, "contact_phone", row.get(9)?, |s| Phone::parse(s).ok())?,
        status: decode(&id, "status", row.get(10)?, decode_organization_status)?,
    })
}

const COMPONENT_COLUMNS: &str = "id, grid_code, subclass, name, location, state";

fn component_from_row(row: &Row<'_>, format: CodeFormat) -> Result<Component> {
    let id: String = row.get(0)?;
    Ok(Component {
        id: ComponentId::parse(&id)?,
        grid: grid_code(&id, format, row.get(1)?)?,
        subclass: decode(&id, "subclass", row.get(2)?, |s| ComponentSubclass::parse(s).ok())?,
        name: decode(&id, "name", row.get(3)?, |s| Label::parse(s).ok())?,
        location: decode(&id, "location", row.get(4)?, decode_location)?,
        state: decode(&id, "state", row.get(5)?, ComponentState::from_code)?,
    })
}

/// Runs a query and decodes each row, keeping the first decoding error.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut decode: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn one<T>(found: Vec<T>, record: RecordRef) -> Result<T> {
    found.into_iter().next().ok_or(Error::NotFound { record })
}

/// A household as the grid's household list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdSummary {
    pub id: HouseholdId,
    pub building: Option<BuildingId>,
    pub building_name: Option<String>,
    /// The building's address, or the household's own.
    pub address: Option<String>,
    pub room: Option<String>,
    pub residence_type: ResidenceType,
    pub status: HouseholdStatus,
    pub head_name: Option<String>,
    /// Residents currently living there (archived ones not counted).
    pub n_residents: u32,
}

/// A resident found by search: enough to show in a result list.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidentHit {
    pub id: ResidentId,
    pub name: String,
    pub gender: Option<Gender>,
    pub household: Option<HouseholdId>,
    pub address: Option<String>,
    pub room: Option<String>,
    pub status: ResidentStatus,
}

impl super::Store {
    pub fn building(&self, id: BuildingId) -> Result<Building> {
        let format = self.code_format;
        let sql = format!("SELECT {BUILDING_COLUMNS} FROM buildings WHERE id = ?1");
        one(
            collect(&self.reader(), &sql, [id.to_string()], |row| building_from_row(row, format))?,
            RecordRef::Building(id),
        )
    }

    pub fn household(&self, id: HouseholdId) -> Result<Household> {
        let format = self.code_format;
        let sql = format!("SELECT {HOUSEHOLD_COLUMNS} FROM households WHERE id = ?1");
        one(
            collect(&self.reader(), &sql, [id.to_string()], |row| household_from_row(row, format))?,
            RecordRef::Household(id),
        )
    }

    pub fn resident(&self, id: ResidentId) -> Result<Resident> {
        let format = self.code_format;
        let conn = self.reader();
        let sql = format!(
            "SELECT {RESIDENT_COLUMNS} FROM residents r LEFT JOIN resident_details d ON d.resident_id = r.id WHERE r.id = ?1"
        );
        one(
            collect(&conn, &sql, [id.to_string()], |row| resident_from_row(&conn, row, format))?,
            RecordRef::Resident(id),
        )
    }

    pub fn organization(&self, id: OrganizationId) -> Result<Organization> {
        let format = self.code_format;
        let sql = format!("SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE id = ?1");
        one(
            collect(&self.reader(), &sql, [id.to_string()], |row| organization_from_row(row, format))?,
            RecordRef::Organization(id),
        )
    }

    pub fn component(&self, id: ComponentId) -> Result<Component> {
        let format = self.code_format;
        let sql = format!("SELECT {COMPONENT_COLUMNS} FROM components WHERE id = ?1");
        one(
            collect(&self.reader(), &sql, [id.to_string()], |row| component_from_row(row, format))?,
            RecordRef::Component(id),
        )
    }

    pub fn list_buildings(&self, grid: &GridCode) -> Result<Vec<Building>> {
        let format = self.code_format;
        let sql = format!("SELECT {BUILDING_COLUMNS} FROM buildings WHERE grid_code = ?1 ORDER BY address, name, id");
        collect(&self.reader(), &sql, [grid.as_str()], |row| building_from_row(row, format))
    }

    /// The households of a grid in address order, with their head and size: the grid
    /// worker's main list.
    pub fn list_households(&self, grid: &GridCode) -> Result<Vec<HouseholdSummary>> {
        let sql = "SELECT h.id, h.building, b.name, coalesce(b.address, h.address), h.room, h.residence_type, h.status,
                (SELECT r.name FROM residents r WHERE r.household = h.id AND r.relation = 'head' ORDER BY r.id LIMIT 1),
                (SELECT count(*) FROM residents r WHERE r.household = h.id AND r.status = 'active')
            FROM households h LEFT JOIN buildings b ON b.id = h.building
            WHERE h.grid_code = ?1
            ORDER BY coalesce(b.address, h.address), h.room, h.id";
        collect(&self.reader(), sql, [grid.as_str()], |row| {
            let id: String = row.get(0)?;
            Ok(HouseholdSummary {
                id: HouseholdId::parse(&id)?,
                building: decode_opt(&id, "building", row.get(1)?, |s| BuildingId::parse(s).ok())?,
                building_name: row.get(2)?,
                address: row.get(3)?,
                room: row.get(4)?,
                residence_type: decode(&id, "residence_type", row.get(5)?, ResidenceType::from_code)?,
                status: decode(&id, "status", row.get(6)?, decode_household_status)?,
                head_name: row.get(7)?,
                n_residents: row.get(8)?,
            })
        })
    }

    /// The people of a household, the head first.
    pub fn residents_of_household(&self, household: HouseholdId) -> Result<Vec<Resident>> {
        let format = self.code_format;
        let conn = self.reader();
        let sql = format!(
            "SELECT {RESIDENT_COLUMNS} FROM residents r LEFT JOIN resident_details d ON d.resident_id = r.id
             WHERE r.household = ?1 ORDER BY r.relation <> 'head', r.id"
        );
        collect(&conn, &sql, [household.to_string()], |row| resident_from_row(&conn, row, format))
    }

    pub fn list_organizations(&self, grid: &GridCode) -> Result<Vec<Organization>> {
        let format = self.code_format;
        let sql = format!("SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE grid_code = ?1 ORDER BY name, id");
        collect(&self.reader(), &sql, [grid.as_str()], |row| organization_from_row(row, format))
    }

    pub fn list_components(&self, grid: &GridCode) -> Result<Vec<Component>> {
        let format = self.code_format;
        let sql = format!("SELECT {COMPONENT_COLUMNS} FROM components WHERE grid_code = ?1 ORDER BY subclass, id");
        collect(&self.reader(), &sql, [grid.as_str()], |row| component_from_row(row, format))
    }

    /// Finds residents by two or more characters of their name or of their address, by
    /// the last digits (4 or more) of their phone or ID number, or by a whole phone or
    /// ID number. Active residents first.
    pub fn search_residents(&self, query: &str, limit: usize) -> Result<Vec<ResidentHit>> {
        let query = query.trim();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.reader();
        let digits = query.chars().all(|c| c.is_ascii_digit() || c == 'X' || c == 'x');
        // Candidates first (each from its own index), then one join for the rows shown:
        // an OR across joined tables would scan every resident.
        let hits_sql = |candidates: &str| {
            format!(
                "WITH candidates(resident_rowid) AS ({candidates})
                 SELECT r.id, r.name, r.gender, r.household, coalesce(b.address, h.address), h.room, r.status
                 FROM candidates
                 JOIN residents r ON r.rowid = candidates.resident_rowid
                 LEFT JOIN households h ON h.id = r.household
                 LEFT JOIN buildings b ON b.id = h.building
                 ORDER BY r.status <> 'active', r.name, r.id LIMIT ?2"
            )
        };
        let sql;
        let param: String;
        if digits && query.len() >= 4 {
            let query = query.to_uppercase();
            let tail: String = query.chars().skip(query.chars().count() - 4).collect();
            // The tail indexes narrow to a handful of rows; their numbers are then compared
            // in full (a landline's extension is not part of the number searched).
            let mut candidates: Vec<i64> = Vec::new();
            let mut statement = conn.prepare_cached(
                "SELECT r.rowid, d.phone, d.id_number FROM resident_details d JOIN residents r ON r.id = d.resident_id
                 WHERE d.phone_tail = ?1
                 UNION
                 SELECT r.rowid, d.phone, d.id_number FROM resident_details d JOIN residents r ON r.id = d.resident_id
                 WHERE d.id_tail = ?1",
            )?;
            let mut rows = statement.query([&tail])?;
            while let Some(row) = rows.next()? {
                let phone: Option<String> = row.get(1)?;
                let id_number: Option<String> = row.get(2)?;
                let phone_matches = phone
                    .and_then(|phone| Phone::parse(&phone).ok())
                    .is_some_and(|phone| phone.digits().ends_with(&query));
                if phone_matches || id_number.is_some_and(|id_number| id_number.ends_with(&query)) {
                    candidates.push(row.get(0)?);
                }
            }
            param = serde_json::to_string(&candidates).unwrap_or_else(|_| "[]".to_owned());
            sql = hits_sql("SELECT value FROM json_each(?1)");
        } else if let Some(phrase) = fragment_phrase(query) {
            param = phrase;
            sql = hits_sql(
                "SELECT rowid FROM resident_name_search WHERE resident_name_search MATCH ?1
                 UNION
                 SELECT r.rowid FROM household_place_search s
                 JOIN households h ON h.rowid = s.rowid JOIN residents r ON r.household = h.id
                 WHERE household_place_search MATCH ?1
                 UNION
                 SELECT r.rowid FROM building_place_search s
                 JOIN buildings b ON b.rowid = s.rowid JOIN households h ON h.building = b.id
                 JOIN residents r ON r.household = h.id
                 WHERE building_place_search MATCH ?1",
            );
        } else {
            return Ok(Vec::new());
        }
        collect(&conn, &sql, params![param, limit], |row| {
            let id: String = row.get(0)?;
            Ok(ResidentHit {
                id: ResidentId::parse(&id)?,
                name: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                gender: decode_opt(&id, "gender", row.get(2)?, Gender::from_code)?,
                household: decode_opt(&id, "household", row.get(3)?, |s| HouseholdId::parse(s).ok())?,
                address: row.get(4)?,
                room: row.get(5)?,
                status: decode(&id, "status", row.get(6)?, decode_resident_status)?,
            })
        })
    }
}
