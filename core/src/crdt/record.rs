//! Reading and writing one record inside a grid document, and its conflicts.
//!
//! The two documents lay records out differently, for one reason: who creates what.
//! - **register**: each record is a map under its container, keyed by record id. Only the
//!   device that creates the record (its id is a fresh UUIDv7) creates that map.
//! - **sensitive**: flat keys in the container, `<id>/<field>` and `<id>/tags/<code>`.
//!   Sensitive fields are often first written by a device other than the record's creator
//!   (a part-time worker records a resident; the full-time worker adds the ID number later),
//!   and two such devices would each create the record's map: automerge would keep one map
//!   and hide the other's fields. Flat keys have nothing to create, so concurrent writes
//!   merge per field.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ObjId, ObjType, PatchAction, Prop, ReadDoc, ScalarValue, Value};

use super::{DocKind, FieldKind, TAGS_KEY, container, fields_of};
use crate::model::RecordKind;
use crate::{Error, Result};

/// One record's fields from one document, as stored (scalars by key, tags by code).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordMap {
    pub fields: BTreeMap<&'static str, ScalarValue>,
    pub tags: BTreeSet<String>,
}

impl RecordMap {
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.fields.get(key)? {
            ScalarValue::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        self.fields.get(key)?.as_i64()
    }
}

/// A change to one field of a record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Edit {
    Put(&'static str, ScalarValue),
    Delete(&'static str),
    AddTag(&'static str),
    RemoveTag(&'static str),
}

/// The key of a field in the sensitive document.
fn flat_key(id: &str, field: &str) -> String {
    format!("{id}/{field}")
}

/// The key of a tag in the sensitive document.
fn flat_tag_key(id: &str, tag: &str) -> String {
    format!("{id}/{TAGS_KEY}/{tag}")
}

/// The range of keys that start with `<id>/<below>`.
fn flat_range(id: &str, below: &str) -> std::ops::Range<String> {
    format!("{id}/{below}")..format!("{id}/{below}\u{10FFFF}")
}

fn record_obj(doc: &AutoCommit, kind: RecordKind, id: &str) -> Option<ObjId> {
    let container = container(doc, kind)?;
    match doc.get(&container, id) {
        Ok(Some((Value::Object(ObjType::Map), obj))) => Some(obj),
        _ => None,
    }
}

fn scalar(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<ScalarValue> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(value), _))) => Some(value.into_owned()),
        _ => None,
    }
}

/// Whether the document holds anything of the record.
pub fn record_exists(doc: &AutoCommit, doc_kind: DocKind, kind: RecordKind, id: &str) -> bool {
    match doc_kind {
        DocKind::Register => record_obj(doc, kind, id).is_some(),
        DocKind::Sensitive => {
            container(doc, kind).is_some_and(|container| doc.map_range(&container, flat_range(id, "")).next().is_some())
        }
        DocKind::Incident | DocKind::Reference | DocKind::Activity => false,
    }
}

/// The fields of `kind` that `doc_kind` holds, read from the record; `None` if absent.
/// Keys the table does not know (written by a newer version) are left out.
pub fn read_record(doc: &AutoCommit, doc_kind: DocKind, kind: RecordKind, id: &str) -> Option<RecordMap> {
    let specs = fields_of(kind).iter().filter(|spec| spec.doc == doc_kind);
    let mut record = RecordMap::default();
    match doc_kind {
        DocKind::Register => {
            let obj = record_obj(doc, kind, id)?;
            for spec in specs.filter(|spec| spec.kind != FieldKind::Tags) {
                if let Some(value) = scalar(doc, &obj, spec.key) {
                    record.fields.insert(spec.key, value);
                }
            }
        }
        DocKind::Sensitive => {
            let container = container(doc, kind)?;
            let mut found = false;
            for spec in specs {
                if spec.kind == FieldKind::Tags {
                    let prefix = flat_tag_key(id, "");
                    for item in doc.map_range(&container, flat_range(id, &format!("{TAGS_KEY}/"))) {
                        found = true;
                        if let Some(tag) = item.key.strip_prefix(&prefix) {
                            record.tags.insert(tag.to_owned());
                        }
                    }
                } else if let Some(value) = scalar(doc, &container, &flat_key(id, spec.key)) {
                    found = true;
                    record.fields.insert(spec.key, value);
                }
            }
            if !found {
                return None;
            }
        }
        DocKind::Incident | DocKind::Reference | DocKind::Activity => return None,
    }
    Some(record)
}

/// Applies edits to a record inside the document's open transaction. With `create`, the
/// register record's map is created first: record ids are fresh, so no other replica
/// creates the same map. Returns `false` (and writes nothing) when a register record to
/// update is absent, or one to create is already there.
pub(crate) fn apply_edits(
    doc: &mut AutoCommit,
    doc_kind: DocKind,
    kind: RecordKind,
    id: &str,
    create: bool,
    edits: &[Edit],
) -> Result<bool> {
    let container = container(doc, kind).ok_or_else(|| Error::document(doc_kind.code(), "container missing"))?;
    match doc_kind {
        DocKind::Register => {
            let obj = match (record_obj(doc, kind, id), create) {
                (Some(obj), false) => obj,
                (None, true) => doc.put_object(&container, id, ObjType::Map).map_err(automerge_error)?,
                (Some(_), true) | (None, false) => return Ok(false),
            };
            for edit in edits {
                match edit {
                    Edit::Put(key, value) => put(doc, &obj, key, value.clone())?,
                    Edit::Delete(key) => delete(doc, &obj, key)?,
                    // The register holds no tags (fields.rs); a tag edit here is a bug.
                    Edit::AddTag(_) | Edit::RemoveTag(_) => {
                        return Err(Error::document(doc_kind.code(), "tags belong to the sensitive document"));
                    }
                }
            }
        }
        DocKind::Incident | DocKind::Reference | DocKind::Activity => {
            return Err(Error::document(doc_kind.code(), "holds no register records"));
        }
        DocKind::Sensitive => {
            for edit in edits {
                match edit {
                    Edit::Put(key, value) => put(doc, &container, &flat_key(id, key), value.clone())?,
                    Edit::Delete(key) => delete(doc, &container, &flat_key(id, key))?,
                    Edit::AddTag(tag) => put(doc, &container, &flat_tag_key(id, tag), ScalarValue::Boolean(true))?,
                    Edit::RemoveTag(tag) => delete(doc, &container, &flat_tag_key(id, tag))?,
                }
            }
        }
    }
    Ok(true)
}

fn put(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: ScalarValue) -> Result<()> {
    doc.put(obj, key, value).map_err(automerge_error)
}

fn delete(doc: &mut AutoCommit, obj: &ObjId, key: &str) -> Result<()> {
    if doc.get(obj, key).map_err(automerge_error)?.is_some() {
        doc.delete(obj, key).map_err(automerge_error)?;
    }
    Ok(())
}

/// Removes everything of a record from the document. Returns whether anything was there.
pub(crate) fn delete_record(doc: &mut AutoCommit, doc_kind: DocKind, kind: RecordKind, id: &str) -> Result<bool> {
    let Some(container) = container(doc, kind) else { return Ok(false) };
    let keys: Vec<String> = match doc_kind {
        DocKind::Register => {
            if doc.get(&container, id).map_err(automerge_error)?.is_none() {
                return Ok(false);
            }
            vec![id.to_owned()]
        }
        DocKind::Sensitive => doc.map_range(&container, flat_range(id, "")).map(|item| item.key.to_string()).collect(),
        DocKind::Incident | DocKind::Reference | DocKind::Activity => Vec::new(),
    };
    for key in &keys {
        doc.delete(&container, key.as_str()).map_err(automerge_error)?;
    }
    Ok(!keys.is_empty())
}

fn automerge_error(error: automerge::AutomergeError) -> Error {
    Error::Document { doc: "in memory".into(), reason: error.to_string() }
}

/// Concurrent values of one field, kept by automerge until a worker writes one.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldConflict {
    pub field: &'static str,
    pub values: Vec<ConflictValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConflictValue {
    /// The stored value (codes and dates as stored).
    pub value: ScalarValue,
    /// The automerge actor (hex) of the device that wrote it.
    pub author: String,
    /// When the authoring device says it wrote it, in milliseconds since 1970 (informational:
    /// nothing is decided by it).
    pub time_ms: i64,
}

/// The fields of a record in this document that have more than one concurrent value.
pub fn conflicts(doc: &mut AutoCommit, doc_kind: DocKind, kind: RecordKind, id: &str) -> Vec<FieldConflict> {
    let obj = match doc_kind {
        DocKind::Register => record_obj(doc, kind, id),
        DocKind::Sensitive => container(doc, kind),
        DocKind::Incident | DocKind::Reference | DocKind::Activity => None,
    };
    let Some(obj) = obj else { return Vec::new() };
    let keyed = |field: &str| match doc_kind {
        DocKind::Sensitive => flat_key(id, field),
        DocKind::Register | DocKind::Incident | DocKind::Reference | DocKind::Activity => field.to_owned(),
    };
    let mut found = Vec::new();
    for spec in fields_of(kind).iter().filter(|spec| spec.doc == doc_kind && spec.kind != FieldKind::Tags) {
        let Ok(values) = doc.get_all(&obj, keyed(spec.key).as_str()) else { continue };
        if values.len() < 2 {
            continue;
        }
        let values: Vec<(ScalarValue, ObjId)> = values
            .into_iter()
            .filter_map(|(value, op)| match value {
                Value::Scalar(scalar) => Some((scalar.into_owned(), op)),
                Value::Object(_) => None,
            })
            .collect();
        let values = values
            .into_iter()
            .map(|(value, op)| {
                let meta = doc.hash_for_opid(&op).and_then(|hash| doc.get_change_meta_by_hash(&hash));
                let (author, time_ms) =
                    meta.map(|meta| (meta.actor.to_hex_string(), meta.timestamp)).unwrap_or_default();
                ConflictValue { value, author, time_ms }
            })
            .collect();
        found.push(FieldConflict { field: spec.key, values });
    }
    found
}

/// The records whose fields changed between two sets of heads, by kind and id.
pub(crate) fn touched_records(
    doc: &mut AutoCommit,
    before: &[ChangeHash],
    after: &[ChangeHash],
) -> BTreeSet<(RecordKind, String)> {
    let mut touched = BTreeSet::new();
    for patch in doc.diff(before, after) {
        // path[0] is (root, container); in the register, path[1] is (container, record id).
        let Some((_, Prop::Map(container))) = patch.path.first() else { continue };
        let Some(kind) = RecordKind::from_plural(container) else { continue };
        let key = match patch.path.get(1) {
            Some((_, Prop::Map(key))) => Some(key.clone()),
            _ => match &patch.action {
                PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => Some(key.clone()),
                _ => None,
            },
        };
        // A sensitive key is `<id>/<field>`; a register key is the id itself.
        if let Some(key) = key {
            let id = key.split('/').next().unwrap_or(&key).to_owned();
            touched.insert((kind, id));
        }
    }
    touched
}
