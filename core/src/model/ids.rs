//! Record ids: UUIDv7, generated on the device, so no record needs the server to exist.

use std::fmt;
use std::str::FromStr;

use super::{Invalid, InvalidField};

macro_rules! record_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new id, time-ordered (UUIDv7).
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            pub fn from_uuid(uuid: uuid::Uuid) -> Self {
                Self(uuid)
            }

            pub fn uuid(&self) -> uuid::Uuid {
                self.0
            }

            pub fn parse(s: &str) -> Result<Self, InvalidField> {
                uuid::Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| InvalidField::new($field, Invalid::Rule("not a UUID")))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidField;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        /// As its hyphenated text, the form documents store.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

record_id!(
    /// A building or house 房屋.
    BuildingId, "building_id"
);
record_id!(
    /// A household 户.
    HouseholdId, "household_id"
);
record_id!(
    /// A resident 实有人口.
    ResidentId, "resident_id"
);
record_id!(
    /// An organization 单位.
    OrganizationId, "organization_id"
);
record_id!(
    /// A component 部件 (manhole, street lamp, …).
    ComponentId, "component_id"
);
record_id!(
    /// An incident 事件: its own document.
    IncidentId, "incident_id"
);

/// Any record of a grid register, by kind and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordRef {
    Building(BuildingId),
    Household(HouseholdId),
    Resident(ResidentId),
    Organization(OrganizationId),
    Component(ComponentId),
}

/// The kinds of register records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Building,
    Household,
    Resident,
    Organization,
    Component,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Building,
        RecordKind::Household,
        RecordKind::Resident,
        RecordKind::Organization,
        RecordKind::Component,
    ];

    /// The stable plural name used for document containers and tables.
    pub fn plural(self) -> &'static str {
        match self {
            RecordKind::Building => "buildings",
            RecordKind::Household => "households",
            RecordKind::Resident => "residents",
            RecordKind::Organization => "organizations",
            RecordKind::Component => "components",
        }
    }

    pub fn from_plural(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.plural() == s)
    }
}

impl RecordRef {
    pub fn kind(&self) -> RecordKind {
        match self {
            RecordRef::Building(_) => RecordKind::Building,
            RecordRef::Household(_) => RecordKind::Household,
            RecordRef::Resident(_) => RecordKind::Resident,
            RecordRef::Organization(_) => RecordKind::Organization,
            RecordRef::Component(_) => RecordKind::Component,
        }
    }

    pub fn uuid(&self) -> uuid::Uuid {
        match self {
            RecordRef::Building(id) => id.uuid(),
            RecordRef::Household(id) => id.uuid(),
            RecordRef::Resident(id) => id.uuid(),
            RecordRef::Organization(id) => id.uuid(),
            RecordRef::Component(id) => id.uuid(),
        }
    }

    pub fn from_parts(kind: RecordKind, uuid: uuid::Uuid) -> Self {
        match kind {
            RecordKind::Building => RecordRef::Building(BuildingId::from_uuid(uuid)),
            RecordKind::Household => RecordRef::Household(HouseholdId::from_uuid(uuid)),
            RecordKind::Resident => RecordRef::Resident(ResidentId::from_uuid(uuid)),
            RecordKind::Organization => RecordRef::Organization(OrganizationId::from_uuid(uuid)),
            RecordKind::Component => RecordRef::Component(ComponentId::from_uuid(uuid)),
        }
    }
}

impl fmt::Display for RecordRef {
    /// `resident 0192…`: safe for logs and errors (ids are not personal data).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind().plural();
        write!(f, "{} {}", &kind[..kind.len() - 1], self.uuid().hyphenated())
    }
}
