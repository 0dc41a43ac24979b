//! Crash: a child process captures in a loop and reports each edit the store acknowledged
//! (the call returned); the parent kills it with SIGKILL at a random moment, reopens the
//! store, and checks that every acknowledged edit is there, that `PRAGMA integrity_check`
//! says ok, that every document loads, and that the projection equals a rebuild from the
//! documents. Then again, on the same store (a fresh one every 25 kills): `CRASH_ROUNDS`
//! times (default 200).
//!
//! One binary plays both parts (no test harness): run with `WANGGE_CRASH_CHILD=<store>`
//! it is the child. The seed is printed; `CRASH_SEED=<n>` replays a run.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use wangge_core::Store;
use wangge_core::model::*;

const CHILD: &str = "WANGGE_CRASH_CHILD";
const GRID: &str = "440703001001001";
/// Kills survived by one store before the next starts empty.
const ROUNDS_PER_STORE: usize = 25;

fn grid() -> GridCode {
    GridCode::parse_default(GRID).unwrap()
}

fn resident(name: &str, phone: &str) -> NewResident {
    NewResident {
        household: None,
        name: PersonName::parse(name).unwrap(),
        id_number: None,
        phone: Some(Phone::parse(phone).unwrap()),
        gender: None,
        birth_date: None,
        relation: Relation::Head,
        residence_type: ResidenceType::Registered,
        tags: Default::default(),
    }
}

/// A name for the n-th resident: two to four Chinese characters, unique per n.
fn name_of(n: u64) -> String {
    const SURNAMES: [char; 8] = ['陈', '李', '黄', '张', '王', '刘', '林', '何'];
    const GIVEN: [char; 10] = ['伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋'];
    let mut name = String::from(SURNAMES[(n % 8) as usize]);
    let mut rest = n / 8;
    loop {
        name.push(GIVEN[(rest % 10) as usize]);
        rest /= 10;
        if rest == 0 || name.chars().count() == 4 {
            break;
        }
    }
    name
}

/// The child: captures until killed, one line per acknowledged edit on stdout:
/// `add <n> <id>` (a new resident) or `phone <n> <id> <phone>` (a changed phone).
fn child(path: &Path) {
    let store = Store::open(path).unwrap();
    if store.grids().unwrap().is_empty() {
        store.add_grid(&Grid::new(grid(), "长堤社区第1网格", GridKind::Community).unwrap(), true).unwrap();
    }
    let mut out = std::io::stdout().lock();
    let start: u64 = std::env::var("WANGGE_CRASH_FROM").unwrap().parse().unwrap();
    let mut added: Vec<ResidentId> = Vec::new();
    for n in start.. {
        if n % 3 == 2
            && let Some(id) = added.last().copied()
        {
            let phone = format!("139{:08}", n % 100_000_000);
            let patch = ResidentPatch { phone: Some(Some(Phone::parse(&phone).unwrap())), ..Default::default() };
            store.update_resident(id, patch).unwrap();
            writeln!(out, "phone {n} {id} {phone}").unwrap();
        } else {
            let id = store.add_resident(&grid(), resident(&name_of(n), "13800138000")).unwrap();
            added.push(id);
            writeln!(out, "add {n} {id}").unwrap();
        }
        out.flush().unwrap();
    }
}

/// Every row of every table the projection writes, sorted, for comparison with a rebuild.
fn projection(store: &Store) -> Vec<String> {
    store
        .with_reader(|conn| {
            let mut tables = conn.prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 AND name NOT LIKE '%search%' AND sql NOT LIKE '%VIRTUAL%'
                 AND name NOT IN ('documents', 'document_snapshots', 'document_chunks', 'meta',
                                  'pending_captures', 'failed_captures')",
            )?;
            let tables: Vec<String> = tables.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
            let mut rows = Vec::new();
            for table in tables {
                let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
                let n = statement.column_count();
                let found = statement.query_map([], |row| {
                    (0..n).map(|i| row.get_ref(i).map(|value| format!("{value:?}"))).collect::<Result<Vec<_>, _>>()
                })?;
                for row in found {
                    rows.push(format!("{table}|{}", row?.join("|")));
                }
            }
            rows.sort();
            Ok(rows)
        })
        .unwrap()
}

/// A resident as its acknowledged edits left it.
#[derive(Debug)]
struct Acked {
    name: String,
    phone: String,
    /// The edit number of its last acknowledged phone change.
    phone_n: Option<u64>,
}

/// The edit number a changed phone carries (`139` and the number, see `child`).
fn phone_n(phone: &str) -> Option<u64> {
    phone.strip_prefix("139")?.parse().ok()
}

/// What the parent checks after each kill; returns how many residents the store holds.
fn check(path: &Path, acked: &BTreeMap<ResidentId, Acked>) -> usize {
    let store = Store::open(path).unwrap();
    let integrity: String =
        store.with_reader(|conn| conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))).unwrap();
    assert_eq!(integrity, "ok");
    for doc in store.documents().unwrap() {
        store.document_bytes(&doc).unwrap_or_else(|error| panic!("{doc} does not load: {error}"));
    }
    for (id, acked) in acked {
        let found = store.resident(*id).unwrap_or_else(|error| panic!("acknowledged resident lost: {error}"));
        assert_eq!(found.name.as_str(), acked.name);
        let held = found.sensitive.and_then(|sensitive| sensitive.phone).map(|phone| phone.as_str().to_owned());
        let held = held.unwrap_or_default();
        // The acknowledged phone, or one from a later capture the child did not live to report.
        let later = phone_n(&held).is_some_and(|n| acked.phone_n.is_none_or(|acked_n| n > acked_n));
        assert!(held == acked.phone || later, "acknowledged phone lost: {held} instead of {}", acked.phone);
    }
    let before = projection(&store);
    store.rebuild_projection().unwrap();
    assert_eq!(projection(&store), before, "the projection differs from a rebuild from the documents");
    store.with_reader(|conn| conn.query_row("SELECT count(*) FROM residents", [], |row| row.get::<_, i64>(0))).unwrap()
        as usize
}

fn main() {
    if let Some(path) = std::env::var_os(CHILD) {
        child(Path::new(&path));
        return;
    }
    let rounds: usize = std::env::var("CRASH_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let seed: u64 = std::env::var("CRASH_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or_else(rand::random);
    println!("crash: {rounds} rounds, seed {seed} (CRASH_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut path = dir.path().join("wangge-0.db");
    let exe = std::env::current_exe().unwrap();
    let mut acked: BTreeMap<ResidentId, Acked> = BTreeMap::new();
    let mut next = 0u64;
    let started = Instant::now();
    let mut killed_mid_flight = 0;
    let mut total_acked = 0;
    for round in 0..rounds {
        if round > 0 && round % ROUNDS_PER_STORE == 0 {
            // A fresh store now and then: checking a store costs more as it grows.
            path = dir.path().join(format!("wangge-{round}.db"));
            acked.clear();
        }
        let mut child = Command::new(&exe)
            .env(CHILD, &path)
            .env("WANGGE_CRASH_FROM", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Kill after a random number of acknowledgements (0 to 20): sometimes while it
        // opens the store, mostly in the middle of a capture.
        let wanted = rng.random_range(0..=20);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut record = |line: &str| {
            let fields: Vec<&str> = line.split(' ').collect();
            let n: u64 = fields[1].parse().unwrap();
            let id = ResidentId::parse(fields[2]).unwrap();
            match fields[0] {
                "add" => {
                    acked.insert(id, Acked { name: name_of(n), phone: "13800138000".to_owned(), phone_n: None });
                }
                "phone" => {
                    let acked = acked.get_mut(&id).unwrap();
                    (acked.phone, acked.phone_n) = (fields[3].to_owned(), Some(n));
                }
                other => panic!("unexpected line {other}"),
            }
            next = next.max(n + 1);
        };
        for _ in 0..wanted {
            let Some(Ok(line)) = lines.next() else { break };
            record(&line);
            total_acked += 1;
        }
        if rng.random_bool(0.5) {
            // Let it run on a little: the kill lands after unreported captures.
            std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
            killed_mid_flight += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // What it reported before it died was acknowledged too.
        for line in lines {
            let Ok(line) = line else { break };
            if line.ends_with(|c: char| c.is_ascii_hexdigit()) && line.split(' ').count() >= 3 {
                record(&line);
                total_acked += 1;
            }
        }
        // Edits captured but not reported may or may not be there; the numbering moves on.
        next += 1_000;
        let held = check(&path, &acked);
        assert!(held >= acked.len(), "round {round}: {held} residents, {} acknowledged", acked.len());
    }
    println!(
        "crash: {rounds} kills ({killed_mid_flight} after unreported work), {total_acked} acknowledged edits all kept, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // In cargo's words, so that scripts/test counts it.
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}
