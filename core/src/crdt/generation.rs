//! Generations of a grid document: compaction into a new snapshot without the old history,
//! and the replay of a device's unsynced edits onto it.
//!
//! A busy grid's register keeps every change since the grid was created; its current
//! state is a small part of it. The server *compacts* it: generation n+1 is the same
//! genesis every replica shares, then one change by the server's actor that writes the
//! current content (the record maps, their fields, the sensitive document's flat keys) and
//! the root key `generation`:
//!
//! ```text
//! generation 1:   genesis ─ c1 ─ c2 ─ … ─ c20000          (kept in the server's log)
//! generation 2:   genesis ─ C2 { generation: 2, residents: { "0192…": {…}, … } } ─ …
//! ```
//!
//! Containers are still created once: the root containers by the genesis (shared by every
//! generation), each record's map by `C2` alone within generation 2. A field that has
//! concurrent values keeps them: `C2` leaves it out, and one more change per value, each by
//! its own actor and each depending on `C2` alone, writes it, so they are concurrent again
//! and the value that showed before still shows (the value changes' actors are ordered like
//! the values were).
//!
//! Generations never mix. A change of generation 1 depends on changes generation 2 does
//! not have, so it never applies there; and `C2` would apply to a generation-1 document (it
//! depends on the genesis alone) but would create every record's map a second time, so a
//! replica refuses it unless it takes generation 2 whole ([`starts_generation`] names such a
//! change). A device moves to a new generation by replacing its document and replaying its
//! own unacknowledged changes onto it as field writes ([`replay`]), authored by itself.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjId, ObjType, Prop, ROOT, ReadDoc, ScalarValue, Value};

use super::{DocId, DocKind, container};
use crate::{Error, Result};

/// The root key holding a compacted document's generation (absent: generation 1).
pub const GENERATION_KEY: &str = "generation";

/// The message of the change that starts a generation: `wangge/generation <n> from <hex>,…`
/// (the heads of the generation it replaces, so that the server's log can be checked
/// against it).
const START_MESSAGE: &str = "wangge/generation ";

/// The first bytes of the actors of a compaction's value changes (16 bytes in all: these,
/// then the field's number and the value's number, big-endian u32).
const VALUE_ACTOR_PREFIX: &[u8; 8] = b"wangge/v";

/// The server's actor: the author of every generation's first change.
pub const COMPACTION_ACTOR: &[u8] = crate::reference::SERVER_ACTOR;

/// A document's generation: 1 until it is compacted.
pub fn generation(doc: &AutoCommit) -> u64 {
    match doc.get(ROOT, GENERATION_KEY) {
        Ok(Some((Value::Scalar(value), _))) => value.as_i64().and_then(|n| u64::try_from(n).ok()).unwrap_or(1),
        _ => 1,
    }
}

/// Whether an actor is one a compaction writes with (the server, or a value change's).
pub fn is_compaction_actor(actor: &[u8]) -> bool {
    actor == COMPACTION_ACTOR || (actor.len() == 16 && actor.starts_with(VALUE_ACTOR_PREFIX))
}

/// What the change that starts a generation says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationStart {
    pub generation: u64,
    /// The heads of the generation it replaced.
    pub replaced_heads: Vec<ChangeHash>,
}

/// The generation a change starts, if it is a generation's first change (by the server's
/// actor, with the start message). In a grid document no other change is the server's.
pub fn starts_generation(change: &Change) -> Option<GenerationStart> {
    if change.actor_id().to_bytes() != COMPACTION_ACTOR {
        return None;
    }
    let rest = change.message()?.strip_prefix(START_MESSAGE)?;
    let (generation, heads) = rest.split_once(" from ")?;
    let generation = generation.parse().ok()?;
    let replaced_heads =
        heads.split(',').filter(|hex| !hex.is_empty()).map(|hex| hex.parse().ok()).collect::<Option<_>>()?;
    Some(GenerationStart { generation, replaced_heads })
}

/// A grid document compacted into its next generation.
#[derive(Debug)]
pub struct Compaction {
    pub doc: AutoCommit,
    /// The new generation's changes after the genesis: its first change, then one per
    /// value of each field that had concurrent values.
    pub changes: Vec<Change>,
    pub generation: u64,
    /// Fields that had concurrent values (each kept with all of them).
    pub n_conflicts: usize,
}

/// A field with concurrent values: where it is, and its values with their authors' times,
/// the value that shows last.
struct Concurrent {
    path: Vec<String>,
    key: String,
    values: Vec<(ScalarValue, i64)>,
}

fn automerge_error(id: &DocId) -> impl Fn(automerge::AutomergeError) -> Error + '_ {
    move |error| Error::document(id, error)
}

/// The next generation of a grid document: the shared genesis, then one change by the
/// server's actor at `time_ms` that writes `generation` and the current content, then the
/// value changes of fields with concurrent values.
pub fn compact(id: &DocId, old: &mut AutoCommit, time_ms: i64) -> Result<Compaction> {
    if !matches!(id.kind, DocKind::Register | DocKind::Sensitive) {
        return Err(Error::document(id, "only a grid's register and sensitive documents are compacted"));
    }
    let replaced_heads = old.get_heads();
    let generation = generation(old) + 1;
    let mut doc = super::genesis_of(id.kind, &id.key).with_actor(ActorId::from(COMPACTION_ACTOR));
    doc.put(ROOT, GENERATION_KEY, i64::try_from(generation).unwrap_or(i64::MAX)).map_err(automerge_error(id))?;
    let mut concurrent = Vec::new();
    for kind in id.kind.record_kinds() {
        let (Some(from), Some(to)) = (container(old, *kind), container(&doc, *kind)) else {
            return Err(Error::document(id, format!("{} is missing", kind.plural())));
        };
        copy_map(id, old, &from, &mut doc, &to, &[kind.plural().to_owned()], &mut concurrent)?;
    }
    let heads: Vec<String> = replaced_heads.iter().map(ToString::to_string).collect();
    let message = format!("{START_MESSAGE}{generation} from {}", heads.join(","));
    doc.commit_with(CommitOptions::default().with_time(time_ms).with_message(message));
    let mut changes =
        vec![doc.get_last_local_change().ok_or_else(|| Error::document(id, "compaction made no change"))?];

    // Each value in a change of its own, all on top of the first change: concurrent again.
    let start = doc.get_heads();
    let mut values = Vec::new();
    for (field, concurrent) in concurrent.iter().enumerate() {
        for (number, (value, time_ms)) in concurrent.values.iter().enumerate() {
            let mut actor = VALUE_ACTOR_PREFIX.to_vec();
            actor.extend(u32::try_from(field).unwrap_or(u32::MAX).to_be_bytes());
            actor.extend(u32::try_from(number).unwrap_or(u32::MAX).to_be_bytes());
            let mut fork = doc.fork_at(&start).map_err(automerge_error(id))?.with_actor(ActorId::from(actor));
            let obj = object_at(&fork, &concurrent.path)
                .ok_or_else(|| Error::document(id, "a field's map is missing after compaction"))?;
            fork.put(&obj, concurrent.key.as_str(), value.clone()).map_err(automerge_error(id))?;
            fork.commit_with(CommitOptions::default().with_time(*time_ms));
            values.push(fork.get_last_local_change().ok_or_else(|| Error::document(id, "a value made no change"))?);
        }
    }
    doc.apply_changes(values.iter().cloned()).map_err(automerge_error(id))?;
    changes.extend(values);
    Ok(Compaction { doc, changes, generation, n_conflicts: concurrent.len() })
}

/// Copies a map's visible content into a fresh map; fields with concurrent scalar values
/// are left for their value changes.
fn copy_map(
    id: &DocId,
    old: &AutoCommit,
    from: &ObjId,
    doc: &mut AutoCommit,
    to: &ObjId,
    path: &[String],
    concurrent: &mut Vec<Concurrent>,
) -> Result<()> {
    let keys: Vec<String> = old.keys(from).collect();
    for key in keys {
        let all = old.get_all(from, key.as_str()).map_err(automerge_error(id))?;
        let shown = old.get(from, key.as_str()).map_err(automerge_error(id))?;
        let Some((shown, shown_op)) = shown else { continue };
        if all.len() > 1 && all.iter().all(|(value, _)| value.is_scalar()) {
            // Shown last: its actor sorts after the others', and all value changes have the
            // same counter, so it is the one that shows again.
            let mut values: Vec<(ScalarValue, i64)> = all
                .iter()
                .filter(|(_, op)| *op != shown_op)
                .chain(all.iter().filter(|(_, op)| *op == shown_op))
                .filter_map(|(value, op)| {
                    let time_ms = old
                        .hash_for_opid(op)
                        .and_then(|hash| ReadDoc::get_change_by_hash(old, &hash))
                        .map_or(0, |change| change.timestamp());
                    value.as_scalar().map(|scalar| (scalar.clone(), time_ms))
                })
                .collect();
            values.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
            concurrent.push(Concurrent { path: path.to_vec(), key, values });
            continue;
        }
        match shown {
            Value::Scalar(value) => doc.put(to, key.as_str(), value.into_owned()).map_err(automerge_error(id))?,
            Value::Object(ObjType::Map) => {
                let child = doc.put_object(to, key.as_str(), ObjType::Map).map_err(automerge_error(id))?;
                let mut inner = path.to_vec();
                inner.push(key.clone());
                copy_map(id, old, &shown_op, doc, &child, &inner, concurrent)?;
            }
            Value::Object(other) => {
                return Err(Error::document(id, format!("{key}: a {other:?} has no place in a grid document")));
            }
        }
    }
    Ok(())
}

/// The map at a path of map keys from the root.
fn object_at(doc: &AutoCommit, path: &[String]) -> Option<ObjId> {
    let mut current = ROOT;
    for key in path {
        current = match doc.get(&current, key.as_str()).ok()? {
            Some((Value::Object(ObjType::Map), obj)) => obj,
            _ => return None,
        };
    }
    Some(current)
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replayed {
    /// Changes made: one per change replayed.
    pub n_changes: usize,
    /// Writes left out because the record they wrote into was erased before.
    pub n_skipped: usize,
}

/// Replays `own` (this device's changes of the older generation `old`, in causal order)
/// onto `new` as writes of the same fields, one change per change with its time and
/// message, authored by `new`'s actor. A field is found by its path (container, record id,
/// key), not by automerge's object ids, which differ between generations; a record map is
/// created only if the new generation does not have it (the server may have received its
/// creation before compacting). A write into a map `old` no longer shows (a record erased)
/// is left out, as it was invisible there too. Grid documents hold maps and scalars only:
/// anything else is refused (then the caller exports the changes instead).
pub fn replay(id: &DocId, old: &AutoCommit, own: &[Change], new: &mut AutoCommit) -> Result<Replayed> {
    use automerge::legacy::{Key, OpType};
    let mut replayed = Replayed::default();
    for change in own {
        let expanded = change.decode();
        for op in &expanded.operations {
            let Key::Map(key) = &op.key else {
                return Err(Error::document(id, "a change to replay writes a list"));
            };
            let Some(target) = counterpart(old, new, &op.obj.to_string()) else {
                replayed.n_skipped += 1;
                continue;
            };
            let present = new.get(&target, key.as_str()).map_err(automerge_error(id))?;
            match &op.action {
                OpType::Put(value) => new.put(&target, key.as_str(), value.clone()).map_err(automerge_error(id))?,
                OpType::Delete => {
                    if present.is_some() {
                        new.delete(&target, key.as_str()).map_err(automerge_error(id))?;
                    }
                }
                OpType::Make(ObjType::Map) => {
                    if !matches!(present, Some((Value::Object(ObjType::Map), _))) {
                        new.put_object(&target, key.as_str(), ObjType::Map).map_err(automerge_error(id))?;
                    }
                }
                OpType::Make(_) | OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_) => {
                    return Err(Error::document(id, "a change to replay makes something other than a map"));
                }
            }
        }
        let mut options = CommitOptions::default().with_time(change.timestamp());
        if let Some(message) = change.message() {
            options = options.with_message(message.to_owned());
        }
        if new.pending_ops() == 0 {
            // A capture that changed nothing stays one (the archive records the confirmation).
            new.empty_change(options);
        } else {
            new.commit_with(options);
        }
        replayed.n_changes += 1;
    }
    Ok(replayed)
}

/// The object of `new` at the path where `old` shows the object `obj` (`counter@actor` or
/// `_root`); `None` when `old` no longer shows it or `new` has nothing there.
fn counterpart(old: &AutoCommit, new: &AutoCommit, obj: &str) -> Option<ObjId> {
    if obj == "_root" {
        return Some(ROOT);
    }
    let exid = old.import_obj(obj).ok()?;
    let path = old.parents(&exid).ok()?.visible_path()?;
    let mut current = ROOT;
    for (_, prop) in path {
        let Prop::Map(key) = prop else { return None };
        current = match new.get(&current, key.as_str()).ok()? {
            Some((Value::Object(ObjType::Map), found)) => found,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::crdt::{check_layout, genesis};
    use crate::model::GridCode;

    fn grid() -> GridCode {
        GridCode::parse_default("440703001001001").unwrap()
    }

    fn register() -> DocId {
        DocId::new(DocKind::Register, &grid())
    }

    fn residents(doc: &AutoCommit) -> ObjId {
        container(doc, crate::model::RecordKind::Resident).unwrap()
    }

    /// A device's copy of the register: a resident created and edited many times.
    fn busy(actor: &str, n_edits: usize) -> AutoCommit {
        let mut doc = genesis(DocKind::Register, &grid()).with_actor(ActorId::from(actor.as_bytes()));
        let residents = residents(&doc);
        let record = doc.put_object(&residents, "r1", ObjType::Map).unwrap();
        doc.put(&record, "name", "陈秀英").unwrap();
        doc.commit();
        for i in 0..n_edits {
            doc.put(&record, "status", format!("s{i}")).unwrap();
            doc.commit();
        }
        doc
    }

    fn field(doc: &AutoCommit, record: &str, key: &str) -> Vec<ScalarValue> {
        let record = match doc.get(residents(doc), record).unwrap() {
            Some((Value::Object(_), obj)) => obj,
            _ => return Vec::new(),
        };
        doc.get_all(&record, key).unwrap().into_iter().filter_map(|(value, _)| value.into_scalar().ok()).collect()
    }

    #[test]
    fn a_compacted_document_has_the_same_content_and_little_history() {
        let mut old = busy("device-a", 2000);
        let mut compacted = compact(&register(), &mut old, 42).unwrap();
        assert_eq!(compacted.generation, 2);
        assert_eq!(generation(&compacted.doc), 2);
        assert_eq!(field(&compacted.doc, "r1", "status"), vec![ScalarValue::from("s1999")]);
        assert_eq!(field(&compacted.doc, "r1", "name"), vec![ScalarValue::from("陈秀英")]);
        assert_eq!(compacted.doc.get_changes(&[]).len(), 2, "the genesis and the generation's first change");
        check_layout(&compacted.doc, &register()).unwrap();
        let (before, after) = (old.save().len(), compacted.doc.save().len());
        assert!(after * 10 < before, "{before} bytes before, {after} after");
        let start = starts_generation(&compacted.changes[0]).unwrap();
        assert_eq!(start, GenerationStart { generation: 2, replaced_heads: old.get_heads() });
        // And again: generation 3.
        assert_eq!(compact(&register(), &mut compacted.doc, 43).unwrap().generation, 3);
    }

    #[test]
    fn concurrent_values_survive_compaction_with_the_same_value_showing() {
        // Both ways round: whichever value shows before shows after.
        for (first, second) in [("device-a", "device-b"), ("device-b", "device-a")] {
            let mut a = busy(first, 0);
            let mut b = a.fork().with_actor(ActorId::from(second.as_bytes()));
            let record = |doc: &AutoCommit| match doc.get(residents(doc), "r1").unwrap() {
                Some((_, obj)) => obj,
                None => panic!("no record"),
            };
            let in_a = record(&a);
            a.put(&in_a, "status", "moved_out").unwrap();
            a.commit();
            let in_b = record(&b);
            b.put(&in_b, "status", "deceased").unwrap();
            b.commit();
            a.merge(&mut b).unwrap();
            let shown = a.get(&in_a, "status").unwrap().unwrap().0.into_scalar().unwrap();
            let compacted = compact(&register(), &mut a, 7).unwrap();
            assert_eq!(compacted.n_conflicts, 1);
            let mut values = field(&compacted.doc, "r1", "status");
            let record_new = record(&compacted.doc);
            let shown_new = compacted.doc.get(&record_new, "status").unwrap().unwrap().0.into_scalar().unwrap();
            assert_eq!(shown_new, shown, "{first} wrote first");
            values.sort_by_key(|value| value.to_string());
            assert_eq!(values, vec![ScalarValue::from("deceased"), ScalarValue::from("moved_out")]);
            assert!(compacted.changes[1..].iter().all(|change| is_compaction_actor(change.actor_id().to_bytes())));
        }
    }

    #[test]
    fn unsynced_edits_replay_onto_the_new_generation() {
        let mut server = busy("device-a", 50);
        let mut device = server.fork().with_actor(ActorId::from(b"device-b".as_slice()));
        let acked = device.get_heads();
        // Unsynced on the device: an edit of a record the server has, a new record, a
        // field deleted.
        let residents_obj = residents(&device);
        let r1 = match device.get(&residents_obj, "r1").unwrap() {
            Some((_, obj)) => obj,
            None => panic!("no record"),
        };
        device.put(&r1, "status", "moved_out").unwrap();
        device.delete(&r1, "name").unwrap();
        device.commit();
        let r2 = device.put_object(&residents_obj, "r2", ObjType::Map).unwrap();
        device.put(&r2, "name", "黄丽珍").unwrap();
        device.commit();
        let own = device.get_changes(&acked);
        assert_eq!(own.len(), 2);

        let compacted = compact(&register(), &mut server, 9).unwrap();
        let mut new = compacted.doc.clone().with_actor(ActorId::from(b"device-b".as_slice()));
        let replayed = replay(&register(), &device, &own, &mut new).unwrap();
        assert_eq!(replayed, Replayed { n_changes: 2, n_skipped: 0 });
        assert_eq!(field(&new, "r1", "status"), vec![ScalarValue::from("moved_out")]);
        assert_eq!(field(&new, "r1", "name"), Vec::<ScalarValue>::new());
        assert_eq!(field(&new, "r2", "name"), vec![ScalarValue::from("黄丽珍")]);
        check_layout(&new, &register()).unwrap();
        // The server, still on generation 1, never takes them; on generation 2 it does.
        let mut on_server = compacted.doc.clone();
        let replayed_changes = new.get_changes(&compacted.doc.clone().get_heads());
        on_server.apply_changes(replayed_changes).unwrap();
        assert!(on_server.get_missing_deps(&[]).is_empty());
        assert_eq!(field(&on_server, "r2", "name"), vec![ScalarValue::from("黄丽珍")]);
        // The device's generation-1 changes never apply to generation 2.
        let mut stale = compacted.doc.clone();
        stale.apply_changes(own).unwrap();
        assert!(!stale.get_missing_deps(&[]).is_empty());
        assert_eq!(field(&stale, "r2", "name"), Vec::<ScalarValue>::new());
        drop(server);
    }

    #[test]
    fn a_record_created_before_compaction_is_not_created_twice_by_a_replay() {
        let server = busy("device-a", 3);
        let mut device = server.clone().with_actor(ActorId::from(b"device-b".as_slice()));
        let acked = device.get_heads();
        let residents_obj = residents(&device);
        let r2 = device.put_object(&residents_obj, "r2", ObjType::Map).unwrap();
        device.put(&r2, "name", "黄丽珍").unwrap();
        device.commit();
        let own = device.get_changes(&acked);
        // The server got the change (its answer was lost) before compacting.
        let mut server = server;
        server.apply_changes(own.iter().cloned()).unwrap();
        let compacted = compact(&register(), &mut server, 9).unwrap();
        let mut new = compacted.doc.with_actor(ActorId::from(b"device-b".as_slice()));
        replay(&register(), &device, &own, &mut new).unwrap();
        let maps = new.get_all(residents(&new), "r2").unwrap();
        assert_eq!(maps.len(), 1, "one map for the record");
        assert_eq!(field(&new, "r2", "name"), vec![ScalarValue::from("黄丽珍")]);
    }

    #[test]
    fn only_the_server_starts_a_generation() {
        let device = busy("device-a", 1);
        let mut copy = device.clone();
        assert!(copy.get_changes(&[]).iter().all(|change| starts_generation(change).is_none()));
        assert!(!is_compaction_actor(b"device-a"));
        assert!(is_compaction_actor(COMPACTION_ACTOR));
    }
}
