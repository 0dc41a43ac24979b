//! The automerge document of one incident.
//!
//! ```text
//! incident/<id>  { schema: 1, kind: "incident", id: "<id>",
//!                  report: { grid, catalog_item, title, description, location, … },
//!                  actions: [ "<action as JSON>", … ] }
//! ```
//!
//! Like every document, it starts from a genesis that every replica produces byte for byte
//! (here from the incident's id), so `report` and `actions` exist once. Actions are
//! immutable JSON strings appended to the list: concurrent appends are all kept, in an
//! order that is the same on every replica and puts each action after those its author
//! had seen — the order [`super::state::derive`] folds.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue, Value};

use super::action::Action;
use crate::{Error, Result};

pub const INCIDENT_SCHEMA: i64 = 1;

/// The genesis of an incident's document.
pub fn genesis(incident_id: &str) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(crate::crdt::GENESIS_ACTOR));
    let built: Result<(), automerge::AutomergeError> = (|| {
        doc.put(ROOT, "schema", INCIDENT_SCHEMA)?;
        doc.put(ROOT, "kind", "incident")?;
        doc.put(ROOT, "id", incident_id)?;
        doc.put_object(ROOT, "report", ObjType::Map)?;
        doc.put_object(ROOT, "actions", ObjType::List)?;
        Ok(())
    })();
    // Writing fresh keys into a fresh document's root cannot fail.
    debug_assert!(built.is_ok());
    doc.commit();
    doc
}

fn object(doc: &AutoCommit, key: &str, kind: ObjType) -> Result<automerge::ObjId> {
    match doc.get(ROOT, key) {
        Ok(Some((Value::Object(found), id))) if found == kind => Ok(id),
        _ => Err(Error::document("incident", format!("{key} is missing"))),
    }
}

fn automerge_error(error: automerge::AutomergeError) -> Error {
    Error::document("incident", error)
}

fn text_of(value: Value<'_>) -> Option<String> {
    match value {
        Value::Scalar(scalar) => match scalar.as_ref() {
            ScalarValue::Str(text) => Some(text.to_string()),
            _ => None,
        },
        Value::Object(_) => None,
    }
}

/// Writes the report's fields (text scalars) into the report map.
pub fn write_report(doc: &mut AutoCommit, fields: &[(&str, String)]) -> Result<()> {
    let report = object(doc, "report", ObjType::Map)?;
    for (key, value) in fields {
        doc.put(&report, *key, value.as_str()).map_err(automerge_error)?;
    }
    Ok(())
}

/// The report's fields as stored.
pub fn read_report(doc: &AutoCommit) -> Result<Vec<(String, String)>> {
    let report = object(doc, "report", ObjType::Map)?;
    Ok(doc
        .map_range(&report, ..)
        .filter_map(|item| Some((item.key.to_string(), text_of(item.value.into_value())?)))
        .collect())
}

/// The grid the incident was reported in (its report's `grid`), once the report is there.
pub fn report_grid(doc: &AutoCommit) -> Option<String> {
    read_report(doc).ok()?.into_iter().find(|(key, _)| key == "grid").map(|(_, grid)| grid)
}

/// Appends an action at the end of the timeline as this document's actor sees it.
pub fn append_action(doc: &mut AutoCommit, action: &Action) -> Result<()> {
    let actions = object(doc, "actions", ObjType::List)?;
    let json = serde_json::to_string(action).map_err(|error| Error::document("incident", error))?;
    let end = doc.length(&actions);
    doc.insert(&actions, end, json).map_err(automerge_error)?;
    Ok(())
}

/// The timeline in its (causal, replica-independent) order. An entry that cannot be read
/// (a newer version's action, or damage) is `None`, to be marked, never dropped.
pub fn read_timeline(doc: &AutoCommit) -> Result<Vec<Option<Action>>> {
    let actions = object(doc, "actions", ObjType::List)?;
    Ok(doc
        .list_range(&actions, ..)
        .map(|item| text_of(item.value.into_value()).and_then(|text| serde_json::from_str(&text).ok()))
        .collect())
}

/// The blobs (photos) the incident refers to: its report's `photos` and the evidence of
/// its actions, as written (`sha256:…`), each once.
pub fn blob_refs(doc: &AutoCommit) -> Vec<String> {
    use super::action::ActionKind;
    let mut refs = std::collections::BTreeSet::new();
    for (_, photos) in read_report(doc).unwrap_or_default().iter().filter(|(key, _)| key == "photos") {
        refs.extend(photos.split(',').map(str::trim).filter(|photo| !photo.is_empty()).map(str::to_owned));
    }
    for action in read_timeline(doc).unwrap_or_default().into_iter().flatten() {
        if let ActionKind::ResolveOnSpot { evidence, .. } | ActionKind::Complete { evidence, .. } = action.kind {
            refs.extend(evidence);
        }
    }
    refs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chacha20::ChaCha8Rng;
    use rand::{RngExt, SeedableRng};

    use super::*;
    use crate::incident::action::{ActionKind, Actor, Verdict};
    use crate::incident::roles::{CenterLevel, DepartmentCode, Role};
    use crate::incident::state::{Mark, derive};

    const INCIDENT: &str = "01934b1e-0000-7000-8000-000000000001";

    #[test]
    fn genesis_is_byte_identical_on_every_replica() {
        assert_eq!(genesis(INCIDENT).save(), genesis(INCIDENT).save());
        assert_ne!(genesis(INCIDENT).get_heads(), genesis("01934b1e-0000-7000-8000-000000000002").get_heads());
    }

    #[test]
    fn report_and_timeline_round_trip() {
        let mut doc = genesis(INCIDENT).with_actor(ActorId::random());
        write_report(&mut doc, &[("title", "井盖缺失".into()), ("catalog_item", "SR-001".into())]).unwrap();
        let report = Action {
            id: "a1".into(),
            actor: Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None },
            device_time_ms: 1,
            kind: ActionKind::Report,
        };
        append_action(&mut doc, &report).unwrap();
        doc.commit();
        let loaded = AutoCommit::load(&doc.save()).unwrap();
        assert_eq!(read_timeline(&loaded).unwrap(), vec![Some(report)]);
        assert_eq!(
            read_report(&loaded).unwrap(),
            vec![("catalog_item".to_owned(), "SR-001".to_owned()), ("title".to_owned(), "井盖缺失".to_owned())]
        );
    }

    #[test]
    fn an_unreadable_entry_is_kept_as_none() {
        let mut doc = genesis(INCIDENT).with_actor(ActorId::random());
        let actions = object(&doc, "actions", ObjType::List).unwrap();
        doc.insert(&actions, 0, r#"{"type":"teleport"}"#).unwrap();
        assert_eq!(read_timeline(&doc).unwrap(), vec![None]);
    }

    fn department(rng: &mut ChaCha8Rng) -> DepartmentCode {
        let codes = ["police", "urban_management", "civil_affairs"];
        DepartmentCode::parse(codes[rng.random_range(0..codes.len())]).unwrap()
    }

    fn co_handlers(rng: &mut ChaCha8Rng) -> Vec<DepartmentCode> {
        (0..rng.random_range(0..3)).map(|_| department(rng)).collect()
    }

    fn random_actor(rng: &mut ChaCha8Rng) -> Actor {
        let (person, role, department) = match rng.random_range(0..6) {
            0 => ("w1", Role::FullTimeWorker, None),
            1 => ("w2", Role::PartTimeWorker, None),
            2 => ("c1", Role::CenterStaff(CenterLevel::Township), None),
            3 => ("c2", Role::CenterStaff(CenterLevel::County), None),
            4 => ("p1", Role::ProfessionalWorker, Some(department(rng))),
            _ => ("h", Role::DepartmentHandler, Some(department(rng))),
        };
        Actor { person: person.into(), role, department }
    }

    fn random_kind(rng: &mut ChaCha8Rng) -> ActionKind {
        match rng.random_range(0..15) {
            0 => ActionKind::Report,
            1 => ActionKind::ResolveOnSpot {
                note: "已调解".into(),
                evidence: vec![format!("sha256:{}", "0".repeat(64))],
            },
            2 => ActionKind::Refuse { catalog_reference: "清单外".into(), reason: String::new() },
            3 => ActionKind::Withdraw { reason: String::new() },
            4 => ActionKind::Accept,
            5 => ActionKind::Dispatch { lead: department(rng), co_handlers: co_handlers(rng) },
            6 => ActionKind::Reject { reasons: "非本部门职责".into() },
            7 => ActionKind::Redispatch { lead: department(rng), co_handlers: co_handlers(rng) },
            8 => ActionKind::Progress { note: String::new() },
            9 => ActionKind::Complete { feedback: String::new(), evidence: vec![] },
            10 => ActionKind::Verify {
                verdict: if rng.random_bool(0.7) { Verdict::Pass } else { Verdict::Fail },
                note: String::new(),
            },
            11 => ActionKind::Urge { note: String::new() },
            12 => ActionKind::Escalate { leader: "l".into(), person: "p".into(), deadline: "2026-12-01".into() },
            13 => ActionKind::Archive,
            _ => ActionKind::Evaluate { satisfaction: rng.random_range(0..7), comment: String::new() },
        }
    }

    /// An action that the replica's current state would accept, most of the time, so that
    /// random runs travel the whole loop instead of piling up refusals.
    fn plausible_action(rng: &mut ChaCha8Rng, doc: &AutoCommit, n: usize) -> Action {
        let timeline = read_timeline(doc).unwrap();
        let state = derive(timeline.iter().map(Option::as_ref));
        let mut candidate = || Action {
            id: format!("a{n}-{}", rng.random_range(0..1000)),
            actor: random_actor(rng),
            device_time_ms: rng.random_range(0..10_000),
            kind: random_kind(rng),
        };
        let mut tries = 0;
        loop {
            let action = candidate();
            let mut probe = timeline.clone();
            probe.push(Some(action.clone()));
            let applied = derive(probe.iter().map(Option::as_ref)).marks.last() == Some(&Mark::Applied);
            tries += 1;
            if applied || tries > 30 || state.phase == crate::incident::Phase::Archived && tries > 5 {
                return action;
            }
        }
    }

    fn merge_into(to: &mut AutoCommit, from: &mut AutoCommit) {
        let missing = from.get_changes(&to.get_heads()).into_iter().collect::<Vec<_>>();
        let known: Vec<_> = to.get_heads().into_iter().filter(|hash| from.get_change_by_hash(hash).is_some()).collect();
        let changes = if known.len() == to.get_heads().len() { missing } else { from.get_changes(&[]) };
        to.apply_changes(changes).unwrap();
    }

    /// Three replicas act and merge in random orders; all derive the same state and marks.
    #[test]
    fn replicas_converge_to_identical_states_and_marks() {
        let mut phases_reached = std::collections::BTreeSet::new();
        let mut n_not_applied = 0;
        for seed in 0..500u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut replicas: Vec<AutoCommit> = (0..3)
                .map(|_| genesis(INCIDENT).with_actor(ActorId::from(rng.random::<[u8; 16]>().to_vec())))
                .collect();
            // Everyone starts from the report, as a synced incident would.
            let report = Action {
                id: "report".into(),
                actor: Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None },
                device_time_ms: 0,
                kind: ActionKind::Report,
            };
            append_action(&mut replicas[0], &report).unwrap();
            replicas[0].commit();
            let (first, rest) = replicas.split_at_mut(1);
            for other in rest {
                merge_into(other, &mut first[0]);
            }
            let steps = rng.random_range(5..30);
            for step in 0..steps {
                let i = rng.random_range(0..3);
                if rng.random_bool(0.3) {
                    let j = (i + rng.random_range(1..3)) % 3;
                    let (a, b) = if i < j {
                        let (left, right) = replicas.split_at_mut(j);
                        (&mut left[i], &mut right[0])
                    } else {
                        let (left, right) = replicas.split_at_mut(i);
                        (&mut right[0], &mut left[j])
                    };
                    merge_into(a, b);
                } else {
                    let action = plausible_action(&mut rng, &replicas[i], step);
                    append_action(&mut replicas[i], &action).unwrap();
                    replicas[i].commit();
                }
            }
            // Merge everything, in a random order, until all have all.
            for _ in 0..2 {
                let mut order = [0usize, 1, 2];
                for k in (1..3).rev() {
                    order.swap(k, rng.random_range(0..=k));
                }
                for pair in [(order[0], order[1]), (order[1], order[2]), (order[2], order[0])] {
                    let (a, b) = if pair.0 < pair.1 {
                        let (left, right) = replicas.split_at_mut(pair.1);
                        (&mut left[pair.0], &mut right[0])
                    } else {
                        let (left, right) = replicas.split_at_mut(pair.0);
                        (&mut right[0], &mut left[pair.1])
                    };
                    merge_into(a, b);
                }
            }
            let heads: Vec<_> = replicas.iter_mut().map(|doc| doc.get_heads()).collect();
            assert!(heads.windows(2).all(|pair| pair[0] == pair[1]), "seed {seed}: heads differ");
            let states: Vec<_> = replicas
                .iter()
                .map(|doc| {
                    let timeline = read_timeline(doc).unwrap();
                    let state = derive(timeline.iter().map(Option::as_ref));
                    assert_eq!(state.marks.len(), timeline.len(), "seed {seed}");
                    (timeline, state)
                })
                .collect();
            assert_eq!(states[0], states[1], "seed {seed}");
            assert_eq!(states[1], states[2], "seed {seed}");
            phases_reached.insert(states[0].1.phase.code());
            n_not_applied += states[0].1.marks.iter().filter(|mark| **mark != Mark::Applied).count();
        }
        // The runs travel the whole loop and meet races, or the property says little.
        for phase in ["dispatched", "completed", "verified", "archived", "refused", "withdrawn", "resolved_on_spot"] {
            assert!(phases_reached.contains(phase), "no run ended {phase}: {phases_reached:?}");
        }
        assert!(n_not_applied > 100, "only {n_not_applied} actions were not applied");
    }
}
