//! Which fields each record kind has, their stored type, and which document holds them.
//!
//! This table is the one place that decides a field's key: the document map key and the
//! projection column have the same name (a test checks the SQL schema against it).

use super::DocKind;
use crate::model::RecordKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A string scalar: text, codes, dates (`YYYY-MM-DD`), ids, `lat,lng`.
    Text,
    /// An integer scalar.
    Int,
    /// A nested map of tag codes to `true`: concurrent additions merge.
    Tags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub key: &'static str,
    pub kind: FieldKind,
    pub doc: DocKind,
}

/// Key of the nested tag map inside a resident's sensitive record.
pub const TAGS_KEY: &str = "tags";

const fn register(key: &'static str) -> FieldSpec {
    FieldSpec { key, kind: FieldKind::Text, doc: DocKind::Register }
}

const fn register_int(key: &'static str) -> FieldSpec {
    FieldSpec { key, kind: FieldKind::Int, doc: DocKind::Register }
}

const fn sensitive(key: &'static str) -> FieldSpec {
    FieldSpec { key, kind: FieldKind::Text, doc: DocKind::Sensitive }
}

const BUILDING: &[FieldSpec] = &[
    register("name"),
    register("address"),
    register("location"),
    register_int("floors"),
    register_int("units"),
    register("usage"),
    register("status"),
];

const HOUSEHOLD: &[FieldSpec] =
    &[register("building"), register("room"), register("address"), register("residence_type"), register("status")];

const RESIDENT: &[FieldSpec] = &[
    register("household"),
    register("name"),
    register("gender"),
    register("relation"),
    register("residence_type"),
    register("status"),
    sensitive("id_number"),
    sensitive("phone"),
    sensitive("birth_date"),
    FieldSpec { key: TAGS_KEY, kind: FieldKind::Tags, doc: DocKind::Sensitive },
];

const ORGANIZATION: &[FieldSpec] = &[
    register("name"),
    register("uscc"),
    register("kind"),
    register("address"),
    register("location"),
    register("building"),
    register("contact_name"),
    register("contact_phone"),
    register("status"),
];

const COMPONENT: &[FieldSpec] = &[register("subclass"), register("name"), register("location"), register("state")];

pub fn fields_of(kind: RecordKind) -> &'static [FieldSpec] {
    match kind {
        RecordKind::Building => BUILDING,
        RecordKind::Household => HOUSEHOLD,
        RecordKind::Resident => RESIDENT,
        RecordKind::Organization => ORGANIZATION,
        RecordKind::Component => COMPONENT,
    }
}

/// The spec of one field, if the kind has it.
pub fn field_spec(kind: RecordKind, key: &str) -> Option<&'static FieldSpec> {
    fields_of(kind).iter().find(|spec| spec.key == key)
}
