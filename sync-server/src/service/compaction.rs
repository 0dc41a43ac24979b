//! Compaction of a grid's documents (`wangge-server compact --grid <code>`): the register
//! and the sensitive document each replaced by a new generation that holds the same
//! current content and none of the old history (`wangge_core::crdt::generation`).
//!
//! On the server a compaction is one write per document, like any other: the new snapshot
//! over the version it was made from, and the new generation's changes appended to the
//! log (its first change, by the server's actor, then one change per value of a field
//! with concurrent values). The old generation's changes stay in the log, where the audit
//! trail reads them and `verify-log` checks them against the generation they belong to
//! ([`Service::earlier_generations`]).
//!
//! Devices move over as they sync (protocol §4.7):
//! - a device holding the document meets the new generation's first change in its pull's
//!   log: it is not sent; the document becomes `stale` for that device and its current
//!   snapshot is sent whole in the next round, which the device takes in place of its copy,
//!   replaying its unsynced edits onto it;
//! - a push of old-generation changes after the compaction (they depend on changes only
//!   the old generation has) is not stored and not acknowledged, and the document becomes
//!   `stale`: the device replays those very changes onto the new generation and pushes
//!   them again, as its own;
//! - a client older than compaction (no `generations` in its request) is told to remove its
//!   copy instead (it exports its unsynced edits to a file, §8), then gets the new
//!   generation as a new document.

use std::collections::{HashMap, HashSet};

use automerge::{AutoCommit, Change, ChangeHash};
use wangge_core::crdt::generation::{self, COMPACTION_ACTOR};
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::model::GridCode;

use super::{Result, Service, ServiceError, now_ms, scopes_of, wire_snapshot};
use crate::storage::{DocUpdate, LogEntry, Storage};

/// What compacting one document did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactedDoc {
    pub doc: String,
    /// The new generation (2 after the first compaction).
    pub generation: u64,
    /// Changes in the old generation's history (with the genesis).
    pub n_changes_before: usize,
    /// The snapshot a device is sent (automerge's uncompressed save), before and after.
    pub bytes_before: usize,
    pub bytes_after: usize,
    /// Fields with concurrent values, kept with all of them.
    pub n_conflicts: usize,
}

/// Whether a log entry starts a generation of its document: in a grid document, the
/// server's actor writes nothing else.
pub(super) fn starts_generation(entry: &LogEntry) -> bool {
    entry.actor.as_slice() == COMPACTION_ACTOR
        && DocId::parse(&entry.doc).is_some_and(|id| matches!(id.kind, DocKind::Register | DocKind::Sensitive))
}

impl<S: Storage> Service<S> {
    /// Compacts a grid's register and sensitive documents into their next generation (see
    /// the module). A write that lands meanwhile makes it start again from the newer
    /// document, like a push.
    pub fn compact_grid(&self, code: &GridCode) -> Result<Vec<CompactedDoc>> {
        if self.storage.grid(code.as_str())?.is_none() {
            return Err(ServiceError::NotFound(format!("unknown grid {code}")));
        }
        let mut compacted = Vec::new();
        for kind in [DocKind::Register, DocKind::Sensitive] {
            let id = DocId::new(kind, code);
            let doc = id.to_string();
            let report = self.commit_fresh(|| {
                let stored = self
                    .storage
                    .document(&doc)?
                    .ok_or_else(|| ServiceError::NotFound(format!("{doc}: not on this server")))?;
                let mut old = AutoCommit::load(&stored.snapshot)
                    .map_err(|_| ServiceError::Malformed(format!("{doc}: stored document")))?;
                let n_changes_before = old.get_changes(&[]).len();
                let mut compaction = generation::compact(&id, &mut old, now_ms())
                    .map_err(|error| ServiceError::Malformed(error.to_string()))?;
                let snapshot = wire_snapshot(&mut compaction.doc);
                let report = CompactedDoc {
                    doc: doc.clone(),
                    generation: compaction.generation,
                    n_changes_before,
                    bytes_before: stored.snapshot.len(),
                    bytes_after: snapshot.len(),
                    n_conflicts: compaction.n_conflicts,
                };
                let changes = compaction
                    .changes
                    .iter()
                    .map(|change| {
                        (change.hash().0.to_vec(), change.actor_id().to_bytes().to_vec(), change.raw_bytes().to_vec())
                    })
                    .collect();
                let update = DocUpdate {
                    doc: doc.clone(),
                    base: Some(stored.version),
                    snapshot,
                    scopes: scopes_of(&id, &compaction.doc),
                    changes,
                    blob_refs: Vec::new(),
                };
                Ok((vec![update], report))
            })?;
            compacted.push(report);
        }
        Ok(compacted)
    }

    /// Whether changes pushed to a grid document that miss dependencies were made on an
    /// older generation of it: the dependencies are changes the server has, in its log,
    /// that the current generation does not hold.
    pub(super) fn built_on_older_generation(&self, doc_id: &DocId, doc: &mut AutoCommit) -> Result<bool> {
        if !matches!(doc_id.kind, DocKind::Register | DocKind::Sensitive) || generation::generation(doc) < 2 {
            return Ok(false);
        }
        let missing = doc.get_missing_deps(&[]);
        let logged: HashSet<Vec<u8>> =
            self.storage.changes_of(&doc_id.to_string())?.into_iter().map(|entry| entry.hash).collect();
        Ok(!missing.is_empty() && missing.iter().all(|hash| logged.contains(hash.0.as_slice())))
    }

    /// The changes of a document's earlier generations that its log proves: each earlier
    /// generation is rebuilt from the genesis and its part of the log (the entries before
    /// the change that started the next one), and a change counts when it applied there
    /// (nothing it depends on is missing). Also the generation starts whose recorded heads
    /// are not the rebuilt generation's: the log lost or gained changes of it. Empty for
    /// documents never compacted.
    pub(super) fn earlier_generations(&self, doc: &str) -> Result<EarlierGenerations> {
        let mut found = EarlierGenerations::default();
        let Some(id) = DocId::parse(doc).filter(|id| matches!(id.kind, DocKind::Register | DocKind::Sensitive)) else {
            return Ok(found);
        };
        let entries = self.storage.changes_of(doc)?;
        if !entries.iter().any(starts_generation) {
            return Ok(found);
        }
        let mut generation: Vec<Change> = Vec::new();
        for entry in entries {
            let Ok(change) = Change::from_bytes(entry.bytes.clone()) else { continue };
            if starts_generation(&entry) {
                let mut rebuilt = wangge_core::crdt::genesis_of(id.kind, &id.key);
                // Changes that do not apply stay out, and are reported as not held.
                let _ = rebuilt.apply_changes(std::mem::take(&mut generation));
                let mut heads: Vec<ChangeHash> = rebuilt.get_heads();
                heads.sort();
                let mut recorded =
                    generation::starts_generation(&change).map(|start| start.replaced_heads).unwrap_or_default();
                recorded.sort();
                if heads != recorded {
                    found.broken_starts.insert(entry.hash.clone());
                }
                for change in rebuilt.get_changes(&[]) {
                    found.held.insert(change.hash().0.to_vec());
                }
            }
            generation.push(change);
        }
        Ok(found)
    }
}

/// What a document's log proves about its earlier generations.
#[derive(Debug, Default)]
pub(super) struct EarlierGenerations {
    /// Hashes of the changes an earlier generation holds.
    pub(super) held: HashSet<Vec<u8>>,
    /// Hashes of generation starts that do not match the generation they replaced.
    pub(super) broken_starts: HashSet<Vec<u8>>,
}

/// Per document, what [`Service::earlier_generations`] found (a cache for `verify-log`).
pub(super) type GenerationCache = HashMap<String, EarlierGenerations>;
