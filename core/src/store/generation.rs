//! Moving a grid document to a newer generation (`crdt::generation`): the server compacted
//! it, and this device's copy is replaced by the new generation with the device's unsynced
//! edits replayed onto it.
//!
//! A device never merges generations: the new generation's first change would create every
//! record's map a second time in the old one. [`Store::replace_generation`] swaps the
//! document whole, in one transaction with the projection of its grid, and keeps what the
//! server has not acknowledged: the device's own changes after its acknowledged heads are
//! written again as the same field writes on the new generation (its own changes, so the
//! next round pushes them), and they count as pending as many times as before.

use automerge::{AutoCommit, Change};
use rusqlite::{TransactionBehavior, params};

use super::{Store, Writer, documents, exports, loaded, projection, unknown_document};
use crate::crdt::generation::{self, Replayed};
use crate::crdt::{self, DocId, DocKind};
use crate::{Error, Result};

/// What moving to a new generation did with the device's unsynced edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenerationMove {
    pub(crate) replayed: Replayed,
    /// Set when the edits could not be replayed (a change of a kind grid documents never
    /// hold): they were exported beside the store instead, like a removed document's.
    pub(crate) exported: Option<std::path::PathBuf>,
}

impl Store {
    /// The generation of a document this device holds (1 until the server compacts it).
    pub(crate) fn generation_of(&self, doc: &DocId) -> Result<u64> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, .. } = &mut *writer;
        let loaded = loaded(conn, docs, doc, &self.actor)?.ok_or_else(|| unknown_document(doc))?;
        Ok(generation::generation(loaded))
    }

    /// Replaces a grid document by `newer`, a later generation of it from the server: the
    /// device's own changes the server has not acknowledged are replayed onto it (see the
    /// module), the acknowledged heads become `newer`'s, and the grid's projection is
    /// rebuilt, all in one transaction.
    pub(crate) fn replace_generation(&self, doc: &DocId, newer: AutoCommit) -> Result<GenerationMove> {
        if !matches!(doc.kind, DocKind::Register | DocKind::Sensitive) {
            return Err(Error::document(doc, "only grid documents have generations"));
        }
        crdt::check_layout(&newer, doc)?;
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, n_chunks, .. } = &mut *writer;
        let key = doc.to_string();
        let (acked, n_unacked): (Vec<u8>, i64) = conn.query_row(
            "SELECT acked_heads,
                    n_unacked_folded + (SELECT coalesce(sum(n_unacked), 0) FROM document_chunks WHERE doc_id = ?1)
             FROM documents WHERE doc_id = ?1",
            [&key],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let old = loaded(conn, docs, doc, &self.actor)?.ok_or_else(|| unknown_document(doc))?;
        let acked: Vec<_> = documents::decode_heads(&acked)
            .into_iter()
            .filter(|hash| old.get_change_meta_by_hash(hash).is_some())
            .collect();
        let own: Vec<Change> =
            old.get_changes(&acked).into_iter().filter(|change| change.actor_id() == &self.actor).collect();
        let mut new = newer.with_actor(self.actor.clone());
        let acked_new = new.get_heads();
        let (replayed, exported, n_unacked) = match generation::replay(doc, old, &own, &mut new) {
            Ok(replayed) => (replayed, None, n_unacked),
            Err(_) if !own.is_empty() => {
                // Nothing is lost: the edits go to a file, as a removed document's would,
                // and the new generation is taken as the server sent it.
                let bytes: Vec<u8> = own.iter().flat_map(|change| change.raw_bytes().to_vec()).collect();
                let cipher = self.blob_key.map(|key| crate::at_rest::FileCipher::new(&key.0));
                let path = exports::write(&self.path, doc, &bytes, cipher.as_ref(), self.clock.now_ms())?;
                new = new
                    .fork_at(&acked_new)
                    .map_err(|error| Error::document(doc, error))?
                    .with_actor(self.actor.clone());
                (Replayed::default(), Some(path), 0)
            }
            Err(error) => return Err(error),
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = (|| {
            tx.execute(
                "UPDATE documents SET acked_heads = ?2, n_unacked_folded = ?3 WHERE doc_id = ?1",
                params![key, documents::encode_heads(&acked_new), n_unacked],
            )?;
            tx.execute("DELETE FROM document_chunks WHERE doc_id = ?1", [&key])?;
            tx.execute("UPDATE document_snapshots SET snapshot = ?2 WHERE doc_id = ?1", params![key, new.save()])?;
            docs.insert(doc.clone(), new);
            n_chunks.insert(doc.clone(), 0);
            let register_id = DocId { kind: DocKind::Register, key: doc.key.clone() };
            let sensitive_id = DocId { kind: DocKind::Sensitive, key: doc.key.clone() };
            loaded(&tx, docs, &register_id, &self.actor)?;
            loaded(&tx, docs, &sensitive_id, &self.actor)?;
            if let Some(register) = docs.get(&register_id) {
                projection::rebuild_grid(&tx, &doc.key, register, docs.get(&sensitive_id))?;
            }
            Ok::<(), Error>(())
        })();
        match result.and_then(|()| tx.commit().map_err(Error::from)) {
            Ok(()) => Ok(GenerationMove { replayed, exported }),
            Err(error) => {
                // Memory must not run ahead of disk: reload from SQLite when next needed.
                for kind in [DocKind::Register, DocKind::Sensitive] {
                    let id = DocId { kind, key: doc.key.clone() };
                    docs.remove(&id);
                    n_chunks.remove(&id);
                }
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::*;

    fn building(name: &str) -> NewBuilding {
        NewBuilding {
            name: Label::parse(name).unwrap(),
            address: Address::parse("江门市蓬江区港口路18号").unwrap(),
            location: None,
            floors: Some(7),
            units: None,
            usage: BuildingUse::Residential,
        }
    }

    /// A store holding a grid with two buildings, its register acknowledged as it is.
    fn store_with_grid(dir: &std::path::Path) -> (Store, GridCode, DocId, BuildingId) {
        let store = Store::open(dir.join("device.db")).unwrap();
        let code = GridCode::parse_default("440703001001001").unwrap();
        store.add_grid(&Grid::new(code.clone(), "第1网格", GridKind::Community).unwrap(), true).unwrap();
        let first = store.add_building(&code, building("1栋")).unwrap();
        store.add_building(&code, building("2栋")).unwrap();
        let register = DocId::new(DocKind::Register, &code);
        let (heads, last_chunk) = store.sync_point(&register).unwrap();
        store.acknowledge(&register, &heads, last_chunk).unwrap();
        (store, code, register, first)
    }

    #[test]
    fn a_newer_generation_replaces_the_copy_and_unsynced_edits_are_replayed_and_still_pending() {
        let dir = tempfile::tempdir().unwrap();
        let (store, code, register, first) = store_with_grid(dir.path());
        // The server compacts what it has; meanwhile the device renames a building, adds one.
        let mut server = AutoCommit::load(&store.document_bytes(&register).unwrap()).unwrap();
        let compaction = generation::compact(&register, &mut server, 1).unwrap();
        let patch = BuildingPatch { name: Some(Label::parse("1栋(东)").unwrap()), ..Default::default() };
        store.update_building(first, patch).unwrap();
        let added = store.add_building(&code, building("3栋")).unwrap();
        assert_eq!(store.pending_changes().unwrap(), 2);

        let moved = store.replace_generation(&register, compaction.doc).unwrap();
        assert_eq!(moved.replayed.n_changes, 2);
        assert_eq!(moved.exported, None);
        assert_eq!(store.generation_of(&register).unwrap(), 2);
        assert_eq!(store.pending_changes().unwrap(), 2, "the replayed edits wait for the server");
        assert_eq!(store.building(first).unwrap().name.as_str(), "1栋(东)");
        assert_eq!(store.list_buildings(&code).unwrap().len(), 3);
        assert_eq!(store.building(added).unwrap().name.as_str(), "3栋");
        // What a sync pushes: the replayed changes, this device's own, on the new generation.
        let acked = documents::decode_heads(
            &store
                .with_reader(|conn| {
                    conn.query_row(
                        "SELECT acked_heads FROM documents WHERE doc_id = ?1",
                        [register.to_string()],
                        |row| row.get::<_, Vec<u8>>(0),
                    )
                })
                .unwrap(),
        );
        assert_eq!(store.own_changes_since(&register, &acked).unwrap().len(), 2);
        // The projection is what the documents say.
        let before = store.list_buildings(&code).unwrap();
        store.rebuild_projection().unwrap();
        assert_eq!(store.list_buildings(&code).unwrap(), before);
    }

    #[test]
    fn a_generations_first_change_arriving_as_a_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, register, _) = store_with_grid(dir.path());
        let mut server = AutoCommit::load(&store.document_bytes(&register).unwrap()).unwrap();
        let compaction = generation::compact(&register, &mut server, 1).unwrap();
        let start = compaction.changes[0].raw_bytes().to_vec();
        let refused = store.apply_changes(&register, &[start]).unwrap_err();
        assert!(matches!(&refused, Error::Document { reason, .. } if reason.contains("must come whole")), "{refused}");
        assert_eq!(store.generation_of(&register).unwrap(), 1);
    }
}
