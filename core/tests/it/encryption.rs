//! Encrypted stores (SQLCipher) and their blobs: wrong keys leave files untouched,
//! re-keying, and no personal data in plaintext in any file the store writes.

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use wangge_core::blobs::BlobStore;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::{Error, OpenOptions, Store};

use super::*;

const KEY_A: [u8; 32] = [0xa5; 32];
const KEY_B: [u8; 32] = [0x5b; 32];

fn keyed(key: [u8; 32]) -> OpenOptions {
    OpenOptions { key: Some(key), ..Default::default() }
}

fn open_keyed(path: &Path, key: [u8; 32]) -> wangge_core::Result<Store> {
    Store::open_with(path, keyed(key))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A hash of every file under `dir` with its name: what "left untouched" compares.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = files_under(dir)
        .into_iter()
        .map(|path| (path.clone(), Sha256::digest(std::fs::read(&path).unwrap()).to_vec()))
        .collect();
    files.sort();
    files
}

fn keyed_store_with_a_family(dir: &Path, key: [u8; 32]) -> (PathBuf, ResidentId) {
    let path = dir.join("wangge.db");
    let store = open_keyed(&path, key).unwrap();
    store.add_grid(&grid(), true).unwrap();
    let (_, _, resident) = family(&store);
    store.flush().unwrap();
    (path, resident)
}

#[test]
fn a_wrong_key_is_refused_and_the_file_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (path, resident) = keyed_store_with_a_family(dir.path(), KEY_A);
    let before = snapshot(dir.path());
    assert!(!before.is_empty());
    let header = std::fs::read(&path).unwrap();
    assert_ne!(&header[..16], b"SQLite format 3\0", "an encrypted file has no plaintext header");

    let error = open_keyed(&path, KEY_B).unwrap_err();
    assert!(matches!(error, Error::WrongKey), "{error}");
    assert_eq!(snapshot(dir.path()), before);
    // Without a key the file may be an encrypted store: refused, not moved aside.
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, Error::WrongKey), "{error}");
    assert_eq!(snapshot(dir.path()), before);

    let store = open_keyed(&path, KEY_A).unwrap();
    assert!(store.is_encrypted());
    assert_eq!(store.resident(resident).unwrap().name.as_str(), "陈秀英");
}

#[test]
fn a_key_for_a_plain_store_is_refused_and_the_file_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wangge.db");
    drop(Store::open(&path).unwrap());
    let before = snapshot(dir.path());
    let error = open_keyed(&path, KEY_A).unwrap_err();
    assert!(matches!(error, Error::WrongKey), "{error}");
    assert_eq!(snapshot(dir.path()), before);
    assert!(!Store::open(&path).unwrap().is_encrypted());
}

#[test]
fn rekeying_changes_the_key_that_opens_the_store_and_keeps_its_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let (path, resident) = keyed_store_with_a_family(dir.path(), KEY_A);
    let photo = b"a photo of the stairwell".repeat(50);
    let hash = {
        let store = open_keyed(&path, KEY_A).unwrap();
        let blobs = BlobStore::beside(&store, 1 << 20).unwrap();
        let hash = blobs.put(&photo).unwrap();
        store.rekey(KEY_B).unwrap();
        // Both connections go on working: reads, and writes.
        assert_eq!(store.resident(resident).unwrap().name.as_str(), "陈秀英");
        store.add_building(&grid_code(), new_building("3栋")).unwrap();
        store.flush().unwrap();
        assert_eq!(blobs.get(&hash).unwrap().unwrap(), photo);
        hash
    };
    let error = open_keyed(&path, KEY_A).unwrap_err();
    assert!(matches!(error, Error::WrongKey), "{error}");
    let store = open_keyed(&path, KEY_B).unwrap();
    assert_eq!(store.resident(resident).unwrap().name.as_str(), "陈秀英");
    assert_eq!(store.list_buildings(&grid_code()).unwrap().len(), 2);
    let blobs = BlobStore::beside(&store, 1 << 20).unwrap();
    assert_eq!(blobs.get(&hash).unwrap().unwrap(), photo);
}

/// Regression: `rekey` re-encrypted under the writer lock, released it, and only then
/// replaced the reader: a read in between ran on a connection with the old key.
#[test]
fn reads_while_the_store_is_rekeyed_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, resident) = keyed_store_with_a_family(dir.path(), KEY_A);
    let store = open_keyed(&path, KEY_A).unwrap();
    let done = AtomicBool::new(false);
    let started = Barrier::new(2);
    let (n_reads, errors) = std::thread::scope(|scope| {
        let reads = scope.spawn(|| {
            let (mut n_reads, mut errors) = (0, Vec::new());
            started.wait();
            while !done.load(Ordering::Acquire) {
                match store.resident(resident) {
                    Ok(_) => n_reads += 1,
                    Err(error) => errors.push(error.to_string()),
                }
            }
            (n_reads, errors)
        });
        started.wait();
        for key in [KEY_B, KEY_A].repeat(10) {
            store.rekey(key).unwrap();
        }
        done.store(true, Ordering::Release);
        reads.join().unwrap()
    });
    assert!(errors.is_empty(), "{} failed read(s) of {}, first: {}", errors.len(), n_reads + errors.len(), errors[0]);
    assert!(n_reads > 0);
    drop(store);
    assert_eq!(open_keyed(&path, KEY_A).unwrap().resident(resident).unwrap().name.as_str(), "陈秀英");
}

#[test]
fn a_plain_store_cannot_be_rekeyed() {
    let device = device();
    assert!(matches!(device.store.rekey(KEY_A), Err(Error::WrongKey)));
}

#[test]
fn a_blob_read_with_the_wrong_key_is_an_error_not_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = keyed_store_with_a_family(dir.path(), KEY_A);
    let store = open_keyed(&path, KEY_A).unwrap();
    let blobs = BlobStore::beside(&store, 1 << 20).unwrap();
    let hash = blobs.put(b"the photo of a broken street lamp").unwrap();
    drop(blobs);
    let wrong = BlobStore::open_encrypted(BlobStore::dir_for(&path), 1 << 20, KEY_B).unwrap();
    let error = wrong.get(&hash).unwrap_err();
    assert!(matches!(error, Error::BlobUnreadable { .. }), "{error}");
    // Unkeyed, the file is only ciphertext: not the photo.
    let plain = BlobStore::open(BlobStore::dir_for(&path), 1 << 20).unwrap();
    assert_ne!(plain.get(&hash).unwrap().unwrap(), b"the photo of a broken street lamp");
}

const CANARY_NAMES: [&str; 2] = ["甄金丝雀", "贾银丝雀"];
const CANARY_PHONES: [&str; 2] = ["13987654321", "15911223344"];
const CANARY_BLOB: &str = "金丝雀照片说明-canary-photo-7f3a";

/// The second grid of the canary stores: a demo grid.
fn other_grid_code() -> GridCode {
    GridCode::parse_default("440703001001002").unwrap()
}

/// Writes canary residents (names, ID numbers, phones) to the test grid, a demo grid and
/// a canary blob (pending upload), flushed; returns the canaries.
fn write_canaries(store: &Store) -> Vec<String> {
    let mut canaries: Vec<String> = CANARY_NAMES.iter().chain(&CANARY_PHONES).map(|s| (*s).to_owned()).collect();
    canaries.push(CANARY_BLOB.to_owned());
    store.add_grid(&grid(), true).unwrap();
    let building = store.add_building(&grid_code(), new_building("2栋")).unwrap();
    let household = store.add_household(&grid_code(), new_household(building, "1单元301")).unwrap();
    for (i, (name, phone)) in CANARY_NAMES.iter().zip(CANARY_PHONES).enumerate() {
        let id = id_number("1957-08-21", 457 + 2 * i as u16);
        canaries.push(id.as_str().to_owned());
        let mut resident = new_resident(household, name, Relation::Other);
        resident.id_number = Some(id);
        resident.phone = Some(Phone::parse(phone).unwrap());
        store.add_resident(&grid_code(), resident).unwrap();
    }
    let other = other_grid_code();
    store.add_grid(&Grid::new(other.clone(), "长堤社区第2网格", GridKind::Community).unwrap(), true).unwrap();
    let records = generate_grid(&other, &DemoOptions { households: 5, ..Default::default() });
    let (_, demo) = &records.residents[0];
    canaries.push(demo.name.as_str().to_owned());
    store.import(&other, &records).unwrap();
    let blobs = BlobStore::beside(store, 1 << 20).unwrap();
    blobs.put(canary_photo().as_slice()).unwrap();
    store.flush().unwrap();
    assert_eq!(store.search_residents(CANARY_NAMES[0], 10).unwrap().len(), 1);
    canaries
}

fn canary_photo() -> Vec<u8> {
    CANARY_BLOB.repeat(20).into_bytes()
}

/// Each canary found in a file under `dir`, with the file.
fn scan(dir: &Path, canaries: &[String]) -> Vec<(String, PathBuf)> {
    let mut hits = Vec::new();
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        for canary in canaries {
            if bytes.windows(canary.len()).any(|window| window == canary.as_bytes()) {
                hits.push((canary.clone(), file.clone()));
            }
        }
    }
    hits
}

#[track_caller]
fn assert_no_hits(hits: &[(String, PathBuf)]) {
    assert!(
        hits.is_empty(),
        "plaintext on disk: {} hit(s) in {:?}",
        hits.len(),
        hits.iter().map(|hit| &hit.1).collect::<Vec<_>>()
    );
}

/// Writes the canaries to a store at `dir/wangge.db`, closes everything, and returns the
/// canaries found in the files under `dir`.
fn canary_hits(dir: &Path, key: Option<[u8; 32]>) -> Vec<(String, PathBuf)> {
    let canaries = {
        let store = Store::open_with(dir.join("wangge.db"), OpenOptions { key, ..Default::default() }).unwrap();
        write_canaries(&store)
    };
    let files = files_under(dir);
    assert!(files.len() >= 3, "{files:?}");
    scan(dir, &canaries)
}

/// What a sync does when the server says the worker was reassigned: the test grid's
/// documents leave the device, their unsynced edits exported. Returns the exports.
fn reassign_away(store: &Store) -> Vec<PathBuf> {
    doc_ids().iter().map(|doc| store.purge_document(doc).unwrap().expect("the unsynced edits are exported")).collect()
}

/// Canary names, ID numbers, phones and a photo's bytes, written to a keyed store and its
/// blobs: no file under the store's directory holds any of them in plaintext.
#[test]
fn an_encrypted_store_leaves_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    assert_no_hits(&canary_hits(dir.path(), Some(KEY_A)));
}

/// The control: the same scan of a plain store finds the canaries (so the scan works).
#[test]
fn the_canary_scan_finds_them_in_a_plain_store() {
    let dir = tempfile::tempdir().unwrap();
    let hits = canary_hits(dir.path(), None);
    for canary in CANARY_NAMES.iter().chain(&CANARY_PHONES).chain([&CANARY_BLOB]) {
        assert!(hits.iter().any(|(hit, _)| hit == canary), "{canary} not found in a plain store");
    }
}

/// A reassigned worker's unsynced edits go to an export beside the store. In a keyed
/// store it is sealed: the canary scan finds nothing in any file, the exports included;
/// and it reads back with the store's key (re-keyed meanwhile), whole, for a device that
/// holds the grid to apply.
#[test]
fn a_keyed_stores_exports_of_unsynced_edits_are_sealed_and_read_back_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wangge.db");
    let (canaries, exports) = {
        let store = open_keyed(&path, KEY_A).unwrap();
        let canaries = write_canaries(&store);
        (canaries, reassign_away(&store))
    };
    assert_eq!(exports.len(), 2);
    assert!(exports.iter().all(|export| files_under(dir.path()).contains(export)));
    assert_no_hits(&scan(dir.path(), &canaries));

    let store = open_keyed(&path, KEY_A).unwrap();
    store.rekey(KEY_B).unwrap();
    let other = device();
    for export in &exports {
        let removed = store.read_removed_changes(export).unwrap();
        assert!(doc_ids().contains(&removed.doc), "{removed:?}");
        assert!(!removed.changes.is_empty());
        other.store.apply_changes(&removed.doc, &removed.changes).unwrap();
    }
    let [hit] = other.store.search_residents(CANARY_NAMES[0], 10).unwrap().try_into().unwrap();
    let resident = other.store.resident(hit.id).unwrap();
    assert_eq!(resident.sensitive.unwrap().phone.unwrap().as_str(), CANARY_PHONES[0]);
}

/// The control: a plain store's export holds the canaries (so the scan reads exports).
#[test]
fn the_canary_scan_finds_them_in_a_plain_stores_export() {
    let dir = tempfile::tempdir().unwrap();
    let (canaries, exports) = {
        let store = Store::open(dir.path().join("wangge.db")).unwrap();
        let canaries = write_canaries(&store);
        (canaries, reassign_away(&store))
    };
    let hits = scan(dir.path(), &canaries);
    for canary in [CANARY_NAMES[0], CANARY_PHONES[0]] {
        assert!(hits.iter().any(|(hit, file)| hit == canary && exports.contains(file)), "{canary}: {hits:?}");
    }
}

/// An export does not open with another store's key, altered, or in a plain store: each
/// is `ExportUnreadable`, never garbage.
#[test]
fn an_export_read_with_the_wrong_key_or_altered_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = keyed_store_with_a_family(dir.path(), KEY_A);
    let store = open_keyed(&path, KEY_A).unwrap();
    let [register, _] = doc_ids();
    let export = store.purge_document(&register).unwrap().unwrap();
    let name = export.file_name().unwrap();
    assert_eq!(store.read_removed_changes(&export).unwrap().doc, register);

    #[track_caller]
    fn check_unreadable(result: wangge_core::Result<wangge_core::RemovedChanges>) {
        let error = result.unwrap_err();
        assert!(matches!(error, Error::ExportUnreadable { .. }), "{error}");
    }
    // Another keyed store, even under the same key, has its own blob key.
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = open_keyed(&elsewhere.path().join("wangge.db"), KEY_A).unwrap();
    check_unreadable(stranger.read_removed_changes(&export));
    check_unreadable(device().store.read_removed_changes(&export));
    let mut altered = std::fs::read(&export).unwrap();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    let copy = elsewhere.path().join(name);
    std::fs::write(&copy, &altered).unwrap();
    check_unreadable(store.read_removed_changes(&copy));
    // Renamed to another document: its name is bound to its content.
    let renamed = elsewhere.path().join(name.to_string_lossy().replace("-register-", "-sensitive-"));
    std::fs::copy(&export, &renamed).unwrap();
    check_unreadable(store.read_removed_changes(&renamed));
    check_unreadable(store.read_removed_changes(elsewhere.path().join("wangge.db")));
}

/// Apps that shipped before encryption: a plain store with canaries, captures not yet
/// synced (one not even flushed), blobs and an export, encrypted in place. It opens with
/// the key and holds the same records, pending count, device and blobs; without the key
/// it opens no more; no file under its directory holds a canary, and the old plain file's
/// content was zeroed.
#[test]
fn a_plain_store_encrypted_in_place_keeps_everything_and_leaves_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wangge.db");
    let other_register = DocId::new(DocKind::Register, &other_grid_code());
    let (canaries, projection, n_pending, actor, export) = {
        let store = Store::open(&path).unwrap();
        let canaries = write_canaries(&store);
        let export = store.purge_document(&other_register).unwrap().unwrap();
        store.add_building(&grid_code(), new_building("9栋")).unwrap();
        (canaries, projection_dump(&store), store.pending_changes().unwrap(), store.device_actor(), export)
    };
    assert!(n_pending > 2);
    assert!(Store::is_plain_file(&path).unwrap());
    assert!(!scan(dir.path(), &canaries).is_empty(), "the plain store holds the canaries");
    // The plain file as it was, seen after the conversion through this handle.
    let plain_file = std::fs::File::open(&path).unwrap();

    Store::encrypt_plain(&path, KEY_A).unwrap();

    let mut old_content = Vec::new();
    std::io::Read::read_to_end(&mut &plain_file, &mut old_content).unwrap();
    assert!(!old_content.is_empty() && old_content.iter().all(|byte| *byte == 0), "the old plain file was zeroed");
    assert_no_hits(&scan(dir.path(), &canaries));
    assert!(!Store::is_plain_file(&path).unwrap());
    assert!(!dir.path().join("wangge.db.encrypting").exists());
    assert!(matches!(Store::open(&path), Err(Error::WrongKey)));
    assert!(matches!(open_keyed(&path, KEY_B), Err(Error::WrongKey)));

    let store = open_keyed(&path, KEY_A).unwrap();
    assert!(store.is_encrypted());
    assert_eq!(store.device_actor(), actor);
    assert_eq!(projection_dump(&store), projection);
    assert_eq!(store.pending_changes().unwrap(), n_pending);
    assert_eq!(store.search_residents(CANARY_NAMES[0], 10).unwrap().len(), 1);
    let blobs = BlobStore::beside(&store, 1 << 20).unwrap();
    let photo = wangge_core::blobs::BlobHash::of(&canary_photo());
    assert_eq!(blobs.get(&photo).unwrap().unwrap(), canary_photo());
    assert_eq!(blobs.pending_uploads().unwrap(), vec![photo]);
    let removed = store.read_removed_changes(&export).unwrap();
    assert_eq!(removed.doc, other_register);
    // Documents load, flush and take new captures.
    store.flush().unwrap();
    store.add_building(&grid_code(), new_building("10栋")).unwrap();
    assert_eq!(store.list_buildings(&grid_code()).unwrap().len(), 3);
    assert_eq!(store.pending_changes().unwrap(), n_pending + 1);
}

/// Converting an encrypted store, a store open in this process, or no store at all is
/// refused with its own error, and changes no file.
#[test]
fn converting_an_encrypted_an_open_or_a_missing_store_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = keyed_store_with_a_family(dir.path(), KEY_A);
    let before = snapshot(dir.path());
    let error = Store::encrypt_plain(&path, KEY_A).unwrap_err();
    assert!(matches!(error, Error::AlreadyEncrypted), "{error}");
    assert_eq!(snapshot(dir.path()), before);
    let error = Store::encrypt_plain(&path, KEY_B).unwrap_err();
    assert!(matches!(error, Error::WrongKey), "{error}");
    assert_eq!(snapshot(dir.path()), before);

    let plain_dir = tempfile::tempdir().unwrap();
    let plain = plain_dir.path().join("wangge.db");
    let store = Store::open(&plain).unwrap();
    store.add_grid(&grid(), true).unwrap();
    family(&store);
    store.flush().unwrap();
    let before = snapshot(plain_dir.path());
    let error = Store::encrypt_plain(&plain, KEY_A).unwrap_err();
    assert!(matches!(error, Error::AlreadyOpen), "{error}");
    assert_eq!(snapshot(plain_dir.path()), before);
    drop(store);
    assert!(Store::is_plain_file(&plain).unwrap());

    let absent = dir.path().join("absent.db");
    let error = Store::encrypt_plain(&absent, KEY_A).unwrap_err();
    assert!(matches!(error, Error::Io(ref io) if io.kind() == std::io::ErrorKind::NotFound), "{error}");
    assert!(!absent.exists());
}

/// A conversion cut off before its rename leaves its copy beside the plain store: the
/// plain store still opens and works, and the next conversion starts over and succeeds.
#[test]
fn a_conversion_cut_off_before_the_rename_leaves_the_plain_store_usable_and_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wangge.db");
    let resident = {
        let store = Store::open(&path).unwrap();
        store.add_grid(&grid(), true).unwrap();
        family(&store).2
    };
    // What a crash before the rename leaves: part of the encrypted copy and its journal.
    std::fs::write(dir.path().join("wangge.db.encrypting"), vec![0x5a; 3 * 4096]).unwrap();
    std::fs::write(dir.path().join("wangge.db.encrypting-journal"), b"cut off").unwrap();
    {
        let store = Store::open(&path).unwrap();
        assert!(!store.is_encrypted());
        assert_eq!(store.resident(resident).unwrap().name.as_str(), "陈秀英");
        store.add_building(&grid_code(), new_building("3栋")).unwrap();
    }
    assert!(Store::is_plain_file(&path).unwrap());

    Store::encrypt_plain(&path, KEY_A).unwrap();
    assert!(!dir.path().join("wangge.db.encrypting").exists());
    assert!(!dir.path().join("wangge.db.encrypting-journal").exists());
    let store = open_keyed(&path, KEY_A).unwrap();
    assert_eq!(store.resident(resident).unwrap().name.as_str(), "陈秀英");
    assert_eq!(store.list_buildings(&grid_code()).unwrap().len(), 2);
}

/// A plain store left by a crash, its last commits still in the write-ahead log: the
/// conversion takes them along, and zeroes the old log too.
#[test]
fn a_plain_store_with_a_log_left_by_a_crash_is_converted_whole() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let path = crashed.path().join("wangge.db");
    let (canaries, projection) = {
        let store = Store::open(dir.path().join("wangge.db")).unwrap();
        let canaries = write_canaries(&store);
        // The files as a power cut would leave them: the database and its log.
        for suffix in ["", "-wal"] {
            std::fs::copy(
                dir.path().join(format!("wangge.db{suffix}")),
                crashed.path().join(format!("wangge.db{suffix}")),
            )
            .unwrap();
        }
        (canaries, projection_dump(&store))
    };
    let log = crashed.path().join("wangge.db-wal");
    assert!(std::fs::metadata(&log).unwrap().len() > 0, "the last commits are in the log");
    let old_log = std::fs::File::open(&log).unwrap();

    Store::encrypt_plain(&path, KEY_A).unwrap();

    let mut old_content = Vec::new();
    std::io::Read::read_to_end(&mut &old_log, &mut old_content).unwrap();
    assert!(!old_content.is_empty() && old_content.iter().all(|byte| *byte == 0), "the old log was zeroed");
    assert_no_hits(&scan(crashed.path(), &canaries));
    let store = open_keyed(&path, KEY_A).unwrap();
    assert_eq!(projection_dump(&store), projection);
}
