//! The server's reference document, `reference/city`: the matter catalog, the working-day
//! calendar and the grids' metadata, written only by the server, read by every device.
//!
//! ```text
//! reference/city { schema: 1, kind: "reference", catalog: "<catalog JSON>",
//!                  calendar: "<calendar JSON>", grids: { "<code>": "<{name, kind} JSON>" } }
//! ```
//!
//! Catalog and calendar travel as their JSON text (the formats `Catalog::from_json` and
//! `Calendar::from_json` read), each a single value that the server replaces whole.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::crdt::{DOCUMENT_SCHEMA, DocId, DocKind, GENESIS_ACTOR};
use crate::incident::catalog::Catalog;
use crate::{Error, Result};

/// The id of the one reference document.
pub fn doc_id() -> DocId {
    DocId { kind: DocKind::Reference, key: "city".to_owned() }
}

/// The actor of every change the server makes to it.
pub const SERVER_ACTOR: &[u8] = b"wangge/server";

/// The reference document's genesis, the same on every replica.
pub fn genesis() -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(GENESIS_ACTOR));
    let built: Result<(), automerge::AutomergeError> = (|| {
        doc.put(ROOT, "schema", DOCUMENT_SCHEMA)?;
        doc.put(ROOT, "kind", "reference")?;
        doc.put_object(ROOT, "grids", ObjType::Map)?;
        Ok(())
    })();
    debug_assert!(built.is_ok());
    doc.commit();
    doc
}

/// A grid's public metadata: what the regulations require to be posted for it, and its
/// boundary. Fields added later default, so older documents still read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GridMeta {
    pub name: String,
    pub kind: String,
    /// The boundary as a GeoJSON geometry (Polygon or MultiPolygon, WGS-84), as imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    /// The supervision phone posted with the grid card (监督电话).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervision_phone: Option<String>,
    /// The grid's staff as posted on its card (see `crate::card` for who is posted), in
    /// the order the card shows them; refreshed by the server whenever a worker changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staff: Vec<PostedContact>,
}

/// One of a grid's staff as the public card shows them: role, name and work phone, all
/// public by regulation. Never a person id. `Debug` leaves the name and phone out, as
/// for every name and phone in the core.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PostedContact {
    /// A role code (`crate::incident::roles::Role::code`).
    pub role: String,
    pub name: String,
    /// The work phone to post, normalized (`13812345678`, `0750-3123456`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl std::fmt::Debug for PostedContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostedContact")
            .field("role", &self.role)
            .field("name", &format_args!("{} chars", self.name.chars().count()))
            .field("phone", &self.phone.as_ref().map(|_| "…"))
            .finish()
    }
}

/// What the reference document holds, read.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub catalog: Option<Catalog>,
    pub calendar: Option<Calendar>,
    pub grids: Vec<(String, GridMeta)>,
}

fn automerge_error(error: automerge::AutomergeError) -> Error {
    Error::document("reference/city", error)
}

fn text(doc: &AutoCommit, obj: &automerge::ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(value), _))) => match value.as_ref() {
            ScalarValue::Str(text) => Some(text.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn grids(doc: &AutoCommit) -> Result<automerge::ObjId> {
    match doc.get(ROOT, "grids") {
        Ok(Some((Value::Object(ObjType::Map), id))) => Ok(id),
        _ => Err(Error::document("reference/city", "grids is missing")),
    }
}

pub fn set_catalog(doc: &mut AutoCommit, catalog: &Catalog) -> Result<()> {
    doc.put(ROOT, "catalog", catalog.to_json()).map_err(automerge_error)
}

/// Sets the calendar from its JSON, which must load.
pub fn set_calendar(doc: &mut AutoCommit, json: &str) -> Result<()> {
    Calendar::from_json(json)?;
    doc.put(ROOT, "calendar", json).map_err(automerge_error)
}

pub fn set_grid(doc: &mut AutoCommit, code: &str, meta: &GridMeta) -> Result<()> {
    let grids = grids(doc)?;
    let json = serde_json::to_string(meta).map_err(|error| Error::document("reference/city", error))?;
    doc.put(&grids, code, json).map_err(automerge_error)
}

/// One grid's metadata, if the document has it (and it reads).
pub fn grid(doc: &AutoCommit, code: &str) -> Result<Option<GridMeta>> {
    let grids_obj = grids(doc)?;
    Ok(text(doc, &grids_obj, code).and_then(|json| serde_json::from_str(&json).ok()))
}

/// Reads the document. A catalog or calendar that does not load (a newer format) is left
/// out rather than replacing a working one.
pub fn read(doc: &AutoCommit) -> Result<Reference> {
    let catalog = text(doc, &automerge::ROOT, "catalog").and_then(|json| Catalog::from_json(&json).ok());
    let calendar = text(doc, &automerge::ROOT, "calendar").and_then(|json| Calendar::from_json(&json).ok());
    let grids_obj = grids(doc)?;
    let grids = doc
        .keys(&grids_obj)
        .filter_map(|code| {
            let meta = serde_json::from_str(&text(doc, &grids_obj, &code)?).ok()?;
            Some((code, meta))
        })
        .collect();
    Ok(Reference { catalog, calendar, grids })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_reference_document_round_trips() {
        let mut doc = genesis().with_actor(ActorId::from(SERVER_ACTOR));
        set_catalog(&mut doc, &Catalog::default_catalog()).unwrap();
        set_calendar(&mut doc, crate::calendar::CHINA_JSON).unwrap();
        set_grid(
            &mut doc,
            "440703001001001",
            &GridMeta { name: "长堤社区第1网格".into(), kind: "community".into(), ..GridMeta::default() },
        )
        .unwrap();
        doc.commit();
        let loaded = AutoCommit::load(&doc.save()).unwrap();
        crate::crdt::check_layout(&loaded, &doc_id()).unwrap();
        let reference = read(&loaded).unwrap();
        assert_eq!(reference.catalog.unwrap(), Catalog::default_catalog());
        assert_eq!(reference.calendar.unwrap(), Calendar::china());
        assert_eq!(reference.grids.len(), 1);
    }

    #[test]
    fn grid_metadata_written_before_staff_were_posted_still_reads() {
        let mut doc = genesis().with_actor(ActorId::from(SERVER_ACTOR));
        let grids = grids(&doc).unwrap();
        doc.put(&grids, "440703001001001", r#"{"name":"长堤社区第1网格","kind":"community"}"#).unwrap();
        let meta = grid(&doc, "440703001001001").unwrap().unwrap();
        assert_eq!(meta.name, "长堤社区第1网格");
        assert!(meta.staff.is_empty());
        // And a grid without staff is written as before, so older devices read it too.
        set_grid(&mut doc, "440703001001001", &meta).unwrap();
        assert_eq!(text(&doc, &grids, "440703001001001").unwrap(), r#"{"name":"长堤社区第1网格","kind":"community"}"#);
        assert_eq!(grid(&doc, "440703001001002").unwrap(), None);
    }

    #[test]
    fn a_calendar_that_does_not_load_is_refused() {
        let mut doc = genesis();
        assert!(set_calendar(&mut doc, "{}").is_err());
    }
}
