//! Every behaviour of the `Storage` trait, tested once as a generic function over a
//! [`Backend`] and run against both SQLite and PostgreSQL by [`conformance!`]. What a test
//! asserts is what the service relies on; a backend that differs is wrong.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use wangge_server::storage::{
    BlobAppend, BlobRecord, Device, DocUpdate, GridRecord, HeldState, PostgresStorage, PullView, SqliteStorage,
    Storage, StorageError, StoredDocument, SyncReport, Worker, WorkerContact,
};

use crate::pg;

/// Where a test's database lives; [`Backend::open`] opens a storage on it, and opening it
/// again gives another handle on the same data (another process, another server node).
pub trait Backend {
    type S: Storage;
    fn new() -> Self;
    fn open(&self) -> Self::S;
}

pub struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    type S = SqliteStorage;
    fn new() -> Self {
        Sqlite(tempfile::tempdir().unwrap())
    }
    fn open(&self) -> SqliteStorage {
        SqliteStorage::open(&self.0.path().join("server.db")).unwrap()
    }
}

pub struct Postgres(String);

impl Backend for Postgres {
    type S = PostgresStorage;
    fn new() -> Self {
        Postgres(pg::database())
    }
    fn open(&self) -> PostgresStorage {
        PostgresStorage::connect(&self.0).unwrap()
    }
}

/// Runs each generic test against SQLite (`conformance::sqlite::…`) and PostgreSQL
/// (`conformance::postgres::…`).
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $test() { super::$test::<super::Sqlite>() })*
        }
        mod postgres {
            $(#[test] fn $test() { super::$test::<super::Postgres>() })*
        }
    };
}

conformance![
    grids_are_created_updated_and_found_by_area,
    updating_a_worker_keeps_its_contact_and_grid_staff_match_whole_codes,
    an_enrollment_code_is_redeemed_once_and_not_once_expired,
    an_actor_enrolls_for_one_worker_and_a_refused_code_stays_unused,
    devices_are_found_by_token_renewed_listed_and_revoked,
    a_commit_stores_snapshot_scopes_and_each_change_once,
    a_commit_made_from_another_version_is_refused_whole,
    held_documents_are_set_moved_and_forgotten,
    a_pull_view_is_the_horizon_visible_and_held_documents_read_together,
    the_log_is_read_in_sequence_order_by_cursor_device_and_document,
    a_blob_is_uploaded_in_order_per_device_and_completed_once,
    stale_uploads_are_dropped_and_complete_blobs_kept,
    a_blob_is_referenced_through_the_scopes_of_documents_naming_it,
    cursors_never_skip_a_change_committed_by_concurrent_writers,
];

fn worker(person: &str, role: &str, grids: &[&str]) -> Worker {
    Worker {
        person: person.into(),
        role: role.into(),
        department: None,
        grids: grids.iter().map(|grid| (*grid).to_owned()).collect(),
    }
}

fn new_device(id: &str, actor: u8) -> Device {
    Device {
        id: id.into(),
        person: String::new(),
        actor: vec![actor; 16],
        revoked: false,
        token_expires_ms: Some(900_000),
        last_seen_ms: None,
        last_sync: None,
    }
}

/// Creates worker `person` (if new) and enrolls a device with actor `[actor; 16]` and
/// token hash `token-<id>`.
fn enroll(storage: &impl Storage, person: &str, id: &str, actor: u8) {
    storage.create_worker(&worker(person, "full_time_worker", &["440703001001001"])).unwrap();
    let code = format!("code-{id}");
    storage.create_enrollment_code(person, &code, 1_000).unwrap();
    let redeemed = storage.redeem_enrollment_code(&code, &new_device(id, actor), &format!("token-{id}"), 2_000, 0);
    assert_eq!(redeemed.unwrap(), Some((person.to_owned(), id.to_owned())));
}

/// A change whose hash is `[tag; 32]` and whose bytes are `[tag]`.
fn change(tag: u8) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    (vec![tag; 32], vec![7; 16], vec![tag])
}

fn update(doc: &str, base: Option<i64>, scopes: &[&str], changes: &[u8]) -> DocUpdate {
    DocUpdate {
        doc: doc.into(),
        base,
        snapshot: format!("{doc} with {changes:?}").into_bytes(),
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        changes: changes.iter().map(|tag| change(*tag)).collect(),
        blob_refs: Vec::new(),
    }
}

fn version(storage: &impl Storage, doc: &str) -> Option<i64> {
    storage.document(doc).unwrap().map(|stored| stored.version)
}

fn scopes(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn grids_are_created_updated_and_found_by_area<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    let grid = |code: &str, name: &str| GridRecord { code: code.into(), name: name.into(), kind: "community".into() };
    assert_eq!(storage.grid("440703001001001").unwrap(), None);
    storage.create_grid(&grid("440703001001002", "第2网格")).unwrap();
    storage.create_grid(&grid("440703001001001", "第1网格")).unwrap();
    storage.create_grid(&grid("440703002001001", "外网格")).unwrap();
    // Creating an existing grid updates it.
    storage.create_grid(&grid("440703001001001", "第一网格")).unwrap();
    assert_eq!(storage.grid("440703001001001").unwrap(), Some(grid("440703001001001", "第一网格")));

    let within = |prefix: &str| -> Vec<String> {
        storage.grids_within(prefix).unwrap().into_iter().map(|grid| grid.code).collect()
    };
    assert_eq!(within("440703001"), ["440703001001001", "440703001001002"], "in code order");
    assert_eq!(within("440703"), ["440703001001001", "440703001001002", "440703002001001"]);
    assert_eq!(within("440703001001002"), ["440703001001002"], "a grid is within itself");
    assert_eq!(within("440704"), Vec::<String>::new());
}

fn updating_a_worker_keeps_its_contact_and_grid_staff_match_whole_codes<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    assert_eq!(storage.worker("w1").unwrap(), None);
    storage.create_worker(&worker("w1", "full_time_worker", &["440703001001001"])).unwrap();
    storage.create_worker(&worker("w2", "grid_leader", &["440703001001011", "440703001001002"])).unwrap();
    assert_eq!(
        storage.worker("w2").unwrap(),
        Some(worker("w2", "grid_leader", &["440703001001011", "440703001001002"]))
    );
    assert_eq!(storage.worker_contact("w1").unwrap(), Some(WorkerContact::default()));
    let contact = WorkerContact { name: Some("陈专职".into()), phone: Some("13800000002".into()) };
    assert!(storage.set_worker_contact("w1", &contact).unwrap());
    let mut moved = worker("w1", "part_time_worker", &["440703001001002"]);
    moved.department = Some("urban_management".into());
    storage.create_worker(&moved).unwrap();
    assert_eq!(storage.worker("w1").unwrap(), Some(moved));
    assert_eq!(storage.worker_contact("w1").unwrap(), Some(contact.clone()), "an update keeps the contact");
    assert!(!storage.set_worker_contact("nobody", &contact).unwrap());
    assert_eq!(storage.worker_contact("nobody").unwrap(), None);

    let staff = |grid: &str| -> Vec<String> {
        storage.grid_staff(grid).unwrap().into_iter().map(|(worker, _)| worker.person).collect()
    };
    assert_eq!(staff("440703001001002"), ["w1", "w2"]);
    assert_eq!(staff("440703001001001"), Vec::<String>::new());
    assert_eq!(staff("440703001001011"), ["w2"]);
    assert_eq!(staff("44070300100101"), Vec::<String>::new(), "not a prefix of a code");
    assert_eq!(storage.grid_staff("440703001001002").unwrap()[0].1, contact);
}

fn an_enrollment_code_is_redeemed_once_and_not_once_expired<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    storage.create_worker(&worker("w1", "full_time_worker", &["440703001001001"])).unwrap();
    storage.create_enrollment_code("w1", "code-1", 1_000).unwrap();
    let redeem = |device: &str, actor: u8, issued_after_ms: i64| {
        storage.redeem_enrollment_code(
            "code-1",
            &new_device(device, actor),
            &format!("token-{device}"),
            5_000,
            issued_after_ms,
        )
    };
    // Issued before the limit: expired, and not used up by trying.
    assert_eq!(redeem("d1", 1, 1_001).unwrap(), None);
    assert_eq!(storage.device_by_token("token-d1").unwrap(), None);
    assert_eq!(redeem("d1", 1, 1_000).unwrap(), Some(("w1".into(), "d1".into())));
    assert_eq!(redeem("d2", 2, 0).unwrap(), None, "used");
    assert_eq!(storage.device_by_token("token-d2").unwrap(), None);
    let unknown = storage.redeem_enrollment_code("no-such-code", &new_device("d3", 3), "token-d3", 5_000, 0);
    assert_eq!(unknown.unwrap(), None);
}

fn an_actor_enrolls_for_one_worker_and_a_refused_code_stays_unused<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    enroll(&storage, "w1", "d1", 1);
    storage.create_worker(&worker("w2", "full_time_worker", &["440703001001001"])).unwrap();
    storage.create_enrollment_code("w2", "code-w2", 1_000).unwrap();
    let redeemed = storage.redeem_enrollment_code("code-w2", &new_device("d2", 1), "token-d2", 3_000, 0);
    assert!(matches!(redeemed, Err(StorageError::Conflict(_))), "{redeemed:?}");
    // The refused code was not used: another device enrolls with it.
    let redeemed = storage.redeem_enrollment_code("code-w2", &new_device("d2", 2), "token-d2", 3_000, 0);
    assert_eq!(redeemed.unwrap(), Some(("w2".into(), "d2".into())));

    // The same worker's device enrolling again (its token expired) keeps its id.
    storage.create_enrollment_code("w1", "code-again", 4_000).unwrap();
    let mut again = new_device("d9", 1);
    again.token_expires_ms = Some(990_000);
    let redeemed = storage.redeem_enrollment_code("code-again", &again, "token-again", 5_000, 0);
    assert_eq!(redeemed.unwrap(), Some(("w1".into(), "d1".into())));
    assert_eq!(storage.device_by_token("token-d1").unwrap(), None, "the old token is gone");
    let device = storage.device_by_token("token-again").unwrap().unwrap().0;
    assert_eq!((device.id.as_str(), device.token_expires_ms, device.last_seen_ms), ("d1", Some(990_000), Some(5_000)));

    // A revoked device does not come back with a new code.
    assert!(storage.revoke_device("d1").unwrap());
    storage.create_enrollment_code("w1", "code-revoked", 6_000).unwrap();
    let redeemed = storage.redeem_enrollment_code("code-revoked", &new_device("d8", 1), "token-d8", 7_000, 0);
    assert!(matches!(redeemed, Err(StorageError::Conflict(_))), "{redeemed:?}");
    assert_eq!(storage.devices().unwrap().len(), 2);
}

fn devices_are_found_by_token_renewed_listed_and_revoked<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    enroll(&storage, "w1", "d2", 2);
    enroll(&storage, "w1", "d1", 1);
    let (found, found_worker) = storage.device_by_token("token-d1").unwrap().unwrap();
    let expected = Device {
        id: "d1".into(),
        person: "w1".into(),
        actor: vec![1; 16],
        revoked: false,
        token_expires_ms: Some(900_000),
        last_seen_ms: Some(2_000),
        last_sync: None,
    };
    assert_eq!(found, expected);
    assert_eq!(found_worker, worker("w1", "full_time_worker", &["440703001001001"]), "its worker with it");
    assert_eq!(storage.device_by_token("token-d3").unwrap(), None);

    storage.renew_device("d1", 60_000, 1_000_000).unwrap();
    let renewed = storage.device_by_token("token-d1").unwrap().unwrap().0;
    assert_eq!((renewed.last_seen_ms, renewed.token_expires_ms), (Some(60_000), Some(1_000_000)));
    let report = SyncReport { at_ms: 61_000, version: "0.1.0".into(), pending: 3 };
    storage.record_sync("d1", &report).unwrap();
    assert_eq!(storage.device_by_token("token-d1").unwrap().unwrap().0.last_sync, Some(report));
    assert_eq!(storage.device_by_token("token-d2").unwrap().unwrap().0.last_sync, None);

    assert!(storage.revoke_device("d1").unwrap());
    assert!(!storage.revoke_device("d3").unwrap(), "no such device");
    assert!(storage.device_by_token("token-d1").unwrap().unwrap().0.revoked);
    let listed: Vec<(String, bool)> =
        storage.devices().unwrap().into_iter().map(|device| (device.id, device.revoked)).collect();
    assert_eq!(listed, [("d1".to_owned(), true), ("d2".to_owned(), false)], "by id, revoked ones included");
}

fn a_commit_stores_snapshot_scopes_and_each_change_once<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    assert_eq!(storage.snapshot("register/1").unwrap(), None);
    assert_eq!(storage.document("register/1").unwrap(), None);
    assert_eq!(storage.max_seq().unwrap(), 0);

    // A document without changes (a genesis) is at version 0.
    storage.commit(&[update("reference", None, &["reference"], &[])], 1_000).unwrap();
    assert_eq!(version(&storage, "reference"), Some(0));

    let first = update("register/1", None, &["grid:1:register"], &[1, 2]);
    storage.commit(std::slice::from_ref(&first), 5_000).unwrap();
    let logged = storage.changes_of("register/1").unwrap();
    let tags: Vec<Vec<u8>> = logged.iter().map(|entry| entry.bytes.clone()).collect();
    assert_eq!(tags, [vec![1], vec![2]]);
    assert!(logged.iter().all(|entry| entry.received_ms == Some(5_000) && entry.actor == vec![7; 16]));
    assert_eq!(logged[0].hash, vec![1; 32]);
    assert_eq!(
        storage.document("register/1").unwrap(),
        Some(StoredDocument { snapshot: first.snapshot.clone(), version: logged[1].seq })
    );
    assert_eq!(storage.snapshot("register/1").unwrap(), Some(first.snapshot.clone()));
    assert_eq!(storage.max_seq().unwrap(), logged[1].seq);
    // Several at once: in the order asked, those that exist.
    let names = ["register/1", "none", "reference"].map(str::to_owned);
    assert_eq!(
        storage.documents(&names).unwrap(),
        [
            ("register/1".to_owned(), StoredDocument { snapshot: first.snapshot.clone(), version: logged[1].seq }),
            ("reference".to_owned(), storage.document("reference").unwrap().unwrap()),
        ]
    );
    assert_eq!(storage.documents(&[]).unwrap(), []);

    // Again from that version: change 2 is stored already and skipped; scopes are replaced.
    let second = update("register/1", Some(logged[1].seq), &["grid:1:register", "grid:1:incidents"], &[2, 3]);
    storage.commit(std::slice::from_ref(&second), 6_000).unwrap();
    let logged = storage.changes_of("register/1").unwrap();
    assert_eq!(logged.iter().map(|entry| entry.bytes[0]).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(logged[2].received_ms, Some(6_000));
    assert_eq!(version(&storage, "register/1"), Some(logged[2].seq));
    assert_eq!(storage.snapshot("register/1").unwrap(), Some(second.snapshot));

    let visible = |names: &[&str]| storage.visible_documents(&scopes(names)).unwrap();
    let last = logged[2].seq;
    let set = |docs: &[&str]| docs.iter().map(|doc| doc.to_string()).collect::<HashSet<_>>();
    assert_eq!(visible(&["grid:1:incidents"]), set(&["register/1"]));
    assert_eq!(visible(&["grid:1:register", "reference", "grid:2:register"]), set(&["register/1", "reference"]));
    storage.commit(&[update("register/1", Some(last), &["grid:1:register"], &[])], 7_000).unwrap();
    assert_eq!(visible(&["grid:1:incidents"]), set(&[]), "a scope it left");
    assert_eq!(visible(&[]), set(&[]));
}

fn a_commit_made_from_another_version_is_refused_whole<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    let other_node = backend.open();
    storage.commit(&[update("register/1", None, &["s"], &[1])], 1_000).unwrap();
    let read = version(&storage, "register/1").unwrap();
    let stored = storage.snapshot("register/1").unwrap();
    let max_seq = storage.max_seq().unwrap();

    #[track_caller]
    fn refused(result: wangge_server::storage::Result<()>, doc: &str) {
        match result {
            Err(StorageError::DocumentChanged { doc: changed }) => assert_eq!(changed, doc),
            other => panic!("not refused as changed: {other:?}"),
        }
    }
    // Creating what exists, updating what does not, updating from a version that is not
    // the stored one: refused, and nothing of the commit is written.
    refused(storage.commit(&[update("register/1", None, &["s"], &[2])], 2_000), "register/1");
    refused(storage.commit(&[update("register/2", Some(0), &["s"], &[2])], 2_000), "register/2");
    refused(storage.commit(&[update("register/1", Some(read + 1), &["s"], &[2])], 2_000), "register/1");
    refused(
        storage.commit(
            &[update("register/3", None, &["s"], &[3]), update("register/1", Some(read - 1), &["s"], &[4])],
            2_000,
        ),
        "register/1",
    );
    assert_eq!(storage.document("register/3").unwrap(), None);
    assert_eq!(storage.max_seq().unwrap(), max_seq, "no change logged");
    assert_eq!(storage.snapshot("register/1").unwrap(), stored);

    // Two nodes that read the same version: the first write wins, the second is refused.
    other_node.commit(&[update("register/1", Some(read), &["s"], &[5])], 3_000).unwrap();
    refused(storage.commit(&[update("register/1", Some(read), &["s"], &[6])], 3_000), "register/1");
    let now = version(&storage, "register/1").unwrap();
    assert!(now > read);
    storage.commit(&[update("register/1", Some(now), &["s"], &[6])], 4_000).unwrap();
    let tags: Vec<u8> = storage.changes_of("register/1").unwrap().iter().map(|entry| entry.bytes[0]).collect();
    assert_eq!(tags, [1, 5, 6]);
}

fn held_documents_are_set_moved_and_forgotten<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    enroll(&storage, "w1", "d1", 1);
    enroll(&storage, "w1", "d2", 2);
    assert_eq!(storage.held_documents("d1").unwrap(), HashMap::new());
    storage.set_held("d1", "register/1", 3, HeldState::Sent).unwrap();
    storage.set_held("d1", "sensitive/1", 4, HeldState::Held).unwrap();
    storage.set_held("d2", "register/1", 9, HeldState::Held).unwrap();
    assert_eq!(
        storage.held_documents("d1").unwrap(),
        HashMap::from([
            ("register/1".to_owned(), (3, HeldState::Sent)),
            ("sensitive/1".to_owned(), (4, HeldState::Held))
        ])
    );
    // Several at once (one write), over what was there.
    storage
        .set_held_many(
            "d1",
            &[("sensitive/1".to_owned(), 4, HeldState::Removing), ("register/1".to_owned(), 5, HeldState::Held)],
        )
        .unwrap();
    storage.set_held_many("d1", &[]).unwrap();
    // A document given twice: the last is what is kept, as if written one after another.
    storage
        .set_held_many(
            "d1",
            &[("register/1".to_owned(), 1, HeldState::Sent), ("register/1".to_owned(), 5, HeldState::Held)],
        )
        .unwrap();
    assert_eq!(
        storage.held_documents("d1").unwrap(),
        HashMap::from([
            ("register/1".to_owned(), (5, HeldState::Held)),
            ("sensitive/1".to_owned(), (4, HeldState::Removing))
        ])
    );
    storage.forget_held("d1", "sensitive/1").unwrap();
    storage.forget_held("d1", "never/held").unwrap();
    assert_eq!(storage.held_documents("d1").unwrap(), HashMap::from([("register/1".to_owned(), (5, HeldState::Held))]));
    assert_eq!(storage.held_documents("d2").unwrap(), HashMap::from([("register/1".to_owned(), (9, HeldState::Held))]));
}

fn a_pull_view_is_the_horizon_visible_and_held_documents_read_together<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    enroll(&storage, "w1", "d1", 1);
    let empty = storage.pull_view("d1", &scopes(&["grid:1:register"])).unwrap();
    assert_eq!(empty, PullView { horizon: 0, visible: HashSet::new(), held: HashMap::new() });

    storage.commit(&[update("register/1", None, &["grid:1:register", "grid:1:incidents"], &[1, 2])], 1_000).unwrap();
    storage.commit(&[update("register/2", None, &["grid:2:register"], &[3])], 1_000).unwrap();
    storage.commit(&[update("reference", None, &["reference"], &[4])], 1_000).unwrap();
    storage
        .set_held_many(
            "d1",
            &[("register/1".to_owned(), 2, HeldState::Held), ("register/2".to_owned(), 3, HeldState::Sent)],
        )
        .unwrap();
    let readable = scopes(&["grid:1:register", "grid:1:incidents", "reference"]);
    let view = storage.pull_view("d1", &readable).unwrap();
    assert_eq!(view.horizon, storage.max_seq().unwrap());
    assert_eq!(view.visible, HashSet::from(["register/1".to_owned(), "reference".to_owned()]), "each once");
    assert_eq!(view.visible, storage.visible_documents(&readable).unwrap());
    assert_eq!(view.held, storage.held_documents("d1").unwrap());
    assert_eq!(view.held.len(), 2);
    assert_eq!(storage.pull_view("d2", &[]).unwrap().held, HashMap::new(), "another device holds nothing");
}

fn the_log_is_read_in_sequence_order_by_cursor_device_and_document<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    enroll(&storage, "w1", "d1", 1);
    let mut versions: HashMap<&str, i64> = HashMap::new();
    for (doc, tag) in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)] {
        let base = versions.get(doc).copied();
        storage.commit(&[update(doc, base, &["s"], &[tag])], 1_000).unwrap();
        versions.insert(doc, version(&storage, doc).unwrap());
    }
    let all = storage.changes_after(0, 100).unwrap();
    assert_eq!(all.iter().map(|entry| entry.bytes[0]).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(all.windows(2).all(|pair| pair[0].seq < pair[1].seq), "increasing");
    let seq: Vec<i64> = all.iter().map(|entry| entry.seq).collect();
    assert_eq!(storage.max_seq().unwrap(), seq[4]);
    let tags =
        |entries: Vec<wangge_server::storage::LogEntry>| entries.iter().map(|entry| entry.bytes[0]).collect::<Vec<_>>();
    assert_eq!(tags(storage.changes_after(0, 2).unwrap()), [1, 2]);
    assert_eq!(tags(storage.changes_after(seq[2], 100).unwrap()), [4, 5]);
    assert_eq!(tags(storage.changes_after(seq[4], 100).unwrap()), Vec::<u8>::new());
    assert_eq!(tags(storage.changes_of("b").unwrap()), [2, 5]);
    assert_eq!(tags(storage.changes_of("none").unwrap()), Vec::<u8>::new());
    // Which documents changed in a stretch of the log: each once, by id.
    assert_eq!(storage.documents_changed(0, seq[4]).unwrap(), ["a", "b", "c"]);
    assert_eq!(storage.documents_changed(seq[0], seq[2]).unwrap(), ["a", "b"]);
    assert_eq!(storage.documents_changed(seq[2], seq[3]).unwrap(), ["c"]);
    assert_eq!(storage.documents_changed(seq[4], seq[4] + 100).unwrap(), Vec::<String>::new());
    assert_eq!(
        all[1],
        wangge_server::storage::LogEntry {
            seq: seq[1],
            doc: "b".into(),
            hash: vec![2; 32],
            actor: vec![7; 16],
            bytes: vec![2],
            received_ms: Some(1_000),
        }
    );

    // Only documents the device holds, and only once confirmed ('held').
    assert_eq!(tags(storage.log_after(0, "d1", 100).unwrap()), Vec::<u8>::new());
    storage.set_held("d1", "a", 0, HeldState::Held).unwrap();
    storage.set_held("d1", "b", 0, HeldState::Sent).unwrap();
    storage.set_held("d1", "c", 0, HeldState::Removing).unwrap();
    assert_eq!(tags(storage.log_after(0, "d1", 100).unwrap()), [1, 3]);
    storage.set_held("d1", "b", 0, HeldState::Held).unwrap();
    assert_eq!(tags(storage.log_after(0, "d1", 100).unwrap()), [1, 2, 3, 5]);
    assert_eq!(tags(storage.log_after(0, "d1", 2).unwrap()), [1, 2]);
    assert_eq!(tags(storage.log_after(seq[1], "d1", 100).unwrap()), [3, 5]);
    assert_eq!(tags(storage.log_after(0, "d2", 100).unwrap()), Vec::<u8>::new(), "another device");

    // The same found through the documents' own changes.
    let docs = |names: &[&str]| names.iter().map(|name| name.to_string()).collect::<Vec<_>>();
    assert_eq!(tags(storage.log_after_in(0, &docs(&["a", "b"]), 100).unwrap()), [1, 2, 3, 5]);
    assert_eq!(tags(storage.log_after_in(0, &docs(&["b", "a"]), 2).unwrap()), [1, 2], "the first two by seq");
    assert_eq!(tags(storage.log_after_in(seq[1], &docs(&["a", "b"]), 100).unwrap()), [3, 5]);
    assert_eq!(tags(storage.log_after_in(0, &docs(&["c"]), 100).unwrap()), [4]);
    assert_eq!(tags(storage.log_after_in(0, &docs(&["none"]), 100).unwrap()), Vec::<u8>::new());
    assert_eq!(tags(storage.log_after_in(0, &[], 100).unwrap()), Vec::<u8>::new());
}

const BLOB: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
const OTHER_BLOB: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000002";

fn appended(result: BlobAppend) -> BlobRecord {
    match result {
        BlobAppend::Appended(record) => record,
        other => panic!("not appended: {other:?}"),
    }
}

fn a_blob_is_uploaded_in_order_per_device_and_completed_once<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    enroll(&storage, "w1", "d1", 1);
    enroll(&storage, "w1", "d2", 2);
    let append = |device: &str, size: u64, offset: u64, chunk: &[u8]| {
        storage.append_blob_chunk(device, BLOB, size, offset, chunk, 1_000).unwrap()
    };
    assert_eq!(append("d1", 10, 3, b"345"), BlobAppend::WrongOffset { received: 0 }, "an upload starts at 0");
    assert_eq!(storage.blob_upload("d1", BLOB).unwrap(), None, "and nothing was started");
    let first = appended(append("d1", 10, 0, b"01234"));
    assert_eq!((first.hash.as_str(), first.size, first.received, first.complete), (BLOB, 10, 5, false));
    assert_eq!(storage.blob_upload("d1", BLOB).unwrap(), Some(first.clone()));
    assert_eq!(storage.blob(BLOB).unwrap(), None, "not complete");
    assert_eq!(append("d1", 10, 4, b"4"), BlobAppend::WrongOffset { received: 5 });
    assert_eq!(append("d1", 12, 5, b"5"), BlobAppend::WrongSize { size: 10 });
    // Another device's upload of the same blob is its own.
    let second = appended(append("d2", 10, 0, b"0123"));
    assert_ne!(second.id, first.id);
    assert_eq!(second.received, 4);
    let first = appended(append("d1", 10, 5, b"56789"));
    assert_eq!(first.received, 10);

    assert_eq!(storage.read_blob(first.id, 0, 100).unwrap(), b"0123456789");
    assert_eq!(storage.read_blob(first.id, 3, 4).unwrap(), b"3456", "across chunks");
    assert_eq!(storage.read_blob(first.id, 8, 100).unwrap(), b"89");
    assert_eq!(storage.read_blob(first.id, 10, 5).unwrap(), b"");
    assert_eq!(storage.read_blob(second.id, 2, 100).unwrap(), b"23");

    storage.finish_blob_upload(first.id).unwrap();
    let complete = storage.blob(BLOB).unwrap().unwrap();
    assert_eq!(complete, BlobRecord { id: first.id, hash: BLOB.into(), size: 10, received: 10, complete: true });
    assert_eq!(storage.blob_upload("d2", BLOB).unwrap(), None, "other uploads went");
    assert_eq!(storage.blob_upload("d1", BLOB).unwrap(), None, "complete, not an upload");
    // Finishing the other upload afterwards leaves the complete blob as it is.
    storage.finish_blob_upload(second.id).unwrap();
    assert_eq!(storage.blob(BLOB).unwrap(), Some(complete.clone()));
    assert_eq!(append("d2", 10, 0, b"0123"), BlobAppend::Complete(complete.clone()), "nothing more to send");
    assert_eq!(append("d2", 10, 4, b"4567"), BlobAppend::Complete(complete.clone()));
    storage.discard_blob_upload(complete.id).unwrap();
    assert_eq!(storage.blob(BLOB).unwrap(), Some(complete), "a complete blob is not an upload to discard");

    // An upload started again at 0 with another size starts over.
    let other = |size: u64, offset: u64, chunk: &[u8]| {
        appended(storage.append_blob_chunk("d1", OTHER_BLOB, size, offset, chunk, 2_000).unwrap())
    };
    other(6, 0, b"abc");
    let restarted = other(4, 0, b"wxyz");
    assert_eq!((restarted.size, restarted.received), (4, 4));
    assert_eq!(storage.read_blob(restarted.id, 0, 100).unwrap(), b"wxyz");
    storage.discard_blob_upload(restarted.id).unwrap();
    assert_eq!(storage.blob_upload("d1", OTHER_BLOB).unwrap(), None);
    assert_eq!(storage.read_blob(restarted.id, 0, 100).unwrap(), b"", "its chunks went with it");
}

fn stale_uploads_are_dropped_and_complete_blobs_kept<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    enroll(&storage, "w1", "d1", 1);
    enroll(&storage, "w1", "d2", 2);
    let complete = appended(storage.append_blob_chunk("d1", BLOB, 2, 0, b"ab", 100).unwrap());
    storage.finish_blob_upload(complete.id).unwrap();
    appended(storage.append_blob_chunk("d1", OTHER_BLOB, 4, 0, b"ab", 100).unwrap());
    let recent = appended(storage.append_blob_chunk("d2", OTHER_BLOB, 4, 0, b"a", 100).unwrap());
    appended(storage.append_blob_chunk("d2", OTHER_BLOB, 4, 1, b"b", 300).unwrap());

    assert_eq!(storage.discard_stale_blob_uploads(100).unwrap(), 0, "strictly before");
    assert_eq!(storage.discard_stale_blob_uploads(200).unwrap(), 1);
    assert_eq!(storage.blob_upload("d1", OTHER_BLOB).unwrap(), None);
    assert_eq!(storage.blob_upload("d2", OTHER_BLOB).unwrap().map(|upload| upload.id), Some(recent.id));
    assert!(storage.blob(BLOB).unwrap().is_some(), "complete blobs stay");
}

fn a_blob_is_referenced_through_the_scopes_of_documents_naming_it<B: Backend>() {
    let backend = B::new();
    let storage = backend.open();
    let mut incident = update("incident/1", None, &["grid:1:incidents", "dept:police:incidents"], &[1]);
    incident.blob_refs = vec![BLOB.to_owned(), BLOB.to_owned()];
    storage.commit(&[incident], 1_000).unwrap();
    let referenced = |hash: &str, names: &[&str]| storage.blob_referenced(hash, &scopes(names)).unwrap();
    assert!(referenced(BLOB, &["grid:1:incidents"]));
    assert!(referenced(BLOB, &["grid:2:incidents", "dept:police:incidents"]));
    assert!(!referenced(BLOB, &["grid:2:incidents"]));
    assert!(!referenced(BLOB, &[]));
    assert!(!referenced(OTHER_BLOB, &["grid:1:incidents"]));

    // A document's references are replaced by its next update.
    let base = version(&storage, "incident/1");
    let mut incident = update("incident/1", base, &["grid:1:incidents"], &[2]);
    incident.blob_refs = vec![OTHER_BLOB.to_owned()];
    storage.commit(&[incident], 2_000).unwrap();
    assert!(!referenced(BLOB, &["grid:1:incidents"]));
    assert!(referenced(OTHER_BLOB, &["grid:1:incidents"]));
}

/// Writers on their own handles (nodes) commit while a reader pulls as the service does:
/// the log's horizon first, then the changes up to it, the horizon becoming its cursor.
/// Whatever order the writers' transactions commit in, the reader gets every change.
fn cursors_never_skip_a_change_committed_by_concurrent_writers<B: Backend>() {
    const WRITERS: usize = 4;
    const COMMITS: usize = 60;
    let backend = B::new();
    let reader = backend.open();
    let writers: Vec<B::S> = (0..WRITERS).map(|_| backend.open()).collect();
    let done = AtomicBool::new(false);
    let mut seen = BTreeSet::new();
    std::thread::scope(|scope| {
        let running: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(writer, storage)| {
                scope.spawn(move || {
                    let doc = format!("incident/{writer}");
                    for i in 0..COMMITS {
                        let base = version(storage, &doc);
                        let tag = (writer * COMMITS + i) as u8;
                        let mut update = update(&doc, base, &["s"], &[]);
                        // Hashes unique across writers (tags wrap at 256).
                        let hash = [&(writer as u32).to_be_bytes()[..], &(i as u32).to_be_bytes()[..]].concat();
                        update.changes = vec![(hash, vec![7; 16], vec![tag])];
                        storage.commit(&[update], 1_000).unwrap();
                    }
                })
            })
            .collect();
        scope.spawn(|| {
            for writer in running {
                writer.join().unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut cursor = 0;
        loop {
            // Read before the pass: once true, this pass sees everything.
            let finished = done.load(Ordering::SeqCst);
            let horizon = reader.max_seq().unwrap();
            for entry in reader.changes_after(cursor, 100_000).unwrap() {
                if entry.seq <= horizon {
                    seen.insert(entry.seq);
                }
            }
            cursor = horizon;
            if finished {
                break;
            }
        }
    });
    let all: BTreeSet<i64> = reader.changes_after(0, 100_000).unwrap().iter().map(|entry| entry.seq).collect();
    assert_eq!(all.len(), WRITERS * COMMITS);
    let skipped: Vec<&i64> = all.difference(&seen).collect();
    assert!(skipped.is_empty(), "the reader's cursor passed changes it never saw: {skipped:?}");
}

// PostgreSQL only: the schema's version.

fn tables(url: &str) -> Vec<String> {
    let mut client = r2d2_postgres::postgres::Client::connect(url, r2d2_postgres::postgres::NoTls).unwrap();
    client
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn schema_version(url: &str) -> i64 {
    let mut client = r2d2_postgres::postgres::Client::connect(url, r2d2_postgres::postgres::NoTls).unwrap();
    client.query_one("SELECT version FROM schema_version", &[]).unwrap().get(0)
}

#[test]
fn postgres_a_database_from_a_newer_server_is_refused_untouched() {
    use wangge_server::storage::POSTGRES_SCHEMA_VERSION;
    let url = pg::database();
    let mut client = r2d2_postgres::postgres::Client::connect(&url, r2d2_postgres::postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "CREATE TABLE schema_version (one boolean PRIMARY KEY DEFAULT true, version bigint NOT NULL);
             INSERT INTO schema_version (version) VALUES ({});",
            POSTGRES_SCHEMA_VERSION + 1
        ))
        .unwrap();
    let refused = PostgresStorage::connect(&url).unwrap_err();
    assert!(
        matches!(refused, StorageError::NewerSchema { found, supported }
            if found == POSTGRES_SCHEMA_VERSION + 1 && supported == POSTGRES_SCHEMA_VERSION),
        "{refused:?}"
    );
    assert_eq!(tables(&url), ["schema_version"], "nothing created");
    assert_eq!(schema_version(&url), POSTGRES_SCHEMA_VERSION + 1, "nothing changed");
}

#[test]
fn postgres_connecting_again_keeps_schema_and_data() {
    use wangge_server::storage::POSTGRES_SCHEMA_VERSION;
    let url = pg::database();
    let grid = GridRecord { code: "440703001001001".into(), name: "第1网格".into(), kind: "community".into() };
    PostgresStorage::connect(&url).unwrap().create_grid(&grid).unwrap();
    let created = tables(&url);
    assert!(created.len() > 10, "{created:?}");
    let again = PostgresStorage::connect(&url).unwrap();
    assert_eq!(again.grid(&grid.code).unwrap(), Some(grid));
    assert_eq!(tables(&url), created);
    assert_eq!(schema_version(&url), POSTGRES_SCHEMA_VERSION);
}

#[test]
fn the_database_value_picks_postgres_for_a_url_and_sqlite_for_a_path() {
    let url = pg::database();
    let grid = GridRecord { code: "440703001001001".into(), name: "第1网格".into(), kind: "community".into() };
    wangge_server::storage::open(&url).unwrap().create_grid(&grid).unwrap();
    assert_eq!(PostgresStorage::connect(&url).unwrap().grid(&grid.code).unwrap(), Some(grid.clone()));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    wangge_server::storage::open(path.to_str().unwrap()).unwrap().create_grid(&grid).unwrap();
    assert_eq!(SqliteStorage::open(&path).unwrap().grid(&grid.code).unwrap(), Some(grid));
}
