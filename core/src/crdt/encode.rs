//! How model values are stored in documents (and so in projection columns), both ways.
//!
//! Dates are `YYYY-MM-DD`; locations `lat,lng` with 7 decimals (about 1 cm) in one scalar,
//! so that a concurrent edit never mixes one device's latitude with another's longitude;
//! statuses are a code with an optional `@date`.

use automerge::ScalarValue;
use chrono::NaiveDate;

use super::Edit;
use crate::model::*;

/// The edits of one capture, per document.
#[derive(Debug, Default)]
pub(crate) struct RecordWrite {
    pub register: Vec<Edit>,
    pub sensitive: Vec<Edit>,
}

fn text(s: &str) -> ScalarValue {
    ScalarValue::Str(s.into())
}

fn put(key: &'static str, value: &str) -> Edit {
    Edit::Put(key, text(value))
}

fn put_opt<T>(key: &'static str, value: Option<&T>, encode: impl Fn(&T) -> String) -> Edit {
    match value {
        Some(value) => Edit::Put(key, text(&encode(value))),
        None => Edit::Delete(key),
    }
}

fn put_int_opt(key: &'static str, value: Option<u16>) -> Edit {
    match value {
        Some(value) => Edit::Put(key, ScalarValue::Int(i64::from(value))),
        None => Edit::Delete(key),
    }
}

pub(crate) fn encode_date(date: &NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

pub(crate) fn decode_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

pub(crate) fn encode_location(location: &Wgs84) -> String {
    format!("{:.7},{:.7}", location.lat(), location.lng())
}

pub(crate) fn decode_location(s: &str) -> Option<Wgs84> {
    let (lat, lng) = s.split_once(',')?;
    Wgs84::new(lat.parse().ok()?, lng.parse().ok()?).ok()
}

fn status_code(code: &str, on: Option<&NaiveDate>) -> String {
    match on {
        Some(date) => format!("{code}@{}", encode_date(date)),
        None => code.to_owned(),
    }
}

fn split_status(s: &str) -> (&str, Option<NaiveDate>) {
    match s.split_once('@') {
        Some((code, date)) => (code, decode_date(date)),
        None => (s, None),
    }
}

pub(crate) fn encode_resident_status(status: &ResidentStatus) -> String {
    match status {
        ResidentStatus::Active => status_code("active", None),
        ResidentStatus::MovedOut { on } => status_code("moved_out", Some(on)),
        ResidentStatus::Deceased { on } => status_code("deceased", Some(on)),
    }
}

pub(crate) fn decode_resident_status(s: &str) -> Option<ResidentStatus> {
    match split_status(s) {
        ("active", None) => Some(ResidentStatus::Active),
        ("moved_out", Some(on)) => Some(ResidentStatus::MovedOut { on }),
        ("deceased", Some(on)) => Some(ResidentStatus::Deceased { on }),
        _ => None,
    }
}

pub(crate) fn encode_household_status(status: &HouseholdStatus) -> String {
    match status {
        HouseholdStatus::Active => status_code("active", None),
        HouseholdStatus::MovedOut { on } => status_code("moved_out", Some(on)),
        HouseholdStatus::Demolished { on } => status_code("demolished", Some(on)),
    }
}

pub(crate) fn decode_household_status(s: &str) -> Option<HouseholdStatus> {
    match split_status(s) {
        ("active", None) => Some(HouseholdStatus::Active),
        ("moved_out", Some(on)) => Some(HouseholdStatus::MovedOut { on }),
        ("demolished", Some(on)) => Some(HouseholdStatus::Demolished { on }),
        _ => None,
    }
}

pub(crate) fn encode_building_status(status: &BuildingStatus) -> String {
    match status {
        BuildingStatus::Active => status_code("active", None),
        BuildingStatus::Demolished { on } => status_code("demolished", Some(on)),
    }
}

pub(crate) fn decode_building_status(s: &str) -> Option<BuildingStatus> {
    match split_status(s) {
        ("active", None) => Some(BuildingStatus::Active),
        ("demolished", Some(on)) => Some(BuildingStatus::Demolished { on }),
        _ => None,
    }
}

pub(crate) fn encode_organization_status(status: &OrganizationStatus) -> String {
    match status {
        OrganizationStatus::Active => status_code("active", None),
        OrganizationStatus::Closed { on } => status_code("closed", Some(on)),
    }
}

pub(crate) fn decode_organization_status(s: &str) -> Option<OrganizationStatus> {
    match split_status(s) {
        ("active", None) => Some(OrganizationStatus::Active),
        ("closed", Some(on)) => Some(OrganizationStatus::Closed { on }),
        _ => None,
    }
}

pub(crate) fn new_building(building: &NewBuilding) -> RecordWrite {
    RecordWrite {
        register: vec![
            put("name", building.name.as_str()),
            put("address", building.address.as_str()),
            put_opt("location", building.location.as_ref(), encode_location),
            put_int_opt("floors", building.floors),
            put_int_opt("units", building.units),
            put("usage", building.usage.code()),
            put("status", &encode_building_status(&BuildingStatus::Active)),
        ],
        sensitive: Vec::new(),
    }
}

pub(crate) fn building_patch(patch: &BuildingPatch) -> RecordWrite {
    let mut register = Vec::new();
    if let Some(name) = &patch.name {
        register.push(put("name", name.as_str()));
    }
    if let Some(address) = &patch.address {
        register.push(put("address", address.as_str()));
    }
    if let Some(location) = &patch.location {
        register.push(put_opt("location", location.as_ref(), encode_location));
    }
    if let Some(floors) = patch.floors {
        register.push(put_int_opt("floors", floors));
    }
    if let Some(units) = patch.units {
        register.push(put_int_opt("units", units));
    }
    if let Some(usage) = patch.usage {
        register.push(put("usage", usage.code()));
    }
    RecordWrite { register, sensitive: Vec::new() }
}

pub(crate) fn new_household(household: &NewHousehold) -> RecordWrite {
    RecordWrite {
        register: vec![
            put_opt("building", household.building.as_ref(), ToString::to_string),
            put_opt("room", household.room.as_ref(), ToString::to_string),
            put_opt("address", household.address.as_ref(), ToString::to_string),
            put("residence_type", household.residence_type.code()),
            put("status", &encode_household_status(&HouseholdStatus::Active)),
        ],
        sensitive: Vec::new(),
    }
}

pub(crate) fn household_patch(patch: &HouseholdPatch) -> RecordWrite {
    let mut register = Vec::new();
    if let Some(building) = &patch.building {
        register.push(put_opt("building", building.as_ref(), ToString::to_string));
    }
    if let Some(room) = &patch.room {
        register.push(put_opt("room", room.as_ref(), ToString::to_string));
    }
    if let Some(address) = &patch.address {
        register.push(put_opt("address", address.as_ref(), ToString::to_string));
    }
    if let Some(residence_type) = patch.residence_type {
        register.push(put("residence_type", residence_type.code()));
    }
    RecordWrite { register, sensitive: Vec::new() }
}

/// `resident` must already carry the fields derived from its ID number.
pub(crate) fn new_resident(resident: &NewResident) -> RecordWrite {
    let mut sensitive = vec![
        put_opt("id_number", resident.id_number.as_ref(), ToString::to_string),
        put_opt("phone", resident.phone.as_ref(), ToString::to_string),
        put_opt("birth_date", resident.birth_date.as_ref(), encode_date),
    ];
    sensitive.extend(resident.tags.iter().map(|tag| Edit::AddTag(tag.code())));
    RecordWrite {
        register: vec![
            put_opt("household", resident.household.as_ref(), ToString::to_string),
            put("name", resident.name.as_str()),
            put_opt("gender", resident.gender.as_ref(), |gender| gender.code().to_owned()),
            put("relation", resident.relation.code()),
            put("residence_type", resident.residence_type.code()),
            put("status", &encode_resident_status(&ResidentStatus::Active)),
        ],
        sensitive,
    }
}

pub(crate) fn resident_patch(patch: &ResidentPatch) -> Result<RecordWrite, InvalidField> {
    let mut write = RecordWrite::default();
    let mut gender = patch.gender;
    let mut birth_date = patch.birth_date;
    if let Some(id_number) = &patch.id_number {
        if let Some(id_number) = id_number {
            // The number decides gender and birth date; a patch may not contradict it.
            if gender.is_some_and(|given| given != Some(id_number.gender())) {
                return Err(InvalidField::new("gender", Invalid::Rule("does not match the ID number")));
            }
            if birth_date.is_some_and(|given| given != Some(id_number.birth_date())) {
                return Err(InvalidField::new("birth_date", Invalid::Rule("does not match the ID number")));
            }
            gender = Some(Some(id_number.gender()));
            birth_date = Some(Some(id_number.birth_date()));
        }
        write.sensitive.push(put_opt("id_number", id_number.as_ref(), ToString::to_string));
    }
    if let Some(household) = &patch.household {
        write.register.push(put_opt("household", household.as_ref(), ToString::to_string));
    }
    if let Some(name) = &patch.name {
        write.register.push(put("name", name.as_str()));
    }
    if let Some(gender) = gender {
        write.register.push(put_opt("gender", gender.as_ref(), |gender| gender.code().to_owned()));
    }
    if let Some(relation) = patch.relation {
        write.register.push(put("relation", relation.code()));
    }
    if let Some(residence_type) = patch.residence_type {
        write.register.push(put("residence_type", residence_type.code()));
    }
    if let Some(phone) = &patch.phone {
        write.sensitive.push(put_opt("phone", phone.as_ref(), ToString::to_string));
    }
    if let Some(birth_date) = birth_date {
        write.sensitive.push(put_opt("birth_date", birth_date.as_ref(), encode_date));
    }
    write.sensitive.extend(patch.add_tags.iter().map(|tag| Edit::AddTag(tag.code())));
    write.sensitive.extend(patch.remove_tags.iter().map(|tag| Edit::RemoveTag(tag.code())));
    Ok(write)
}

pub(crate) fn new_organization(organization: &NewOrganization) -> RecordWrite {
    RecordWrite {
        register: vec![
            put("name", organization.name.as_str()),
            put_opt("uscc", organization.uscc.as_ref(), ToString::to_string),
            put("kind", organization.kind.code()),
            put("address", organization.address.as_str()),
            put_opt("location", organization.location.as_ref(), encode_location),
            put_opt("building", organization.building.as_ref(), ToString::to_string),
            put_opt("contact_name", organization.contact_name.as_ref(), ToString::to_string),
            put_opt("contact_phone", organization.contact_phone.as_ref(), ToString::to_string),
            put("status", &encode_organization_status(&OrganizationStatus::Active)),
        ],
        sensitive: Vec::new(),
    }
}

pub(crate) fn organization_patch(patch: &OrganizationPatch) -> RecordWrite {
    let mut register = Vec::new();
    if let Some(name) = &patch.name {
        register.push(put("name", name.as_str()));
    }
    if let Some(uscc) = &patch.uscc {
        register.push(put_opt("uscc", uscc.as_ref(), ToString::to_string));
    }
    if let Some(kind) = patch.kind {
        register.push(put("kind", kind.code()));
    }
    if let Some(address) = &patch.address {
        register.push(put("address", address.as_str()));
    }
    if let Some(location) = &patch.location {
        register.push(put_opt("location", location.as_ref(), encode_location));
    }
    if let Some(building) = &patch.building {
        register.push(put_opt("building", building.as_ref(), ToString::to_string));
    }
    if let Some(contact_name) = &patch.contact_name {
        register.push(put_opt("contact_name", contact_name.as_ref(), ToString::to_string));
    }
    if let Some(contact_phone) = &patch.contact_phone {
        register.push(put_opt("contact_phone", contact_phone.as_ref(), ToString::to_string));
    }
    RecordWrite { register, sensitive: Vec::new() }
}

pub(crate) fn new_component(component: &NewComponent) -> RecordWrite {
    RecordWrite {
        register: vec![
            put("subclass", component.subclass.as_str()),
            put("name", component.name.as_str()),
            put("location", &encode_location(&component.location)),
            put("state", component.state.code()),
        ],
        sensitive: Vec::new(),
    }
}

pub(crate) fn component_patch(patch: &ComponentPatch) -> RecordWrite {
    let mut register = Vec::new();
    if let Some(subclass) = &patch.subclass {
        register.push(put("subclass", subclass.as_str()));
    }
    if let Some(name) = &patch.name {
        register.push(put("name", name.as_str()));
    }
    if let Some(location) = &patch.location {
        register.push(put("location", &encode_location(location)));
    }
    if let Some(state) = patch.state {
        register.push(put("state", state.code()));
    }
    RecordWrite { register, sensitive: Vec::new() }
}

/// The record an archive applies to, and the status edit.
pub(crate) fn archive(archive: &Archive) -> (RecordRef, Edit) {
    match archive {
        Archive::Resident(id, status) => (RecordRef::Resident(*id), put("status", &encode_resident_status(status))),
        Archive::Household(id, status) => (RecordRef::Household(*id), put("status", &encode_household_status(status))),
        Archive::Building(id, status) => (RecordRef::Building(*id), put("status", &encode_building_status(status))),
        Archive::Organization(id, status) => {
            (RecordRef::Organization(*id), put("status", &encode_organization_status(status)))
        }
    }
}

/// Checks that `value` is something `field` of a `kind` record can hold, with the same
/// validated types the typed API uses. Guards writes that arrive as stored values
/// (resolving a conflict), so that no replica ever stores what it cannot read back.
pub(crate) fn check_stored(kind: RecordKind, field: &'static str, value: &ScalarValue) -> Result<(), InvalidField> {
    let invalid = || InvalidField::new(field, Invalid::Rule("not a value this field can hold"));
    let known = |found: bool| if found { Ok(()) } else { Err(invalid()) };
    if let ScalarValue::Int(n) = value {
        return known(matches!(field, "floors" | "units") && u16::try_from(*n).is_ok());
    }
    let ScalarValue::Str(text) = value else { return Err(invalid()) };
    let text = text.as_str();
    let id = |text: &str| uuid::Uuid::parse_str(text).is_ok();
    match (kind, field) {
        (RecordKind::Resident, "name") | (_, "contact_name") => PersonName::parse(text).map(drop),
        (_, "name") => Label::parse(text).map(drop),
        (_, "address") => Address::parse(text).map(drop),
        (_, "room") => Room::parse(text).map(drop),
        (_, "id_number") => IdNumber::parse_stored(text).map(drop),
        (_, "phone" | "contact_phone") => Phone::parse(text).map(drop),
        (_, "uscc") => Uscc::parse(text).map(drop),
        (_, "subclass") => ComponentSubclass::parse(text).map(drop),
        (_, "location") => known(decode_location(text).is_some()),
        (_, "birth_date") => known(decode_date(text).is_some()),
        (_, "building" | "household") => known(id(text)),
        (_, "usage") => known(BuildingUse::from_code(text).is_some()),
        (_, "residence_type") => known(ResidenceType::from_code(text).is_some()),
        (_, "gender") => known(Gender::from_code(text).is_some()),
        (_, "relation") => known(Relation::from_code(text).is_some()),
        (_, "kind") => known(OrganizationKind::from_code(text).is_some()),
        (_, "state") => known(ComponentState::from_code(text).is_some()),
        (RecordKind::Resident, "status") => known(decode_resident_status(text).is_some()),
        (RecordKind::Household, "status") => known(decode_household_status(text).is_some()),
        (RecordKind::Building, "status") => known(decode_building_status(text).is_some()),
        (RecordKind::Organization, "status") => known(decode_organization_status(text).is_some()),
        _ => Err(invalid()),
    }
}
