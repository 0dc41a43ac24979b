//! Upgrades across versions, with fixtures written by the previous versions' own code
//! (`tests/fixtures/upgrade/`, made by `scripts/make-upgrade-fixtures`; docs/testing.md,
//! "Upgrades"):
//!
//! - `device-schema-3` (commit 4b9191b): a device store of schema 3 and its server's
//!   database of the same moment (server schema 0);
//! - `server-schema-2` (commit f958797): a server database of schema 2 and a device store
//!   of that moment (store schema 4, the current one).
//!
//! Each pair opens with the current code and syncs; a device of the previous version,
//! replayed from its recorded requests, converges with a current one; a server migration
//! killed midway, or failing midway, leaves the database all old.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use automerge::AutoCommit;
use rusqlite::Connection;
use wangge_core::Store;
use wangge_core::blobs::BlobStore;
use wangge_core::crdt::ChangeHash;
use wangge_core::model::*;
use wangge_core::sync::http::SyncClient;
use wangge_core::sync::wire;
use wangge_server::{Service, SqliteStorage};

include!("../../scripts/upgrade-fixtures/describe.rs");

const FIXTURES: [&str; 2] = ["device-schema-3", "server-schema-2"];
/// Run with this variable set to a database path, the test of a killed server migration
/// is the child that opens (and so migrates) it.
const SERVER_CHILD: &str = "WANGGE_UPGRADE_SERVER_CHILD";

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/upgrade").join(name)
}

fn manifest(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture_dir(name).join("manifest.json")).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A fixture's store, blobs and server database, copied: tests never touch the fixtures.
fn copy_fixture(name: &str, dir: &Path) {
    copy_dir(&fixture_dir(name), dir);
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path).unwrap().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap()
}

/// A current server on 127.0.0.1 over an existing database file; stops when dropped.
struct Server {
    url: String,
    service: Service<SqliteStorage>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    async fn start(database: &Path) -> Server {
        wangge_core::sync::http::install_crypto_provider();
        let service = Service::new(SqliteStorage::open(database).unwrap());
        let (listener, addr) = wangge_server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = service.clone();
        tokio::spawn(async move {
            let _ = wangge_server::serve(listener, running, async {
                let _ = stopped.await;
            })
            .await;
        });
        let url = format!("http://{addr}");
        // Polls until it answers: never a fixed sleep.
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(response) = client.get(format!("{url}/healthz")).send().await
                && response.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "the server did not answer");
            tokio::task::yield_now().await;
        }
        Server { url, service, _shutdown: shutdown }
    }

    fn client(&self) -> SyncClient {
        SyncClient::new(&self.url).unwrap().with_retries(2, Duration::from_millis(10))
    }

    /// Posts a request body as it is (a recorded one), with a device's token.
    async fn post_body(&self, token: &str, body: Vec<u8>) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/v1/sync", self.url))
            .header(wire::PROTOCOL_HEADER, "1")
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A new device of the worker the fixture left without one, enrolled and synced.
    async fn new_device(&self, manifest: &serde_json::Value, dir: &Path) -> Store {
        let code = self.service.issue_enrollment_code(manifest["new_worker"].as_str().unwrap()).unwrap();
        let store = Store::open(dir.join("new.db")).unwrap();
        let client = self.client();
        client.enroll(&store, &code, "new device").await.unwrap();
        client.sync(&store, None).await.unwrap();
        store
    }
}

fn grid_of(manifest: &serde_json::Value) -> GridCode {
    GridCode::parse_default(manifest["store"]["grid"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_previous_store_and_server_database_open_and_the_waiting_edits_reach_a_new_device() {
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        copy_fixture(name, dir.path());
        let manifest = manifest(name);
        let grid = grid_of(&manifest);
        let server = Server::start(&dir.path().join("server.db")).await;
        assert_eq!(user_version(&dir.path().join("server.db")), wangge_server::storage::SCHEMA_VERSION);

        // The enrolled device: its store upgraded, everything there, its token still good.
        let store = Store::open(dir.path().join("device.db")).unwrap();
        assert_eq!(describe_store(&store, &grid), manifest["store"], "{name}");
        assert!(store.pending_changes().unwrap() > 0, "{name}");
        let client = server.client();
        client.sync(&store, None).await.unwrap();
        assert_eq!(store.pending_changes().unwrap(), 0, "{name}: every waiting edit acknowledged");
        let blobs = BlobStore::beside(&store, 64 * 1024 * 1024).unwrap();
        assert_eq!(client.upload_pending_blobs(&store, &blobs).await.unwrap().n_blobs, 1, "{name}");
        assert!(store.failed_captures().unwrap().is_empty());
        // The other enrolled device's token works too (no request since the fixture).
        let token_b = manifest["devices"]["b"]["token"].as_str().unwrap();
        let empty = wire::SyncRequest { pull_budget: wire::DEFAULT_PULL_BUDGET, ..Default::default() };
        assert_eq!(server.post_body(token_b, wire::encode(&empty)).await.status(), 200, "{name}");

        // A new device's first sync brings everything, the waiting edits included.
        let new = server.new_device(&manifest, dir.path()).await;
        let upgraded = describe_store(&store, &grid);
        assert_eq!(describe_store(&new, &grid), upgraded, "{name}");
        let pending = &manifest["pending"];
        let resident = ResidentId::parse(pending["phone_of"].as_str().unwrap()).unwrap();
        let phone = new.resident(resident).unwrap().sensitive.unwrap().phone.unwrap();
        assert_eq!(phone.as_str(), pending["phone"].as_str().unwrap());
        let building = BuildingId::parse(pending["floors_of"].as_str().unwrap()).unwrap();
        assert_eq!(new.building(building).unwrap().floors, Some(9));
        let newcomer = ResidentId::parse(pending["new_resident"].as_str().unwrap()).unwrap();
        assert!(new.resident(newcomer).unwrap().sensitive.unwrap().id_number.is_some());
        let incident = wangge_core::model::IncidentId::parse(pending["incident"].as_str().unwrap()).unwrap();
        assert_eq!(new.incident_timeline(incident).unwrap().len(), 1);
        let photo = wangge_core::blobs::BlobHash::parse(pending["photo"].as_str().unwrap()).unwrap();
        let new_blobs = BlobStore::beside(&new, 64 * 1024 * 1024).unwrap();
        let bytes = server.client().download_blob(&new, &new_blobs, &photo).await.unwrap();
        assert_eq!(wangge_core::blobs::BlobHash::of(&bytes), photo);
        let check = server.service.verify_log().unwrap();
        assert!(check.problems.is_empty(), "{name}: {:?}", check.problems);
    }
}

/// Applies a response, as any client does at the document level, to a device's documents.
fn apply(documents: &mut std::collections::BTreeMap<String, AutoCommit>, response: &wire::SyncResponse) {
    for pull in &response.pulls {
        let holds = documents.contains_key(&pull.doc);
        if let Some(snapshot) = &pull.snapshot {
            let mut loaded = AutoCommit::load(snapshot).unwrap();
            match documents.get_mut(&pull.doc) {
                Some(doc) => {
                    doc.merge(&mut loaded).unwrap();
                }
                None => {
                    documents.insert(pull.doc.clone(), loaded);
                }
            }
        }
        if let Some(doc) = documents.get_mut(&pull.doc) {
            let changes = pull.changes.iter().map(|bytes| automerge::Change::from_bytes(bytes.to_vec()).unwrap());
            doc.apply_changes(changes).unwrap();
        } else {
            assert!(holds || pull.changes.is_empty(), "changes for a document the device does not hold");
        }
    }
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_of_the_previous_version_replayed_and_a_current_device_converge() {
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        copy_fixture(name, dir.path());
        let manifest = manifest(name);
        let grid = grid_of(&manifest);
        let replay: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("replay/replay.json")).unwrap()).unwrap();
        let server = Server::start(&dir.path().join("server.db")).await;

        // A current device edits what the old device's waiting edits also touch, while
        // they wait: the phone (concurrently) and the newcomer's household.
        let current = server.new_device(&manifest, dir.path()).await;
        let resident = ResidentId::parse(manifest["pending"]["phone_of"].as_str().unwrap()).unwrap();
        let phone = Phone::parse("13600004444").unwrap();
        current.update_resident(resident, ResidentPatch { phone: Some(Some(phone)), ..Default::default() }).unwrap();
        let household = current.resident(resident).unwrap().household;
        let added = current
            .add_resident(
                &grid,
                NewResident {
                    household,
                    name: PersonName::parse("测试甲").unwrap(),
                    id_number: Some(IdNumber::parse("440703198506150029").unwrap()),
                    phone: None,
                    gender: None,
                    birth_date: None,
                    relation: Relation::Other,
                    residence_type: ResidenceType::Registered,
                    tags: Default::default(),
                }
                .with_derived_fields()
                .unwrap(),
            )
            .unwrap();
        server.client().sync(&current, None).await.unwrap();

        // The old device, replayed: its recorded requests, byte for byte.
        let token = manifest["devices"]["a"]["token"].as_str().unwrap();
        let mut responses = Vec::new();
        for request in replay["requests"].as_array().unwrap() {
            let body = std::fs::read(dir.path().join("replay").join(request["file"].as_str().unwrap())).unwrap();
            let sent: wire::SyncRequest = wire::decode(&body).unwrap();
            // What makes it a request of the previous version: no report, no generations.
            assert_eq!((sent.status.as_ref(), sent.generations), (None, None), "{name}");
            let response = server.post_body(token, body).await;
            assert_eq!(response.status(), 200, "{name}");
            let response: wire::SyncResponse = wire::decode(&response.bytes().await.unwrap()).unwrap();
            let pushed: Vec<&String> = sent.pushes.iter().map(|push| &push.doc).collect();
            for doc in pushed {
                assert!(response.acks.contains(doc), "{name}: {doc} not acknowledged");
            }
            assert!(response.removed.is_empty(), "{name}");
            responses.push(response);
        }
        server.client().sync(&current, None).await.unwrap();

        // The old device's documents after its last recorded request, then what the
        // current server answered it: the same heads as the current device's.
        let mut documents = std::collections::BTreeMap::new();
        for document in replay["documents"].as_array().unwrap() {
            let bytes = std::fs::read(dir.path().join("replay/documents").join(document["file"].as_str().unwrap()));
            documents.insert(document["doc"].as_str().unwrap().to_owned(), AutoCommit::load(&bytes.unwrap()).unwrap());
        }
        for response in &responses {
            apply(&mut documents, response);
        }
        for doc in current.documents().unwrap() {
            let id = doc.to_string();
            if !(id.starts_with("register/") || id.starts_with("sensitive/") || id.starts_with("incident/")) {
                continue;
            }
            let old = documents.get_mut(&id).unwrap_or_else(|| panic!("{name}: the old device lacks {id}"));
            assert_eq!(sorted(old.get_heads()), sorted(current.heads(&doc).unwrap()), "{name}: {id}");
        }
        for id in documents.keys() {
            assert!(current.documents().unwrap().iter().any(|doc| doc.to_string() == *id), "{name}: {id}");
        }
        // The current device shows the old device's edits, and the concurrent phone as a
        // conflict kept for a worker to resolve.
        let pending = &manifest["pending"];
        let newcomer = ResidentId::parse(pending["new_resident"].as_str().unwrap()).unwrap();
        assert!(current.resident(newcomer).is_ok(), "{name}");
        assert!(current.resident(added).is_ok(), "{name}");
        let building = BuildingId::parse(pending["floors_of"].as_str().unwrap()).unwrap();
        assert_eq!(current.building(building).unwrap().floors, Some(9), "{name}");
        let conflicts = current.conflicts(RecordRef::Resident(resident)).unwrap();
        assert!(conflicts.iter().any(|conflict| conflict.field == "phone"), "{name}: {conflicts:?}");

        // The server's handling of the older request: no report of itself (nothing listed
        // but its last request) ...
        let device_a = manifest["devices"]["a"]["id"].as_str().unwrap();
        let devices = wangge_server::Storage::devices(server.service.storage()).unwrap();
        let listed = devices.iter().find(|device| device.id == device_a).unwrap();
        assert!(listed.last_sync.is_none(), "{name}");
        // ... and, once the grid is compacted, its copies are removed (its client cannot
        // replace a generation) where the current device replaces them in place.
        server.service.compact_grid(&grid).unwrap();
        let last = replay["requests"].as_array().unwrap().last().unwrap()["file"].as_str().unwrap().to_owned();
        let body = std::fs::read(dir.path().join("replay").join(last)).unwrap();
        // The round that meets the new generation says there is more; the next one (the
        // same recorded pull again) has the device remove its copies.
        let met: wire::SyncResponse =
            wire::decode(&server.post_body(token, body.clone()).await.bytes().await.unwrap()).unwrap();
        assert!(met.more && met.removed.is_empty(), "{name}");
        let next: wire::SyncResponse =
            wire::decode(&server.post_body(token, body).await.bytes().await.unwrap()).unwrap();
        let expected: Vec<String> = vec![format!("register/{grid}"), format!("sensitive/{grid}")];
        assert_eq!(next.removed, expected, "{name}");
        assert!(next.pulls.iter().all(|pull| !expected.contains(&pull.doc)), "{name}");
        server.client().sync(&current, None).await.unwrap();
        assert!(current.documents().unwrap().iter().any(|doc| doc.to_string() == format!("register/{grid}")));
        assert_eq!(describe_store(&current, &grid)["households"].as_array().unwrap().len(), 8, "{name}");
    }
}

/// The version, the schema and every row of every table, sorted.
fn dump(path: &Path) -> (i64, Vec<String>, Vec<String>) {
    let conn = Connection::open(path).unwrap();
    let version = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    let schema: Vec<String> = conn
        .prepare("SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_schema ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = statement.column_count();
        let mut table_rows: Vec<String> = statement
            .query_map([], |row| {
                let values: Vec<String> = (0..n).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
                Ok(format!("{table}: {}", values.join(" | ")))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        table_rows.sort();
        rows.extend(table_rows);
    }
    (version, schema, rows)
}

/// A server database is all old: version, schema and rows as before; then the current
/// server opens it, upgraded, with its devices.
#[track_caller]
fn check_all_old_then_upgrade(path: &Path, before: &(i64, Vec<String>, Vec<String>)) {
    let after = dump(path);
    assert_eq!(after.0, before.0);
    assert_eq!(after.1, before.1);
    assert!(after.2 == before.2, "the database's rows changed");
    let storage = SqliteStorage::open(path).unwrap();
    let devices = wangge_server::Storage::devices(&storage).unwrap();
    assert_eq!(devices.len(), 3);
    drop(storage);
    assert_eq!(user_version(path), wangge_server::storage::SCHEMA_VERSION);
}

#[test]
fn a_server_migration_killed_midway_leaves_the_database_all_old() {
    if let Some(path) = std::env::var_os(SERVER_CHILD) {
        // The child: opening migrates; the parent's read keeps the commit waiting.
        let _ = SqliteStorage::open(Path::new(&path));
        std::process::exit(3);
    }
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        std::fs::copy(fixture_dir(name).join("server.db"), &path).unwrap();
        let before = dump(&path);
        assert!(before.0 < wangge_server::storage::SCHEMA_VERSION);
        // The fixture is in rollback-journal mode (as a backup or restore leaves a file):
        // a commit there needs every reader gone, so a read held open here stops the
        // child's migration between its steps and its commit, its journal written.
        let reader = Connection::open(&path).unwrap();
        let mode: String = reader.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(mode, "delete");
        reader.execute_batch("BEGIN; SELECT count(*) FROM changes;").unwrap();

        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "a_server_migration_killed_midway_leaves_the_database_all_old", "--test-threads=1"])
            .env(SERVER_CHILD, &path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let journal = dir.path().join("server.db-journal");
        let deadline = Instant::now() + Duration::from_secs(4);
        while !std::fs::metadata(&journal).is_ok_and(|meta| meta.len() > 0) {
            assert!(child.try_wait().unwrap().is_none(), "{name}: the child ended before its migration wrote");
            assert!(Instant::now() < deadline, "{name}: no migration under way");
            std::thread::yield_now();
        }
        child.kill().unwrap(); // SIGKILL, the migration's transaction open
        child.wait().unwrap();
        reader.execute_batch("COMMIT;").unwrap();
        drop(reader);
        assert!(journal.exists(), "{name}: the killed migration left its journal");
        check_all_old_then_upgrade(&path, &before);
    }
}

#[test]
fn a_server_migration_step_that_fails_midway_leaves_the_database_all_old() {
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        std::fs::copy(fixture_dir(name).join("server.db"), &path).unwrap();
        // A column in the way of the last step's second statement (`ADD COLUMN version`).
        Connection::open(&path).unwrap().execute_batch("ALTER TABLE devices ADD COLUMN version TEXT;").unwrap();
        let before = dump(&path);
        let error = SqliteStorage::open(&path).unwrap_err();
        assert!(matches!(error, wangge_server::storage::StorageError::Sql(_)), "{name}: {error:?}");
        assert!(dump(&path) == before, "{name}: the failed migration changed the database");
        // Out of the way, the next open completes the upgrade.
        Connection::open(&path).unwrap().execute_batch("ALTER TABLE devices DROP COLUMN version;").unwrap();
        let clean = dump(&path);
        check_all_old_then_upgrade(&path, &clean);
    }
}
