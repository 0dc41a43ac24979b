//! Opening stores: migrations, newer versions, files that are not databases.

use rusqlite::Connection;
use wangge_core::{Error, SCHEMA_VERSION, Store};

use super::*;

#[test]
fn store_written_by_a_newer_version_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wangge.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE future (x); INSERT INTO future VALUES (1);").unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let error = Store::open(&path).unwrap_err();
    assert!(
        matches!(error, Error::IncompatibleVersion { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // Not even a read-only connection was opened: it would have made these.
    assert!(!dir.path().join("wangge.db-wal").exists());
    assert!(!dir.path().join("wangge.db-shm").exists());
}

#[test]
fn file_that_is_not_a_database_is_moved_aside_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wangge.db");
    let garbage = b"this is a photo, not a database; it is also longer than a header".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let error = Store::open(&path).unwrap_err();
    let Error::Corrupt { moved_to } = error else { panic!("expected Corrupt, got {error}") };
    assert_eq!(std::fs::read(&moved_to).unwrap(), garbage);
    assert!(!path.exists());
    // A new store can be opened where the old one was.
    let store = Store::open(&path).unwrap();
    store.add_grid(&grid(), true).unwrap();
}

#[test]
fn empty_file_becomes_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wangge.db");
    std::fs::write(&path, b"").unwrap();
    let store = Store::open(&path).unwrap();
    store.add_grid(&grid(), true).unwrap();
    assert!(store.list_households(&grid_code()).unwrap().is_empty());
}

#[test]
fn store_opens_concurrently_read_while_writing() {
    let device = device();
    let (_, _, resident) = family(&device.store);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for i in 0..20u32 {
                let phone = wangge_core::model::Phone::parse(&format!("1370000{i:04}")).unwrap();
                device
                    .store
                    .update_resident(
                        resident,
                        wangge_core::model::ResidentPatch { phone: Some(Some(phone)), ..Default::default() },
                    )
                    .unwrap();
            }
        });
        for _ in 0..20 {
            assert_eq!(device.store.list_households(&grid_code()).unwrap().len(), 1);
        }
        writer.join().unwrap();
    });
}

#[test]
fn a_store_already_open_in_this_process_cannot_be_opened_twice() {
    let device = device();
    let path = device.store.path().to_path_buf();
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, Error::AlreadyOpen), "{error}");
    drop(device.store);
    Store::open(&path).unwrap();
}
