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

#![allow(clippy::unwrap_used)]

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use support::{Acked, check, name_of, resident};
use wangge_core::model::*;
use wangge_core::sync::http::SyncClient;
use wangge_core::{Error, Store};
use wangge_fault_vfs::{Disk, Failure, Fault, Op};
use wangge_tests::{TestDevice, TestServer};

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
