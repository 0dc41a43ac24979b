//! The grid's automerge documents: their ids, their shared genesis, and the one table
//! that says which field of which record lives in which document.
//!
//! A grid has a **register** document (buildings, households, residents' ordinary
//! fields, organizations, components) and a **sensitive** document (ID numbers,
//! phones, birth dates, care and special-group tags). Each holds one map per record
//! kind, keyed by record id; each record is a map of scalar fields:
//!
//! ```text
//! register/440703001001001   { schema: 1, kind: "register", grid: "440703001001001",
//!                              residents: { "0192…": { name: "陈秀英", relation: "head", … } }, … }
//! sensitive/440703001001001  { schema: 1, kind: "sensitive", grid: "…",
//!                              residents: { "0192…": { id_number: "…", tags: { disabled: true } } } }
//! ```
//!
//! Every replica starts a document from the same genesis change ([`genesis`]), so the
//! containers exist once and two devices' records never hide each other.

mod encode;
mod fields;
pub mod generation;
mod record;
pub mod untrusted;

pub(crate) use encode::*;
pub use fields::{FieldKind, FieldSpec, TAGS_KEY, field_spec, fields_of};
pub use record::{ConflictValue, FieldConflict, RecordMap, conflicts, read_record, record_exists};
pub(crate) use record::{Edit, apply_edits, delete_record, touched_records};

use std::fmt;

pub use automerge::{ChangeHash, ScalarValue};

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};

use crate::model::{GridCode, RecordKind};

/// Version of the layout inside the documents. A replica refuses documents with a newer one.
pub const DOCUMENT_SCHEMA: i64 = 1;

/// The actor of every genesis change; no device ever uses it.
pub(crate) const GENESIS_ACTOR: &[u8] = b"wangge/genesis";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocKind {
    Register,
    Sensitive,
    /// One incident (`incident::doc`).
    Incident,
    /// The server's reference data: catalog, calendar, grid metadata (`reference.rs`).
    Reference,
    /// A grid's field work in one month: visits, check-ins, patrols (`activity::doc`).
    Activity,
}

impl DocKind {
    pub fn code(self) -> &'static str {
        match self {
            DocKind::Register => "register",
            DocKind::Sensitive => "sensitive",
            DocKind::Incident => "incident",
            DocKind::Reference => "reference",
            DocKind::Activity => "activity",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "register" => Some(DocKind::Register),
            "sensitive" => Some(DocKind::Sensitive),
            "incident" => Some(DocKind::Incident),
            "reference" => Some(DocKind::Reference),
            "activity" => Some(DocKind::Activity),
            _ => None,
        }
    }

    /// The record kinds this document holds (some only part of their fields).
    pub fn record_kinds(self) -> &'static [RecordKind] {
        match self {
            DocKind::Register => &RecordKind::ALL,
            DocKind::Sensitive => &[RecordKind::Resident],
            DocKind::Incident | DocKind::Reference | DocKind::Activity => &[],
        }
    }
}

/// `register/440703001001001`, `incident/0193…`: document kind and key (the grid code of
/// a grid document, the id of an incident).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId {
    pub kind: DocKind,
    pub key: String,
}

impl DocId {
    pub fn new(kind: DocKind, grid: &GridCode) -> Self {
        Self { kind, key: grid.as_str().to_owned() }
    }

    pub fn incident(id: crate::model::IncidentId) -> Self {
        Self { kind: DocKind::Incident, key: id.to_string() }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let (kind, key) = s.split_once('/')?;
        Some(Self { kind: DocKind::from_code(kind)?, key: key.to_owned() })
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.code(), self.key)
    }
}

/// The genesis of a grid document: the same bytes on every replica, for a given
/// automerge version (pinned by a test), so that containers are created exactly once.
pub fn genesis(kind: DocKind, grid: &GridCode) -> AutoCommit {
    genesis_of(kind, grid.as_str())
}

/// [`genesis`] for a grid code as written in a document id.
pub fn genesis_of(kind: DocKind, grid: &str) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(GENESIS_ACTOR));
    let built: Result<(), automerge::AutomergeError> = (|| {
        doc.put(ROOT, "schema", DOCUMENT_SCHEMA)?;
        doc.put(ROOT, "kind", kind.code())?;
        doc.put(ROOT, "grid", grid)?;
        for record_kind in kind.record_kinds() {
            doc.put_object(ROOT, record_kind.plural(), ObjType::Map)?;
        }
        Ok(())
    })();
    // Writing fresh keys into a fresh document's root cannot fail.
    debug_assert!(built.is_ok());
    // Time 0 and no message: nothing device-specific may enter the genesis.
    doc.commit();
    doc
}

/// Checks that a loaded document is a document of a schema this version reads, and that
/// its containers are its genesis's own objects: a peer that put a new `residents` map or
/// `actions` list at the root would otherwise hide everything in the old one.
pub fn check_layout(doc: &AutoCommit, id: &DocId) -> crate::Result<()> {
    let schema = match doc.get(ROOT, "schema") {
        Ok(Some((automerge::Value::Scalar(value), _))) => value.as_i64(),
        _ => None,
    };
    match schema {
        Some(found) if found <= DOCUMENT_SCHEMA => {}
        Some(found) => {
            return Err(crate::Error::document(
                id,
                format!("document schema {found} is newer than {DOCUMENT_SCHEMA}: update the app"),
            ));
        }
        None => return Err(crate::Error::document(id, "not a wangge document (no schema)")),
    }
    let containers: Vec<(&str, ObjType)> = match id.kind {
        DocKind::Incident => vec![("report", ObjType::Map), ("actions", ObjType::List)],
        DocKind::Reference => vec![("grids", ObjType::Map)],
        DocKind::Activity => crate::activity::doc::CONTAINERS.iter().map(|key| (*key, ObjType::Map)).collect(),
        DocKind::Register | DocKind::Sensitive => {
            id.kind.record_kinds().iter().map(|kind| (kind.plural(), ObjType::Map)).collect()
        }
    };
    // A compacted document's generation is written once, by the server's compaction: a
    // device that wrote it would make its replicas take a generation nobody made.
    let compaction_suffix = format!("@{}", ActorId::from(generation::COMPACTION_ACTOR));
    match doc.get_all(ROOT, generation::GENERATION_KEY).unwrap_or_default().as_slice() {
        [] => {}
        [(automerge::Value::Scalar(_), op)] if op.to_string().ends_with(&compaction_suffix) => {}
        _ => return Err(crate::Error::document(id, "generation is not the server's")),
    }
    let genesis_suffix = format!("@{}", ActorId::from(GENESIS_ACTOR));
    for (key, kind) in containers {
        let values = doc.get_all(ROOT, key).unwrap_or_default();
        let from_genesis = match values.as_slice() {
            [(automerge::Value::Object(found), object)] => {
                *found == kind && object.to_string().ends_with(&genesis_suffix)
            }
            _ => false,
        };
        if !from_genesis {
            return Err(crate::Error::document(id, format!("{key} is missing or not the genesis's own")));
        }
    }
    Ok(())
}

/// The container of a record kind in a document.
pub(crate) fn container(doc: &AutoCommit, kind: RecordKind) -> Option<automerge::ObjId> {
    match doc.get(ROOT, kind.plural()) {
        Ok(Some((automerge::Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> GridCode {
        GridCode::parse_default("440703001001001").expect("valid grid code")
    }

    #[test]
    fn genesis_is_byte_identical_on_every_replica() {
        let a = genesis(DocKind::Register, &grid()).save();
        let b = genesis(DocKind::Register, &grid()).save();
        assert_eq!(a, b);
    }

    #[test]
    fn genesis_differs_between_grids_and_kinds() {
        let other = GridCode::parse_default("440703001001002").expect("valid grid code");
        let mut register = genesis(DocKind::Register, &grid());
        let mut sensitive = genesis(DocKind::Sensitive, &grid());
        let mut other_register = genesis(DocKind::Register, &other);
        assert_ne!(register.get_heads(), sensitive.get_heads());
        assert_ne!(register.get_heads(), other_register.get_heads());
    }

    /// The genesis hash depends on automerge's encoding. If an upgrade changes it,
    /// devices on the old and new version would create the containers twice: stop here.
    #[test]
    fn genesis_hash_is_pinned() {
        let mut doc = genesis(DocKind::Register, &grid());
        let heads = doc.get_heads();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].to_string(), PINNED_REGISTER_GENESIS);
    }

    #[test]
    fn a_container_replaced_by_a_peer_is_refused() {
        let id = DocId::new(DocKind::Register, &grid());
        let mut doc = genesis(DocKind::Register, &grid()).with_actor(ActorId::random());
        check_layout(&doc, &id).expect("the genesis is a valid layout");
        doc.put_object(ROOT, "residents", ObjType::Map).expect("a fresh map");
        doc.commit();
        let error = check_layout(&doc, &id).expect_err("a second residents map hides the first");
        assert!(error.to_string().contains("residents"), "{error}");
    }

    const PINNED_REGISTER_GENESIS: &str = "87de6f63bc09a54eca822cbaec5bd44f8e6cc31163661a68f6609c0f505035fd";
}
