//! The audit trail on the server (全过程电子化档案): every stored change verified — it
//! decodes, its content matches its hash, it was authored by an enrolled device (or the
//! server), and its document holds it — and the trail of a grid, a worker or one record
//! exported.
//!
//! A change's hash covers its content and its dependencies' hashes, so altering a stored
//! change, or one it depends on, is detected. Problems name sequence numbers and
//! documents, never content.

use std::collections::{HashMap, HashSet};

use automerge::legacy::{Key, OpType};
use automerge::{AutoCommit, Change, ReadDoc, Value};
use wangge_core::activity::doc as activity_doc;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::incident::doc as incident_doc;

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
    /// One record: an incident (its whole document), or a building, household, resident,
    /// organization … of a grid (the changes of the grid's register and sensitive documents
    /// that created, wrote or removed it or any of its fields).
    Record { grid: String, id: String },
}

/// One change of the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    pub seq: i64,
    pub doc: String,
    /// The change's hash (hex): what links it into its document's history.
    pub hash: String,
    /// The device that made it (`server` for reference data and compactions).
    pub device: String,
    pub person: String,
    /// When the device says it made it (ms since 1970; informational).
    pub time_ms: i64,
    /// When the server stored it (ms since 1970, the server's clock); `None` for changes
    /// stored before the server kept it.
    pub received_ms: Option<i64>,
}

const PAGE: usize = 1000;

impl<S: Storage> Service<S> {
    /// Verifies every change of the log.
    pub fn verify_log(&self) -> Result<LogCheck> {
        let authors: HashSet<Vec<u8>> = self.storage.devices()?.into_iter().map(|device| device.actor).collect();
        let mut snapshots: HashMap<String, Option<AutoCommit>> = HashMap::new();
        let mut generations = super::compaction::GenerationCache::new();
        let mut check = LogCheck::default();
        let mut after = 0;
        loop {
            let page = self.storage.changes_after(after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for stored in &page {
                check.n_changes += 1;
                if let Some(problem) = self.problem_of(stored, &authors, &mut snapshots, &mut generations)? {
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
        generations: &mut super::compaction::GenerationCache,
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
        // The server writes reference data and compactions (`crdt::generation`).
        if !authors.contains(&stored.actor) && !wangge_core::crdt::generation::is_compaction_actor(&stored.actor) {
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
        // A compacted document's earlier generations are rebuilt from the log, and checked
        // against what the change that replaced each says it replaced.
        if held && !super::compaction::starts_generation(stored) {
            return Ok(None);
        }
        if !generations.contains_key(&stored.doc) {
            generations.insert(stored.doc.clone(), self.earlier_generations(&stored.doc)?);
        }
        let earlier = generations.get(&stored.doc);
        if earlier.is_some_and(|earlier| earlier.broken_starts.contains(&stored.hash)) {
            return Ok(Some("the generation it starts does not match the log's earlier generation"));
        }
        let held = held || earlier.is_some_and(|earlier| earlier.held.contains(&stored.hash));
        Ok((!held).then_some("its document's snapshot does not hold it"))
    }

    /// The changes of a grid, a worker or a record, in log order.
    pub fn audit_trail(&self, filter: &AuditFilter) -> Result<Vec<AuditLine>> {
        let devices = self.storage.devices()?;
        let by_actor: HashMap<&[u8], (&str, &str)> = devices
            .iter()
            .map(|device| (device.actor.as_slice(), (device.id.as_str(), device.person.as_str())))
            .collect();
        let line = |stored: LogEntry| {
            let (device, person) = if wangge_core::crdt::generation::is_compaction_actor(&stored.actor) {
                ("server", "")
            } else {
                by_actor.get(stored.actor.as_slice()).copied().unwrap_or(("unknown", ""))
            };
            let time_ms = Change::from_bytes(stored.bytes.clone()).map(|change| change.timestamp()).unwrap_or(0);
            AuditLine {
                seq: stored.seq,
                hash: stored.hash.iter().map(|byte| format!("{byte:02x}")).collect(),
                doc: stored.doc,
                device: device.to_owned(),
                person: person.to_owned(),
                time_ms,
                received_ms: stored.received_ms,
            }
        };
        if let AuditFilter::Record { grid, id } = filter {
            return Ok(self.record_changes(grid, id)?.into_iter().map(line).collect());
        }
        let mut in_grid: HashMap<String, bool> = HashMap::new();
        let mut lines = Vec::new();
        let mut after = 0;
        loop {
            let page = self.storage.changes_after(after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for stored in page {
                let wanted = match filter {
                    AuditFilter::Worker(worker) => {
                        by_actor.get(stored.actor.as_slice()).is_some_and(|(_, person)| person == worker)
                    }
                    AuditFilter::Grid(grid) => match in_grid.get(&stored.doc) {
                        Some(known) => *known,
                        None => {
                            let known = self.doc_in_grid(&stored.doc, grid)?;
                            in_grid.insert(stored.doc.clone(), known);
                            known
                        }
                    },
                    AuditFilter::Record { .. } => false,
                };
                if wanted {
                    lines.push(line(stored));
                }
            }
        }
        Ok(lines)
    }

    /// The changes that touched one record, in log order.
    fn record_changes(&self, grid: &str, id: &str) -> Result<Vec<LogEntry>> {
        let incident = DocId { kind: DocKind::Incident, key: id.to_owned() }.to_string();
        if self.storage.snapshot(&incident)?.is_some_and(|_| self.doc_in_grid(&incident, grid).unwrap_or(false)) {
            return Ok(self.storage.changes_of(&incident)?);
        }
        let mut changes = Vec::new();
        for kind in [DocKind::Register, DocKind::Sensitive] {
            let doc = DocId { kind, key: grid.to_owned() }.to_string();
            let Some(snapshot) = self.storage.snapshot(&doc)? else { continue };
            let Ok(loaded) = AutoCommit::load(&snapshot) else { continue };
            let mut trail = RecordTrail::new(&loaded, id);
            changes.extend(self.storage.changes_of(&doc)?.into_iter().filter(|stored| trail.touches(stored)));
        }
        changes.sort_by_key(|stored| stored.seq);
        Ok(changes)
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

/// Follows one record through its document's changes (in log order, which is causal):
/// the record's map is made in its kind's container under the record's id (register), or
/// its fields are flat keys `<id>/…` in the container (sensitive); objects made inside the
/// record's map belong to it too.
struct RecordTrail<'a> {
    id: &'a str,
    /// The record kinds' containers (`residents`, …), as `counter@actor`.
    containers: HashSet<String>,
    /// The record's map and the objects inside it, as `counter@actor`.
    objects: HashSet<String>,
}

impl<'a> RecordTrail<'a> {
    fn new(doc: &AutoCommit, id: &'a str) -> Self {
        let containers = doc
            .keys(automerge::ROOT)
            .filter_map(|key| match doc.get(automerge::ROOT, key.as_str()) {
                Ok(Some((Value::Object(_), container))) => Some(container.to_string()),
                _ => None,
            })
            .collect();
        Self { id, containers, objects: HashSet::new() }
    }

    fn touches(&mut self, stored: &LogEntry) -> bool {
        let Ok(change) = Change::from_bytes(stored.bytes.clone()) else { return false };
        let expanded = change.decode();
        let mut touched = false;
        for (index, op) in expanded.operations.iter().enumerate() {
            let obj = op.obj.to_string();
            let mine = self.objects.contains(&obj)
                || (self.containers.contains(&obj)
                    && matches!(&op.key, Key::Map(key) if key == self.id
                        || key.strip_prefix(self.id).is_some_and(|rest| rest.starts_with('/'))));
            if !mine {
                continue;
            }
            touched = true;
            if let OpType::Make(_) = op.action {
                let counter = expanded.start_op.get() + index as u64;
                self.objects.insert(format!("{counter}@{}", expanded.actor_id));
            }
        }
        touched
    }
}
