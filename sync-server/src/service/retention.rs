//! Retention of archived incidents on devices: an incident archived (归档) longer ago than
//! the retention period leaves every device; the server keeps it (its log, its snapshot,
//! the audit trail and the center's reports read it there).
//!
//! Leaving devices is a change of scopes, so it needs nothing new on the device: a
//! document a device holds that is no longer in its readable scopes is listed in
//! `removed`, and the device purges it (protocol §8). An archived incident's scopes are
//! therefore a function of its content *and of the time*:
//!
//! | incident | scopes |
//! |---|---|
//! | not archived | `grid:<g>:incidents`, `dept:<d>:incidents` … (its content's) |
//! | archived at t, now < t + retention | the same, plus `archived:<day of t>` |
//! | archived at t, now ≥ t + retention | `grid:<g>:archive`, `dept:<d>:archive` … (read by no device) |
//!
//! t is the server's receive time of the change that carries the applied archive action
//! (`LogEntry::received_ms`), not the time the device wrote into the action: a device's
//! clock may be wrong by months, the server's log is not. (Changes stored before the server
//! kept receive times fall back to the action's device time.)
//!
//! Scopes are computed when a change is committed, so time must be brought in from
//! outside: every hour the server's housekeeping runs [`Service::retire_archived_incidents`],
//! which finds the candidates by their `archived:<day>` scope (one lookup of the days up
//! to the cutoff, no scan of all incidents), recomputes their scopes and stores those
//! that are due, with the same snapshot and no change (compared with the version it read,
//! like any write). A device's next sync then removes them. Nothing is checked at pull
//! time: an incident stays on devices at most an hour past its retention, and a pull stays
//! a read of scopes.
//!
//! Who may *write* an incident is still decided by its content's scopes: a device that
//! holds a retired incident until its next sync may push an evaluation to it, and the
//! server keeps that, without putting the incident back on devices.

use automerge::{AutoCommit, ReadDoc};
use chrono::{DateTime, Days, NaiveDate};
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::incident::doc as incident_doc;
use wangge_core::incident::{ActionKind, Mark, derive};

use super::{Result, Service, ServiceError, blob_refs_of, now_ms, scopes_of};
use crate::storage::{DocUpdate, Storage};

/// How long an archived incident stays on devices by default: 90 days, long enough for
/// its evaluation (考核评价) and a quarter's reports on the device.
pub const DEFAULT_INCIDENT_RETENTION_MS: i64 = 90 * 24 * 3600 * 1000;

/// The first day an `archived:<day>` scope can name: before any wangge data.
const FIRST_DAY: (i32, u32, u32) = (2020, 1, 1);

const ARCHIVED_PREFIX: &str = "archived:";

/// The scope that finds an incident archived on the day of `ms` (UTC): `archived:2026-03-01`.
fn archived_scope(ms: i64) -> String {
    let day = DateTime::from_timestamp_millis(ms).map_or(NaiveDate::MIN, |time| time.date_naive());
    format!("{ARCHIVED_PREFIX}{}", day.format("%Y-%m-%d"))
}

/// Every `archived:<day>` scope from [`FIRST_DAY`] to the day of `until_ms`.
fn archived_scopes_until(until_ms: i64) -> Vec<String> {
    let (year, month, day) = FIRST_DAY;
    let Some(mut day) = NaiveDate::from_ymd_opt(year, month, day) else { return Vec::new() };
    let last = DateTime::from_timestamp_millis(until_ms).map_or(day, |time| time.date_naive());
    let mut scopes = Vec::new();
    while day <= last {
        scopes.push(format!("{ARCHIVED_PREFIX}{}", day.format("%Y-%m-%d")));
        let Some(next) = day.checked_add_days(Days::new(1)) else { break };
        day = next;
    }
    scopes
}

/// A device scope of incidents and its counterpart kept on the server only:
/// `grid:<g>:incidents` → `grid:<g>:archive`, `dept:<d>:incidents` → `dept:<d>:archive`.
fn archive_scope(live: &str) -> String {
    match live.strip_suffix(":incidents") {
        Some(owner) => format!("{owner}:archive"),
        None => live.to_owned(),
    }
}

impl<S: Storage> Service<S> {
    /// How long archived incidents stay on devices (default
    /// [`DEFAULT_INCIDENT_RETENTION_MS`]; 0: they leave at the next housekeeping).
    pub fn with_incident_retention_ms(mut self, retention_ms: i64) -> Self {
        self.incident_retention_ms = retention_ms.max(0);
        self
    }

    pub fn incident_retention_ms(&self) -> i64 {
        self.incident_retention_ms
    }

    /// The scopes an incident is stored with at `now_ms`: its content's (`live`), and for an
    /// archived one, the `archived:<day>` scope or, past the retention, the server's
    /// archive scopes instead (see the module). `received_now` are the hashes of the
    /// changes being committed with it (received now).
    pub(super) fn incident_scopes(
        &self,
        doc_id: &DocId,
        doc: &AutoCommit,
        live: Vec<String>,
        received_now: &[Vec<u8>],
        now_ms: i64,
    ) -> Result<Vec<String>> {
        if doc_id.kind != DocKind::Incident {
            return Ok(live);
        }
        let Some(archived_ms) = self.archive_time(doc_id, doc, received_now, now_ms)? else { return Ok(live) };
        if archived_ms.saturating_add(self.incident_retention_ms) <= now_ms {
            return Ok(live.iter().map(|scope| archive_scope(scope)).collect());
        }
        let mut scopes = live;
        scopes.push(archived_scope(archived_ms));
        Ok(scopes)
    }

    /// When the server received the change that archived the incident; `None` if it is
    /// not archived.
    fn archive_time(
        &self,
        doc_id: &DocId,
        doc: &AutoCommit,
        received_now: &[Vec<u8>],
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let timeline = incident_doc::read_timeline(doc).unwrap_or_default();
        let state = derive(timeline.iter().map(Option::as_ref));
        let archive = timeline.iter().zip(&state.marks).enumerate().find_map(|(index, (action, mark))| {
            let action = action.as_ref()?;
            (matches!(action.kind, ActionKind::Archive) && *mark == Mark::Applied).then_some((index, action))
        });
        let Some((index, action)) = archive else { return Ok(None) };
        let hash = match doc.get(automerge::ROOT, "actions") {
            Ok(Some((automerge::Value::Object(_), actions))) => {
                doc.list_range(&actions, index..=index).next().and_then(|item| doc.hash_for_opid(&item.id()))
            }
            _ => None,
        };
        let Some(hash) = hash else { return Ok(Some(action.device_time_ms)) };
        if received_now.iter().any(|received| received.as_slice() == hash.0.as_slice()) {
            return Ok(Some(now_ms));
        }
        let logged = self.storage.changes_of(&doc_id.to_string())?.into_iter().find(|entry| entry.hash == hash.0);
        Ok(Some(logged.and_then(|entry| entry.received_ms).unwrap_or(action.device_time_ms)))
    }

    /// Moves incidents archived longer ago than the retention off devices (their next sync
    /// removes them); returns how many. The server runs it every hour.
    pub fn retire_archived_incidents(&self) -> Result<usize> {
        self.retire_archived_incidents_at(now_ms())
    }

    /// [`Service::retire_archived_incidents`] as if the time were `now_ms` (tests, and an
    /// operator catching up).
    pub fn retire_archived_incidents_at(&self, now_ms: i64) -> Result<usize> {
        let candidates = self.storage.visible_documents(&archived_scopes_until(now_ms - self.incident_retention_ms))?;
        let mut docs: Vec<String> = candidates.into_iter().collect();
        docs.sort();
        self.rescope_incidents(&docs, now_ms, true)
    }

    /// Recomputes the scopes of every incident still on devices (in a grid's or a
    /// department's scopes) and stores those of the archived ones: what an upgraded server
    /// runs once for incidents archived before it kept retention scopes
    /// (`wangge-server retire-incidents`). Returns how many were stored.
    pub fn rescope_all_incidents(&self) -> Result<usize> {
        let mut scopes = Vec::new();
        for grid in self.storage.grids_within("")? {
            scopes.push(format!("grid:{}:incidents", grid.code));
        }
        let catalog = self.published_catalog()?;
        scopes.extend(catalog.departments().map(|department| format!("dept:{}:incidents", department.code)));
        let mut docs: Vec<String> = self
            .storage
            .visible_documents(&scopes)?
            .into_iter()
            .filter(|doc| DocId::parse(doc).is_some_and(|id| id.kind == DocKind::Incident))
            .collect();
        docs.sort();
        self.rescope_incidents(&docs, now_ms(), false)
    }

    /// Stores the scopes of each incident as of `now_ms` where they are not its content's:
    /// archived ones (with `only_due`, only those past the retention). Returns how many
    /// were stored.
    fn rescope_incidents(&self, docs: &[String], now_ms: i64, only_due: bool) -> Result<usize> {
        let mut n = 0;
        for doc in docs {
            let Some(doc_id) = DocId::parse(doc).filter(|id| id.kind == DocKind::Incident) else { continue };
            let stored = self.commit_fresh(|| {
                let Some(stored) = self.storage.document(doc)? else { return Ok((Vec::new(), false)) };
                let loaded = AutoCommit::load(&stored.snapshot)
                    .map_err(|_| ServiceError::Malformed(format!("{doc}: stored document")))?;
                let live = scopes_of(&doc_id, &loaded);
                let scopes = self.incident_scopes(&doc_id, &loaded, live.clone(), &[], now_ms)?;
                let waiting = scopes.iter().any(|scope| scope.starts_with(ARCHIVED_PREFIX));
                if scopes == live || (only_due && waiting) {
                    return Ok((Vec::new(), false));
                }
                let update = DocUpdate {
                    doc: doc.clone(),
                    base: Some(stored.version),
                    snapshot: stored.snapshot,
                    scopes,
                    changes: Vec::new(),
                    blob_refs: blob_refs_of(&doc_id, &loaded),
                };
                Ok((vec![update], true))
            })?;
            n += usize::from(stored);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archived_scopes_name_days_in_order_up_to_the_cutoff() {
        let day_ms = 24 * 3600 * 1000;
        let first = NaiveDate::from_ymd_opt(2020, 1, 1).and_then(|day| day.and_hms_opt(0, 0, 0));
        let first_ms = first.map_or(0, |time| time.and_utc().timestamp_millis());
        assert_eq!(archived_scope(first_ms), "archived:2020-01-01");
        assert_eq!(
            archived_scopes_until(first_ms + 2 * day_ms + 5),
            vec!["archived:2020-01-01", "archived:2020-01-02", "archived:2020-01-03"]
        );
        assert!(archived_scopes_until(first_ms - 1).is_empty());
        assert_eq!(archive_scope("grid:440703001001001:incidents"), "grid:440703001001001:archive");
        assert_eq!(archive_scope("dept:public_security:incidents"), "dept:public_security:archive");
    }
}
