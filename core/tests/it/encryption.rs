//! Encrypted stores (SQLCipher) and their blobs: wrong keys leave files untouched,
//! re-keying, and no personal data in plaintext in any file the store writes.

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use wangge_core::blobs::BlobStore;
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

/// Writes canary residents, a demo grid and a canary blob, closes everything, and returns
/// the canaries and the files under `dir` that hold one.
fn canary_hits(dir: &Path, key: Option<[u8; 32]>) -> Vec<(String, PathBuf)> {
    let path = dir.join("wangge.db");
    let mut canaries: Vec<String> = CANARY_NAMES.iter().chain(&CANARY_PHONES).map(|s| (*s).to_owned()).collect();
    canaries.push(CANARY_BLOB.to_owned());
    {
        let store = Store::open_with(&path, OpenOptions { key, ..Default::default() }).unwrap();
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
        let other = GridCode::parse_default("440703001001002").unwrap();
        store.add_grid(&Grid::new(other.clone(), "长堤社区第2网格", GridKind::Community).unwrap(), true).unwrap();
        let records = generate_grid(&other, &DemoOptions { households: 5, ..Default::default() });
        let (_, demo) = &records.residents[0];
        canaries.push(demo.name.as_str().to_owned());
        store.import(&other, &records).unwrap();
        let blobs = BlobStore::beside(&store, 1 << 20).unwrap();
        blobs.put(CANARY_BLOB.repeat(20).as_bytes()).unwrap();
        store.flush().unwrap();
        assert_eq!(store.search_residents(CANARY_NAMES[0], 10).unwrap().len(), 1);
    }
    let files = files_under(dir);
    assert!(files.len() >= 3, "{files:?}");
    let mut hits = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for canary in &canaries {
            if bytes.windows(canary.len()).any(|window| window == canary.as_bytes()) {
                hits.push((canary.clone(), file.clone()));
            }
        }
    }
    hits
}

/// Canary names, ID numbers, phones and a photo's bytes, written to a keyed store and its
/// blobs: no file under the store's directory holds any of them in plaintext.
#[test]
fn an_encrypted_store_leaves_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let hits = canary_hits(dir.path(), Some(KEY_A));
    assert!(
        hits.is_empty(),
        "plaintext on disk: {} hit(s) in {:?}",
        hits.len(),
        hits.iter().map(|hit| &hit.1).collect::<Vec<_>>()
    );
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
