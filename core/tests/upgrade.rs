//! Upgrades of the device store, on a store written by the previous schema version's own
//! code (`tests/fixtures/upgrade/device-schema-3`, made by `scripts/make-upgrade-fixtures`
//! at commit 4b9191b): it opens with everything in it, and a migration that stops midway
//! (the process killed, or a step failing) leaves it exactly as it was, the next open
//! completing the upgrade. Syncing the upgraded store is `tests/tests/upgrade.rs`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::Connection;
use wangge_core::Store;
use wangge_core::blobs::{BlobHash, BlobStore};
use wangge_core::model::GridCode;

include!("../../scripts/upgrade-fixtures/describe.rs");

/// Run with this variable set to a store path, the test of a killed migration is the
/// child that migrates it and stops midway.
const CHILD: &str = "WANGGE_UPGRADE_CHILD";
const PREVIOUS_VERSION: u32 = 3;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/upgrade/device-schema-3")
}

fn manifest() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture_dir().join("manifest.json")).unwrap()).unwrap()
}

fn grid() -> GridCode {
    GridCode::parse_default(manifest()["store"]["grid"].as_str().unwrap()).unwrap()
}

/// The fixture's store and blobs, copied into `dir`: tests never touch the fixture itself.
fn copy_store(dir: &Path) -> PathBuf {
    let path = dir.join("device.db");
    std::fs::copy(fixture_dir().join("device.db"), &path).unwrap();
    copy_dir(&fixture_dir().join("device.db.blobs"), &dir.join("device.db.blobs"));
    path
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

fn user_version(path: &Path) -> u32 {
    Connection::open(path).unwrap().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap()
}

/// Every table's columns and every index's columns, comparable between a migrated
/// database and a fresh one.
fn schema_of(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let objects: Vec<(String, String, String)> = conn
        .prepare("SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (kind, name, table) in objects {
        let columns: Vec<String> = match kind.as_str() {
            "table" => conn
                .prepare(&format!("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_xinfo('{name}')"))
                .unwrap()
                .query_map([], |row| {
                    Ok(format!(
                        "{} {} {} {:?} {}",
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, i64>(4)?
                    ))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            "index" => conn
                .prepare(&format!("SELECT name FROM pragma_index_info('{name}')"))
                .unwrap()
                .query_map([], |row| row.get::<_, Option<String>>(0).map(|name| name.unwrap_or_default()))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            _ => vec![],
        };
        out.push(format!("{kind} {name} on {table}: {}", columns.join(", ")));
    }
    out
}

/// The version, the schema and every row of every ordinary table (the search indexes'
/// shadow tables included), sorted: two equal dumps are the same database content.
fn dump(path: &Path) -> (u32, Vec<String>, Vec<String>) {
    let conn = Connection::open(path).unwrap();
    let version = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name",
        )
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
    (version, schema_of(&conn), rows)
}

#[test]
fn a_store_from_the_previous_version_opens_with_everything_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_store(dir.path());
    assert_eq!(user_version(&path), PREVIOUS_VERSION);
    let manifest = manifest();

    let store = Store::open(&path).unwrap();
    assert_eq!(describe_store(&store, &grid()), manifest["store"]);
    assert!(store.failed_captures().unwrap().is_empty());
    let device = &manifest["devices"]["a"];
    assert_eq!(store.sync_token().unwrap().as_deref(), device["token"].as_str());
    assert_eq!(store.device_id().unwrap().as_deref(), device["id"].as_str());
    // The edits that waited are still waiting (to be pushed: tests/tests/upgrade.rs).
    assert!(store.pending_changes().unwrap() > 0);
    let resident = wangge_core::model::ResidentId::parse(manifest["pending"]["phone_of"].as_str().unwrap()).unwrap();
    let phone = store.resident(resident).unwrap().sensitive.unwrap().phone.unwrap();
    assert_eq!(phone.as_str(), manifest["pending"]["phone"].as_str().unwrap());
    // The photo not yet uploaded is still there, still waiting; the uploaded one is cached.
    let blobs = BlobStore::beside(&store, 64 * 1024 * 1024).unwrap();
    let waiting = BlobHash::parse(manifest["pending"]["photo"].as_str().unwrap()).unwrap();
    assert_eq!(blobs.pending_uploads().unwrap(), vec![waiting.clone()]);
    assert!(blobs.get(&waiting).unwrap().is_some());
    let uploaded = BlobHash::parse(manifest["uploaded_photo"].as_str().unwrap()).unwrap();
    assert!(blobs.get(&uploaded).unwrap().is_some());
    drop(store);
    assert_eq!(user_version(&path), wangge_core::SCHEMA_VERSION);

    // Migrated, the schema is the one a fresh store gets.
    let fresh = dir.path().join("fresh.db");
    drop(Store::open(&fresh).unwrap());
    assert_eq!(schema_of(&Connection::open(&path).unwrap()), schema_of(&Connection::open(&fresh).unwrap()));
}

/// The child: migrates the store at `path`, and once the hook says a step is done (inside
/// the migration's transaction), says so and waits to be killed.
fn migrate_and_stop(path: &Path) -> ! {
    fn stop(version: u32) {
        println!("upgrade step to {version} done, not committed");
        loop {
            std::thread::park();
        }
    }
    wangge_core::AFTER_UPGRADE_STEP.set(stop).unwrap();
    let _ = Store::open(path);
    panic!("the migration ended without stopping");
}

#[test]
fn a_migration_killed_midway_leaves_the_store_all_old_and_the_next_open_upgrades_it() {
    if let Some(path) = std::env::var_os(CHILD) {
        migrate_and_stop(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = copy_store(dir.path());
    let before = dump(&path);
    assert_eq!(before.0, PREVIOUS_VERSION);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_migration_killed_midway_leaves_the_store_all_old_and_the_next_open_upgrades_it"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The harness's "test … ... " comes first on the child's line.
    let said = lines.find_map(|line| line.unwrap().split_once("upgrade step to ").map(|(_, rest)| rest.to_owned()));
    assert_eq!(said.as_deref(), Some("4 done, not committed"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // All old: the version, the schema and every row as before.
    let after = dump(&path);
    assert_eq!(after.0, before.0);
    assert_eq!(after.1, before.1);
    assert!(after.2 == before.2, "the store's rows changed");
    // The next open completes the upgrade.
    let store = Store::open(&path).unwrap();
    assert_eq!(describe_store(&store, &grid()), manifest()["store"]);
    drop(store);
    assert_eq!(user_version(&path), wangge_core::SCHEMA_VERSION);
}

#[test]
fn a_migration_step_that_fails_midway_leaves_the_store_all_old() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_store(dir.path());
    // A table in the way of the last statement of the step to 4 (`CREATE TABLE views`):
    // the step's earlier tables are created inside the transaction, then it fails.
    Connection::open(&path).unwrap().execute_batch("CREATE TABLE views (blocker INTEGER);").unwrap();
    let before = dump(&path);

    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, wangge_core::Error::Sql(_)), "{error:?}");
    // Not taken for an unreadable store: still where it was, nothing moved aside.
    assert!(path.exists());
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    assert!(!names.iter().any(|name| name.contains("unreadable")), "{names:?}");
    let after = dump(&path);
    assert_eq!(after.0, PREVIOUS_VERSION);
    assert_eq!(after.1, before.1, "no table of the failed step is left");
    assert!(after.2 == before.2, "the store's rows changed");

    Connection::open(&path).unwrap().execute_batch("DROP TABLE views;").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(describe_store(&store, &grid()), manifest()["store"]);
    drop(store);
    assert_eq!(user_version(&path), wangge_core::SCHEMA_VERSION);
}
