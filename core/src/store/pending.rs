//! Pending captures: a local capture's edits, committed with its projection rows, waiting
//! to become automerge changes.
//!
//! Automerge's put, commit and change encoding cost about 27 µs on a grid document: as
//! much as all the rest of a capture together. A capture therefore commits its edits here
//! (one small row) and the projection; [`Store::flush`](super::Store::flush) turns each
//! row into one automerge change per document, stamped with the capture's own time, before
//! anything reads or merges the documents. Because every merge flushes first, a change made
//! from a pending capture has exactly the dependencies it would have had at capture time.

use automerge::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::crdt::{self, DocKind, Edit};
use crate::model::{PersonTag, RecordKind};
use crate::{Error, Result};

/// What happens to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Op {
    Create,
    Update,
    Erase,
}

/// One write of a capture to one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PendingWrite {
    pub doc: String,
    pub kind: String,
    pub id: String,
    pub op: Op,
    pub edits: Vec<StoredEdit>,
}

/// An [`Edit`] as stored: keys and tags as text, values as JSON scalars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StoredEdit {
    Put(String, serde_json::Value),
    Delete(String),
    AddTag(String),
    RemoveTag(String),
}

impl PendingWrite {
    pub(crate) fn new(doc: DocKind, kind: RecordKind, id: &str, op: Op, edits: &[Edit]) -> Result<Self> {
        let edits = edits
            .iter()
            .map(|edit| {
                Ok(match edit {
                    Edit::Put(key, value) => StoredEdit::Put((*key).to_owned(), to_json(value)?),
                    Edit::Delete(key) => StoredEdit::Delete((*key).to_owned()),
                    Edit::AddTag(tag) => StoredEdit::AddTag((*tag).to_owned()),
                    Edit::RemoveTag(tag) => StoredEdit::RemoveTag((*tag).to_owned()),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { doc: doc.code().to_owned(), kind: kind.plural().to_owned(), id: id.to_owned(), op, edits })
    }

    pub(crate) fn doc_kind(&self) -> Result<DocKind> {
        DocKind::from_code(&self.doc).ok_or_else(|| damaged("unknown document kind"))
    }

    pub(crate) fn record_kind(&self) -> Result<RecordKind> {
        RecordKind::from_plural(&self.kind).ok_or_else(|| damaged("unknown record kind"))
    }

    /// The edits back, with keys and tags checked against the field table.
    pub(crate) fn edits(&self) -> Result<Vec<Edit>> {
        let kind = self.record_kind()?;
        let key =
            |name: &str| crdt::field_spec(kind, name).map(|spec| spec.key).ok_or_else(|| damaged("unknown field"));
        let tag = |code: &str| PersonTag::from_code(code).map(PersonTag::code).ok_or_else(|| damaged("unknown tag"));
        self.edits
            .iter()
            .map(|edit| {
                Ok(match edit {
                    StoredEdit::Put(name, value) => Edit::Put(key(name)?, from_json(value)?),
                    StoredEdit::Delete(name) => Edit::Delete(key(name)?),
                    StoredEdit::AddTag(code) => Edit::AddTag(tag(code)?),
                    StoredEdit::RemoveTag(code) => Edit::RemoveTag(tag(code)?),
                })
            })
            .collect()
    }
}

fn damaged(reason: &str) -> Error {
    Error::document("pending capture", reason)
}

fn to_json(value: &ScalarValue) -> Result<serde_json::Value> {
    Ok(match value {
        ScalarValue::Str(text) => serde_json::Value::String(text.to_string()),
        ScalarValue::Int(n) => serde_json::Value::from(*n),
        ScalarValue::Boolean(b) => serde_json::Value::Bool(*b),
        // The encoders write nothing else (crdt/encode.rs).
        _ => return Err(damaged("a value type the encoders never write")),
    })
}

fn from_json(value: &serde_json::Value) -> Result<ScalarValue> {
    Ok(match value {
        serde_json::Value::String(text) => ScalarValue::Str(text.as_str().into()),
        serde_json::Value::Bool(b) => ScalarValue::Boolean(*b),
        serde_json::Value::Number(n) => ScalarValue::Int(n.as_i64().ok_or_else(|| damaged("not an integer"))?),
        _ => return Err(damaged("not a scalar")),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_pending_write_round_trips_through_json() {
        let edits = vec![
            Edit::Put("phone", ScalarValue::Str("13812345678".into())),
            Edit::Delete("id_number"),
            Edit::AddTag("disabled"),
            Edit::RemoveTag("veteran"),
        ];
        let write = PendingWrite::new(DocKind::Sensitive, RecordKind::Resident, "0192", Op::Update, &edits).unwrap();
        let json = serde_json::to_string(&vec![write.clone()]).unwrap();
        let back: Vec<PendingWrite> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![write]);
        assert_eq!(back[0].edits().unwrap(), edits);
        let floors = [Edit::Put("floors", ScalarValue::Int(7))];
        let building = PendingWrite::new(DocKind::Register, RecordKind::Building, "01", Op::Create, &floors).unwrap();
        assert_eq!(building.edits().unwrap(), floors);
    }

    #[test]
    fn an_unknown_field_in_a_pending_write_is_refused() {
        let write = PendingWrite {
            doc: "register".into(),
            kind: "residents".into(),
            id: "0192".into(),
            op: Op::Update,
            edits: vec![StoredEdit::Delete("salary".into())],
        };
        assert!(matches!(write.edits(), Err(Error::Document { .. })));
    }
}
