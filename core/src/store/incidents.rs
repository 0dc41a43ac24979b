//! Incidents in the store: reporting, acting, merging a peer's changes, and the queries of
//! the closed loop (by phase, grid, department, class and date; due soon and overdue; the
//! readable timeline; counts, on-time and on-the-spot rates).
//!
//! An incident is its own automerge document (`incident::doc`). Reporting and acting write
//! it directly (they are rarer than field edits, so they do not go through pending
//! captures) and project its derived state in the same transaction; deadlines are computed
//! when read, from the catalog item's rule, the working-day calendar and the lead
//! department's clock.

use std::collections::BTreeMap;

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::{Store, Writer, documents, loaded, n_chunks, projection};
use crate::calendar::{CHINA_TIME, Calendar, Clock, DeadlineRule, DeadlineStatus, deadline_status};
use crate::crdt::{DocId, DocKind, encode_location};
use crate::incident::catalog::{Catalog, DeadlineSpec, MatterClass};
use crate::incident::doc as incident_doc;
use crate::incident::roles::DepartmentCode;
use crate::incident::{Action, ActionKind, Actor, IncidentState, Mark, NotApplied, Phase, derive};
use crate::model::*;
use crate::{Error, Result};

/// A matter found in the grid, as its reporter records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    pub grid: GridCode,
    /// The matter catalog 事项清单 item it falls under.
    pub catalog_item: String,
    pub title: String,
    pub description: String,
    pub location: Option<Wgs84>,
    pub residents: Vec<ResidentId>,
    pub households: Vec<HouseholdId>,
    pub organizations: Vec<OrganizationId>,
    /// Photos by content hash (`sha256:` and 64 hex digits); the photos travel separately.
    pub photos: Vec<String>,
    /// When a resident reported it: their contact, for the points they earn later.
    pub reported_by_resident: Option<ResidentContact>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResidentContact {
    pub name: PersonName,
    pub phone: Option<Phone>,
}

/// An incident as its lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSummary {
    pub id: IncidentId,
    pub grid: String,
    pub catalog_item: String,
    pub class: Option<MatterClass>,
    pub title: String,
    pub phase: Phase,
    pub reporter: Option<String>,
    pub reported_at: Option<DateTime<FixedOffset>>,
    pub lead_department: Option<DepartmentCode>,
    pub co_handlers: Vec<DepartmentCode>,
    pub resolved_on_spot: bool,
    pub n_urged: u32,
    pub escalated: bool,
    pub satisfaction: Option<u8>,
    /// The lead department's deadline, once dispatched.
    pub deadline: Option<DeadlineStatus>,
}

/// One department's clock on an incident and where it stands at the query's `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct DepartmentDeadline {
    pub department: DepartmentCode,
    pub lead: bool,
    pub status: DeadlineStatus,
    /// Why the clock stopped: `completed`, `rejected` or `redispatched`.
    pub stop: Option<String>,
}

/// One line of an incident's timeline, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub position: u32,
    /// `None` for an entry this version cannot read.
    pub action: Option<Action>,
    pub mark: Mark,
}

impl std::fmt::Display for TimelineEntry {
    /// `2025-10-09 10:00 处置反馈 (部门承办人 h1, police) — not applied: …`. Shows person ids and
    /// department codes, which are not personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(action) = &self.action else {
            return write!(f, "#{} (an entry this version cannot read)", self.position);
        };
        let time = CHINA_TIME
            .timestamp_millis_opt(action.device_time_ms)
            .single()
            .map(|time| time.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        write!(f, "{time} {} ({} {}", action.kind.label_zh(), action.actor.role.label_zh(), action.actor.person)?;
        if let Some(department) = &action.actor.department {
            write!(f, ", {department}")?;
        }
        f.write_str(")")?;
        let details = details(&action.kind);
        if !details.is_empty() {
            write!(f, " {details}")?;
        }
        match &self.mark {
            Mark::Applied => Ok(()),
            Mark::NotApplied(why) => write!(f, " — not applied: {}", describe(why)),
        }
    }
}

/// What an action carried, in a few words: departments, verdicts, reasons, notes.
fn details(kind: &ActionKind) -> String {
    let departments = |lead: &DepartmentCode, co: &[DepartmentCode]| {
        if co.is_empty() { format!("→ {lead}") } else { format!("→ {lead} (协办 {})", ids(co)) }
    };
    match kind {
        ActionKind::Report | ActionKind::Accept | ActionKind::Archive => String::new(),
        ActionKind::ResolveOnSpot { note, evidence } => format!("{note} [{} photo(s)]", evidence.len()),
        ActionKind::Refuse { catalog_reference, reason } => format!("{catalog_reference}: {reason}"),
        ActionKind::Withdraw { reason } | ActionKind::Reject { reasons: reason } => reason.clone(),
        ActionKind::Dispatch { lead, co_handlers } | ActionKind::Redispatch { lead, co_handlers } => {
            departments(lead, co_handlers)
        }
        ActionKind::Progress { note } | ActionKind::Urge { note } => note.clone(),
        ActionKind::Complete { feedback, evidence } => format!("{feedback} [{} photo(s)]", evidence.len()),
        ActionKind::Verify { verdict, note } => {
            let verdict = match verdict {
                crate::incident::Verdict::Pass => "通过",
                crate::incident::Verdict::Fail => "不通过",
            };
            if note.is_empty() { verdict.to_owned() } else { format!("{verdict}: {note}") }
        }
        ActionKind::Escalate { leader, person, deadline } => {
            format!("责任领导 {leader}, 责任人 {person}, 期限 {deadline}")
        }
        ActionKind::Evaluate { satisfaction, comment } => format!("满意度 {satisfaction}/5 {comment}"),
    }
}

/// Why an action did not apply, in words.
pub fn describe(why: &NotApplied) -> String {
    match why {
        NotApplied::Unreadable => "the entry cannot be read by this version".into(),
        NotApplied::RoleNotAllowed { role } => format!("a {} may not do this", role.label_zh()),
        NotApplied::WrongPhase { phase } => format!("the incident was {} at that point", phase.label_zh()),
        NotApplied::NotTheReporter => "only the reporter may do this".into(),
        NotApplied::NotResponsible => "the incident is not with this department".into(),
        NotApplied::AlreadyReported => "the incident was already reported".into(),
        NotApplied::AlreadyEvaluated => "the incident was already evaluated".into(),
        NotApplied::Invalid { rule } => rule.clone(),
    }
}

/// Which incidents a query is about; every field narrows it, `Default` takes all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncidentFilter {
    pub grids: Vec<GridCode>,
    pub phases: Vec<Phase>,
    /// Incidents dispatched to this department, as lead or co-handler, at any time (with
    /// `phases: [Dispatched]`, those it is handling now).
    pub department: Option<DepartmentCode>,
    pub class: Option<MatterClass>,
    /// Reported by this person.
    pub reporter: Option<String>,
    /// Reported on or after this day (China time).
    pub reported_from: Option<NaiveDate>,
    /// Reported on or before this day (China time).
    pub reported_until: Option<NaiveDate>,
    pub due: Option<Due>,
}

/// Deadline filters, as of the query's `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Still running, at most one working day left.
    Soon,
    /// Still with the department, past the deadline.
    Overdue,
}

/// Counts over the incidents a filter selects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncidentStats {
    pub total: u32,
    pub by_class: BTreeMap<String, u32>,
    pub by_phase: BTreeMap<String, u32>,
    /// By month reported, `YYYY-MM` (China time).
    pub by_month: BTreeMap<String, u32>,
    pub n_resolved_on_spot: u32,
    /// Resolved on the spot, of those reported and neither refused nor withdrawn (refused
    /// and withdrawn ones are archived in place); `None` when there are none.
    pub on_the_spot_rate: Option<f64>,
    /// Handled by a department whose clock stopped with completion.
    pub n_completed: u32,
    pub n_completed_on_time: u32,
    /// Completed in time, of all completed; `None` when nothing was completed.
    pub on_time_rate: Option<f64>,
    /// Still with a department, past the deadline.
    pub n_overdue_open: u32,
}

/// The time rule of a catalog item, as the calendar counts it.
fn rule_of(spec: &DeadlineSpec) -> DeadlineRule {
    match spec {
        DeadlineSpec::WorkingDays(days) | DeadlineSpec::ComplexWorkingDays(days) => DeadlineRule::WorkingDays(*days),
        DeadlineSpec::StatutoryDays { days, working: true, .. } => DeadlineRule::WorkingDays(*days),
        DeadlineSpec::StatutoryDays { days, working: false, .. } => DeadlineRule::CalendarDays(*days),
        DeadlineSpec::Enterprise117 => DeadlineRule::Enterprise117,
    }
}

fn china_time(ms: i64) -> Option<DateTime<FixedOffset>> {
    CHINA_TIME.timestamp_millis_opt(ms).single()
}

/// A description: up to 2,000 characters, several lines allowed, no other control characters.
fn checked_description(text: &str) -> Result<String> {
    checked_notes("description", text, 2000)
}

/// Free text of several lines (a description, findings): up to `max` characters, no
/// control characters but line breaks and tabs; may be empty.
pub(super) fn checked_notes(field: &'static str, text: &str, max: usize) -> Result<String> {
    let text = text.trim();
    let n_chars = text.chars().count();
    if n_chars > max {
        let expected = match max {
            2000 => "at most 2000",
            500 => "at most 500",
            _ => "shorter",
        };
        return Err(InvalidField::new(field, Invalid::Length { expected, found: n_chars }).into());
    }
    if let Some(position) = text.chars().position(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(InvalidField::new(field, Invalid::Character { position: position + 1 }).into());
    }
    Ok(text.to_owned())
}

pub(super) fn checked_photo(hash: &str) -> Result<String> {
    let hex = hash.strip_prefix("sha256:").unwrap_or("");
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hash.to_ascii_lowercase())
    } else {
        Err(InvalidField::new("photo", Invalid::Rule("a photo is named by its hash: sha256: and 64 hex digits")).into())
    }
}

fn ids<T: std::fmt::Display>(ids: &[T]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Checks what an action carries against the catalog before it is appended, wherever it is
/// taken (a device, the center's API): its departments are the catalog's (a code it does not
/// know is a mistake to refuse now, not an action to keep), a refusal cites an item that is
/// not admitted into grids, evidence is named by photo hashes. Whether the role and the
/// phase allow it is the fold's business ([`derive`]).
pub fn check_action(catalog: &Catalog, actor: &Actor, kind: &ActionKind) -> Result<()> {
    let mut departments: Vec<&DepartmentCode> = actor.department.iter().collect();
    if let ActionKind::Dispatch { lead, co_handlers } | ActionKind::Redispatch { lead, co_handlers } = kind {
        departments.push(lead);
        departments.extend(co_handlers);
    }
    if let Some(unknown) = departments.iter().find(|code| catalog.department(code.as_str()).is_none()) {
        return Err(Error::UnknownDepartment { code: unknown.to_string() });
    }
    if let ActionKind::Refuse { catalog_reference, .. } = kind {
        // A refusal cites the catalog: the item that shows the matter is not the grid's.
        match catalog.item(catalog_reference) {
            Some(item) if !item.admitted => {}
            _ => {
                return Err(InvalidField::new(
                    "catalog_reference",
                    Invalid::Rule("a refusal cites a catalog item that is not admitted into grids"),
                )
                .into());
            }
        }
    }
    if let ActionKind::ResolveOnSpot { evidence, .. } | ActionKind::Complete { evidence, .. } = kind {
        for hash in evidence {
            checked_photo(hash)?;
        }
    }
    Ok(())
}

/// Where a department's clock on an item stands at `now`: the catalog item's rule counted
/// on the calendar from the clock's start (`started_ms`) to its stop or `now`; `None`
/// without a clock (before a dispatch) or for an item the catalog does not have. The
/// incident's deadline is its lead department's clock's.
pub fn clock_deadline(
    catalog: &Catalog,
    calendar: &Calendar,
    catalog_item: &str,
    started_ms: Option<i64>,
    stopped_ms: Option<i64>,
    now: DateTime<FixedOffset>,
) -> Option<DeadlineStatus> {
    let started = started_ms.and_then(china_time)?;
    let item = catalog.item(catalog_item)?;
    let clock = Clock { started, stopped: stopped_ms.and_then(china_time) };
    Some(deadline_status(calendar, rule_of(&item.deadline), &clock, now))
}

impl Due {
    /// Whether an incident in `phase`, with this lead deadline, is on the list.
    pub fn selects(self, phase: Phase, deadline: Option<&DeadlineStatus>) -> bool {
        match self {
            Due::Soon => deadline.is_some_and(|deadline| deadline.due_soon),
            // A worker's overdue list: still with the department and late. Late
            // completions count in the on-time rate, not here.
            Due::Overdue => phase == Phase::Dispatched && deadline.is_some_and(|deadline| deadline.overdue),
        }
    }
}

impl IncidentStats {
    /// Counts by class, phase and month, and the on-time and on-the-spot rates, of these
    /// incidents (with their deadlines as of the time they were read).
    pub fn of<'a>(incidents: impl IntoIterator<Item = &'a IncidentSummary>) -> IncidentStats {
        let mut stats = IncidentStats::default();
        for incident in incidents {
            stats.total += 1;
            let class = incident.class.map(|class| class.code().to_owned()).unwrap_or_else(|| "unknown".into());
            *stats.by_class.entry(class).or_default() += 1;
            *stats.by_phase.entry(incident.phase.code().to_owned()).or_default() += 1;
            if let Some(reported) = incident.reported_at {
                *stats.by_month.entry(reported.format("%Y-%m").to_string()).or_default() += 1;
            }
            if incident.resolved_on_spot {
                stats.n_resolved_on_spot += 1;
            }
            if let Some(deadline) = incident.deadline {
                let completed = matches!(incident.phase, Phase::Completed | Phase::Verified | Phase::Archived);
                if completed {
                    stats.n_completed += 1;
                    if !deadline.overdue {
                        stats.n_completed_on_time += 1;
                    }
                } else if incident.phase == Phase::Dispatched && deadline.overdue {
                    stats.n_overdue_open += 1;
                }
            }
        }
        let rate = |part: u32, whole: u32| (whole > 0).then(|| f64::from(part) / f64::from(whole));
        let n_taken_up = stats.total
            - stats.by_phase.get(Phase::Refused.code()).copied().unwrap_or(0)
            - stats.by_phase.get(Phase::Withdrawn.code()).copied().unwrap_or(0);
        stats.on_the_spot_rate = rate(stats.n_resolved_on_spot, n_taken_up);
        stats.on_time_rate = rate(stats.n_completed_on_time, stats.n_completed);
        stats
    }
}

impl Store {
    /// The matter catalog this store checks reports and dispatches against.
    pub fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The working-day calendar deadlines are counted on.
    pub fn calendar(&self) -> std::sync::RwLockReadGuard<'_, Calendar> {
        self.calendar.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the catalog and the calendar (from the server's reference document).
    pub(crate) fn set_reference(&self, catalog: Option<Catalog>, calendar: Option<Calendar>) {
        if let Some(catalog) = catalog {
            *self.catalog.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = catalog;
        }
        if let Some(calendar) = calendar {
            *self.calendar.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = calendar;
        }
    }

    /// Reports an incident (发现上报): a new incident document whose first action is the
    /// report by `reporter`.
    pub fn report_incident(&self, incident: NewIncident, reporter: Actor) -> Result<IncidentId> {
        self.report_incident_at(incident, reporter, self.clock.now_ms())
    }

    /// [`Store::report_incident`] with the device time given (records from paper, tests).
    pub fn report_incident_at(
        &self,
        incident: NewIncident,
        reporter: Actor,
        device_time_ms: i64,
    ) -> Result<IncidentId> {
        if self.catalog().item(&incident.catalog_item).is_none() {
            return Err(Error::UnknownCatalogItem { code: incident.catalog_item });
        }
        let title = checked_text("title", &incident.title, 100)?;
        let description = checked_description(&incident.description)?;
        let photos = incident.photos.iter().map(|hash| checked_photo(hash)).collect::<Result<Vec<_>>>()?;
        let grid = incident.grid.as_str().to_owned();
        let id = IncidentId::from_uuid(self.clock.uuid_v7());
        let mut fields = vec![
            ("grid", grid.clone()),
            ("catalog_item", incident.catalog_item.clone()),
            ("title", title),
            ("description", description),
        ];
        if let Some(location) = &incident.location {
            fields.push(("location", encode_location(location)));
        }
        for (key, list) in [
            ("residents", ids(&incident.residents)),
            ("households", ids(&incident.households)),
            ("organizations", ids(&incident.organizations)),
            ("photos", photos.join(",")),
        ] {
            if !list.is_empty() {
                fields.push((key, list));
            }
        }
        if let Some(contact) = &incident.reported_by_resident {
            fields.push(("resident_name", contact.name.to_string()));
            if let Some(phone) = &contact.phone {
                fields.push(("resident_phone", phone.to_string()));
            }
        }
        let action =
            Action { id: self.clock.uuid_v7().to_string(), actor: reporter, device_time_ms, kind: ActionKind::Report };
        let related: Vec<RecordRef> = (incident.residents.iter().map(|id| RecordRef::Resident(*id)))
            .chain(incident.households.iter().map(|id| RecordRef::Household(*id)))
            .chain(incident.organizations.iter().map(|id| RecordRef::Organization(*id)))
            .collect();
        self.write_incident(id, Some(&grid), |tx, doc| {
            if !documents::exists(tx, &DocId { kind: DocKind::Register, key: grid.clone() })? {
                return Err(Error::UnknownGrid { grid: grid.clone() });
            }
            for record in &related {
                let record_id = record.uuid().hyphenated().to_string();
                if !projection::row_in_grid(tx, record.kind(), &record_id, &grid)? {
                    return Err(Error::NotFound { record: *record });
                }
            }
            incident_doc::write_report(doc, &fields)?;
            incident_doc::append_action(doc, &action)
        })?;
        Ok(id)
    }

    /// Takes an action on an incident as `actor`; returns whether it applied, and if not,
    /// why. A refused action stays in the timeline: it is part of the record.
    pub fn act(&self, incident: IncidentId, actor: Actor, kind: ActionKind) -> Result<Mark> {
        self.act_at(incident, actor, kind, self.clock.now_ms())
    }

    /// [`Store::act`] with the device time given (records from paper, tests).
    pub fn act_at(&self, incident: IncidentId, actor: Actor, kind: ActionKind, device_time_ms: i64) -> Result<Mark> {
        check_action(&self.catalog(), &actor, &kind)?;
        let action = Action { id: self.clock.uuid_v7().to_string(), actor, device_time_ms, kind };
        self.write_incident(incident, None, |_, doc| {
            incident_doc::append_action(doc, &action)?;
            let timeline = incident_doc::read_timeline(doc)?;
            let state = derive(timeline.iter().map(Option::as_ref));
            Ok(state.marks.last().cloned().unwrap_or(Mark::Applied))
        })
    }

    /// Writes to an incident's document as one change, and projects it, in one transaction.
    /// With `create`, the document is made from its genesis first, in that grid.
    fn write_incident<T>(
        &self,
        incident: IncidentId,
        create: Option<&str>,
        f: impl FnOnce(&Transaction<'_>, &mut AutoCommit) -> Result<T>,
    ) -> Result<T> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, n_chunks: chunk_counts, .. } = &mut *writer;
        let doc_id = DocId::incident(incident);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = (|| {
            if let Some(grid) = create {
                documents::insert(&tx, &doc_id, grid, &mut incident_doc::genesis(&doc_id.key))?;
            }
            let n = n_chunks(&tx, chunk_counts, &doc_id)?;
            let doc = loaded(&tx, docs, &doc_id, &self.actor)?.ok_or(Error::UnknownIncident { incident })?;
            let value = f(&tx, doc)?;
            doc.commit_with(CommitOptions::default().with_time(self.clock.now_ms()));
            let change =
                doc.get_last_local_change().ok_or_else(|| Error::document(&doc_id, "commit made no change"))?;
            let n = documents::append(&tx, &doc_id, doc, change.raw_bytes(), 1, n)?;
            chunk_counts.insert(doc_id.clone(), n);
            project_incident(&tx, &doc_id, doc, &self.catalog())?;
            Ok(value)
        })();
        let result = result.and_then(|value| tx.commit().map(|()| value).map_err(Error::from));
        if result.is_err() {
            docs.remove(&doc_id);
            chunk_counts.remove(&doc_id);
        }
        result
    }

    /// Applies a peer's changes to an incident's document — made here from its genesis if
    /// it is new to this device (its grid is known once the report arrives) — and projects it.
    pub(super) fn apply_incident_changes(&self, doc_id: &DocId, changes: Vec<automerge::Change>) -> Result<usize> {
        let genesis = || incident_doc::genesis(&doc_id.key);
        let (n_new, _) = self.apply_standalone_changes(doc_id, changes, genesis, |tx, doc| {
            project_incident(tx, doc_id, doc, &self.catalog())
        })?;
        Ok(n_new)
    }

    /// Applies the server's changes to the reference document — made here from its
    /// genesis if new — then takes its catalog, calendar and grid names.
    pub(super) fn apply_reference_changes(&self, doc_id: &DocId, changes: Vec<automerge::Change>) -> Result<usize> {
        let (n_new, reference) =
            self.apply_standalone_changes(doc_id, changes, crate::reference::genesis, |tx, doc| {
                let reference = crate::reference::read(doc)?;
                for (code, meta) in &reference.grids {
                    tx.execute(
                        "UPDATE grids SET name = ?2, kind = ?3 WHERE code = ?1",
                        params![code, meta.name, meta.kind],
                    )?;
                }
                Ok(reference)
            })?;
        if let Some(reference) = reference {
            self.set_reference(reference.catalog, reference.calendar);
        }
        Ok(n_new)
    }

    /// Applies changes to a document that is not a grid's (an incident, the reference),
    /// creating it from `genesis` if the device does not have it, and runs `project` in the
    /// same transaction when anything new arrived.
    pub(super) fn apply_standalone_changes<T>(
        &self,
        doc_id: &DocId,
        changes: Vec<automerge::Change>,
        genesis: impl FnOnce() -> AutoCommit,
        project: impl FnOnce(&Transaction<'_>, &AutoCommit) -> Result<T>,
    ) -> Result<(usize, Option<T>)> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, n_chunks: chunk_counts, .. } = &mut *writer;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = (|| {
            if !documents::exists(&tx, doc_id)? {
                documents::insert(&tx, doc_id, "", &mut genesis())?;
            }
            let n = n_chunks(&tx, chunk_counts, doc_id)?;
            let doc = loaded(&tx, docs, doc_id, &self.actor)?.ok_or_else(|| Error::document(doc_id, "not stored"))?;
            let (chunk, n_new) = documents::new_changes_chunk(doc, &changes);
            if n_new == 0 {
                return Ok((0, None));
            }
            crate::crdt::untrusted::apply_changes(doc, changes).map_err(|error| Error::document(doc_id, error))?;
            crate::crdt::check_layout(doc, doc_id)?;
            let n = documents::append(&tx, doc_id, doc, &chunk, 0, n)?;
            chunk_counts.insert(doc_id.clone(), n);
            let projected = project(&tx, doc)?;
            Ok((n_new, Some(projected)))
        })();
        let result = result.and_then(|value| tx.commit().map(|()| value).map_err(Error::from));
        if result.is_err() {
            docs.remove(doc_id);
            chunk_counts.remove(doc_id);
        }
        result
    }

    /// A grid's name and kind from the reference document, if the device has it.
    pub(crate) fn reference_grid(&self, code: &str) -> Result<Option<crate::reference::GridMeta>> {
        let mut writer = self.writer();
        let Writer { conn, docs, .. } = &mut *writer;
        let Some(doc) = loaded(conn, docs, &crate::reference::doc_id(), &self.actor)? else { return Ok(None) };
        Ok(crate::reference::read(doc)?.grids.into_iter().find(|(grid, _)| grid == code).map(|(_, meta)| meta))
    }

    /// One incident as its lists show it, with its deadline at `now`.
    pub fn incident(&self, id: IncidentId, now: DateTime<FixedOffset>) -> Result<IncidentSummary> {
        let conn = self.reader();
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM incidents WHERE id = ?1");
        let mut statement = conn.prepare_cached(&sql)?;
        let summary = statement.query_row([id.to_string()], |row| self.summary_from_row(row, now)).optional()?;
        summary.ok_or(Error::UnknownIncident { incident: id })
    }

    /// Every department's clock on an incident, in dispatch order: each starts at its
    /// dispatch and stops at its completion, rejection, or the incident's redispatch.
    pub fn incident_department_deadlines(
        &self,
        id: IncidentId,
        now: DateTime<FixedOffset>,
    ) -> Result<Vec<DepartmentDeadline>> {
        let summary = self.incident(id, now)?;
        let Some(rule) = self.catalog().item(&summary.catalog_item).map(|item| rule_of(&item.deadline)) else {
            return Ok(Vec::new());
        };
        let conn = self.reader();
        let mut statement = conn.prepare_cached(
            "SELECT department, lead, started_ms, stopped_ms, stop FROM incident_departments
             WHERE incident_id = ?1 ORDER BY position",
        )?;
        let rows: Vec<ClockRow> = statement
            .query_map([id.to_string()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(department, lead, started, stopped, stop)| {
                let clock = Clock { started: china_time(started)?, stopped: stopped.and_then(china_time) };
                Some(DepartmentDeadline {
                    department: DepartmentCode::parse(&department).ok()?,
                    lead,
                    status: deadline_status(&self.calendar(), rule, &clock, now),
                    stop,
                })
            })
            .collect())
    }

    /// The report's fields as recorded (grid, catalog item, title, description, location,
    /// related records, photos, resident contact).
    pub fn incident_report(&self, id: IncidentId) -> Result<Vec<(String, String)>> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, .. } = &mut *writer;
        let doc_id = DocId::incident(id);
        let doc = loaded(conn, docs, &doc_id, &self.actor)?.ok_or(Error::UnknownIncident { incident: id })?;
        incident_doc::read_report(doc)
    }

    /// The whole timeline of an incident, each entry with what became of it.
    pub fn incident_timeline(&self, id: IncidentId) -> Result<Vec<TimelineEntry>> {
        let conn = self.reader();
        let mut statement = conn.prepare_cached(
            "SELECT position, action, mark FROM incident_actions WHERE incident_id = ?1 ORDER BY position",
        )?;
        let rows: Vec<(u32, Option<String>, String)> = statement
            .query_map([id.to_string()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<Result<_, _>>()?;
        // With the reader still held (it is not reentrant).
        if rows.is_empty()
            && conn
                .prepare_cached("SELECT 1 FROM incidents WHERE id = ?1")?
                .query_row([id.to_string()], |_| Ok(()))
                .optional()?
                .is_none()
        {
            return Err(Error::UnknownIncident { incident: id });
        }
        rows.into_iter()
            .map(|(position, action, mark)| {
                let damaged = |error: serde_json::Error| Error::document(format!("incident/{id}"), error);
                Ok(TimelineEntry {
                    position,
                    action: action.map(|json| serde_json::from_str(&json)).transpose().map_err(damaged)?,
                    mark: serde_json::from_str(&mark).map_err(damaged)?,
                })
            })
            .collect()
    }

    /// The incidents a filter selects, newest report first, with deadlines at `now`.
    pub fn incidents(&self, filter: &IncidentFilter, now: DateTime<FixedOffset>) -> Result<Vec<IncidentSummary>> {
        let (conditions, values) = filter_sql(filter);
        let sql =
            format!("SELECT {SUMMARY_COLUMNS} FROM incidents WHERE {conditions} ORDER BY reported_ms DESC, id DESC");
        let conn = self.reader();
        let mut statement = conn.prepare(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(values), |row| self.summary_from_row(row, now))?;
        let mut found = Vec::new();
        for summary in rows {
            let summary = summary?;
            if filter.due.is_none_or(|due| due.selects(summary.phase, summary.deadline.as_ref())) {
                found.push(summary);
            }
        }
        Ok(found)
    }

    /// Counts by class, phase and month, and the on-time and on-the-spot rates.
    pub fn incident_stats(&self, filter: &IncidentFilter, now: DateTime<FixedOffset>) -> Result<IncidentStats> {
        Ok(IncidentStats::of(&self.incidents(filter, now)?))
    }

    fn summary_from_row(
        &self,
        row: &rusqlite::Row<'_>,
        now: DateTime<FixedOffset>,
    ) -> rusqlite::Result<IncidentSummary> {
        let id: String = row.get(0)?;
        let catalog_item: String = row.get(2)?;
        let class: Option<String> = row.get(3)?;
        let phase: String = row.get(5)?;
        let lead: Option<String> = row.get(8)?;
        let co_handlers: String = row.get(9)?;
        let started: Option<i64> = row.get(10)?;
        let stopped: Option<i64> = row.get(11)?;
        let deadline = clock_deadline(&self.catalog(), &self.calendar(), &catalog_item, started, stopped, now);
        let satisfaction: Option<i64> = row.get(16)?;
        Ok(IncidentSummary {
            id: IncidentId::parse(&id).unwrap_or_default(),
            grid: row.get(1)?,
            catalog_item,
            class: class.as_deref().and_then(MatterClass::from_code),
            title: row.get(4)?,
            phase: phase_from_code(&phase),
            reporter: row.get(6)?,
            reported_at: row.get::<_, Option<i64>>(7)?.and_then(china_time),
            lead_department: lead.as_deref().and_then(|code| DepartmentCode::parse(code).ok()),
            co_handlers: co_handlers.split(',').filter_map(|code| DepartmentCode::parse(code).ok()).collect(),
            resolved_on_spot: row.get(12)?,
            n_urged: row.get(13)?,
            escalated: row.get(14)?,
            satisfaction: satisfaction.and_then(|n| u8::try_from(n).ok()),
            deadline,
        })
    }
}

/// An `incident_departments` row: department, lead, started, stopped, stop.
type ClockRow = (String, bool, i64, Option<i64>, Option<String>);

const SUMMARY_COLUMNS: &str = "id, grid_code, catalog_item, class, title, phase, reporter, reported_ms, \
     lead_department, co_handlers, lead_started_ms, lead_stopped_ms, resolved_on_spot, n_urged, escalated, \
     handled, satisfaction";

fn phase_from_code(code: &str) -> Phase {
    [
        Phase::Reported,
        Phase::ResolvedOnSpot,
        Phase::Refused,
        Phase::Withdrawn,
        Phase::Accepted,
        Phase::Dispatched,
        Phase::Completed,
        Phase::Verified,
        Phase::Archived,
    ]
    .into_iter()
    .find(|phase| phase.code() == code)
    .unwrap_or(Phase::NotReported)
}

/// The WHERE clause and its values for the filter's static parts.
fn filter_sql(filter: &IncidentFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut conditions = vec!["1".to_owned()];
    let mut values: Vec<Value> = Vec::new();
    let next = |value: Value, values: &mut Vec<Value>| {
        values.push(value);
        format!("?{}", values.len())
    };
    if !filter.grids.is_empty() {
        let list: Vec<String> =
            filter.grids.iter().map(|grid| next(Value::Text(grid.as_str().to_owned()), &mut values)).collect();
        conditions.push(format!("grid_code IN ({})", list.join(", ")));
    }
    if !filter.phases.is_empty() {
        let list: Vec<String> =
            filter.phases.iter().map(|phase| next(Value::Text(phase.code().to_owned()), &mut values)).collect();
        conditions.push(format!("phase IN ({})", list.join(", ")));
    }
    if let Some(department) = &filter.department {
        let p = next(Value::Text(department.to_string()), &mut values);
        conditions.push(format!("id IN (SELECT incident_id FROM incident_departments WHERE department = {p})"));
    }
    if let Some(class) = filter.class {
        let p = next(Value::Text(class.code().to_owned()), &mut values);
        conditions.push(format!("class = {p}"));
    }
    if let Some(reporter) = &filter.reporter {
        let p = next(Value::Text(reporter.clone()), &mut values);
        conditions.push(format!("reporter = {p}"));
    }
    let day_start = |day: NaiveDate| {
        day.and_hms_opt(0, 0, 0)
            .and_then(|time| CHINA_TIME.from_local_datetime(&time).single())
            .map(|time| time.timestamp_millis())
    };
    if let Some(ms) = filter.reported_from.and_then(day_start) {
        let p = next(Value::Integer(ms), &mut values);
        conditions.push(format!("reported_ms >= {p}"));
    }
    if let Some(ms) = filter.reported_until.and_then(|day| day.succ_opt()).and_then(day_start) {
        let p = next(Value::Integer(ms), &mut values);
        conditions.push(format!("reported_ms < {p}"));
    }
    (conditions.join(" AND "), values)
}

/// Writes an incident's rows from its document: the derived state, the timeline with its
/// marks, and the departments' clocks.
pub(super) fn project_incident(
    tx: &Transaction<'_>,
    doc_id: &DocId,
    doc: &AutoCommit,
    catalog: &Catalog,
) -> Result<()> {
    let report: BTreeMap<String, String> = incident_doc::read_report(doc)?.into_iter().collect();
    let timeline = incident_doc::read_timeline(doc)?;
    let state: IncidentState = derive(timeline.iter().map(Option::as_ref));
    let id = doc_id.key.as_str();
    for table in ["incident_actions", "incident_departments"] {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE incident_id = ?1"))?.execute([id])?;
    }
    tx.prepare_cached("DELETE FROM incidents WHERE id = ?1")?.execute([id])?;
    let Some(grid) = report.get("grid") else {
        // The report has not arrived yet: nothing to show.
        return Ok(());
    };
    tx.prepare_cached("UPDATE documents SET grid_code = ?2 WHERE doc_id = ?1")?
        .execute(params![doc_id.to_string(), grid])?;
    let catalog_item = report.get("catalog_item").cloned().unwrap_or_default();
    let class = catalog.item(&catalog_item).map(|item| item.class.code());
    let lead_clock = state.lead_clock();
    let stop_code = |stop: crate::incident::state::ClockStop| match stop {
        crate::incident::state::ClockStop::Completed => "completed",
        crate::incident::state::ClockStop::Rejected => "rejected",
        crate::incident::state::ClockStop::Redispatched => "redispatched",
    };
    let n_not_applied = state.marks.iter().filter(|mark| **mark != Mark::Applied).count();
    tx.prepare_cached(
        "INSERT INTO incidents (id, grid_code, catalog_item, class, title, description, location, phase, reporter,
            reported_ms, lead_department, co_handlers, lead_started_ms, lead_stopped_ms, lead_stop, handled,
            resolved_on_spot, n_rejections, n_urged, escalated, satisfaction, closed_ms, n_actions, n_not_applied)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,
            ?23, ?24)",
    )?
    .execute(params![
        id,
        grid,
        catalog_item,
        class,
        report.get("title").cloned().unwrap_or_default(),
        report.get("description").cloned().unwrap_or_default(),
        report.get("location"),
        state.phase.code(),
        state.reporter,
        state.reported_ms,
        state.lead.as_ref().map(ToString::to_string),
        ids(&state.co_handlers),
        lead_clock.map(|clock| clock.started_ms),
        lead_clock.and_then(|clock| clock.stopped).map(|(ms, _)| ms),
        lead_clock.and_then(|clock| clock.stopped).map(|(_, stop)| stop_code(stop)),
        state.handled,
        state.resolved_on_spot,
        state.n_rejections,
        state.n_urged,
        state.escalation.is_some(),
        state.evaluation.as_ref().map(|evaluation| evaluation.satisfaction),
        state.closed_ms,
        i64::try_from(timeline.len()).unwrap_or(i64::MAX),
        i64::try_from(n_not_applied).unwrap_or(i64::MAX),
    ])?;
    let mut insert_action = tx
        .prepare_cached("INSERT INTO incident_actions (incident_id, position, action, mark) VALUES (?1, ?2, ?3, ?4)")?;
    for (position, (action, mark)) in timeline.iter().zip(&state.marks).enumerate() {
        let action =
            action.as_ref().map(serde_json::to_string).transpose().map_err(|error| Error::document(doc_id, error))?;
        let mark = serde_json::to_string(mark).map_err(|error| Error::document(doc_id, error))?;
        insert_action.execute(params![id, position as i64, action, mark])?;
    }
    let mut insert_department = tx.prepare_cached(
        "INSERT INTO incident_departments (incident_id, position, department, lead, started_ms, stopped_ms, stop)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (position, clock) in state.clocks.iter().enumerate() {
        insert_department.execute(params![
            id,
            position as i64,
            clock.department.to_string(),
            clock.lead,
            clock.started_ms,
            clock.stopped.map(|(ms, _)| ms),
            clock.stopped.map(|(_, stop)| stop_code(stop)),
        ])?;
    }
    Ok(())
}
