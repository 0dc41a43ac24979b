//! The audit trail on the server (全过程电子化档案): every stored change verified — it
//! decodes, its content matches its hash, it was authored by an enrolled device (or the
//! server), and its document holds it — and the trail of a grid or of a worker exported.
//!
//! A change's hash covers its content and its dependencies' hashes, so altering a stored
//! change, or one it depends on, is detected. Problems name sequence numbers and
//! documents, never content.

use std::collections::{HashMap, HashSet};

use automerge::{AutoCommit, Change};
use wangge_core::activity::doc as activity_doc;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::incident::doc as incident_doc;
use wangge_core::reference;

use super::{Result, Service};
use crate::storage::{LogEntry, Storage};

/// What a verification of the whole log found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogCheck {
    pub n_changes: u64,
    /// One line per problem: `change #<seq> of <doc>: …`.
    pub problems: Vec<String>,
}

/// Whose or where the trail is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFilter {
    /// Every document of a grid: register, sensitive data, its incidents, its activity.
    Grid(String),
    /// Every change made on a worker's devices.
    Worker(String),
}

/// One change of the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    pub seq: i64,
    pub doc: String,
    /// The change's hash (hex): what links it into its document's history.
    pub hash: String,
    /// The device that made it (`server` for reference data).
    pub device: String,
    pub person: String,
    /// When the device says it made it (ms since 1970; informational).
    pub time_ms: i64,
}

const PAGE: usize = 1000;

impl<S: Storage> Service<S> {
    /// Verifies every change of the log.
    pub fn verify_log(&self) -> Result<LogCheck> {
        let authors: HashSet<Vec<u8>> = self.storage.devices()?.into_iter().map(|device| device.actor).collect();
        let mut snapshots: HashMap<String, Option<AutoCommit>> = HashMap::new();
        let mut check = LogCheck::default();
        let mut after = 0;
        loop {
            let page = self.storage.changes_after(after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for stored in &page {
                check.n_changes += 1;
                if let Some(problem) = self.problem_of(stored, &authors, &mut snapshots)? {
                    check.problems.push(format!("change #{} of {}: {problem}", stored.seq, stored.doc));
                }
            }
        }
        Ok(check)
    }

    fn problem_of(
        &self,
        stored: &LogEntry,
        authors: &HashSet<Vec<u8>>,
        snapshots: &mut HashMap<String, Option<AutoCommit>>,
    ) -> Result<Option<&'static str>> {
        let Ok(change) = Change::from_bytes(stored.bytes.clone()) else {
            return Ok(Some("does not decode: the stored bytes were damaged or altered"));
        };
        if change.hash().0.as_slice() != stored.hash.as_slice() {
            return Ok(Some("its content does not match its hash: altered"));
        }
        if change.actor_id().to_bytes() != stored.actor.as_slice() {
            return Ok(Some("its author is not the one logged"));
        }
        if !authors.contains(&stored.actor) && stored.actor.as_slice() != reference::SERVER_ACTOR {
            return Ok(Some("authored by no enrolled device"));
        }
        if !snapshots.contains_key(&stored.doc) {
            let loaded = self.storage.snapshot(&stored.doc)?.and_then(|bytes| AutoCommit::load(&bytes).ok());
            snapshots.insert(stored.doc.clone(), loaded);
        }
        let held = snapshots
            .get_mut(&stored.doc)
            .and_then(Option::as_mut)
            .is_some_and(|doc| doc.get_change_by_hash(&change.hash()).is_some());
        Ok((!held).then_some("its document's snapshot does not hold it"))
    }

    /// The changes of a grid or of a worker, in log order.
    pub fn audit_trail(&self, filter: &AuditFilter) -> Result<Vec<AuditLine>> {
        let devices = self.storage.devices()?;
        let by_actor: HashMap<&[u8], (&str, &str)> = devices
            .iter()
            .map(|device| (device.actor.as_slice(), (device.id.as_str(), device.person.as_str())))
            .collect();
        let mut in_grid: HashMap<String, bool> = HashMap::new();
        let mut lines = Vec::new();
        let mut after = 0;
        loop {
            let page = self.storage.changes_after(after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for stored in page {
                let (device, person) = if stored.actor.as_slice() == reference::SERVER_ACTOR {
                    ("server", "")
                } else {
                    by_actor.get(stored.actor.as_slice()).copied().unwrap_or(("unknown", ""))
                };
                let wanted = match filter {
                    AuditFilter::Worker(worker) => person == worker,
                    AuditFilter::Grid(grid) => match in_grid.get(&stored.doc) {
                        Some(known) => *known,
                        None => {
                            let known = self.doc_in_grid(&stored.doc, grid)?;
                            in_grid.insert(stored.doc.clone(), known);
                            known
                        }
                    },
                };
                if !wanted {
                    continue;
                }
                let time_ms = Change::from_bytes(stored.bytes.clone()).map(|change| change.timestamp()).unwrap_or(0);
                lines.push(AuditLine {
                    seq: stored.seq,
                    hash: stored.hash.iter().map(|byte| format!("{byte:02x}")).collect(),
                    doc: stored.doc,
                    device: device.to_owned(),
                    person: person.to_owned(),
                    time_ms,
                });
            }
        }
        Ok(lines)
    }

    fn doc_in_grid(&self, doc: &str, grid: &str) -> Result<bool> {
        let Some(id) = DocId::parse(doc) else { return Ok(false) };
        Ok(match id.kind {
            DocKind::Register | DocKind::Sensitive => id.key == grid,
            DocKind::Activity => activity_doc::parse_key(&id.key).is_some_and(|(key_grid, _)| key_grid == grid),
            DocKind::Incident => self
                .storage
                .snapshot(doc)?
                .and_then(|bytes| AutoCommit::load(&bytes).ok())
                .and_then(|loaded| incident_doc::report_grid(&loaded))
                .is_some_and(|report_grid| report_grid == grid),
            DocKind::Reference => false,
        })
    }
}
