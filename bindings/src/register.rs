//! The register's records as the apps see them: ids and dates as strings (`YYYY-MM-DD`),
//! the core's code enums exported as they are, and conversions checked on the way in.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use wangge_core::model::{self as core, ComponentSubclass};
pub use wangge_core::model::{
    BuildingUse, ComponentState, Gender, GridKind, OrganizationKind, PersonTag, Relation, ResidenceType,
};

use crate::error::{Result, in_range, invalid, small_count};

#[uniffi::remote(Enum)]
pub enum Gender {
    Male,
    Female,
}

#[uniffi::remote(Enum)]
pub enum ResidenceType {
    Registered,
    Migrant,
    Foreign,
}

#[uniffi::remote(Enum)]
pub enum Relation {
    Head,
    Spouse,
    Child,
    Parent,
    Grandchild,
    Grandparent,
    Sibling,
    ChildInLaw,
    Lodger,
    Other,
}

#[uniffi::remote(Enum)]
pub enum PersonTag {
    ElderlyAlone,
    EmptyNestElderly,
    LeftBehindChild,
    LeftBehindElderly,
    Disabled,
    LowIncome,
    ExtremePoverty,
    Veteran,
    SeriousMentalIllness,
    CommunityCorrection,
    ReleasedPrisoner,
    DrugRehabilitation,
    KeyYouth,
}

#[uniffi::remote(Enum)]
pub enum BuildingUse {
    Residential,
    Commercial,
    Mixed,
    Industrial,
    Public,
    Other,
}

#[uniffi::remote(Enum)]
pub enum OrganizationKind {
    Enterprise,
    IndividualBusiness,
    School,
    Hospital,
    Government,
    SocialOrganization,
    Other,
}

#[uniffi::remote(Enum)]
pub enum ComponentState {
    Intact,
    Damaged,
    Missing,
    Occupied,
}

#[uniffi::remote(Enum)]
pub enum GridKind {
    Community,
    Village,
    Unit,
    Compound,
    IndustrialPark,
    Sea,
}

/// A position: WGS-84 (what the core stores) unless a function says it takes or gives
/// GCJ-02 or BD-09 (what map SDKs in China show).
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

impl From<core::Wgs84> for LatLng {
    fn from(point: core::Wgs84) -> Self {
        LatLng { lat: point.lat(), lng: point.lng() }
    }
}

impl TryFrom<LatLng> for core::Wgs84 {
    type Error = crate::ApiError;
    fn try_from(point: LatLng) -> Result<Self> {
        Ok(core::Wgs84::new(point.lat, point.lng)?)
    }
}

/// A grid this device holds.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Grid {
    pub code: String,
    pub name: String,
    pub kind: GridKind,
    /// `active`, or `retired` after a split or merge.
    pub active: bool,
}

impl From<core::Grid> for Grid {
    fn from(grid: core::Grid) -> Self {
        Grid {
            code: grid.code.to_string(),
            name: grid.name,
            kind: grid.kind,
            active: matches!(grid.status, core::GridStatus::Active),
        }
    }
}

/// Whether a record is current, or archived (moved out, deceased, demolished, closed) on a date.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum RecordStatus {
    Active,
    MovedOut { on: String },
    Deceased { on: String },
    Demolished { on: String },
    Closed { on: String },
}

impl From<core::ResidentStatus> for RecordStatus {
    fn from(status: core::ResidentStatus) -> Self {
        match status {
            core::ResidentStatus::Active => RecordStatus::Active,
            core::ResidentStatus::MovedOut { on } => RecordStatus::MovedOut { on: on.to_string() },
            core::ResidentStatus::Deceased { on } => RecordStatus::Deceased { on: on.to_string() },
        }
    }
}

impl From<core::HouseholdStatus> for RecordStatus {
    fn from(status: core::HouseholdStatus) -> Self {
        match status {
            core::HouseholdStatus::Active => RecordStatus::Active,
            core::HouseholdStatus::MovedOut { on } => RecordStatus::MovedOut { on: on.to_string() },
            core::HouseholdStatus::Demolished { on } => RecordStatus::Demolished { on: on.to_string() },
        }
    }
}

impl From<core::BuildingStatus> for RecordStatus {
    fn from(status: core::BuildingStatus) -> Self {
        match status {
            core::BuildingStatus::Active => RecordStatus::Active,
            core::BuildingStatus::Demolished { on } => RecordStatus::Demolished { on: on.to_string() },
        }
    }
}

impl From<core::OrganizationStatus> for RecordStatus {
    fn from(status: core::OrganizationStatus) -> Self {
        match status {
            core::OrganizationStatus::Active => RecordStatus::Active,
            core::OrganizationStatus::Closed { on } => RecordStatus::Closed { on: on.to_string() },
        }
    }
}

/// Which register record: its kind and id.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum RecordRef {
    Building { id: String },
    Household { id: String },
    Resident { id: String },
    Organization { id: String },
    Component { id: String },
}

impl TryFrom<RecordRef> for core::RecordRef {
    type Error = crate::ApiError;
    fn try_from(record: RecordRef) -> Result<Self> {
        Ok(match record {
            RecordRef::Building { id } => core::RecordRef::Building(core::BuildingId::parse(&id)?),
            RecordRef::Household { id } => core::RecordRef::Household(core::HouseholdId::parse(&id)?),
            RecordRef::Resident { id } => core::RecordRef::Resident(core::ResidentId::parse(&id)?),
            RecordRef::Organization { id } => core::RecordRef::Organization(core::OrganizationId::parse(&id)?),
            RecordRef::Component { id } => core::RecordRef::Component(core::ComponentId::parse(&id)?),
        })
    }
}

// ---- parsing helpers: one rule each ----

pub(crate) fn parse_date(field: &str, text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| invalid(field, "expected a date as YYYY-MM-DD"))
}

fn opt<T, U>(value: Option<T>, parse: impl FnOnce(T) -> Result<U>) -> Result<Option<U>> {
    value.map(parse).transpose()
}

/// A patch field: `None` leaves it, `Some(None)` clears it, `Some(Some(v))` sets it. The
/// apps say "clear" with `clear_<field> = true`.
fn patch<T, U>(value: Option<T>, clear: bool, parse: impl FnOnce(T) -> Result<U>) -> Result<Option<Option<U>>> {
    if clear {
        return Ok(Some(None));
    }
    Ok(value.map(parse).transpose()?.map(Some))
}

fn id_of<T>(parse: impl FnOnce(&str) -> std::result::Result<T, core::InvalidField>, id: &str) -> Result<T> {
    Ok(parse(id)?)
}

// ---- buildings ----

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewBuilding {
    pub name: String,
    pub address: String,
    #[uniffi(default = None)]
    pub location: Option<LatLng>,
    #[uniffi(default = None)]
    pub floors: Option<i32>,
    #[uniffi(default = None)]
    pub units: Option<i32>,
    pub usage: BuildingUse,
}

impl TryFrom<NewBuilding> for core::NewBuilding {
    type Error = crate::ApiError;
    fn try_from(b: NewBuilding) -> Result<Self> {
        Ok(core::NewBuilding {
            name: core::Label::parse(&b.name)?,
            address: core::Address::parse(&b.address)?,
            location: opt(b.location, core::Wgs84::try_from)?,
            floors: opt(b.floors, |n| in_range("floors", n))?,
            units: opt(b.units, |n| in_range("units", n))?,
            usage: b.usage,
        })
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Building {
    pub id: String,
    pub grid: String,
    pub name: String,
    pub address: String,
    pub location: Option<LatLng>,
    pub floors: Option<i32>,
    pub units: Option<i32>,
    pub usage: BuildingUse,
    pub status: RecordStatus,
}

impl From<core::Building> for Building {
    fn from(b: core::Building) -> Self {
        Building {
            id: b.id.to_string(),
            grid: b.grid.to_string(),
            name: b.name.as_str().to_owned(),
            address: b.address.as_str().to_owned(),
            location: b.location.map(Into::into),
            floors: b.floors.map(i32::from),
            units: b.units.map(i32::from),
            usage: b.usage,
            status: b.status.into(),
        }
    }
}

impl From<core::ResidentSensitive> for ResidentSensitive {
    /// The full values (for `reveal_resident` only).
    fn from(s: core::ResidentSensitive) -> Self {
        ResidentSensitive {
            id_number: s.id_number.map(|id| id.as_str().to_owned()),
            phone: s.phone.map(|phone| phone.as_str().to_owned()),
            birth_date: s.birth_date.map(|date| date.to_string()),
            tags: s.tags.into_iter().collect(),
        }
    }
}

/// Fields left `None` are not changed.
#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct BuildingPatch {
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub address: Option<String>,
    #[uniffi(default = None)]
    pub location: Option<LatLng>,
    #[uniffi(default = false)]
    pub clear_location: bool,
    #[uniffi(default = None)]
    pub floors: Option<i32>,
    #[uniffi(default = None)]
    pub units: Option<i32>,
    #[uniffi(default = None)]
    pub usage: Option<BuildingUse>,
}

impl TryFrom<BuildingPatch> for core::BuildingPatch {
    type Error = crate::ApiError;
    fn try_from(p: BuildingPatch) -> Result<Self> {
        Ok(core::BuildingPatch {
            name: opt(p.name, |s| Ok(core::Label::parse(&s)?))?,
            address: opt(p.address, |s| Ok(core::Address::parse(&s)?))?,
            location: patch(p.location, p.clear_location, core::Wgs84::try_from)?,
            floors: opt(p.floors, |n| in_range("floors", n))?.map(Some),
            units: opt(p.units, |n| in_range("units", n))?.map(Some),
            usage: p.usage,
        })
    }
}

// ---- households ----

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewHousehold {
    #[uniffi(default = None)]
    pub building: Option<String>,
    #[uniffi(default = None)]
    pub room: Option<String>,
    #[uniffi(default = None)]
    pub address: Option<String>,
    pub residence_type: ResidenceType,
}

impl TryFrom<NewHousehold> for core::NewHousehold {
    type Error = crate::ApiError;
    fn try_from(h: NewHousehold) -> Result<Self> {
        Ok(core::NewHousehold {
            building: opt(h.building, |id| id_of(core::BuildingId::parse, &id))?,
            room: opt(h.room, |s| Ok(core::Room::parse(&s)?))?,
            address: opt(h.address, |s| Ok(core::Address::parse(&s)?))?,
            residence_type: h.residence_type,
        })
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Household {
    pub id: String,
    pub grid: String,
    pub building: Option<String>,
    pub room: Option<String>,
    pub address: Option<String>,
    pub residence_type: ResidenceType,
    pub status: RecordStatus,
}

impl From<core::Household> for Household {
    fn from(h: core::Household) -> Self {
        Household {
            id: h.id.to_string(),
            grid: h.grid.to_string(),
            building: h.building.map(|id| id.to_string()),
            room: h.room.map(|room| room.as_str().to_owned()),
            address: h.address.map(|address| address.as_str().to_owned()),
            residence_type: h.residence_type,
            status: h.status.into(),
        }
    }
}

/// A line of the household list: the household with its head and size.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HouseholdSummary {
    pub id: String,
    pub building: Option<String>,
    pub building_name: Option<String>,
    pub address: Option<String>,
    pub room: Option<String>,
    pub residence_type: ResidenceType,
    pub status: RecordStatus,
    pub head_name: Option<String>,
    pub n_residents: i32,
}

impl From<wangge_core::HouseholdSummary> for HouseholdSummary {
    fn from(h: wangge_core::HouseholdSummary) -> Self {
        HouseholdSummary {
            id: h.id.to_string(),
            building: h.building.map(|id| id.to_string()),
            building_name: h.building_name,
            address: h.address,
            room: h.room,
            residence_type: h.residence_type,
            status: h.status.into(),
            head_name: h.head_name,
            n_residents: small_count(h.n_residents),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct HouseholdPatch {
    #[uniffi(default = None)]
    pub building: Option<String>,
    #[uniffi(default = false)]
    pub clear_building: bool,
    #[uniffi(default = None)]
    pub room: Option<String>,
    #[uniffi(default = false)]
    pub clear_room: bool,
    #[uniffi(default = None)]
    pub address: Option<String>,
    #[uniffi(default = false)]
    pub clear_address: bool,
    #[uniffi(default = None)]
    pub residence_type: Option<ResidenceType>,
}

impl TryFrom<HouseholdPatch> for core::HouseholdPatch {
    type Error = crate::ApiError;
    fn try_from(p: HouseholdPatch) -> Result<Self> {
        Ok(core::HouseholdPatch {
            building: patch(p.building, p.clear_building, |id| id_of(core::BuildingId::parse, &id))?,
            room: patch(p.room, p.clear_room, |s| Ok(core::Room::parse(&s)?))?,
            address: patch(p.address, p.clear_address, |s| Ok(core::Address::parse(&s)?))?,
            residence_type: p.residence_type,
        })
    }
}

// ---- residents ----

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewResident {
    #[uniffi(default = None)]
    pub household: Option<String>,
    pub name: String,
    /// Sets gender and birth date when they are not given.
    #[uniffi(default = None)]
    pub id_number: Option<String>,
    #[uniffi(default = None)]
    pub phone: Option<String>,
    #[uniffi(default = None)]
    pub gender: Option<Gender>,
    #[uniffi(default = None)]
    pub birth_date: Option<String>,
    pub relation: Relation,
    pub residence_type: ResidenceType,
    #[uniffi(default = [])]
    pub tags: Vec<PersonTag>,
}

impl TryFrom<NewResident> for core::NewResident {
    type Error = crate::ApiError;
    fn try_from(r: NewResident) -> Result<Self> {
        Ok(core::NewResident {
            household: opt(r.household, |id| id_of(core::HouseholdId::parse, &id))?,
            name: core::PersonName::parse(&r.name)?,
            id_number: opt(r.id_number, |s| Ok(core::IdNumber::parse(&s)?))?,
            phone: opt(r.phone, |s| Ok(core::Phone::parse(&s)?))?,
            gender: r.gender,
            birth_date: opt(r.birth_date, |s| parse_date("birth_date", &s))?,
            relation: r.relation,
            residence_type: r.residence_type,
            tags: r.tags.into_iter().collect(),
        })
    }
}

/// What only roles allowed to see sensitive data receive (DESIGN §3). In a `Resident` the ID
/// number and phone are masked (`4407**********123X`, `138****5678`); the full values come
/// from `FieldStore.reveal_resident`, which records who saw them and why.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ResidentSensitive {
    pub id_number: Option<String>,
    pub phone: Option<String>,
    pub birth_date: Option<String>,
    pub tags: Vec<PersonTag>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Resident {
    pub id: String,
    pub grid: String,
    pub household: Option<String>,
    pub name: String,
    pub gender: Option<Gender>,
    pub relation: Relation,
    pub residence_type: ResidenceType,
    pub status: RecordStatus,
    /// `None` on a device that does not hold the grid's sensitive data.
    pub sensitive: Option<ResidentSensitive>,
}

impl From<core::Resident> for Resident {
    fn from(r: core::Resident) -> Self {
        Resident {
            id: r.id.to_string(),
            grid: r.grid.to_string(),
            household: r.household.map(|id| id.to_string()),
            name: r.name.as_str().to_owned(),
            gender: r.gender,
            relation: r.relation,
            residence_type: r.residence_type,
            status: r.status.into(),
            sensitive: r.sensitive.map(|s| ResidentSensitive {
                id_number: s.id_number.map(|id| id.masked()),
                phone: s.phone.map(|phone| phone.masked()),
                birth_date: s.birth_date.map(|date| date.to_string()),
                tags: s.tags.into_iter().collect(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct ResidentPatch {
    #[uniffi(default = None)]
    pub household: Option<String>,
    #[uniffi(default = false)]
    pub clear_household: bool,
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub id_number: Option<String>,
    #[uniffi(default = false)]
    pub clear_id_number: bool,
    #[uniffi(default = None)]
    pub phone: Option<String>,
    #[uniffi(default = false)]
    pub clear_phone: bool,
    #[uniffi(default = None)]
    pub gender: Option<Gender>,
    #[uniffi(default = None)]
    pub birth_date: Option<String>,
    #[uniffi(default = None)]
    pub relation: Option<Relation>,
    #[uniffi(default = None)]
    pub residence_type: Option<ResidenceType>,
    #[uniffi(default = [])]
    pub add_tags: Vec<PersonTag>,
    #[uniffi(default = [])]
    pub remove_tags: Vec<PersonTag>,
}

impl TryFrom<ResidentPatch> for core::ResidentPatch {
    type Error = crate::ApiError;
    fn try_from(p: ResidentPatch) -> Result<Self> {
        Ok(core::ResidentPatch {
            household: patch(p.household, p.clear_household, |id| id_of(core::HouseholdId::parse, &id))?,
            name: opt(p.name, |s| Ok(core::PersonName::parse(&s)?))?,
            id_number: patch(p.id_number, p.clear_id_number, |s| Ok(core::IdNumber::parse(&s)?))?,
            phone: patch(p.phone, p.clear_phone, |s| Ok(core::Phone::parse(&s)?))?,
            gender: p.gender.map(Some),
            birth_date: opt(p.birth_date, |s| parse_date("birth_date", &s))?.map(Some),
            relation: p.relation,
            residence_type: p.residence_type,
            add_tags: p.add_tags.into_iter().collect::<BTreeSet<_>>(),
            remove_tags: p.remove_tags.into_iter().collect::<BTreeSet<_>>(),
        })
    }
}

/// A search result: enough to show a line and open the resident.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ResidentHit {
    pub id: String,
    pub name: String,
    pub gender: Option<Gender>,
    pub household: Option<String>,
    pub address: Option<String>,
    pub room: Option<String>,
    pub status: RecordStatus,
}

impl From<wangge_core::ResidentHit> for ResidentHit {
    fn from(h: wangge_core::ResidentHit) -> Self {
        ResidentHit {
            id: h.id.to_string(),
            name: h.name,
            gender: h.gender,
            household: h.household.map(|id| id.to_string()),
            address: h.address,
            room: h.room,
            status: h.status.into(),
        }
    }
}

// ---- organizations ----

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewOrganization {
    pub name: String,
    #[uniffi(default = None)]
    pub uscc: Option<String>,
    pub kind: OrganizationKind,
    pub address: String,
    #[uniffi(default = None)]
    pub location: Option<LatLng>,
    #[uniffi(default = None)]
    pub building: Option<String>,
    #[uniffi(default = None)]
    pub contact_name: Option<String>,
    #[uniffi(default = None)]
    pub contact_phone: Option<String>,
}

impl TryFrom<NewOrganization> for core::NewOrganization {
    type Error = crate::ApiError;
    fn try_from(o: NewOrganization) -> Result<Self> {
        Ok(core::NewOrganization {
            name: core::Label::parse(&o.name)?,
            uscc: opt(o.uscc, |s| Ok(core::Uscc::parse(&s)?))?,
            kind: o.kind,
            address: core::Address::parse(&o.address)?,
            location: opt(o.location, core::Wgs84::try_from)?,
            building: opt(o.building, |id| id_of(core::BuildingId::parse, &id))?,
            contact_name: opt(o.contact_name, |s| Ok(core::PersonName::parse(&s)?))?,
            contact_phone: opt(o.contact_phone, |s| Ok(core::Phone::parse(&s)?))?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Organization {
    pub id: String,
    pub grid: String,
    pub name: String,
    pub uscc: Option<String>,
    pub kind: OrganizationKind,
    pub address: String,
    pub location: Option<LatLng>,
    pub building: Option<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub status: RecordStatus,
}

impl From<core::Organization> for Organization {
    fn from(o: core::Organization) -> Self {
        Organization {
            id: o.id.to_string(),
            grid: o.grid.to_string(),
            name: o.name.as_str().to_owned(),
            uscc: o.uscc.map(|uscc| uscc.as_str().to_owned()),
            kind: o.kind,
            address: o.address.as_str().to_owned(),
            location: o.location.map(Into::into),
            building: o.building.map(|id| id.to_string()),
            contact_name: o.contact_name.map(|name| name.as_str().to_owned()),
            contact_phone: o.contact_phone.map(|phone| phone.as_str().to_owned()),
            status: o.status.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct OrganizationPatch {
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub uscc: Option<String>,
    #[uniffi(default = None)]
    pub kind: Option<OrganizationKind>,
    #[uniffi(default = None)]
    pub address: Option<String>,
    #[uniffi(default = None)]
    pub contact_name: Option<String>,
    #[uniffi(default = None)]
    pub contact_phone: Option<String>,
    #[uniffi(default = false)]
    pub clear_contact: bool,
}

impl TryFrom<OrganizationPatch> for core::OrganizationPatch {
    type Error = crate::ApiError;
    fn try_from(p: OrganizationPatch) -> Result<Self> {
        Ok(core::OrganizationPatch {
            name: opt(p.name, |s| Ok(core::Label::parse(&s)?))?,
            uscc: opt(p.uscc, |s| Ok(core::Uscc::parse(&s)?))?.map(Some),
            kind: p.kind,
            address: opt(p.address, |s| Ok(core::Address::parse(&s)?))?,
            location: None,
            building: None,
            contact_name: patch(p.contact_name, p.clear_contact, |s| Ok(core::PersonName::parse(&s)?))?,
            contact_phone: patch(p.contact_phone, p.clear_contact, |s| Ok(core::Phone::parse(&s)?))?,
        })
    }
}

// ---- components (城市部件) ----

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewComponent {
    /// The subclass code of the national component standard, e.g. `0101`.
    pub subclass: String,
    pub name: String,
    pub location: LatLng,
    pub state: ComponentState,
}

impl TryFrom<NewComponent> for core::NewComponent {
    type Error = crate::ApiError;
    fn try_from(c: NewComponent) -> Result<Self> {
        Ok(core::NewComponent {
            subclass: ComponentSubclass::parse(&c.subclass)?,
            name: core::Label::parse(&c.name)?,
            location: c.location.try_into()?,
            state: c.state,
        })
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Component {
    pub id: String,
    pub grid: String,
    pub subclass: String,
    pub name: String,
    pub location: LatLng,
    pub state: ComponentState,
}

impl From<core::Component> for Component {
    fn from(c: core::Component) -> Self {
        Component {
            id: c.id.to_string(),
            grid: c.grid.to_string(),
            subclass: c.subclass.as_str().to_owned(),
            name: c.name.as_str().to_owned(),
            location: c.location.into(),
            state: c.state,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, uniffi::Record)]
pub struct ComponentPatch {
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub location: Option<LatLng>,
    #[uniffi(default = None)]
    pub state: Option<ComponentState>,
}

impl TryFrom<ComponentPatch> for core::ComponentPatch {
    type Error = crate::ApiError;
    fn try_from(p: ComponentPatch) -> Result<Self> {
        Ok(core::ComponentPatch {
            subclass: None,
            name: opt(p.name, |s| Ok(core::Label::parse(&s)?))?,
            location: opt(p.location, core::Wgs84::try_from)?,
            state: p.state,
        })
    }
}

// ---- archiving ----

/// Why a record leaves the active register (its history stays): the date it happened.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ArchiveReason {
    ResidentMovedOut { resident: String, on: String },
    ResidentDeceased { resident: String, on: String },
    HouseholdMovedOut { household: String, on: String },
    HouseholdDemolished { household: String, on: String },
    BuildingDemolished { building: String, on: String },
    OrganizationClosed { organization: String, on: String },
}

impl TryFrom<ArchiveReason> for core::Archive {
    type Error = crate::ApiError;
    fn try_from(reason: ArchiveReason) -> Result<Self> {
        let on = |text: &str| parse_date("on", text);
        Ok(match reason {
            ArchiveReason::ResidentMovedOut { resident, on: date } => core::Archive::Resident(
                id_of(core::ResidentId::parse, &resident)?,
                core::ResidentStatus::MovedOut { on: on(&date)? },
            ),
            ArchiveReason::ResidentDeceased { resident, on: date } => core::Archive::Resident(
                id_of(core::ResidentId::parse, &resident)?,
                core::ResidentStatus::Deceased { on: on(&date)? },
            ),
            ArchiveReason::HouseholdMovedOut { household, on: date } => core::Archive::Household(
                id_of(core::HouseholdId::parse, &household)?,
                core::HouseholdStatus::MovedOut { on: on(&date)? },
            ),
            ArchiveReason::HouseholdDemolished { household, on: date } => core::Archive::Household(
                id_of(core::HouseholdId::parse, &household)?,
                core::HouseholdStatus::Demolished { on: on(&date)? },
            ),
            ArchiveReason::BuildingDemolished { building, on: date } => core::Archive::Building(
                id_of(core::BuildingId::parse, &building)?,
                core::BuildingStatus::Demolished { on: on(&date)? },
            ),
            ArchiveReason::OrganizationClosed { organization, on: date } => core::Archive::Organization(
                id_of(core::OrganizationId::parse, &organization)?,
                core::OrganizationStatus::Closed { on: on(&date)? },
            ),
        })
    }
}

// ---- conflicts ----

/// A value as stored in a record's document (codes and dates as stored).
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum FieldValue {
    Text { value: String },
    Int { value: i64 },
    Float { value: f64 },
    Bool { value: bool },
    Null,
}

impl FieldValue {
    pub(crate) fn from_scalar(value: &automerge::ScalarValue) -> FieldValue {
        use automerge::ScalarValue as S;
        match value {
            S::Str(text) => FieldValue::Text { value: text.to_string() },
            S::Int(n) => FieldValue::Int { value: *n },
            S::Uint(n) => FieldValue::Int { value: i64::try_from(*n).unwrap_or(i64::MAX) },
            S::F64(x) => FieldValue::Float { value: *x },
            S::Boolean(b) => FieldValue::Bool { value: *b },
            S::Timestamp(t) => FieldValue::Int { value: *t },
            S::Null => FieldValue::Null,
            other => FieldValue::Text { value: other.to_string() },
        }
    }

    pub(crate) fn into_scalar(self) -> automerge::ScalarValue {
        use automerge::ScalarValue as S;
        match self {
            FieldValue::Text { value } => S::Str(value.into()),
            FieldValue::Int { value } => S::Int(value),
            FieldValue::Float { value } => S::F64(value),
            FieldValue::Bool { value } => S::Boolean(value),
            FieldValue::Null => S::Null,
        }
    }
}

/// One of a field's concurrent values, with who wrote it and when (informational).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ConflictValue {
    pub value: FieldValue,
    /// The automerge actor (hex) of the device that wrote it.
    pub author: String,
    pub time_ms: i64,
}

/// A field two devices changed concurrently: every value is kept until someone resolves it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FieldConflict {
    pub field: String,
    pub values: Vec<ConflictValue>,
}

impl From<wangge_core::crdt::FieldConflict> for FieldConflict {
    fn from(conflict: wangge_core::crdt::FieldConflict) -> Self {
        FieldConflict {
            field: conflict.field.to_owned(),
            values: conflict
                .values
                .iter()
                .map(|value| ConflictValue {
                    value: FieldValue::from_scalar(&value.value),
                    author: value.author.clone(),
                    time_ms: value.time_ms,
                })
                .collect(),
        }
    }
}
