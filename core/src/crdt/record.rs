//! Reading and writing one record's map inside a grid document, and its conflicts.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ObjId, ObjType, PatchAction, Prop, ReadDoc, ScalarValue, Value};

use super::{DocKind, FieldKind, container, fields_of};
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

fn record_obj(doc: &AutoCommit, kind: RecordKind, id: &str) -> Option<ObjId> {
    let container = container(doc, kind)?;
    match doc.get(&container, id) {
        Ok(Some((Value::Object(ObjType::Map), obj))) => Some(obj),
        _ => None,
    }
}

fn child_map(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key) {
        Ok(Some((Value::Object(ObjType::Map), child))) => Some(child),
        _ => None,
    }
}

pub fn record_exists(doc: &AutoCommit, kind: RecordKind, id: &str) -> bool {
    record_obj(doc, kind, id).is_some()
}

/// The fields of `kind` that `doc_kind` holds, read from the record; `None` if absent.
/// Keys the table does not know (written by a newer version) are left out.
pub fn read_record(doc: &AutoCommit, doc_kind: DocKind, kind: RecordKind, id: &str) -> Option<RecordMap> {
    let obj = record_obj(doc, kind, id)?;
    let mut record = RecordMap::default();
    for spec in fields_of(kind).iter().filter(|spec| spec.doc == doc_kind) {
        match spec.kind {
            FieldKind::Text | FieldKind::Int => {
                if let Ok(Some((Value::Scalar(value), _))) = doc.get(&obj, spec.key) {
                    record.fields.insert(spec.key, value.into_owned());
                }
            }
            FieldKind::Tags => {
                if let Some(tags) = child_map(doc, &obj, spec.key) {
                    record.tags = doc.keys(&tags).collect();
                }
            }
        }
    }
    Some(record)
}

/// Applies edits to a record inside the document's open transaction. With `create`, the
/// record's map (and its tag map) is created first: record ids are unique, so no other
/// replica creates the same container.
pub(crate) fn apply_edits(
    doc: &mut AutoCommit,
    doc_kind: DocKind,
    kind: RecordKind,
    id: &str,
    create: bool,
    edits: &[Edit],
) -> Result<bool> {
    let obj = if create {
        let container = container(doc, kind).ok_or_else(|| Error::document(doc_kind.code(), "container missing"))?;
        let obj = doc.put_object(&container, id, ObjType::Map).map_err(automerge_error)?;
        let has_tags = fields_of(kind).iter().any(|spec| spec.doc == doc_kind && spec.kind == FieldKind::Tags);
        if has_tags {
            doc.put_object(&obj, super::TAGS_KEY, ObjType::Map).map_err(automerge_error)?;
        }
        obj
    } else {
        match record_obj(doc, kind, id) {
            Some(obj) => obj,
            None => return Ok(false),
        }
    };
    for edit in edits {
        match edit {
            Edit::Put(key, value) => {
                doc.put(&obj, *key, value.clone()).map_err(automerge_error)?;
            }
            Edit::Delete(key) => {
                if doc.get(&obj, *key).map_err(automerge_error)?.is_some() {
                    doc.delete(&obj, *key).map_err(automerge_error)?;
                }
            }
            Edit::AddTag(tag) | Edit::RemoveTag(tag) => {
                let tags = match child_map(doc, &obj, super::TAGS_KEY) {
                    Some(tags) => tags,
                    // A record created before tags existed gets its map now (only its own
                    // device writes it first; a concurrent creation would keep one of them).
                    None => doc.put_object(&obj, super::TAGS_KEY, ObjType::Map).map_err(automerge_error)?,
                };
                if matches!(edit, Edit::AddTag(_)) {
                    doc.put(&tags, *tag, true).map_err(automerge_error)?;
                } else if doc.get(&tags, *tag).map_err(automerge_error)?.is_some() {
                    doc.delete(&tags, *tag).map_err(automerge_error)?;
                }
            }
        }
    }
    Ok(true)
}

/// Removes a record's map from its container. Returns whether it was there.
pub(crate) fn delete_record(doc: &mut AutoCommit, kind: RecordKind, id: &str) -> Result<bool> {
    let Some(container) = container(doc, kind) else { return Ok(false) };
    if doc.get(&container, id).map_err(automerge_error)?.is_none() {
        return Ok(false);
    }
    doc.delete(&container, id).map_err(automerge_error)?;
    Ok(true)
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
    /// The stored value (codes and dates as stored, `None` for a deleted value).
    pub value: ScalarValue,
    /// The automerge actor (hex) of the device that wrote it.
    pub author: String,
    /// When the authoring device says it wrote it, in milliseconds since 1970 (informational:
    /// nothing is decided by it).
    pub time_ms: i64,
}

/// The fields of a record in this document that have more than one concurrent value.
pub fn conflicts(doc: &mut AutoCommit, doc_kind: DocKind, kind: RecordKind, id: &str) -> Vec<FieldConflict> {
    let Some(obj) = record_obj(doc, kind, id) else { return Vec::new() };
    let mut found = Vec::new();
    for spec in fields_of(kind).iter().filter(|spec| spec.doc == doc_kind && spec.kind != FieldKind::Tags) {
        let Ok(values) = doc.get_all(&obj, spec.key) else { continue };
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
        // path[0] is (root, container); path[1], when present, is (container, record id).
        let container = match patch.path.first() {
            Some((_, Prop::Map(name))) => RecordKind::from_plural(name),
            _ => None,
        };
        let Some(kind) = container else { continue };
        let record_id = match patch.path.get(1) {
            Some((_, Prop::Map(id))) => Some(id.clone()),
            _ => match &patch.action {
                PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => Some(key.clone()),
                _ => None,
            },
        };
        if let Some(id) = record_id {
            touched.insert((kind, id));
        }
    }
    touched
}
