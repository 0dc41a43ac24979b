//! The records of a grid register: 人 (residents, households), 地 (buildings),
//! 物 (components) and 组织 (organizations).
//!
//! `NewX` goes in, `X` comes out; `XPatch` changes some fields of an existing record
//! (`None` leaves a field alone, `Some(None)` clears an optional one).

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;

use super::{
    BuildingId, Gender, GridCode, HouseholdId, IdNumber, Invalid, InvalidField, OrganizationId, Phone, ResidentId, Uscc,
};
use super::{ComponentId, RecordKind};

/// Checks free text: trimmed, not empty, at most `max` characters, no control characters.
pub(crate) fn checked_text(field: &'static str, s: &str, max: usize) -> Result<String, InvalidField> {
    let text = s.trim();
    let n_chars = text.chars().count();
    if n_chars == 0 {
        return Err(InvalidField::new(field, Invalid::Empty));
    }
    if let Some(position) = text.chars().position(char::is_control) {
        return Err(InvalidField::new(field, Invalid::Character { position: position + 1 }));
    }
    if n_chars > max {
        let expected = match max {
            50 => "1 to 50",
            100 => "1 to 100",
            200 => "1 to 200",
            _ => "fewer",
        };
        return Err(InvalidField::new(field, Invalid::Length { expected, found: n_chars }));
    }
    Ok(text.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl fmt::Debug for $name {
            /// The length only: names and addresses are personal data and must not
            /// reach logs through a `{:?}`.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({} chars)", stringify!($name), self.0.chars().count())
            }
        }

        impl $name {
            pub fn parse(s: &str) -> Result<Self, InvalidField> {
                checked_text($field, s, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        string_conversions!($name);
    };
}

text_type!(
    /// A person's name as written on their ID card; 1 to 50 characters (minority and
    /// foreign names are long and may contain `·`).
    PersonName, "name", 50
);
text_type!(
    /// A standard address 标准地址, e.g. `江门市蓬江区白沙街道长堤社区港口路3号2栋`.
    Address, "address", 200
);
text_type!(
    /// The name of an organization, building or component.
    Label, "label", 100
);
text_type!(
    /// Unit and room inside a building, e.g. `2单元501`.
    Room, "room", 50
);

/// A WGS-84 position, the only datum the core stores (map SDKs in China show GCJ-02).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wgs84 {
    lat: f64,
    lng: f64,
}

impl Wgs84 {
    pub fn new(lat: f64, lng: f64) -> Result<Self, InvalidField> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(InvalidField::new("location", Invalid::Rule("latitude must be within -90 to 90")));
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(InvalidField::new("location", Invalid::Rule("longitude must be within -180 to 180")));
        }
        Ok(Self { lat, lng })
    }

    pub fn lat(&self) -> f64 {
        self.lat
    }

    pub fn lng(&self) -> f64 {
        self.lng
    }

    pub fn to_point(&self) -> geo::Point<f64> {
        geo::Point::new(self.lng, self.lat)
    }
}

code_enum!(
    /// Residence type of a person or household.
    ResidenceType {
        Registered = "registered", "户籍";
        Migrant = "migrant", "流动";
        Foreign = "foreign", "境外";
    }
);

code_enum!(
    /// Relation to the head of the household.
    Relation {
        Head = "head", "户主";
        Spouse = "spouse", "配偶";
        Child = "child", "子女";
        Parent = "parent", "父母";
        Grandchild = "grandchild", "孙子女";
        Grandparent = "grandparent", "祖父母";
        Sibling = "sibling", "兄弟姐妹";
        ChildInLaw = "child_in_law", "儿媳/女婿";
        Lodger = "lodger", "借住人员";
        Other = "other", "其他";
    }
);

code_enum!(
    /// Care 关爱 and special-group 特殊人群 tags. All of them are sensitive.
    PersonTag {
        ElderlyAlone = "elderly_alone", "独居老人";
        EmptyNestElderly = "empty_nest_elderly", "空巢老人";
        LeftBehindChild = "left_behind_child", "留守儿童";
        LeftBehindElderly = "left_behind_elderly", "留守老人";
        Disabled = "disabled", "残疾人";
        LowIncome = "low_income", "低保对象";
        ExtremePoverty = "extreme_poverty", "特困人员";
        Veteran = "veteran", "退役军人";
        SeriousMentalIllness = "serious_mental_illness", "严重精神障碍患者";
        CommunityCorrection = "community_correction", "社区矫正对象";
        ReleasedPrisoner = "released_prisoner", "刑满释放人员";
        DrugRehabilitation = "drug_rehabilitation", "社区戒毒康复人员";
        KeyYouth = "key_youth", "重点青少年";
    }
);

/// Whether a tag asks for care or marks a special group under management.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagGroup {
    Care,
    Special,
}

impl PersonTag {
    pub fn group(self) -> TagGroup {
        use PersonTag::*;
        match self {
            ElderlyAlone | EmptyNestElderly | LeftBehindChild | LeftBehindElderly | Disabled | LowIncome
            | ExtremePoverty | Veteran => TagGroup::Care,
            SeriousMentalIllness | CommunityCorrection | ReleasedPrisoner | DrugRehabilitation | KeyYouth => {
                TagGroup::Special
            }
        }
    }
}

code_enum!(
    /// What a building is used for.
    BuildingUse {
        Residential = "residential", "住宅";
        Commercial = "commercial", "商业";
        Mixed = "mixed", "商住混合";
        Industrial = "industrial", "工业";
        Public = "public", "公共设施";
        Other = "other", "其他";
    }
);

code_enum!(
    /// Kind of organization 单位.
    OrganizationKind {
        Enterprise = "enterprise", "企业";
        IndividualBusiness = "individual_business", "个体工商户";
        School = "school", "学校";
        Hospital = "hospital", "医疗机构";
        Government = "government", "机关事业单位";
        SocialOrganization = "social_organization", "社会组织";
        Other = "other", "其他";
    }
);

code_enum!(
    /// Component class 部件大类 (GB/T 30428.2).
    ComponentClass {
        PublicFacility = "01", "公用设施";
        RoadTraffic = "02", "道路交通";
        CityAppearance = "03", "市容环境";
        Landscaping = "04", "园林绿化";
        HousingLand = "05", "房屋土地";
        Other = "06", "其他设施";
    }
);

code_enum!(
    /// State of a component.
    ComponentState {
        Intact = "intact", "完好";
        Damaged = "damaged", "损坏";
        Missing = "missing", "丢失";
        Occupied = "occupied", "占用";
    }
);

/// A component subclass 部件小类: four digits, the first two its class (e.g. `0101` 上水井盖).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentSubclass(String);

impl ComponentSubclass {
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        const FIELD: &str = "component_subclass";
        let code = s.trim();
        if code.chars().count() != 4 {
            return Err(InvalidField::new(FIELD, Invalid::Length { expected: "4", found: code.chars().count() }));
        }
        if let Some(position) = code.chars().position(|c| !c.is_ascii_digit()) {
            return Err(InvalidField::new(FIELD, Invalid::Character { position: position + 1 }));
        }
        if ComponentClass::from_code(&code[..2]).is_none() {
            return Err(InvalidField::new(FIELD, Invalid::Rule("the first two digits are not a component class")));
        }
        Ok(Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn class(&self) -> ComponentClass {
        ComponentClass::from_code(&self.0[..2]).unwrap_or(ComponentClass::Other)
    }
}

/// Whether a person is still present; archived residents keep their history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResidentStatus {
    Active,
    MovedOut { on: NaiveDate },
    Deceased { on: NaiveDate },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HouseholdStatus {
    Active,
    MovedOut {
        on: NaiveDate,
    },
    /// The dwelling was demolished.
    Demolished {
        on: NaiveDate,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuildingStatus {
    Active,
    Demolished { on: NaiveDate },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrganizationStatus {
    Active,
    Closed { on: NaiveDate },
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewBuilding {
    /// A short name, e.g. `2栋`.
    pub name: Label,
    pub address: Address,
    pub location: Option<Wgs84>,
    pub floors: Option<u16>,
    pub units: Option<u16>,
    pub usage: BuildingUse,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Building {
    pub id: BuildingId,
    pub grid: GridCode,
    pub name: Label,
    pub address: Address,
    pub location: Option<Wgs84>,
    pub floors: Option<u16>,
    pub units: Option<u16>,
    pub usage: BuildingUse,
    pub status: BuildingStatus,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildingPatch {
    pub name: Option<Label>,
    pub address: Option<Address>,
    pub location: Option<Option<Wgs84>>,
    pub floors: Option<Option<u16>>,
    pub units: Option<Option<u16>>,
    pub usage: Option<BuildingUse>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewHousehold {
    pub building: Option<BuildingId>,
    pub room: Option<Room>,
    /// Used when the household does not live in a recorded building (e.g. a boat at sea).
    pub address: Option<Address>,
    pub residence_type: ResidenceType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Household {
    pub id: HouseholdId,
    pub grid: GridCode,
    pub building: Option<BuildingId>,
    pub room: Option<Room>,
    pub address: Option<Address>,
    pub residence_type: ResidenceType,
    pub status: HouseholdStatus,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HouseholdPatch {
    pub building: Option<Option<BuildingId>>,
    pub room: Option<Option<Room>>,
    pub address: Option<Option<Address>>,
    pub residence_type: Option<ResidenceType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewResident {
    pub household: Option<HouseholdId>,
    pub name: PersonName,
    pub id_number: Option<IdNumber>,
    pub phone: Option<Phone>,
    /// Derived from the ID number when there is one; give it only for people without one.
    pub gender: Option<Gender>,
    /// Derived from the ID number when there is one.
    pub birth_date: Option<NaiveDate>,
    pub relation: Relation,
    pub residence_type: ResidenceType,
    pub tags: BTreeSet<PersonTag>,
}

impl NewResident {
    /// Fills gender and birth date from the ID number, refusing values that contradict it.
    pub fn with_derived_fields(mut self) -> Result<Self, InvalidField> {
        if let Some(id_number) = &self.id_number {
            if self.gender.is_some_and(|gender| gender != id_number.gender()) {
                return Err(InvalidField::new("gender", Invalid::Rule("does not match the ID number")));
            }
            if self.birth_date.is_some_and(|date| date != id_number.birth_date()) {
                return Err(InvalidField::new("birth_date", Invalid::Rule("does not match the ID number")));
            }
            self.gender = Some(id_number.gender());
            self.birth_date = Some(id_number.birth_date());
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resident {
    pub id: ResidentId,
    pub grid: GridCode,
    pub household: Option<HouseholdId>,
    pub name: PersonName,
    pub gender: Option<Gender>,
    pub relation: Relation,
    pub residence_type: ResidenceType,
    pub status: ResidentStatus,
    /// `None` on devices that do not hold the grid's sensitive data.
    pub sensitive: Option<ResidentSensitive>,
}

/// The fields of a resident kept in the grid's sensitive-data document only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResidentSensitive {
    pub id_number: Option<IdNumber>,
    pub phone: Option<Phone>,
    pub birth_date: Option<NaiveDate>,
    pub tags: BTreeSet<PersonTag>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResidentPatch {
    pub household: Option<Option<HouseholdId>>,
    pub name: Option<PersonName>,
    /// Setting an ID number also sets gender and birth date from it.
    pub id_number: Option<Option<IdNumber>>,
    pub phone: Option<Option<Phone>>,
    pub gender: Option<Option<Gender>>,
    pub birth_date: Option<Option<NaiveDate>>,
    pub relation: Option<Relation>,
    pub residence_type: Option<ResidenceType>,
    pub add_tags: BTreeSet<PersonTag>,
    pub remove_tags: BTreeSet<PersonTag>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewOrganization {
    pub name: Label,
    pub uscc: Option<Uscc>,
    pub kind: OrganizationKind,
    pub address: Address,
    pub location: Option<Wgs84>,
    pub building: Option<BuildingId>,
    pub contact_name: Option<PersonName>,
    pub contact_phone: Option<Phone>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: OrganizationId,
    pub grid: GridCode,
    pub name: Label,
    pub uscc: Option<Uscc>,
    pub kind: OrganizationKind,
    pub address: Address,
    pub location: Option<Wgs84>,
    pub building: Option<BuildingId>,
    pub contact_name: Option<PersonName>,
    pub contact_phone: Option<Phone>,
    pub status: OrganizationStatus,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrganizationPatch {
    pub name: Option<Label>,
    pub uscc: Option<Option<Uscc>>,
    pub kind: Option<OrganizationKind>,
    pub address: Option<Address>,
    pub location: Option<Option<Wgs84>>,
    pub building: Option<Option<BuildingId>>,
    pub contact_name: Option<Option<PersonName>>,
    pub contact_phone: Option<Option<Phone>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewComponent {
    pub subclass: ComponentSubclass,
    pub name: Label,
    pub location: Wgs84,
    pub state: ComponentState,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub id: ComponentId,
    pub grid: GridCode,
    pub subclass: ComponentSubclass,
    pub name: Label,
    pub location: Wgs84,
    pub state: ComponentState,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ComponentPatch {
    pub subclass: Option<ComponentSubclass>,
    pub name: Option<Label>,
    pub location: Option<Wgs84>,
    pub state: Option<ComponentState>,
}

/// Why a record is archived rather than erased: the record and its history stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    Resident(ResidentId, ResidentStatus),
    Household(HouseholdId, HouseholdStatus),
    Building(BuildingId, BuildingStatus),
    Organization(OrganizationId, OrganizationStatus),
}

impl Archive {
    pub fn kind(&self) -> RecordKind {
        match self {
            Archive::Resident(..) => RecordKind::Resident,
            Archive::Household(..) => RecordKind::Household,
            Archive::Building(..) => RecordKind::Building,
            Archive::Organization(..) => RecordKind::Organization,
        }
    }
}

/// Records of one grid with their ids, as a bulk import (or the demo generator) gives them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GridRecords {
    pub buildings: Vec<(BuildingId, NewBuilding)>,
    pub households: Vec<(HouseholdId, NewHousehold)>,
    pub residents: Vec<(ResidentId, NewResident)>,
    pub organizations: Vec<(OrganizationId, NewOrganization)>,
    pub components: Vec<(ComponentId, NewComponent)>,
}
