//! Disk full and I/O errors: a device's store on a disk (`wangge-fault-vfs`) whose writes,
//! syncs or truncates fail — `SQLITE_FULL`, or an I/O error — from a random point within a
//! call (after 0 to 7 such operations succeeded), once or until space returns. The calls:
//! a new resident, a changed phone, a flush, a sync with a real server, a checkpoint from a
//! second connection. After each:
//!
//! - a failed call returned `Error::Sql` with `DiskFull` or `SystemIoFailure` (no panic:
//!   a panic fails the test);
//! - a failed capture is whole or absent: a new resident with both its name and its phone
//!   or not at all, a phone old or new; the crash test's checks pass (integrity ok,
//!   documents load, every acknowledged edit there, projection = rebuild);
//! - the same `Store` goes on at once with space back (every 25 cases it is reopened).
//!
//! At the end the device syncs until nothing is pending, and a second device holds exactly
//! the device's residents and phones; the store, reopened, captures and syncs again.
//!
//! `DISK_FAULT_CASES` (default 120); the seed is printed and `DISK_FAULT_SEED=<n>` replays
//! the faults (the server's answers do not depend on it).
//!
//! The blob store's files (photos) are not SQLite's: `blobs::BLOB_FILE_FAULT`, a hidden
//! hook, fails their writes, syncs, renames, directory syncs and reads with ENOSPC or EIO.
//! For each of the first four, on the pending marker or on the blob: a put returns
//! `Error::Io` saying so and leaves no blob, marker or temporary file; with space back the
//! same (or a reopened) store puts the photo, an incident names it, it uploads; the center,
//! its own downloads failing the same way, gets an error, then the photo. A directory sync
//! that is unsupported (EINVAL) does not fail a put; a failing read fails `get` and the
//! upload, and the photo still waits for upload. No randomness: every case runs.

#![allow(clippy::unwrap_used)]

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use support::{Acked, check, name_of, resident};
use wangge_core::blobs::{BLOB_FILE_FAULT, BlobFileOp, BlobHash, BlobStore};
use wangge_core::incident::Actor;
use wangge_core::incident::roles::Role;
use wangge_core::model::*;
use wangge_core::sync::http::SyncClient;
use wangge_core::{Error, IncidentFilter, Store};
use wangge_fault_vfs::{Disk, Failure, Fault, Op};
use wangge_tests::{TestDevice, TestServer, photo, report_naming};

/// A device's residents and phones, as its projection holds them.
fn residents(store: &Store) -> Vec<(String, String, Option<String>)> {
    store
        .with_reader(|conn| {
            conn.prepare(
                "SELECT residents.id, residents.name, resident_details.phone FROM residents
                 LEFT JOIN resident_details ON resident_details.resident_id = residents.id ORDER BY residents.id",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect()
        })
        .unwrap()
}

/// The error a failing disk may give: SQLite's, saying so.
#[track_caller]
fn assert_disk_error(error: &Error, what: &str) {
    let code = match error {
        Error::Sql(error) => error.sqlite_error_code(),
        _ => None,
    };
    assert!(
        matches!(code, Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)),
        "{what} on a failing disk: {error:?}, not a disk error"
    );
}

fn checkpoint(path: &Path) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_gives_an_error_leaves_captures_whole_or_absent_and_work_resumes() {
    let cases: u64 = std::env::var("DISK_FAULT_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(120);
    let seed: u64 = std::env::var("DISK_FAULT_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or_else(rand::random);
    println!("disk full: {cases} cases, seed {seed} (DISK_FAULT_SEED={seed} replays it)");
    let started = Instant::now();
    wangge_fault_vfs::install();
    let mut rng = StdRng::seed_from_u64(seed);
    let server = TestServer::start().await;
    server.grid(support::GRID, "长堤社区第1网格");
    let grid = support::grid();
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::attach(dir.path(), rng.random()).unwrap();
    let path = dir.path().join("device.db");
    let mut store = Store::open(&path).unwrap();
    let client = SyncClient::new(&server.url).unwrap().with_retries(0, Duration::from_millis(10));
    client.enroll(&store, &server.worker("w1", "full_time_worker", None, &[&grid]), "device").await.unwrap();
    client.sync(&store, None).await.unwrap();

    let mut acked: BTreeMap<ResidentId, Acked> = BTreeMap::new();
    let (mut n_errors, mut n_absent, mut n_present) = (0, 0, 0);
    let mut errors_by_call: BTreeMap<&str, usize> = BTreeMap::new();
    for n in 0..cases {
        if n % 25 == 24 {
            drop(store);
            store = Store::open(&path).unwrap();
        }
        let op = [Op::Write, Op::Sync, Op::Truncate][rng.random_range(0..3)];
        let failure = if rng.random_bool(0.5) { Failure::Full } else { Failure::Io };
        let _ = (op, failure);
        if std::env::var("NOFAULT").is_err() {
            disk.inject(Fault { op, failure, skip: rng.random_range(0..8), once: rng.random_bool(0.3) });
        }
        let target = if acked.is_empty() { None } else { acked.keys().nth(rng.random_range(0..acked.len())).copied() };
        let (call, result) = match (rng.random_range(0..10), target) {
            (0, _) => ("flush", store.flush()),
            (1, _) => ("checkpoint", checkpoint(&path).map_err(Error::from)),
            (2 | 3, _) => ("sync", client.sync(&store, None).await.map(|_| ())),
            (4..=6, Some(id)) => {
                let phone = format!("139{n:08}");
                let patch = ResidentPatch { phone: Some(Some(Phone::parse(&phone).unwrap())), ..Default::default() };
                let result = store.update_resident(id, patch);
                if result.is_ok() {
                    let acked = acked.get_mut(&id).unwrap();
                    (acked.phone, acked.phone_n) = (phone, Some(n));
                }
                ("phone", result)
            }
            _ => {
                let result = store.add_resident(&grid, resident(&name_of(n), "13800138000"));
                match &result {
                    Ok(id) => {
                        acked.insert(*id, Acked { name: name_of(n), phone: "13800138000".to_owned(), phone_n: None });
                    }
                    Err(_) => {
                        // Whole or absent: both its name and its phone, or nothing.
                        let found: Vec<_> =
                            residents(&store).into_iter().filter(|(_, name, _)| *name == name_of(n)).collect();
                        match found.as_slice() {
                            [] => n_absent += 1,
                            [(_, _, phone)] => {
                                assert_eq!(phone.as_deref(), Some("13800138000"), "case {n}: half a new resident");
                                n_present += 1;
                            }
                            _ => panic!("case {n}: a failed capture wrote {} residents", found.len()),
                        }
                    }
                }
                ("resident", result.map(|_| ()))
            }
        };
        // Space returns.
        disk.clear();
        // Shown when the test fails.
        println!("case {n}: {call} on a disk failing {failure:?} on {op:?}: {:?}", result.as_ref().err());
        if let Err(error) = &result {
            assert_disk_error(error, call);
            n_errors += 1;
            *errors_by_call.entry(call).or_default() += 1;
        }
        let held = check(&store, &acked);
        assert!(
            held >= acked.len(),
            "case {n} (DISK_FAULT_SEED={seed}): {held} residents, {} acknowledged",
            acked.len()
        );
    }

    // Space is back: everything pending reaches the server and another device.
    let mut n_syncs = 0;
    while store.pending_changes().unwrap() > 0 {
        client.sync(&store, None).await.unwrap();
        n_syncs += 1;
        assert!(n_syncs < 10, "edits stay pending after {n_syncs} syncs with space back");
    }
    let observer = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&grid])).await;
    observer.sync().await;
    assert_eq!(residents(&observer.store), residents(&store), "the other device holds other residents");

    // And a reopened store goes on.
    drop(store);
    let store = Store::open(&path).unwrap();
    check(&store, &acked);
    store.add_resident(&grid, resident(&name_of(cases), "13800138000")).unwrap();
    client.sync(&store, None).await.unwrap();
    assert_eq!(store.pending_changes().unwrap(), 0);
    observer.sync().await;
    assert_eq!(residents(&observer.store), residents(&store));
    println!(
        "disk full: {cases} cases, {n_errors} calls failed ({errors_by_call:?}), {} operations failed on the disk; \
         failed new residents: {n_absent} absent, {n_present} whole; {} acknowledged residents on both devices; in {:.1} s",
        disk.n_failed(),
        acked.len(),
        started.elapsed().as_secs_f64()
    );
}

// ---- The blob store's files ----

/// How an injected blob file operation fails: as the kernel says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlobFailure {
    /// ENOSPC.
    Full,
    /// EIO.
    Io,
    /// EINVAL from a directory's fsync: a file system that cannot sync directories.
    Unsupported,
}

const ENOSPC: i32 = 28;
const EIO: i32 = 5;
const EINVAL: i32 = 22;

/// An armed fault: `op` on files under `dir` succeeds `skip` more times, then fails every
/// time until disarmed.
#[derive(Debug)]
struct BlobFault {
    dir: PathBuf,
    op: BlobFileOp,
    skip: u32,
    failure: BlobFailure,
}

static BLOB_FAULT: Mutex<Option<BlobFault>> = Mutex::new(None);
static N_BLOB_FAULTS: AtomicUsize = AtomicUsize::new(0);

/// The hook the core consults before each blob file operation.
fn blob_fault(op: BlobFileOp, path: &Path) -> Option<std::io::Error> {
    let mut armed = BLOB_FAULT.lock().unwrap_or_else(PoisonError::into_inner);
    let fault = armed.as_mut()?;
    if fault.op != op || !path.starts_with(&fault.dir) {
        return None;
    }
    if fault.skip > 0 {
        fault.skip -= 1;
        return None;
    }
    N_BLOB_FAULTS.fetch_add(1, Ordering::Relaxed);
    Some(std::io::Error::from_raw_os_error(match fault.failure {
        BlobFailure::Full => ENOSPC,
        BlobFailure::Io => EIO,
        BlobFailure::Unsupported => EINVAL,
    }))
}

fn arm(dir: &Path, op: BlobFileOp, skip: u32, failure: BlobFailure) {
    let _ = BLOB_FILE_FAULT.set(blob_fault);
    *BLOB_FAULT.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(BlobFault { dir: dir.to_owned(), op, skip, failure });
}

fn disarm() {
    *BLOB_FAULT.lock().unwrap_or_else(PoisonError::into_inner) = None;
}

/// The error a blob file operation failing with `failure` gives: `Error::Io`, saying so.
#[track_caller]
fn assert_blob_error(error: &Error, failure: BlobFailure, what: &str) {
    let Error::Io(io) = error else { panic!("{what}: {error:?}, not an I/O error") };
    match failure {
        BlobFailure::Full => assert_eq!(io.kind(), std::io::ErrorKind::StorageFull, "{what}: {io:?}"),
        BlobFailure::Io => assert_eq!(io.raw_os_error(), Some(EIO), "{what}: {io:?}"),
        BlobFailure::Unsupported => panic!("{what}: {io:?} from an unsupported directory sync"),
    }
}

/// Files in a blob directory (and its `pending/`) whose name starts with `prefix`.
fn files_named(dir: &Path, prefix: &str) -> Vec<String> {
    [dir.to_owned(), dir.join("pending")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// What the app does with a photo it stored: an incident report that names it.
fn report_with_photo(store: &Store, grid: &GridCode, photo: &BlobHash) -> IncidentId {
    let me = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
    let item = store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    store.report_incident(report_naming(grid, &item, photo), me).unwrap()
}

/// The photos the device's incidents name.
fn photos_named(store: &Store) -> Vec<BlobHash> {
    let mut photos = Vec::new();
    for incident in store.incidents(&IncidentFilter::default(), store.now()).unwrap() {
        for (key, value) in store.incident_report(incident.id).unwrap() {
            if key == "photos" {
                photos.extend(value.split(',').map(|hash| BlobHash::parse(hash).unwrap()));
            }
        }
    }
    photos
}

/// After a failed put: no blob, no marker, no temporary file, nothing waiting to upload,
/// and every photo an incident names is on the device.
#[track_caller]
fn assert_nothing_half_stored(store: &Store, blobs: &BlobStore, hash: &BlobHash, what: &str) {
    assert!(!blobs.contains(hash), "{what}: the blob stayed");
    assert!(!blobs.is_pending(hash), "{what}: its marker stayed");
    assert_eq!(files_named(blobs.dir(), "tmp-"), Vec::<String>::new(), "{what}: temporary files stayed");
    assert_eq!(blobs.pending_uploads().unwrap(), vec![], "{what}: something waits for upload");
    for named in photos_named(store) {
        assert!(blobs.contains(&named), "{what}: an incident names {named}, not on the device");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_on_a_failing_disk_gives_an_error_leaves_nothing_half_stored_and_is_stored_and_synced_after() {
    let started = Instant::now();
    let server = TestServer::start().await;
    let grid = server.grid(support::GRID, "长堤社区第1网格");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.db");
    let mut store = Store::open(&path).unwrap();
    let client = SyncClient::new(&server.url).unwrap().with_retries(0, Duration::from_millis(10));
    client.enroll(&store, &server.worker("w1", "full_time_worker", None, &[&grid]), "device").await.unwrap();
    client.sync(&store, None).await.unwrap();
    let center = TestDevice::enrolled(&server, &server.worker("c1", "center_staff_township", None, &[&grid])).await;
    let center_blobs = BlobStore::beside(&center.store, 64 << 20).unwrap();
    let mut blobs = BlobStore::beside(&store, 64 << 20).unwrap();

    let mut n_cases = 0;
    for op in [BlobFileOp::Write, BlobFileOp::Sync, BlobFileOp::Rename, BlobFileOp::SyncDirectory] {
        // A put writes the pending marker, then the blob: the fault hits one or the other.
        for (skip, file) in [(0, "marker"), (1, "blob")] {
            for failure in [BlobFailure::Full, BlobFailure::Io] {
                n_cases += 1;
                let what = format!("a put failing {failure:?} on the {file}'s {op:?}");
                let bytes = photo(n_cases, 40_000);
                arm(blobs.dir(), op, skip, failure);
                let result = blobs.put(&bytes);
                // The app names the photo in a report only once it has a name.
                if let Ok(hash) = &result {
                    report_with_photo(&store, &grid, hash);
                }
                disarm();
                assert_blob_error(&result.unwrap_err(), failure, &what);
                let hash = BlobHash::of(&bytes);
                assert_nothing_half_stored(&store, &blobs, &hash, &what);

                // Space returns: the same store, or every other time a reopened one.
                if n_cases % 2 == 0 {
                    drop(blobs);
                    drop(store);
                    store = Store::open(&path).unwrap();
                    blobs = BlobStore::beside(&store, 64 << 20).unwrap();
                    assert_nothing_half_stored(&store, &blobs, &hash, &format!("{what}, reopened"));
                }
                assert_eq!(blobs.put(&bytes).unwrap(), hash, "{what}: then with space back");
                report_with_photo(&store, &grid, &hash);
                client.sync(&store, None).await.unwrap();
                let uploads = client.upload_pending_blobs(&store, &blobs).await.unwrap();
                assert_eq!(uploads.n_blobs, 1, "{what}: uploaded after");
                assert_eq!(blobs.pending_uploads().unwrap(), vec![]);

                // The center downloads it on a failing disk of its own: an error, nothing
                // stored; then the photo.
                center.sync().await;
                let what = format!("a download failing {failure:?} on {op:?}");
                arm(center_blobs.dir(), op, 0, failure);
                let result = center.client.download_blob(&center.store, &center_blobs, &hash).await;
                disarm();
                assert_blob_error(&result.unwrap_err(), failure, &what);
                assert!(!center_blobs.contains(&hash), "{what}: stored");
                assert_eq!(files_named(center_blobs.dir(), "tmp-"), Vec::<String>::new(), "{what}: temporary files");
                let downloaded = center.client.download_blob(&center.store, &center_blobs, &hash).await.unwrap();
                assert!(downloaded == bytes, "{what}: other bytes downloaded after");
                assert!(center_blobs.get(&hash).unwrap() == Some(bytes), "{what}: other bytes stored after");
            }
        }
    }

    // A file system that cannot sync a directory (EINVAL): the put succeeds.
    let bytes = photo(1000, 40_000);
    arm(blobs.dir(), BlobFileOp::SyncDirectory, 0, BlobFailure::Unsupported);
    let result = blobs.put(&bytes);
    disarm();
    let hash = result.expect("a put where directories cannot be synced");
    assert!(blobs.get(&hash).unwrap() == Some(bytes), "the photo stored without a directory sync");
    report_with_photo(&store, &grid, &hash);

    // Reading a blob back fails: an error, not a panic, and the photo waits for upload.
    for failure in [BlobFailure::Io, BlobFailure::Full] {
        let what = format!("a read failing {failure:?}");
        arm(blobs.dir(), BlobFileOp::Read, 0, failure);
        let read = blobs.get(&hash);
        let uploaded = client.upload_pending_blobs(&store, &blobs).await;
        disarm();
        assert_blob_error(&read.unwrap_err(), failure, &what);
        assert_blob_error(&uploaded.unwrap_err(), failure, &format!("an upload with {what}"));
        assert_eq!(blobs.pending_uploads().unwrap(), vec![hash.clone()], "{what}: the photo no longer waits");
    }
    client.sync(&store, None).await.unwrap();
    assert_eq!(client.upload_pending_blobs(&store, &blobs).await.unwrap().n_blobs, 1);

    // Everything any incident names is on both devices, after a reopen too.
    drop(blobs);
    drop(store);
    let store = Store::open(&path).unwrap();
    let blobs = BlobStore::beside(&store, 64 << 20).unwrap();
    center.sync().await;
    let named = photos_named(&store);
    assert_eq!(named.len(), n_cases as usize + 1);
    assert_eq!(photos_named(&center.store).len(), named.len(), "the center has other incidents");
    for hash in &named {
        let here = blobs.get(hash).unwrap().expect("a named photo on the device");
        let there = center.client.download_blob(&center.store, &center_blobs, hash).await.unwrap();
        assert!(here == there, "{hash} differs between the devices");
    }
    println!(
        "blob faults: {n_cases} failed puts, {n_cases} failed downloads, 2 failed reads and uploads, {} operations failed; all named photos on both devices; in {:.1} s",
        N_BLOB_FAULTS.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}
