//! The activity document of a grid and month: a deterministic genesis (every replica makes
//! the same bytes, so the three maps are created once) and immutable JSON entries.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
use chrono::{Datelike, TimeZone};
use serde::{Deserialize, Serialize};

use super::{CheckIn, Patrol, Visit, VisitPurpose, VisitTarget};
use crate::calendar::CHINA_TIME;
use crate::crdt::{DOCUMENT_SCHEMA, DocId, DocKind, GENESIS_ACTOR};
use crate::model::{BuildingId, GridCode, IncidentId, Wgs84};
use crate::{Error, Result};

pub const VISITS: &str = "visits";
pub const CHECKINS: &str = "checkins";
pub const PATROLS: &str = "patrols";
/// Views of full sensitive values (the audit trail of who saw what, and why).
pub const VIEWS: &str = "views";
/// The maps of the document, made by its genesis.
pub const CONTAINERS: [&str; 4] = [VISITS, CHECKINS, PATROLS, VIEWS];

/// `YYYY-MM` of a time, in China time: the month whose document an entry goes to.
pub fn month_of(time_ms: i64) -> String {
    let time = CHINA_TIME.timestamp_millis_opt(time_ms).single().unwrap_or_else(|| CHINA_TIME.timestamp_nanos(0));
    format!("{:04}-{:02}", time.year(), time.month())
}

/// The document of `grid`'s activity in `month` (`YYYY-MM`).
pub fn doc_id(grid: &GridCode, month: &str) -> DocId {
    DocId { kind: DocKind::Activity, key: format!("{}:{month}", grid.as_str()) }
}

/// The suffix of the key of a month's audit document: the views of full sensitive values
/// go there, apart from the field work, because only the roles that may see sensitive data
/// (and the center) may read them.
pub const AUDIT_SUFFIX: &str = ":audit";

/// The document of `grid`'s audit trail in `month`: `<grid>:<YYYY-MM>:audit`.
pub fn audit_doc_id(grid: &GridCode, month: &str) -> DocId {
    DocId { kind: DocKind::Activity, key: format!("{}:{month}{AUDIT_SUFFIX}", grid.as_str()) }
}

/// Whether an activity document's key is an audit document's.
pub fn is_audit(key: &str) -> bool {
    key.ends_with(AUDIT_SUFFIX)
}

/// The grid code and month of an activity (or audit) document's key, if it is one.
pub fn parse_key(key: &str) -> Option<(&str, &str)> {
    let key = key.strip_suffix(AUDIT_SUFFIX).unwrap_or(key);
    let (grid, month) = key.split_once(':')?;
    let valid_month = month.len() == 7
        && month.as_bytes()[4] == b'-'
        && month[..4].bytes().all(|b| b.is_ascii_digit())
        && matches!(month[5..].parse::<u32>(), Ok(1..=12));
    let valid_grid = !grid.is_empty() && grid.bytes().all(|b| b.is_ascii_digit());
    (valid_grid && valid_month).then_some((grid, month))
}

/// The genesis: the same bytes on every replica for a given key.
pub fn genesis(key: &str) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(GENESIS_ACTOR));
    let built: std::result::Result<(), automerge::AutomergeError> = (|| {
        doc.put(ROOT, "schema", DOCUMENT_SCHEMA)?;
        doc.put(ROOT, "kind", DocKind::Activity.code())?;
        doc.put(ROOT, "key", key)?;
        for container in CONTAINERS {
            doc.put_object(ROOT, container, ObjType::Map)?;
        }
        Ok(())
    })();
    // Fresh keys in a fresh document's root cannot fail.
    debug_assert!(built.is_ok());
    doc.commit();
    doc
}

/// An entry as stored: the fields of [`Visit`], [`CheckIn`] or [`Patrol`], tagged by the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VisitEntry {
    pub worker: String,
    pub target: VisitTarget,
    pub time_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<[f64; 2]>,
    pub purpose: String,
    pub findings: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckInEntry {
    pub worker: String,
    pub time_ms: i64,
    pub location: [f64; 2],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PatrolEntry {
    pub worker: String,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub distance_m: f64,
    pub n_points: u32,
    pub n_flagged: u32,
    pub buildings_passed: Vec<BuildingId>,
    pub track: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ViewEntry {
    pub worker: String,
    pub time_ms: i64,
    /// `resident/<id>`.
    pub record: String,
    pub fields: Vec<String>,
    pub reason: String,
}

/// Writes a new entry (its id must be new: entries are never rewritten).
pub(crate) fn put_entry<T: Serialize>(doc: &mut AutoCommit, container: &str, id: &str, entry: &T) -> Result<()> {
    let map = container_of(doc, container)?;
    if doc.get(&map, id).map_err(|error| Error::document("activity", error))?.is_some() {
        return Err(Error::document("activity", format!("entry {id} exists already")));
    }
    let json = serde_json::to_string(entry).map_err(|error| Error::document("activity", error))?;
    doc.put(&map, id, json).map_err(|error| Error::document("activity", error))
}

/// Every entry of a map as `(id, json)`; a value that is not text is skipped.
pub fn entries(doc: &AutoCommit, container: &str) -> Result<Vec<(String, String)>> {
    let map = container_of(doc, container)?;
    Ok(doc
        .keys(&map)
        .filter_map(|id| match doc.get(&map, &id) {
            Ok(Some((automerge::Value::Scalar(value), _))) => match value.as_ref() {
                automerge::ScalarValue::Str(text) => Some((id, text.to_string())),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

/// The entries' authors: `(container, id, worker)` for every entry whose JSON names one.
pub fn authors(doc: &AutoCommit) -> Result<Vec<(String, String, Option<String>)>> {
    #[derive(Deserialize)]
    struct Author {
        worker: String,
    }
    let mut found = Vec::new();
    for container in CONTAINERS {
        for (id, json) in entries(doc, container)? {
            let worker = serde_json::from_str::<Author>(&json).ok().map(|author| author.worker);
            found.push((container.to_owned(), id, worker));
        }
    }
    Ok(found)
}

/// The blob hashes the document refers to (patrol tracks).
pub fn blob_refs(doc: &AutoCommit) -> Vec<String> {
    entries(doc, PATROLS)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, json)| serde_json::from_str::<PatrolEntry>(&json).ok().map(|entry| entry.track))
        .collect()
}

fn container_of(doc: &AutoCommit, container: &str) -> Result<automerge::ObjId> {
    match doc.get(ROOT, container) {
        Ok(Some((automerge::Value::Object(ObjType::Map), id))) => Ok(id),
        _ => Err(Error::document("activity", format!("no {container} map"))),
    }
}

fn point(location: &[f64; 2]) -> Option<Wgs84> {
    Wgs84::new(location[0], location[1]).ok()
}

pub(crate) fn location(point: &Wgs84) -> [f64; 2] {
    [point.lat(), point.lng()]
}

/// Reads the document's entries; one that does not read (a newer version's) is skipped.
/// The views of full values recorded in the document.
pub(crate) fn read_views(doc: &AutoCommit, grid: &str) -> Result<Vec<super::FullView>> {
    Ok(entries(doc, VIEWS)?
        .into_iter()
        .filter_map(|(id, json)| {
            let entry: ViewEntry = serde_json::from_str(&json).ok()?;
            Some(super::FullView {
                id,
                grid: grid.to_owned(),
                worker: entry.worker,
                time_ms: entry.time_ms,
                record: entry.record,
                fields: entry.fields,
                reason: entry.reason,
            })
        })
        .collect())
}

pub(crate) fn read(doc: &AutoCommit, grid: &str) -> Result<(Vec<Visit>, Vec<CheckIn>, Vec<Patrol>)> {
    let visits = entries(doc, VISITS)?
        .into_iter()
        .filter_map(|(id, json)| {
            let entry: VisitEntry = serde_json::from_str(&json).ok()?;
            Some(Visit {
                id,
                grid: grid.to_owned(),
                worker: entry.worker,
                target: entry.target,
                time_ms: entry.time_ms,
                location: entry.location.as_ref().and_then(point),
                purpose: VisitPurpose::from_code(&entry.purpose).unwrap_or(VisitPurpose::Other),
                findings: entry.findings,
                follow_up: entry.follow_up,
                incident: entry.incident,
            })
        })
        .collect();
    let check_ins = entries(doc, CHECKINS)?
        .into_iter()
        .filter_map(|(id, json)| {
            let entry: CheckInEntry = serde_json::from_str(&json).ok()?;
            Some(CheckIn {
                id,
                grid: grid.to_owned(),
                worker: entry.worker,
                time_ms: entry.time_ms,
                location: point(&entry.location)?,
                inside_grid: None,
                distance_to_grid_m: None,
            })
        })
        .collect();
    let patrols = entries(doc, PATROLS)?
        .into_iter()
        .filter_map(|(id, json)| {
            let entry: PatrolEntry = serde_json::from_str(&json).ok()?;
            Some(Patrol {
                id,
                grid: grid.to_owned(),
                worker: entry.worker,
                summary: super::track::TrackSummary {
                    started_ms: entry.started_ms,
                    ended_ms: entry.ended_ms,
                    distance_m: entry.distance_m,
                    n_points: entry.n_points,
                    n_flagged: entry.n_flagged,
                },
                buildings_passed: entry.buildings_passed,
                track: entry.track,
            })
        })
        .collect();
    Ok((visits, check_ins, patrols))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_genesis_is_the_same_on_every_replica() {
        assert_eq!(genesis("440703001001001:2026-11").save(), genesis("440703001001001:2026-11").save());
        assert_ne!(genesis("440703001001001:2026-11").save(), genesis("440703001001001:2026-12").save());
    }

    #[test]
    fn months_are_china_time_and_keys_are_checked() {
        // 2026-10-31 16:30 UTC is 2026-11-01 00:30 in China.
        assert_eq!(month_of(1_793_464_200_000), "2026-11");
        assert_eq!(parse_key("440703001001001:2026-11"), Some(("440703001001001", "2026-11")));
        assert_eq!(parse_key("440703001001001:2026-11:audit"), Some(("440703001001001", "2026-11")));
        assert!(is_audit("440703001001001:2026-11:audit") && !is_audit("440703001001001:2026-11"));
        for bad in ["440703001001001", "440703001001001:2026-13", "4407x:2026-01", ":2026-01", "440703001001001:26-01"]
        {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_entry_is_written_once() {
        let mut doc = genesis("440703001001001:2026-11");
        let entry = CheckInEntry { worker: "w1".into(), time_ms: 1, location: [22.58, 113.08] };
        put_entry(&mut doc, CHECKINS, "a", &entry).unwrap();
        assert!(put_entry(&mut doc, CHECKINS, "a", &entry).is_err());
        let (_, check_ins, _) = read(&doc, "440703001001001").unwrap();
        assert_eq!(check_ins.len(), 1);
        assert_eq!(authors(&doc).unwrap(), vec![("checkins".to_owned(), "a".to_owned(), Some("w1".to_owned()))]);
    }
}
