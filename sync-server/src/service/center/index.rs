//! The center's incident index: every incident's derived state, in memory, so that the
//! queue, statistics and analysis never load documents per request.
//!
//! It follows the change log, like a device follows its cursor: before every read it asks
//! which documents changed after the last sequence number it has seen
//! ([`Storage::documents_changed`]) and derives those incidents again from their stored
//! snapshots (and takes a new catalog and calendar when the reference document changed).
//! The first read builds it the same way from sequence number 0. So it needs no table of
//! its own, every server node keeps its own, and a node sees what another node committed
//! as soon as it reads: the log becomes visible in sequence order (storage's guarantee),
//! so the index never skips a change.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use automerge::AutoCommit;
use chrono::{DateTime, FixedOffset, TimeZone};
use wangge_core::calendar::{CHINA_TIME, Calendar};
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::incident::analysis::Reported;
use wangge_core::incident::catalog::{Catalog, MatterClass};
use wangge_core::incident::doc as incident_doc;
use wangge_core::incident::roles::DepartmentCode;
use wangge_core::incident::{IncidentState, Phase, derive};
use wangge_core::model::IncidentId;
use wangge_core::{IncidentSummary, clock_deadline, reference};

use super::super::Result;
use crate::storage::Storage;

/// How many sequence numbers one question to the storage covers.
const WINDOW: i64 = 50_000;

/// The index of one server node.
#[derive(Debug, Default)]
pub(crate) struct IncidentIndex {
    state: Mutex<IndexState>,
}

/// The incidents as of `cursor`, with the catalog and calendar they are read with.
#[derive(Debug)]
pub(crate) struct IndexState {
    /// Every change up to this sequence number is reflected.
    cursor: i64,
    pub(crate) incidents: HashMap<IncidentId, Indexed>,
    pub(crate) catalog: Catalog,
    pub(crate) calendar: Calendar,
}

impl Default for IndexState {
    fn default() -> Self {
        Self { cursor: 0, incidents: HashMap::new(), catalog: Catalog::default_catalog(), calendar: Calendar::china() }
    }
}

/// One incident as the index keeps it: its report's fields that queries need, and its
/// derived state (without the timeline's marks).
#[derive(Debug, Clone)]
pub(crate) struct Indexed {
    pub(crate) catalog_item: String,
    pub(crate) title: String,
    /// Grid, location and the records it is about, as the analysis reads them.
    pub(crate) reported: Reported,
    pub(crate) state: IncidentState,
}

impl IncidentIndex {
    /// The index brought up to the log's end, locked for reading (other readers wait;
    /// reads are short).
    pub(crate) fn current<S: Storage>(&self, storage: &S) -> Result<MutexGuard<'_, IndexState>> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.catch_up(storage)?;
        Ok(state)
    }
}

impl IndexState {
    fn catch_up<S: Storage>(&mut self, storage: &S) -> Result<()> {
        let horizon = storage.max_seq()?;
        while self.cursor < horizon {
            let up_to = horizon.min(self.cursor.saturating_add(WINDOW));
            for doc in storage.documents_changed(self.cursor, up_to)? {
                self.reload(storage, &doc)?;
            }
            self.cursor = up_to;
        }
        Ok(())
    }

    /// Reads one document again from its stored snapshot (which may be newer than the
    /// window being read: reading it again later changes nothing).
    fn reload<S: Storage>(&mut self, storage: &S, doc: &str) -> Result<()> {
        let Some(id) = DocId::parse(doc) else { return Ok(()) };
        match id.kind {
            DocKind::Incident => {
                let Ok(incident) = IncidentId::parse(&id.key) else { return Ok(()) };
                let loaded = storage.snapshot(doc)?.map(|snapshot| AutoCommit::load(&snapshot));
                match loaded.map(|loaded| loaded.ok().and_then(|loaded| indexed(&id.key, &loaded))) {
                    Some(Some(indexed)) => {
                        self.incidents.insert(incident, indexed);
                    }
                    Some(None) => {
                        tracing::warn!(doc, "the center's index cannot read this incident: left out");
                        self.incidents.remove(&incident);
                    }
                    None => {
                        self.incidents.remove(&incident);
                    }
                }
            }
            DocKind::Reference => {
                let Some(snapshot) = storage.snapshot(doc)? else { return Ok(()) };
                let read = AutoCommit::load(&snapshot).ok().and_then(|loaded| reference::read(&loaded).ok());
                if let Some(read) = read {
                    // As on devices: one that does not load keeps the previous one.
                    if let Some(catalog) = read.catalog {
                        self.catalog = catalog;
                    }
                    if let Some(calendar) = read.calendar {
                        self.calendar = calendar;
                    }
                }
            }
            DocKind::Register | DocKind::Sensitive | DocKind::Activity => {}
        }
        Ok(())
    }

    /// The class of an item, by the catalog.
    pub(crate) fn class_of(&self, catalog_item: &str) -> Option<MatterClass> {
        self.catalog.item(catalog_item).map(|item| item.class)
    }

    /// An incident as the core's lists show it, with its deadline at `now`.
    pub(crate) fn summary(&self, id: IncidentId, incident: &Indexed, now: DateTime<FixedOffset>) -> IncidentSummary {
        let state = &incident.state;
        let lead = state.lead_clock();
        IncidentSummary {
            id,
            grid: incident.reported.grid.clone(),
            catalog_item: incident.catalog_item.clone(),
            class: self.class_of(&incident.catalog_item),
            title: incident.title.clone(),
            phase: state.phase,
            reporter: state.reporter.clone(),
            reported_at: state.reported_ms.and_then(china_time),
            lead_department: state.lead.clone(),
            co_handlers: state.co_handlers.clone(),
            resolved_on_spot: state.resolved_on_spot,
            n_urged: state.n_urged,
            escalated: state.escalation.is_some(),
            satisfaction: state.evaluation.as_ref().map(|evaluation| evaluation.satisfaction),
            deadline: clock_deadline(
                &self.catalog,
                &self.calendar,
                &incident.catalog_item,
                lead.map(|clock| clock.started_ms),
                lead.and_then(|clock| clock.stopped).map(|(ms, _)| ms),
                now,
            ),
        }
    }
}

/// Every department an incident was dispatched to, as lead or co-handler, in dispatch
/// order, each once.
pub(crate) fn departments(state: &IncidentState) -> Vec<DepartmentCode> {
    let mut departments: Vec<DepartmentCode> = Vec::new();
    for clock in &state.clocks {
        if !departments.contains(&clock.department) {
            departments.push(clock.department.clone());
        }
    }
    departments
}

pub(crate) fn china_time(ms: i64) -> Option<DateTime<FixedOffset>> {
    CHINA_TIME.timestamp_millis_opt(ms).single()
}

/// An incident document as the index keeps it; `None` while it has no report.
pub(crate) fn indexed(key: &str, doc: &AutoCommit) -> Option<Indexed> {
    let report = incident_doc::read_report(doc).ok()?;
    let timeline = incident_doc::read_timeline(doc).ok()?;
    let mut state = derive(timeline.iter().map(Option::as_ref));
    if state.phase == Phase::NotReported {
        return None;
    }
    state.marks = Vec::new();
    let field = |name: &str| report.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    // The class is the catalog's business at read time (a new catalog may reclassify).
    let reported = Reported::from_report(key, &report, None, state.reported_ms.unwrap_or(0));
    if reported.grid.is_empty() {
        return None;
    }
    Some(Indexed {
        catalog_item: field("catalog_item").unwrap_or_default(),
        title: field("title").unwrap_or_default(),
        reported,
        state,
    })
}
