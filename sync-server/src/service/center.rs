//! The centers' side of the incident loop (一台受理、二级分拨、三层处置、四环监督), on the
//! service: the queue, one incident with its timeline, the center's actions, statistics, a
//! worker's month, and analysis (数据研判). `center_http.rs` carries it as HTTP + JSON.
//!
//! - **Who.** Every call acts for one center staff member, through a *center token*: an
//!   operator issues it for the staff member (`Service::issue_center_token`), and the
//!   server keeps it like a device's — a device row whose id starts with
//!   [`CONSOLE_PREFIX`], the token's SHA-256, its own automerge actor, expiry, revocation
//!   and request rates. The actor is the server's secret and the console never syncs, so
//!   no replica ever authors a change with it (a device's token is refused here, a console's
//!   on `/v1/sync`), and the audit trail names the console and its person like any device.
//! - **Where.** The staff member sees and acts in the grids of their areas, by the same
//!   rule as sync scopes (`readable_scopes` over `with_jurisdiction`); an incident
//!   elsewhere is "not found".
//! - **Acting.** An action is appended to the incident's timeline as a change by the
//!   console's actor, with the staff member's person and role, checked by the core's rules
//!   (`check_action`, then the fold: the action must apply, or it is refused with the fold's
//!   reason and nothing is stored), and committed through the path pushes take
//!   (`commit_fresh`), so devices receive it with their next sync.
//! - **Reading.** Lists, statistics and analysis read the node's incident index
//!   (`center/index.rs`), brought up to the log's end first; deadlines and rates are the
//!   core's (`clock_deadline`, `Due`, `IncidentStats`), as of the center's clock.

mod index;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use wangge_core::activity::WorkerMonth;
use wangge_core::activity::doc as activity_doc;
use wangge_core::calendar::CHINA_TIME;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::incident::analysis::{self, Hotspot, Repeat, RepeatRule, Reported, Spot};
use wangge_core::incident::catalog::MatterClass;
use wangge_core::incident::doc as incident_doc;
use wangge_core::incident::roles::{DepartmentCode, Role};
use wangge_core::incident::state::ClockStop;
use wangge_core::incident::{Action, ActionKind, Actor, IncidentState, Mark, NotApplied, derive};
use wangge_core::model::{GridCode, IncidentId};
use wangge_core::sync::wire::{DocPull, SyncResponse};
use wangge_core::{
    DepartmentDeadline, Due, IncidentStats, IncidentSummary, OpenOptions, Store, TimelineEntry, check_action,
    clock_deadline, describe, reference,
};

use super::{
    ENROLLMENT_CODE_LIFETIME_MS, Service, ServiceError, blob_refs_of, grid_scope, hash_secret, now_ms, random_secret,
    readable_scopes, scopes_of, wire_snapshot,
};
use crate::storage::{Device, DocUpdate, Storage, StorageError};

pub(crate) use index::IncidentIndex;

/// The id of every center token's device row starts with this.
pub const CONSOLE_PREFIX: &str = "console-";

/// At most this many incidents in one page of the queue.
pub const MAX_PAGE: usize = 1000;

/// Why the center's API refused.
#[derive(Debug, thiserror::Error)]
pub enum CenterError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The fold does not apply the action: the role or the incident's phase does not
    /// allow it, or its content breaks a rule. Nothing was stored.
    #[error("{action} refused: {}", describe(why))]
    NotApplied { action: &'static str, why: NotApplied },
    /// Something on the server failed (the cause is logged, not told).
    #[error("internal error")]
    Internal(String),
}

impl From<StorageError> for CenterError {
    fn from(error: StorageError) -> Self {
        CenterError::Service(error.into())
    }
}

impl CenterError {
    pub fn status(&self) -> u16 {
        match self {
            CenterError::Service(error) => error.status(),
            CenterError::NotApplied { why: NotApplied::RoleNotAllowed { .. }, .. } => 403,
            CenterError::NotApplied { why: NotApplied::Invalid { .. }, .. } => 422,
            CenterError::NotApplied { .. } => 409,
            CenterError::Internal(_) => 500,
        }
    }

    /// A stable code: the service's (`forbidden`, `not_found`, …) or, for an action the
    /// fold does not apply, its reason as the timeline's marks name it (`role_not_allowed`,
    /// `wrong_phase`, …).
    pub fn code(&self) -> &'static str {
        match self {
            CenterError::Service(error) => error.code(),
            CenterError::NotApplied { why, .. } => match why {
                NotApplied::Unreadable => "unreadable",
                NotApplied::RoleNotAllowed { .. } => "role_not_allowed",
                NotApplied::WrongPhase { .. } => "wrong_phase",
                NotApplied::NotTheReporter => "not_the_reporter",
                NotApplied::NotResponsible => "not_responsible",
                NotApplied::AlreadyReported => "already_reported",
                NotApplied::AlreadyEvaluated => "already_evaluated",
                NotApplied::Invalid { .. } => "invalid",
            },
            CenterError::Internal(_) => "internal",
        }
    }
}

type Result<T, E = CenterError> = std::result::Result<T, E>;

fn not_found(what: &str) -> CenterError {
    ServiceError::NotFound(format!("{what} not found in your area")).into()
}

fn malformed(message: impl Into<String>) -> CenterError {
    ServiceError::Malformed(message.into()).into()
}

fn internal(error: impl std::fmt::Display) -> CenterError {
    CenterError::Internal(error.to_string())
}

/// The center API's part of a service: its incident index and the clock it reads.
pub(crate) struct Center {
    index: IncidentIndex,
    clock: RwLock<Arc<dyn Fn() -> i64 + Send + Sync>>,
}

impl Default for Center {
    fn default() -> Self {
        Center { index: IncidentIndex::default(), clock: RwLock::new(Arc::new(now_ms)) }
    }
}

impl std::fmt::Debug for Center {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Center").field("index", &self.index).finish_non_exhaustive()
    }
}

/// How many incidents are due soon and overdue across the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IncidentsDue {
    /// Running, at most one working day left.
    pub soon: usize,
    /// With a department past the deadline.
    pub overdue: usize,
}

/// A center token, as issued: the console's device id (what `revoke` takes) and the token
/// (shown once; the server keeps its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CenterToken {
    pub device: String,
    pub token: String,
}

/// The staff member a center token acts for, as of this request.
#[derive(Debug, Clone)]
pub struct Staff {
    pub person: String,
    pub role: Role,
    /// The grids of their areas.
    pub grids: HashSet<String>,
    /// The console's automerge actor.
    actor: Vec<u8>,
}

impl Staff {
    fn sees(&self, grid: &str) -> bool {
        self.grids.contains(grid)
    }

    fn actor(&self) -> Actor {
        Actor { person: self.person.clone(), role: self.role, department: None }
    }
}

/// Which incidents a request is about; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// A grid, or an area (a prefix of grid codes: a county's 6 digits, a township's 9, a
    /// community's 12), within the staff member's areas.
    pub area: Option<String>,
    pub phases: Vec<wangge_core::incident::Phase>,
    /// Dispatched to this department, as lead or co-handler, at any time.
    pub department: Option<DepartmentCode>,
    pub class: Option<MatterClass>,
    /// Reported on or after this day (China time).
    pub reported_from: Option<NaiveDate>,
    /// Reported on or before this day (China time).
    pub reported_until: Option<NaiveDate>,
}

/// The queue's question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueQuery {
    pub selection: Selection,
    pub due: Option<Due>,
    pub offset: usize,
    /// At most [`MAX_PAGE`]; 0 means 100.
    pub limit: usize,
}

/// One line of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub summary: IncidentSummary,
    /// Every department it was dispatched to, in order.
    pub departments: Vec<DepartmentCode>,
}

/// A page of the queue, newest report first.
#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    pub now: DateTime<FixedOffset>,
    /// How many incidents the question selects (all pages).
    pub total: usize,
    pub entries: Vec<QueueEntry>,
}

/// One incident whole: its summary, report, state, each department's clock and the
/// timeline with what became of each action.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentDetail {
    pub now: DateTime<FixedOffset>,
    pub summary: IncidentSummary,
    pub departments: Vec<DepartmentDeadline>,
    /// The report's fields as recorded (grid, catalog item, title, description, location,
    /// related records, photos, a reporting resident's contact).
    pub report: Vec<(String, String)>,
    pub state: IncidentState,
    pub timeline: Vec<TimelineEntry>,
}

/// What statistics are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsBy {
    /// The catalog item's class (`unknown` for items the catalog does not have).
    Class,
    Grid,
    /// The lead department, whose clock the deadline follows (`none` before a dispatch).
    Department,
    /// The month reported, `YYYY-MM`, China time.
    Month,
}

/// The figures of a selection, by group and in total.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub now: DateTime<FixedOffset>,
    pub groups: Vec<(String, IncidentStats)>,
    pub total: IncidentStats,
}

impl<S: Storage> Service<S> {
    /// Sets the clock the center's API reads (ms since 1970): the time of its actions and
    /// the "now" of deadlines. The system clock unless a test moves it.
    pub fn set_center_clock(&self, now_ms: impl Fn() -> i64 + Send + Sync + 'static) {
        *self.center.clock.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(now_ms);
    }

    fn center_now_ms(&self) -> i64 {
        let clock = Arc::clone(&self.center.clock.read().unwrap_or_else(|poisoned| poisoned.into_inner()));
        clock()
    }

    fn center_now(&self) -> DateTime<FixedOffset> {
        index::china_time(self.center_now_ms()).unwrap_or_else(|| chrono::Utc::now().with_timezone(&CHINA_TIME))
    }

    /// Issues a center token for a center staff member: a console with its own actor,
    /// enrolled at once. Several per person are fine (one per workstation); each is revoked
    /// by its device id.
    pub fn issue_center_token(&self, person: &str) -> Result<CenterToken> {
        let worker = self.storage.worker(person)?.ok_or_else(|| malformed(format!("unknown worker {person}")))?;
        if !Role::from_code(&worker.role).is_some_and(Role::is_center) {
            return Err(malformed(format!("{person} is a {}: center tokens are for center staff", worker.role)));
        }
        let code = random_secret();
        let now = now_ms();
        self.storage.create_enrollment_code(person, &hash_secret(&code), now)?;
        let token = random_secret();
        let console = Device {
            id: format!("{CONSOLE_PREFIX}{}", uuid::Uuid::now_v7()),
            person: String::new(),
            actor: uuid::Uuid::new_v4().as_bytes().to_vec(),
            revoked: false,
            token_expires_ms: Some(self.access.expiry_from(now)),
            last_seen_ms: None,
            last_sync: None,
        };
        let redeemed = self.storage.redeem_enrollment_code(
            &hash_secret(&code),
            &console,
            &hash_secret(&token),
            now,
            now - ENROLLMENT_CODE_LIFETIME_MS,
        )?;
        let (_, device) = redeemed.ok_or_else(|| internal("a fresh enrollment code was not taken"))?;
        Ok(CenterToken { device, token })
    }

    /// The staff member behind a center token, with the grids of their areas as of now.
    pub fn center_staff(&self, token: &str) -> Result<Staff> {
        let (device, worker) = self.authenticate(token)?;
        if !device.id.starts_with(CONSOLE_PREFIX) {
            return Err(ServiceError::Forbidden(
                "the center API takes a center token, not a device's: an operator issues one with `wangge-server center-token --person <id>`".into(),
            )
            .into());
        }
        let Some(role) = Role::from_code(&worker.role).filter(|role| role.is_center()) else {
            return Err(ServiceError::Forbidden(format!("{} is no longer center staff", worker.person)).into());
        };
        // The grids whose incidents sync would give the staff member: the same rule.
        let scopes: HashSet<String> = readable_scopes(&worker).into_iter().collect();
        let grids =
            worker.grids.iter().filter(|grid| scopes.contains(&grid_scope(grid, DocKind::Incident))).cloned().collect();
        Ok(Staff { person: worker.person, role, grids, actor: device.actor })
    }

    /// Incidents due within a working day and overdue, over the whole server, now (for
    /// the operator's metrics and status page).
    pub fn incidents_due(&self) -> std::result::Result<IncidentsDue, ServiceError> {
        let now = self.center_now();
        let state = self.center.index.current(&*self.storage)?;
        let mut due = IncidentsDue::default();
        for (id, incident) in &state.incidents {
            let summary = state.summary(*id, incident, now);
            if Due::Overdue.selects(summary.phase, summary.deadline.as_ref()) {
                due.overdue += 1;
            } else if Due::Soon.selects(summary.phase, summary.deadline.as_ref()) {
                due.soon += 1;
            }
        }
        Ok(due)
    }

    /// The incidents of a selection, newest report first, with their deadlines now.
    pub fn center_queue(&self, token: &str, query: &QueueQuery) -> Result<Queue> {
        let staff = self.center_staff(token)?;
        check_area(&staff, &query.selection)?;
        let now = self.center_now();
        let state = self.center.index.current(&*self.storage)?;
        let mut entries: Vec<QueueEntry> = selected(&state, &staff, &query.selection)
            .map(|(id, incident)| QueueEntry {
                summary: state.summary(id, incident, now),
                departments: index::departments(&incident.state),
            })
            .filter(|entry| {
                query.due.is_none_or(|due| due.selects(entry.summary.phase, entry.summary.deadline.as_ref()))
            })
            .collect();
        drop(state);
        // Newest report first (ids break ties).
        entries.sort_by_key(|entry| std::cmp::Reverse((entry.summary.reported_at, entry.summary.id)));
        let total = entries.len();
        let limit = match query.limit {
            0 => 100,
            limit => limit.min(MAX_PAGE),
        };
        let entries = entries.into_iter().skip(query.offset).take(limit).collect();
        Ok(Queue { now, total, entries })
    }

    /// One incident of the staff member's areas, whole.
    pub fn center_incident(&self, token: &str, id: &str) -> Result<IncidentDetail> {
        let staff = self.center_staff(token)?;
        let incident = IncidentId::parse(id).map_err(|_| not_found("incident"))?;
        let doc_id = DocId::incident(incident).to_string();
        let stored = self.storage.snapshot(&doc_id)?.ok_or_else(|| not_found("incident"))?;
        let doc = AutoCommit::load(&stored).map_err(internal)?;
        if !incident_doc::report_grid(&doc).is_some_and(|grid| staff.sees(&grid)) {
            return Err(not_found("incident"));
        }
        self.detail(incident, &doc)
    }

    /// Takes an action on an incident as the staff member: appended to its timeline as a
    /// change by the console, if the core's rules apply it; refused with the fold's reason
    /// otherwise, and then nothing is stored. Returns the incident as it is now.
    pub fn center_act(&self, token: &str, id: &str, kind: ActionKind) -> Result<IncidentDetail> {
        let staff = self.center_staff(token)?;
        let incident = IncidentId::parse(id).map_err(|_| not_found("incident"))?;
        let actor = staff.actor();
        let name = kind.name();
        {
            let state = self.center.index.current(&*self.storage)?;
            check_action(&state.catalog, &actor, &kind).map_err(|error| malformed(error.to_string()))?;
        }
        let action = Action { id: uuid::Uuid::now_v7().to_string(), actor, device_time_ms: self.center_now_ms(), kind };
        let doc_id = DocId::incident(incident);
        let key = doc_id.to_string();
        // Checked on the stored document, and again on a newer one if another write (a
        // device's push, another node) got there first.
        let made = self.commit_fresh(|| {
            let stored = self.storage.document(&key)?.ok_or_else(|| ServiceError::NotFound(not_found_text()))?;
            let mut doc = AutoCommit::load(&stored.snapshot)
                .map_err(|_| ServiceError::Malformed("stored document".into()))?
                .with_actor(automerge::ActorId::from(staff.actor.clone()));
            if !incident_doc::report_grid(&doc).is_some_and(|grid| staff.sees(&grid)) {
                return Err(ServiceError::NotFound(not_found_text()));
            }
            let malformed = |error: wangge_core::Error| ServiceError::Malformed(error.to_string());
            incident_doc::append_action(&mut doc, &action).map_err(malformed)?;
            let timeline = incident_doc::read_timeline(&doc).map_err(malformed)?;
            if let Some(Mark::NotApplied(why)) = derive(timeline.iter().map(Option::as_ref)).marks.pop() {
                return Ok((Vec::new(), Err(why)));
            }
            doc.commit_with(CommitOptions::default().with_time(action.device_time_ms));
            let Some(change) = doc.get_last_local_change() else {
                return Err(ServiceError::Malformed("the action made no change".into()));
            };
            let change = (change.hash().0.to_vec(), staff.actor.clone(), change.raw_bytes().to_vec());
            // An archive starts the incident's retention on devices (`service/retention.rs`).
            let received = std::slice::from_ref(&change.0);
            let scopes = self.incident_scopes(&doc_id, &doc, scopes_of(&doc_id, &doc), received, now_ms())?;
            let update = DocUpdate {
                doc: key.clone(),
                base: Some(stored.version),
                snapshot: wire_snapshot(&mut doc),
                scopes,
                changes: vec![change],
                blob_refs: blob_refs_of(&doc_id, &doc),
            };
            Ok((vec![update], Ok(doc)))
        })?;
        match made {
            Ok(doc) => self.detail(incident, &doc),
            Err(why) => Err(CenterError::NotApplied { action: name, why }),
        }
    }

    fn detail(&self, incident: IncidentId, doc: &AutoCommit) -> Result<IncidentDetail> {
        let now = self.center_now();
        let indexed = index::indexed(&incident.to_string(), doc).ok_or_else(|| not_found("incident"))?;
        let report = incident_doc::read_report(doc).map_err(internal)?;
        let timeline = incident_doc::read_timeline(doc).map_err(internal)?;
        let derived = derive(timeline.iter().map(Option::as_ref));
        let state = self.center.index.current(&*self.storage)?;
        let summary = state.summary(incident, &indexed, now);
        let stop = |stop: ClockStop| match stop {
            ClockStop::Completed => "completed",
            ClockStop::Rejected => "rejected",
            ClockStop::Redispatched => "redispatched",
        };
        let departments = derived
            .clocks
            .iter()
            .filter_map(|clock| {
                let stopped = clock.stopped.map(|(ms, _)| ms);
                let status = clock_deadline(
                    &state.catalog,
                    &state.calendar,
                    &indexed.catalog_item,
                    Some(clock.started_ms),
                    stopped,
                    now,
                )?;
                Some(DepartmentDeadline {
                    department: clock.department.clone(),
                    lead: clock.lead,
                    status,
                    stop: clock.stopped.map(|(_, why)| stop(why).to_owned()),
                })
            })
            .collect();
        drop(state);
        let timeline = timeline
            .into_iter()
            .zip(derived.marks.iter().cloned())
            .enumerate()
            .map(|(position, (action, mark))| TimelineEntry {
                position: u32::try_from(position).unwrap_or(u32::MAX),
                action,
                mark,
            })
            .collect();
        Ok(IncidentDetail { now, summary, departments, report, state: derived, timeline })
    }

    /// Counts, on-time and on-the-spot rates of a selection, by group and in total.
    pub fn center_stats(&self, token: &str, selection: &Selection, by: StatsBy) -> Result<Stats> {
        let staff = self.center_staff(token)?;
        check_area(&staff, selection)?;
        let now = self.center_now();
        let state = self.center.index.current(&*self.storage)?;
        let mut groups: BTreeMap<String, Vec<IncidentSummary>> = BTreeMap::new();
        let mut all = Vec::new();
        for (id, incident) in selected(&state, &staff, selection) {
            let summary = state.summary(id, incident, now);
            let key = match by {
                StatsBy::Class => summary.class.map_or("unknown", MatterClass::code).to_owned(),
                StatsBy::Grid => summary.grid.clone(),
                StatsBy::Department => {
                    incident.state.lead_clock().map_or_else(|| "none".to_owned(), |clock| clock.department.to_string())
                }
                StatsBy::Month => {
                    summary.reported_at.map_or_else(|| "unknown".to_owned(), |at| at.format("%Y-%m").to_string())
                }
            };
            groups.entry(key).or_default().push(summary.clone());
            all.push(summary);
        }
        drop(state);
        let groups = groups.into_iter().map(|(key, incidents)| (key, IncidentStats::of(&incidents))).collect();
        Ok(Stats { now, groups, total: IncidentStats::of(&all) })
    }

    /// A grid worker's month (`YYYY-MM`) in the core's figures, over the worker's grids in
    /// the staff member's areas: computed on a replica made for the request (the grids'
    /// registers, the month's field work, the worker's incidents of the month and the
    /// reference data, taken the way a device takes them), encrypted under a key that
    /// lives only in memory, and deleted after.
    pub fn center_worker_month(&self, token: &str, person: &str, month: &str) -> Result<WorkerMonth> {
        let staff = self.center_staff(token)?;
        let (from, until) = month_days(month)?;
        let worker = self.storage.worker(person)?.ok_or_else(|| not_found("grid worker"))?;
        if !Role::from_code(&worker.role).is_some_and(Role::is_grid_worker) {
            return Err(not_found("grid worker"));
        }
        let grids: Vec<String> = worker.grids.iter().filter(|grid| staff.sees(grid)).cloned().collect();
        if grids.is_empty() {
            return Err(not_found("grid worker"));
        }
        let incidents: Vec<IncidentId> = {
            let state = self.center.index.current(&*self.storage)?;
            let month = Selection { reported_from: Some(from), reported_until: Some(until), ..Selection::default() };
            selected(&state, &staff, &month)
                .filter(|(_, incident)| {
                    incident.state.reporter.as_deref() == Some(person) && grids.contains(&incident.reported.grid)
                })
                .map(|(id, _)| id)
                .collect()
        };
        let mut docs = vec![reference::doc_id()];
        for grid in &grids {
            let code = GridCode::parse_default(grid).map_err(internal)?;
            docs.push(DocId::new(DocKind::Register, &code));
            docs.push(activity_doc::doc_id(&code, month));
        }
        docs.extend(incidents.into_iter().map(DocId::incident));
        let mut pulls = Vec::with_capacity(docs.len());
        for doc in docs {
            let doc = doc.to_string();
            if let Some(snapshot) = self.storage.snapshot(&doc)? {
                pulls.push(DocPull { doc, snapshot: Some(snapshot.into()), changes: Vec::new() });
            }
        }
        let dir = tempfile::tempdir().map_err(internal)?;
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let replica =
            Store::open_with(dir.path().join("replica.db"), OpenOptions { key: Some(key), ..Default::default() })
                .map_err(internal)?;
        let figures = (|| {
            let round = replica.begin_sync(0)?;
            replica.finish_sync(round, SyncResponse { pulls, ..SyncResponse::default() })?;
            if let Some(error) = replica.sync_status()?.last_error {
                return Err(wangge_core::Error::Document { doc: "replica".into(), reason: error });
            }
            replica.worker_month(person, month)
        })();
        replica.wipe().map_err(internal)?;
        figures.map_err(internal)
    }

    /// Where a selection's incidents gather: by grid, or by square cells of the given side
    /// (those with a location); most first, at most `limit` spots.
    pub fn center_hotspots(
        &self,
        token: &str,
        selection: &Selection,
        spot: Spot,
        limit: usize,
    ) -> Result<Vec<Hotspot>> {
        let reported = self.reported(token, selection)?;
        let mut spots = analysis::hotspots(&reported, spot);
        spots.truncate(limit);
        Ok(spots)
    }

    /// Matters that came back within the rule's days: the same class about the same
    /// household, resident or organization, or at the same place.
    pub fn center_repeats(&self, token: &str, selection: &Selection, rule: &RepeatRule) -> Result<Vec<Repeat>> {
        let reported = self.reported(token, selection)?;
        Ok(analysis::repeats(&reported, rule))
    }

    /// The selection's incidents as the analysis reads them.
    fn reported(&self, token: &str, selection: &Selection) -> Result<Vec<Reported>> {
        let staff = self.center_staff(token)?;
        check_area(&staff, selection)?;
        let state = self.center.index.current(&*self.storage)?;
        Ok(selected(&state, &staff, selection)
            .map(|(_, incident)| Reported {
                class: state.class_of(&incident.catalog_item),
                ..incident.reported.clone()
            })
            .collect())
    }
}

fn not_found_text() -> String {
    "incident not found in your area".to_owned()
}

/// A selection's area must lie within the staff member's.
fn check_area(staff: &Staff, selection: &Selection) -> Result<()> {
    match &selection.area {
        Some(area) if !staff.grids.iter().any(|grid| grid.starts_with(area.as_str())) => {
            Err(ServiceError::Forbidden(format!("{area} is outside your area")).into())
        }
        _ => Ok(()),
    }
}

/// The first and last day of a month, `YYYY-MM`.
fn month_days(month: &str) -> Result<(NaiveDate, NaiveDate)> {
    let invalid = || malformed("a month is YYYY-MM");
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| invalid())?;
    if month.len() != 7 {
        return Err(invalid());
    }
    let last = first.checked_add_months(chrono::Months::new(1)).and_then(|next| next.pred_opt()).ok_or_else(invalid)?;
    Ok((first, last))
}

/// The first millisecond of a day, China time.
fn day_start_ms(day: NaiveDate) -> Option<i64> {
    CHINA_TIME.from_local_datetime(&day.and_hms_opt(0, 0, 0)?).single().map(|time| time.timestamp_millis())
}

/// The staff member's incidents a selection takes.
fn selected<'a>(
    state: &'a index::IndexState,
    staff: &'a Staff,
    selection: &'a Selection,
) -> impl Iterator<Item = (IncidentId, &'a index::Indexed)> + 'a {
    let from_ms = selection.reported_from.and_then(day_start_ms);
    let until_ms = selection.reported_until.and_then(|day| day.succ_opt()).and_then(day_start_ms);
    state.incidents.iter().map(|(id, incident)| (*id, incident)).filter(move |(_, incident)| {
        let grid = incident.reported.grid.as_str();
        let reported = incident.state.reported_ms;
        staff.sees(grid)
            && selection.area.as_deref().is_none_or(|area| grid.starts_with(area))
            && (selection.phases.is_empty() || selection.phases.contains(&incident.state.phase))
            && selection
                .department
                .as_ref()
                .is_none_or(|department| incident.state.clocks.iter().any(|clock| &clock.department == department))
            && selection.class.is_none_or(|class| state.class_of(&incident.catalog_item) == Some(class))
            && from_ms.is_none_or(|from| reported.is_some_and(|ms| ms >= from))
            && until_ms.is_none_or(|until| reported.is_some_and(|ms| ms < until))
    })
}

/// Refuses a center token on the sync endpoints: a console is no replica.
pub(super) fn refuse_console(device: &Device) -> std::result::Result<(), ServiceError> {
    if device.id.starts_with(CONSOLE_PREFIX) {
        return Err(ServiceError::Forbidden("a center token is for the center API; it does not sync".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn months_are_checked_and_span_their_days() {
        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        assert_eq!(month_days("2026-02").unwrap(), (day("2026-02-01"), day("2026-02-28")));
        assert_eq!(month_days("2024-12").unwrap(), (day("2024-12-01"), day("2024-12-31")));
        for bad in ["2026-13", "2026-2", "202602", "2026-02-01", ""] {
            assert_eq!(month_days(bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn refusals_carry_the_fold_s_reason_and_status() {
        let role = CenterError::NotApplied {
            action: "escalate",
            why: NotApplied::RoleNotAllowed {
                role: Role::CenterStaff(wangge_core::incident::roles::CenterLevel::Township),
            },
        };
        assert_eq!((role.status(), role.code()), (403, "role_not_allowed"));
        let phase = CenterError::NotApplied {
            action: "archive",
            why: NotApplied::WrongPhase { phase: wangge_core::incident::Phase::Reported },
        };
        assert_eq!((phase.status(), phase.code()), (409, "wrong_phase"));
        assert!(phase.to_string().starts_with("archive refused: the incident was 已上报"), "{phase}");
        let rule = CenterError::NotApplied { action: "dispatch", why: NotApplied::Invalid { rule: "x".into() } };
        assert_eq!((rule.status(), rule.code()), (422, "invalid"));
        // The codes are the marks' own names.
        for error in [&role, &phase, &rule] {
            let CenterError::NotApplied { why, .. } = error else { unreachable!() };
            assert_eq!(serde_json::to_value(why).unwrap()["reason"], error.code());
        }
    }
}
