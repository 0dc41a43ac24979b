//! Field work in the store: visits (one of which can raise an incident in the same step),
//! check-ins and patrols written into the grid's activity document of the month, merged from
//! peers, projected into `visits`, `checkins`, `patrols`; coverage and a worker's month.
//!
//! Like incidents, activity is written directly (not through pending captures) and
//! projected in the same transaction.

use std::collections::BTreeSet;

use automerge::AutoCommit;
use automerge::transaction::CommitOptions;
use chrono::TimeZone;
use rusqlite::{Transaction, TransactionBehavior, params};

use super::incidents::checked_notes;
use super::{Store, Writer, documents, loaded, n_chunks, projection};
use crate::activity::doc::{self as activity_doc, CHECKINS, CheckInEntry, PATROLS, PatrolEntry, VISITS, VisitEntry};
use crate::activity::track::{self, TrackPoint, TrackSummary};
use crate::activity::{CheckIn, Coverage, FullView, NewVisit, Patrol, Visit, VisitPurpose, VisitTarget, WorkerMonth};
use crate::calendar::CHINA_TIME;
use crate::crdt::{DocId, DocKind};
use crate::incident::Actor;
use crate::model::*;
use crate::place::boundaries::GridIndex;
use crate::{Error, NewIncident, Result};

impl Store {
    /// Records a visit to a household or organization of `grid` by `visitor`.
    pub fn record_visit(&self, grid: &GridCode, visit: NewVisit, visitor: &Actor) -> Result<String> {
        self.write_visit(grid, visit, visitor, None)
    }

    /// Records a visit and, in the same step, reports the incident found there (发现上报):
    /// the visit names the incident. Returns the visit's id and the incident's.
    pub fn record_visit_with_incident(
        &self,
        grid: &GridCode,
        visit: NewVisit,
        incident: NewIncident,
        visitor: &Actor,
    ) -> Result<(String, IncidentId)> {
        // Checked before anything is written, so that a bad visit leaves no orphan incident.
        let entry = self.visit_entry(grid, &visit, visitor, None)?;
        let incident = self.report_incident_at(incident, visitor.clone(), visit.time_ms)?;
        let id = self.write_entry(grid, visit.time_ms, VISITS, &VisitEntry { incident: Some(incident), ..entry })?;
        Ok((id, incident))
    }

    fn write_visit(
        &self,
        grid: &GridCode,
        visit: NewVisit,
        visitor: &Actor,
        incident: Option<IncidentId>,
    ) -> Result<String> {
        let entry = self.visit_entry(grid, &visit, visitor, incident)?;
        self.write_entry(grid, visit.time_ms, VISITS, &entry)
    }

    fn visit_entry(
        &self,
        grid: &GridCode,
        visit: &NewVisit,
        visitor: &Actor,
        incident: Option<IncidentId>,
    ) -> Result<VisitEntry> {
        let (kind, id) = match visit.target {
            VisitTarget::Household(id) => (RecordKind::Household, id.to_string()),
            VisitTarget::Organization(id) => (RecordKind::Organization, id.to_string()),
        };
        if !projection::row_in_grid(&self.reader(), kind, &id, grid.as_str())? {
            let record = match visit.target {
                VisitTarget::Household(id) => RecordRef::Household(id),
                VisitTarget::Organization(id) => RecordRef::Organization(id),
            };
            return Err(Error::NotFound { record });
        }
        Ok(VisitEntry {
            worker: visitor.person.clone(),
            target: visit.target,
            time_ms: visit.time_ms,
            location: visit.location.as_ref().map(activity_doc::location),
            purpose: visit.purpose.code().to_owned(),
            findings: checked_notes("findings", &visit.findings, 2000)?,
            follow_up: visit
                .follow_up
                .as_deref()
                .map(|text| checked_notes("follow_up", text, 500))
                .transpose()?
                .filter(|text| !text.is_empty()),
            incident,
        })
    }

    /// Checks in: `worker` is at `location` at `time_ms` (定位、定时). Whether that is inside
    /// the grid is judged when read ([`Store::check_ins`]).
    pub fn check_in(&self, grid: &GridCode, location: Wgs84, time_ms: i64, worker: &Actor) -> Result<String> {
        let entry =
            CheckInEntry { worker: worker.person.clone(), time_ms, location: activity_doc::location(&location) };
        self.write_entry(grid, time_ms, CHECKINS, &entry)
    }

    /// Records a patrol from its track, whose blob (from [`track::encode`]) the caller has
    /// stored under `track_hash`: the summary, and the grid's buildings passed, go into the
    /// activity document of the month it started.
    pub fn record_patrol(
        &self,
        grid: &GridCode,
        points: &[TrackPoint],
        track_hash: &str,
        worker: &Actor,
    ) -> Result<Patrol> {
        let summary = track::summarize(points).map_err(|error| Error::document("track", error))?;
        let track = super::incidents::checked_photo(track_hash)?;
        let buildings: Vec<(BuildingId, Wgs84)> = self
            .list_buildings(grid)?
            .into_iter()
            .filter_map(|building| Some((building.id, building.location?)))
            .collect();
        let buildings_passed = track::buildings_passed(points, &buildings, track::PASSED_WITHIN_M);
        let entry = PatrolEntry {
            worker: worker.person.clone(),
            started_ms: summary.started_ms,
            ended_ms: summary.ended_ms,
            distance_m: summary.distance_m,
            n_points: summary.n_points,
            n_flagged: summary.n_flagged,
            buildings_passed: buildings_passed.clone(),
            track: track.clone(),
        };
        let id = self.write_entry(grid, summary.started_ms, PATROLS, &entry)?;
        Ok(Patrol { id, grid: grid.to_string(), worker: worker.person.clone(), summary, buildings_passed, track })
    }

    /// Writes one entry into the grid's activity document of the month of `time_ms`
    /// (created from its genesis if this is the month's first), and projects the document.
    fn write_entry<T: serde::Serialize>(
        &self,
        grid: &GridCode,
        time_ms: i64,
        container: &str,
        entry: &T,
    ) -> Result<String> {
        let id = self.clock.uuid_v7().to_string();
        let month = activity_doc::month_of(time_ms);
        let doc_id = if container == activity_doc::VIEWS {
            activity_doc::audit_doc_id(grid, &month)
        } else {
            activity_doc::doc_id(grid, &month)
        };
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, n_chunks: chunk_counts, .. } = &mut *writer;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = (|| {
            if !documents::exists(&tx, &DocId::new(DocKind::Register, grid))? {
                return Err(Error::UnknownGrid { grid: grid.to_string() });
            }
            if !documents::exists(&tx, &doc_id)? {
                documents::insert(&tx, &doc_id, grid.as_str(), &mut activity_doc::genesis(&doc_id.key))?;
            }
            let n = n_chunks(&tx, chunk_counts, &doc_id)?;
            let doc = loaded(&tx, docs, &doc_id, &self.actor)?.ok_or_else(|| Error::document(&doc_id, "not stored"))?;
            activity_doc::put_entry(doc, container, &id, entry)?;
            doc.commit_with(CommitOptions::default().with_time(self.clock.now_ms()));
            let change =
                doc.get_last_local_change().ok_or_else(|| Error::document(&doc_id, "commit made no change"))?;
            let n = documents::append(&tx, &doc_id, doc, change.raw_bytes(), 1, n)?;
            chunk_counts.insert(doc_id.clone(), n);
            project_activity(&tx, &doc_id, doc)
        })();
        let result = result.and_then(|()| tx.commit().map_err(Error::from));
        if result.is_err() {
            docs.remove(&doc_id);
            chunk_counts.remove(&doc_id);
        }
        result.map(|()| id)
    }

    /// Applies a peer's changes to an activity document (made here from its genesis if new).
    pub(super) fn apply_activity_changes(&self, doc_id: &DocId, changes: Vec<automerge::Change>) -> Result<usize> {
        let (n_new, _) = self.apply_standalone_changes(
            doc_id,
            changes,
            || activity_doc::genesis(&doc_id.key),
            |tx, doc| project_activity(tx, doc_id, doc),
        )?;
        Ok(n_new)
    }

    /// A resident's full ID number and phone (shown masked otherwise), for a worker whose
    /// role may see sensitive data, with the reason: the view is recorded in the grid's
    /// audit document of the month (who, what, when, why), which syncs to those who may see
    /// sensitive data and the center.
    pub fn reveal_resident(
        &self,
        id: ResidentId,
        reason: &str,
        viewer: &Actor,
        time_ms: i64,
    ) -> Result<crate::model::ResidentSensitive> {
        let resident = self.resident(id)?;
        let no_access = || Error::NoSensitiveAccess { grid: resident.grid.to_string() };
        if !viewer.role.may_see_sensitive_data() {
            return Err(no_access());
        }
        let sensitive = resident.sensitive.clone().ok_or_else(no_access)?;
        let reason = crate::model::checked_text("reason", reason, 100)?;
        let entry = activity_doc::ViewEntry {
            worker: viewer.person.clone(),
            time_ms,
            record: format!("resident/{id}"),
            fields: vec!["id_number".into(), "phone".into()],
            reason,
        };
        self.write_entry(&resident.grid, time_ms, activity_doc::VIEWS, &entry)?;
        Ok(sensitive)
    }

    /// The recorded views of full values in a grid between two times (ms), newest first.
    pub fn full_views(&self, grid: &GridCode, from_ms: i64, until_ms: i64) -> Result<Vec<FullView>> {
        let conn = self.reader();
        let mut statement = conn.prepare_cached(
            "SELECT id, grid_code, worker, time_ms, record, fields, reason FROM views
             WHERE grid_code = ?1 AND time_ms >= ?2 AND time_ms < ?3 ORDER BY time_ms DESC, id DESC",
        )?;
        let rows = statement.query_map(params![grid.as_str(), from_ms, until_ms], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get::<_, String>(5)?, row.get(6)?))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (id, grid, worker, time_ms, record, fields, reason) = row?;
            let fields = serde_json::from_str(&fields).unwrap_or_default();
            found.push(FullView { id, grid, worker, time_ms, record, fields, reason });
        }
        Ok(found)
    }

    /// The visits to a grid's households and organizations between two times (ms), newest first.
    pub fn visits(&self, grid: &GridCode, from_ms: i64, until_ms: i64) -> Result<Vec<Visit>> {
        let conn = self.reader();
        let mut statement = conn.prepare_cached(
            "SELECT id, grid_code, worker, target_kind, target_id, time_ms, lat, lng, purpose, findings, follow_up,
                    incident_id
             FROM visits WHERE grid_code = ?1 AND time_ms >= ?2 AND time_ms < ?3 ORDER BY time_ms DESC, id DESC",
        )?;
        let rows = statement.query_map(params![grid.as_str(), from_ms, until_ms], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, i64>(5)?,
                (row.get::<_, Option<f64>>(6)?, row.get::<_, Option<f64>>(7)?),
                row.get::<_, String>(8)?,
                row.get::<_, String>(9)?,
                row.get::<_, Option<String>>(10)?,
                row.get::<_, Option<String>>(11)?,
            ))
        })?;
        let mut visits = Vec::new();
        for row in rows {
            let (id, grid, worker, kind, target, time_ms, (lat, lng), purpose, findings, follow_up, incident) = row?;
            let target = match kind.as_str() {
                "organization" => VisitTarget::Organization(OrganizationId::parse(&target)?),
                _ => VisitTarget::Household(HouseholdId::parse(&target)?),
            };
            visits.push(Visit {
                id,
                grid,
                worker,
                target,
                time_ms,
                location: lat.zip(lng).and_then(|(lat, lng)| Wgs84::new(lat, lng).ok()),
                purpose: VisitPurpose::from_code(&purpose).unwrap_or(VisitPurpose::Other),
                findings,
                follow_up,
                incident: incident.map(|id| IncidentId::parse(&id)).transpose()?,
            });
        }
        Ok(visits)
    }

    /// A grid's check-ins between two times (ms), newest first.
    pub fn check_ins(&self, grid: &GridCode, from_ms: i64, until_ms: i64) -> Result<Vec<CheckIn>> {
        let index = self.grid_index()?;
        let conn = self.reader();
        let mut statement = conn.prepare_cached(
            "SELECT id, grid_code, worker, time_ms, lat, lng FROM checkins
             WHERE grid_code = ?1 AND time_ms >= ?2 AND time_ms < ?3 ORDER BY time_ms DESC, id DESC",
        )?;
        let rows = statement.query_map(params![grid.as_str(), from_ms, until_ms], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get::<_, f64>(4)?, row.get::<_, f64>(5)?))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (id, grid, worker, time_ms, lat, lng): (String, String, String, i64, f64, f64) = row?;
            let location = Wgs84::new(lat, lng)?;
            let (inside_grid, distance_to_grid_m) = match self.place_in_grid(&index, &grid, &location)? {
                None => (None, None),
                Some(distance) => (Some(distance == 0.0), (distance > 0.0).then_some(distance)),
            };
            found.push(CheckIn { id, grid, worker, time_ms, location, inside_grid, distance_to_grid_m });
        }
        Ok(found)
    }

    /// A grid's patrols that started between two times (ms), newest first.
    pub fn patrols(&self, grid: &GridCode, from_ms: i64, until_ms: i64) -> Result<Vec<Patrol>> {
        let conn = self.reader();
        let mut statement = conn.prepare_cached(
            "SELECT id, grid_code, worker, started_ms, ended_ms, distance_m, n_points, n_flagged, track FROM patrols
             WHERE grid_code = ?1 AND started_ms >= ?2 AND started_ms < ?3 ORDER BY started_ms DESC, id DESC",
        )?;
        let rows = statement.query_map(params![grid.as_str(), from_ms, until_ms], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                TrackSummary {
                    started_ms: row.get(3)?,
                    ended_ms: row.get(4)?,
                    distance_m: row.get(5)?,
                    n_points: row.get(6)?,
                    n_flagged: row.get(7)?,
                },
                row.get::<_, String>(8)?,
            ))
        })?;
        let mut passed = conn.prepare_cached("SELECT building_id FROM patrol_buildings WHERE patrol_id = ?1")?;
        let mut found = Vec::new();
        for row in rows {
            let (id, grid, worker, summary, track) = row?;
            let buildings_passed = passed
                .query_map([&id], |row| row.get::<_, String>(0))?
                .map(|building| Ok(BuildingId::parse(&building?)?))
                .collect::<Result<Vec<_>>>()?;
            found.push(Patrol { id, grid, worker, summary, buildings_passed, track });
        }
        Ok(found)
    }

    /// The share of a grid's standing buildings visited (a household or organization in them)
    /// or passed on patrol between two times, by anyone, or by `worker` only.
    pub fn coverage(&self, grid: &GridCode, from_ms: i64, until_ms: i64, worker: Option<&str>) -> Result<Coverage> {
        let conn = self.reader();
        let n_buildings: u32 = conn.query_row(
            "SELECT count(*) FROM buildings WHERE grid_code = ?1 AND status = 'active'",
            [grid.as_str()],
            |row| row.get(0),
        )?;
        let n_covered: u32 = conn.query_row(
            "SELECT count(*) FROM buildings b WHERE b.grid_code = ?1 AND b.status = 'active' AND (
                EXISTS (SELECT 1 FROM visits v JOIN households h ON v.target_kind = 'household' AND h.id = v.target_id
                        WHERE h.building = b.id AND v.time_ms >= ?2 AND v.time_ms < ?3 AND (?4 IS NULL OR v.worker = ?4))
                OR EXISTS (SELECT 1 FROM visits v JOIN organizations o ON v.target_kind = 'organization' AND o.id = v.target_id
                        WHERE o.building = b.id AND v.time_ms >= ?2 AND v.time_ms < ?3 AND (?4 IS NULL OR v.worker = ?4))
                OR EXISTS (SELECT 1 FROM patrol_buildings pb JOIN patrols p ON p.id = pb.patrol_id
                        WHERE pb.building_id = b.id AND p.started_ms >= ?2 AND p.started_ms < ?3
                          AND (?4 IS NULL OR p.worker = ?4)))",
            params![grid.as_str(), from_ms, until_ms, worker],
            |row| row.get(0),
        )?;
        let share = (n_buildings > 0).then(|| f64::from(n_covered) / f64::from(n_buildings));
        Ok(Coverage { n_buildings, n_covered, share })
    }

    /// A worker's month (`YYYY-MM`, China time) in figures, over the grids on this device.
    pub fn worker_month(&self, person: &str, month: &str) -> Result<WorkerMonth> {
        let (from_ms, until_ms) = month_bounds(month)?;
        let index = self.grid_index()?;
        let conn = self.reader();
        let count = |sql: &str| -> Result<u32> {
            Ok(conn.query_row(sql, params![person, from_ms, until_ms], |row| row.get::<_, u32>(0))?)
        };
        let n_visits = count("SELECT count(*) FROM visits WHERE worker = ?1 AND time_ms >= ?2 AND time_ms < ?3")?;
        let n_patrols =
            count("SELECT count(*) FROM patrols WHERE worker = ?1 AND started_ms >= ?2 AND started_ms < ?3")?;
        let patrol_distance_m: f64 = conn.query_row(
            "SELECT coalesce(sum(distance_m), 0) FROM patrols WHERE worker = ?1 AND started_ms >= ?2 AND started_ms < ?3",
            params![person, from_ms, until_ms],
            |row| row.get(0),
        )?;
        let check_ins: Vec<(String, i64, f64, f64)> = conn
            .prepare_cached(
                "SELECT grid_code, time_ms, lat, lng FROM checkins WHERE worker = ?1 AND time_ms >= ?2 AND time_ms < ?3",
            )?
            .query_map(params![person, from_ms, until_ms], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
            .collect::<std::result::Result<_, _>>()?;
        let days: BTreeSet<chrono::NaiveDate> = check_ins
            .iter()
            .filter_map(|(_, time_ms, _, _)| CHINA_TIME.timestamp_millis_opt(*time_ms).single())
            .map(|time| time.date_naive())
            .collect();
        let n_check_ins_outside = u32::try_from(
            check_ins
                .iter()
                .filter(|(grid, _, lat, lng)| {
                    Wgs84::new(*lat, *lng).is_ok_and(|at| {
                        self.place_in_grid(&index, grid, &at).ok().flatten().is_some_and(|distance| distance > 0.0)
                    })
                })
                .count(),
        )
        .unwrap_or(u32::MAX);
        // Coverage over the grids the worker did field work in this month.
        let grids: BTreeSet<String> = conn
            .prepare_cached(
                "SELECT grid_code FROM visits WHERE worker = ?1 AND time_ms >= ?2 AND time_ms < ?3
                 UNION SELECT grid_code FROM patrols WHERE worker = ?1 AND started_ms >= ?2 AND started_ms < ?3",
            )?
            .query_map(params![person, from_ms, until_ms], |row| row.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        drop(conn);
        let (mut n_buildings, mut n_covered) = (0u32, 0u32);
        for grid in &grids {
            let code = GridCode::parse(grid, self.code_format)?;
            let coverage = self.coverage(&code, from_ms, until_ms, Some(person))?;
            n_buildings += coverage.n_buildings;
            n_covered += coverage.n_covered;
        }
        // The incident figures are the loop's own statistics, over the month's reports.
        let day = |ms: i64| CHINA_TIME.timestamp_millis_opt(ms).single().map(|time| time.date_naive());
        let filter = crate::IncidentFilter {
            reporter: Some(person.to_owned()),
            reported_from: day(from_ms),
            reported_until: day(until_ms - 1),
            ..Default::default()
        };
        let stats = self.incident_stats(&filter, self.clock.now())?;
        Ok(WorkerMonth {
            n_visits,
            n_check_in_days: u32::try_from(days.len()).unwrap_or(u32::MAX),
            n_check_ins_outside,
            n_patrols,
            patrol_distance_m,
            coverage: (n_buildings > 0).then(|| f64::from(n_covered) / f64::from(n_buildings)),
            n_incidents_reported: stats.total,
            n_resolved_on_spot: stats.n_resolved_on_spot,
            n_completed: stats.n_completed,
            n_completed_on_time: stats.n_completed_on_time,
        })
    }

    /// How far a point is outside a grid, by the boundary this device has for it: 0 when
    /// inside; `None` when the device has no boundary for the grid.
    fn place_in_grid(&self, index: &GridIndex, grid: &str, at: &Wgs84) -> Result<Option<f64>> {
        let code = GridCode::parse(grid, self.code_format)?;
        Ok(index.grid(&code).map(|boundary| if boundary.contains(*at) { 0.0 } else { boundary.distance_m(*at) }))
    }
}

/// The first and last millisecond (exclusive) of a month, China time.
pub(crate) fn month_bounds(month: &str) -> Result<(i64, i64)> {
    let invalid = || Error::from(InvalidField::new("month", Invalid::Rule("a month is YYYY-MM")));
    let (year, number) = month.split_once('-').ok_or_else(invalid)?;
    let (year, number): (i32, u32) = (year.parse().map_err(|_| invalid())?, number.parse().map_err(|_| invalid())?);
    let start = CHINA_TIME.with_ymd_and_hms(year, number, 1, 0, 0, 0).single().ok_or_else(invalid)?;
    let (next_year, next_number) = if number == 12 { (year + 1, 1) } else { (year, number + 1) };
    let end = CHINA_TIME.with_ymd_and_hms(next_year, next_number, 1, 0, 0, 0).single().ok_or_else(invalid)?;
    Ok((start.timestamp_millis(), end.timestamp_millis()))
}

/// Rewrites the projection rows of one activity document.
pub(super) fn project_activity(tx: &Transaction<'_>, doc_id: &DocId, doc: &AutoCommit) -> Result<()> {
    let key = doc_id.key.as_str();
    let (grid, _) = activity_doc::parse_key(key).ok_or_else(|| Error::document(doc_id, "not an activity key"))?;
    tx.prepare_cached("UPDATE documents SET grid_code = ?2 WHERE doc_id = ?1")?
        .execute(params![doc_id.to_string(), grid])?;
    projection::purge(tx, doc_id)?;
    let (visits, check_ins, patrols) = activity_doc::read(doc, grid)?;
    let mut insert_view = tx.prepare_cached(
        "INSERT OR REPLACE INTO views (id, doc_key, grid_code, worker, time_ms, record, fields, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for view in activity_doc::read_views(doc, grid)? {
        let fields = serde_json::to_string(&view.fields).map_err(|error| Error::document(doc_id, error))?;
        insert_view.execute(params![
            view.id,
            key,
            grid,
            view.worker,
            view.time_ms,
            view.record,
            fields,
            view.reason
        ])?;
    }
    let mut insert_visit = tx.prepare_cached(
        "INSERT OR REPLACE INTO visits (id, doc_key, grid_code, worker, time_ms, target_kind, target_id, purpose,
            findings, follow_up, incident_id, lat, lng) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for visit in &visits {
        let (kind, target) = match visit.target {
            VisitTarget::Household(id) => ("household", id.to_string()),
            VisitTarget::Organization(id) => ("organization", id.to_string()),
        };
        insert_visit.execute(params![
            visit.id,
            key,
            grid,
            visit.worker,
            visit.time_ms,
            kind,
            target,
            visit.purpose.code(),
            visit.findings,
            visit.follow_up,
            visit.incident.map(|id| id.to_string()),
            visit.location.map(|at| at.lat()),
            visit.location.map(|at| at.lng()),
        ])?;
    }
    let mut insert_check_in = tx.prepare_cached(
        "INSERT OR REPLACE INTO checkins (id, doc_key, grid_code, worker, time_ms, lat, lng)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for check_in in &check_ins {
        insert_check_in.execute(params![
            check_in.id,
            key,
            grid,
            check_in.worker,
            check_in.time_ms,
            check_in.location.lat(),
            check_in.location.lng()
        ])?;
    }
    let mut insert_patrol = tx.prepare_cached(
        "INSERT OR REPLACE INTO patrols (id, doc_key, grid_code, worker, started_ms, ended_ms, distance_m, n_points,
            n_flagged, track) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut insert_passed =
        tx.prepare_cached("INSERT OR IGNORE INTO patrol_buildings (patrol_id, building_id) VALUES (?1, ?2)")?;
    for patrol in &patrols {
        let summary = &patrol.summary;
        insert_patrol.execute(params![
            patrol.id,
            key,
            grid,
            patrol.worker,
            summary.started_ms,
            summary.ended_ms,
            summary.distance_m,
            summary.n_points,
            summary.n_flagged,
            patrol.track
        ])?;
        for building in &patrol.buildings_passed {
            insert_passed.execute(params![patrol.id, building.to_string()])?;
        }
    }
    Ok(())
}

/// Activity documents on the device, for a rebuild of the projection.
pub(super) fn activity_doc_ids(tx: &Transaction<'_>) -> Result<Vec<DocId>> {
    Ok(documents::grid_doc_ids(tx)?.into_iter().filter(|id| id.kind == DocKind::Activity).collect())
}
