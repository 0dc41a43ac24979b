//! Power loss: the store's SQLite files go through a VFS shim (`wangge-fault-vfs`) that
//! keeps what a disk holds durably. At a random write, truncate or sync the power goes:
//! synced data stays, each write since its file's last sync is kept, dropped or torn
//! (512-byte sectors kept, dropped or garbage), files never synced may be gone, and the
//! `-shm` file is left, zeroed or gone. The store is then reopened through `Store::open`
//! from that image and must pass the crash test's checks (`support::check`): every
//! acknowledged edit there, `PRAGMA integrity_check` ok, every document loads, the
//! projection equals a rebuild.
//!
//! The workload between cuts: new residents and changed phones (captures), flushes (the
//! captures made into automerge changes), and now and then a checkpoint from a second
//! connection (what the writer's auto-checkpoint does every 1,000 pages), so that cuts also
//! land in checkpoints and in a WAL that starts over. One cut in seven lands while the
//! store reopens (`Store::open` writes: the migration check, recovery).
//!
//! `POWER_LOSS_CUTS` (default 200) cuts; the seed is printed and `POWER_LOSS_SEED=<n>`
//! replays a run exactly (one thread, no timing involved).

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use support::{Acked, check, grid, name_of, resident};
use wangge_core::model::*;
use wangge_core::{Error, Store};
use wangge_fault_vfs::{CutStats, Disk};

const STORE: &str = "device.db";
/// Cuts survived by one store before the next starts empty (checks cost more as it grows).
const CUTS_PER_STORE: usize = 25;
/// How far into a round's disk operations the cut may land (a capture takes about 5).
const MAX_EVENTS: u64 = 120;

fn seed_from_env(var: &str) -> u64 {
    std::env::var(var).ok().and_then(|n| n.parse().ok()).unwrap_or_else(rand::random)
}

/// A new store with its grid, written and closed before any disk model sees it.
fn fresh_store(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let store = Store::open(dir.join(STORE)).unwrap();
    store.add_grid(&Grid::new(grid(), "长堤社区第1网格", GridKind::Community).unwrap(), true).unwrap();
}

/// Runs a checkpoint from a connection of its own, as another process could.
fn checkpoint(path: &Path, mode: &str) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
}

/// Captures (and flushes and checkpoints) until a call fails; records what was
/// acknowledged and returns how many edits were.
fn work_until_the_power_goes(
    store: &Store,
    disk: &Disk,
    rng: &mut StdRng,
    acked: &mut BTreeMap<ResidentId, Acked>,
    next: &mut u64,
) -> usize {
    let path = disk.dir().join(STORE);
    let mut n_acked = 0;
    loop {
        let n = *next;
        *next += 1;
        let target = if acked.is_empty() { None } else { acked.keys().nth(rng.random_range(0..acked.len())).copied() };
        let step = rng.random_range(0..20);
        let result = match (step, target) {
            (0, _) => store.flush(),
            (1, _) => checkpoint(&path, if rng.random_bool(0.5) { "PASSIVE" } else { "TRUNCATE" }).map_err(Error::from),
            (2..=7, Some(id)) => {
                let phone = format!("139{:08}", n % 100_000_000);
                let patch = ResidentPatch { phone: Some(Some(Phone::parse(&phone).unwrap())), ..Default::default() };
                store.update_resident(id, patch).map(|()| {
                    let acked = acked.get_mut(&id).unwrap();
                    (acked.phone, acked.phone_n) = (phone, Some(n));
                })
            }
            _ => store.add_resident(&grid(), resident(&name_of(n), "13800138000")).map(|id| {
                acked.insert(id, Acked { name: name_of(n), phone: "13800138000".to_owned(), phone_n: None });
            }),
        };
        match result {
            Ok(()) => n_acked += usize::from(!matches!(step, 0 | 1)),
            Err(error) => {
                assert!(disk.is_powered_off(), "a call failed with the power on: {error}");
                return n_acked;
            }
        }
    }
}

#[test]
fn acknowledged_edits_survive_power_cuts_and_the_store_is_never_corrupt() {
    let cuts: usize = std::env::var("POWER_LOSS_CUTS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let seed = seed_from_env("POWER_LOSS_SEED");
    println!("power loss: {cuts} cuts, seed {seed} (POWER_LOSS_SEED={seed} replays it)");
    wangge_fault_vfs::install();
    let mut rng = StdRng::seed_from_u64(seed);
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut dir = PathBuf::new();
    let mut acked: BTreeMap<ResidentId, Acked> = BTreeMap::new();
    let mut next = 0u64;
    let mut totals = CutStats::default();
    let (mut n_acked, mut n_cut_in_open) = (0usize, 0usize);
    for cut in 0..cuts {
        if cut % CUTS_PER_STORE == 0 {
            dir = root.path().join(format!("store-{cut}"));
            fresh_store(&dir);
            acked.clear();
        }
        let disk = Disk::attach(&dir, rng.random()).unwrap();
        let context = format!("cut {cut} (POWER_LOSS_SEED={seed})");
        let mut store = Store::open(dir.join(STORE)).unwrap_or_else(|error| panic!("{context}: reopening: {error}"));
        let held = check(&store, &acked);
        assert!(held >= acked.len(), "{context}: {held} residents, {} acknowledged", acked.len());
        let opened = if rng.random_bool(1.0 / 7.0) {
            // The cut lands while the store opens again.
            drop(store);
            disk.cut_power_after(rng.random_range(0..6));
            match Store::open(dir.join(STORE)) {
                Ok(reopened) => Some(reopened),
                Err(error) => {
                    assert!(disk.is_powered_off(), "{context}: opening failed with the power on: {error}");
                    n_cut_in_open += 1;
                    None
                }
            }
        } else {
            disk.cut_power_after(rng.random_range(0..MAX_EVENTS));
            Some(store)
        };
        if let Some(opened) = opened {
            store = opened;
            n_acked += work_until_the_power_goes(&store, &disk, &mut rng, &mut acked, &mut next);
            drop(store);
        }
        disk.cut_power_now();
        let image = disk.image().unwrap();
        let stats = image.stats;
        totals.n_pending_writes += stats.n_pending_writes;
        totals.n_kept += stats.n_kept;
        totals.n_dropped += stats.n_dropped;
        totals.n_torn += stats.n_torn;
        totals.n_files_lost += stats.n_files_lost;
        drop(disk);
        // The image goes into a directory of its own; the files the shim let through are gone.
        let after = root.path().join(format!("cut-{cut}"));
        std::fs::create_dir(&after).unwrap();
        image.write_to(&after).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        dir = after;
    }
    let store = Store::open(dir.join(STORE)).unwrap();
    check(&store, &acked);
    println!(
        "power loss: {cuts} cuts ({n_cut_in_open} while opening), {n_acked} acknowledged edits all kept; \
         at the cuts {} unsynced writes: {} kept, {} dropped, {} torn; {} unsynced files lost; in {:.1} s",
        totals.n_pending_writes,
        totals.n_kept,
        totals.n_dropped,
        totals.n_torn,
        totals.n_files_lost,
        started.elapsed().as_secs_f64()
    );
    assert!(totals.n_dropped > 0 && totals.n_torn > 0, "the cuts never met unsynced writes");
}

/// The shim has teeth: the same cuts lose acknowledged commits when they were not synced
/// (`synchronous = NORMAL` in WAL mode syncs only at checkpoints), and lose none with FULL.
#[test]
fn with_synchronous_normal_the_same_cuts_lose_acknowledged_commits_and_with_full_none() {
    let seed = seed_from_env("POWER_LOSS_SEED");
    println!("synchronous control: seed {seed} (POWER_LOSS_SEED={seed} replays it)");
    wangge_fault_vfs::install();
    let mut rng = StdRng::seed_from_u64(seed);
    let root = tempfile::tempdir().unwrap();
    for synchronous in ["NORMAL", "FULL"] {
        let mut n_lost = 0;
        for cut in 0..20 {
            let dir = root.path().join(format!("{synchronous}-{cut}"));
            std::fs::create_dir(&dir).unwrap();
            let disk = Disk::attach(&dir, rng.random()).unwrap();
            let conn = rusqlite::Connection::open(dir.join("t.db")).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.pragma_update(None, "synchronous", synchronous).unwrap();
            conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, filler BLOB)").unwrap();
            disk.cut_power_after(rng.random_range(10..60));
            let mut n_acked = 0;
            while conn.execute("INSERT INTO t VALUES (?1, zeroblob(3000))", [n_acked]).is_ok() {
                n_acked += 1;
            }
            drop(conn);
            let after = root.path().join(format!("{synchronous}-{cut}-after"));
            std::fs::create_dir(&after).unwrap();
            disk.image().unwrap().write_to(&after).unwrap();
            let conn = rusqlite::Connection::open(after.join("t.db")).unwrap();
            let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
            assert_eq!(integrity, "ok", "{synchronous}, cut {cut}");
            // A missing table is a lost commit too (the CREATE was acknowledged).
            let held: i64 = conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0)).unwrap_or(-1);
            if held < n_acked {
                n_lost += 1;
            }
        }
        match synchronous {
            "NORMAL" => assert!(n_lost > 0, "no cut lost an unsynced commit: the shim keeps everything"),
            _ => assert_eq!(n_lost, 0, "synchronous = FULL lost acknowledged commits"),
        }
    }
}

/// The bug the cuts found: a checkpoint cut off while writing page 1 leaves garbage in the
/// file's header while the WAL still holds page 1 whole. SQLite reads it from the WAL, but
/// `Store::open` read the header first and refused the store (`WrongKey`, or moved it
/// aside as unreadable when its length was not a whole number of 512-byte pages).
#[test]
fn a_store_whose_header_a_cut_checkpoint_left_as_garbage_opens_from_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    fresh_store(dir.path());
    let store = Store::open(dir.path().join(STORE)).unwrap();
    let mut acked = BTreeMap::new();
    for n in 0..5 {
        let id = store.add_resident(&grid(), resident(&name_of(n), "13800138000")).unwrap();
        acked.insert(id, Acked { name: name_of(n), phone: "13800138000".to_owned(), phone_n: None });
    }
    // The disk as the power cut leaves it: the WAL (which holds page 1: every open writes
    // the schema version) and the file, whose first sector was being written.
    let cut = dir.path().join("after-the-cut");
    std::fs::create_dir(&cut).unwrap();
    for name in [STORE.to_owned(), format!("{STORE}-wal")] {
        std::fs::copy(dir.path().join(&name), cut.join(&name)).unwrap();
    }
    let mut file = std::fs::read(cut.join(STORE)).unwrap();
    for (i, byte) in file[..512].iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(167).wrapping_add(13);
    }
    std::fs::write(cut.join(STORE), &file).unwrap();
    let reopened = Store::open(cut.join(STORE)).unwrap();
    assert_eq!(check(&reopened, &acked), 5);
}
