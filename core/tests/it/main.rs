//! Integration tests of wangge-core: a real SQLite file per device.

#![allow(clippy::unwrap_used)]

mod activity;
mod conflicts;
mod encryption;
mod incidents;
mod open;
mod projection;
mod records;
mod search;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use wangge_core::Store;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::model::*;

pub const GRID: &str = "440703001001001";

pub fn grid_code() -> GridCode {
    GridCode::parse_default(GRID).unwrap()
}

pub fn grid() -> Grid {
    Grid::new(grid_code(), "长堤社区第1网格", GridKind::Community).unwrap()
}

/// A fresh store in its own temporary directory, holding the test grid.
#[derive(Debug)]
pub struct Device {
    pub store: Store,
    pub dir: tempfile::TempDir,
}

pub fn device() -> Device {
    device_with(true)
}

pub fn device_with(sensitive: bool) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("wangge.db")).unwrap();
    store.add_grid(&grid(), sensitive).unwrap();
    Device { store, dir }
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn new_building(name: &str) -> NewBuilding {
    NewBuilding {
        name: Label::parse(name).unwrap(),
        address: Address::parse(&format!("江门市蓬江区白沙街道长堤社区港口路18号{name}")).unwrap(),
        location: Some(Wgs84::new(22.5912, 113.0815).unwrap()),
        floors: Some(7),
        units: Some(2),
        usage: BuildingUse::Residential,
    }
}

pub fn new_household(building: BuildingId, room: &str) -> NewHousehold {
    NewHousehold {
        building: Some(building),
        room: Some(Room::parse(room).unwrap()),
        address: None,
        residence_type: ResidenceType::Registered,
    }
}

/// A valid ID number born on `birth` with order code `sequence` (odd: male).
pub fn id_number(birth: &str, sequence: u16) -> IdNumber {
    IdNumber::from_parts("440703", date(birth), sequence).unwrap()
}

pub fn new_resident(household: HouseholdId, name: &str, relation: Relation) -> NewResident {
    NewResident {
        household: Some(household),
        name: PersonName::parse(name).unwrap(),
        id_number: Some(id_number("1968-03-12", 123)),
        phone: Some(Phone::parse("13812345678").unwrap()),
        gender: None,
        birth_date: None,
        relation,
        residence_type: ResidenceType::Registered,
        tags: BTreeSet::from([PersonTag::Disabled]),
    }
}

/// A building, a household in it and its head.
pub fn family(store: &Store) -> (BuildingId, HouseholdId, ResidentId) {
    let building = store.add_building(&grid_code(), new_building("2栋")).unwrap();
    let household = store.add_household(&grid_code(), new_household(building, "1单元301")).unwrap();
    let resident = store.add_resident(&grid_code(), new_resident(household, "陈秀英", Relation::Head)).unwrap();
    (building, household, resident)
}

pub fn doc_ids() -> [DocId; 2] {
    [DocId::new(DocKind::Register, &grid_code()), DocId::new(DocKind::Sensitive, &grid_code())]
}

/// Sends each side what the other lacks, both ways, for every grid document.
pub fn exchange(a: &Store, b: &Store) {
    for doc in doc_ids() {
        let (Ok(a_heads), Ok(b_heads)) = (a.heads(&doc), b.heads(&doc)) else { continue };
        let to_b = a.changes_since(&doc, &b_heads).unwrap();
        let to_a = b.changes_since(&doc, &a_heads).unwrap();
        b.apply_changes(&doc, &to_b).unwrap();
        a.apply_changes(&doc, &to_a).unwrap();
    }
}

/// Every projection table, as sorted text rows without rowids, for equality checks.
pub fn projection_dump(store: &Store) -> Vec<String> {
    let queries = [
        "SELECT 'building', id, grid_code, name, address, location, floors, units, usage, status FROM buildings",
        "SELECT 'household', id, grid_code, building, room, address, residence_type, status, NULL, NULL FROM households",
        "SELECT 'resident', id, grid_code, household, name, gender, relation, residence_type, status, NULL FROM residents",
        "SELECT 'details', resident_id, grid_code, id_number, phone, birth_date, phone_tail, id_tail, NULL, NULL FROM resident_details",
        "SELECT 'tag', resident_id, tag, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM resident_tags",
        "SELECT 'organization', id, grid_code, name, uscc, kind, address || location || coalesce(building, ''), contact_name, contact_phone, status FROM organizations",
        "SELECT 'component', id, grid_code, subclass, name, location, state, NULL, NULL, NULL FROM components",
    ];
    let mut rows = store
        .with_reader(|conn| {
            let mut rows = Vec::new();
            for sql in queries {
                let mut statement = conn.prepare(sql)?;
                let mut result = statement.query([])?;
                while let Some(row) = result.next()? {
                    let values: Vec<String> =
                        (0..10).map(|i| row.get_ref(i).map(|value| format!("{value:?}"))).collect::<Result<_, _>>()?;
                    rows.push(values.join("|"));
                }
            }
            Ok(rows)
        })
        .unwrap();
    rows.sort();
    rows
}

/// The keys a record has in the grid's sensitive document, read from its saved bytes.
pub fn sensitive_keys_of(store: &Store, id: &str) -> Vec<String> {
    use automerge::ReadDoc;
    let [_, sensitive] = doc_ids();
    let doc = automerge::AutoCommit::load(&store.document_bytes(&sensitive).unwrap()).unwrap();
    let Ok(Some((_, residents))) = doc.get(automerge::ROOT, "residents") else { panic!("no residents container") };
    doc.keys(&residents).filter(|key| key.starts_with(id)).collect()
}
