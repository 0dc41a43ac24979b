//! One captured field edit — projection and bookkeeping, committed durably — against a
//! plain rusqlite UPDATE of the same column in one transaction, on a copy of the same
//! database. Target (DESIGN §5): at most 1.5x.
//!
//! Two lines: what the worker waits for (the capture, whose edits are committed as a
//! pending capture), and the whole work including the later flush that makes them into
//! automerge changes (one flush per 100 captures, as an idle device or a sync would).

#![allow(clippy::unwrap_used)]

mod support;

use rusqlite::Connection;
use wangge_core::Store;
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::model::*;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let code = GridCode::parse_default("440703001001001").unwrap();
    let store = Store::open(dir.path().join("device.db")).unwrap();
    store.add_grid(&Grid::new(code.clone(), "长堤社区第1网格", GridKind::Community).unwrap(), true).unwrap();
    let records = generate_grid(&code, &DemoOptions::default());
    store.import(&code, &records).unwrap();
    let residents: Vec<ResidentId> = records.residents.iter().map(|(id, _)| *id).take(100).collect();

    // The baseline: the same database, copied, with the same schema and indexes.
    let baseline_path = dir.path().join("baseline.db");
    store.with_reader(|conn| conn.execute("VACUUM INTO ?1", [baseline_path.to_str().unwrap()]).map(|_| ())).unwrap();
    let mut baseline = Connection::open(&baseline_path).unwrap();
    baseline.pragma_update(None, "journal_mode", "WAL").unwrap();
    baseline.pragma_update(None, "synchronous", "FULL").unwrap();

    let phone = |i: usize| format!("139{:08}", i % 100_000_000);
    let mut j = 0;
    let mut baseline_update = || {
        j += 1;
        let tx = baseline.transaction().unwrap();
        let number = phone(j);
        tx.execute(
            "UPDATE resident_details SET phone = ?2, phone_tail = ?3 WHERE resident_id = ?1",
            rusqlite::params![residents[j % residents.len()].to_string(), number, &number[7..]],
        )
        .unwrap();
        tx.commit().unwrap();
    };
    let mut i = 0;
    let mut capture = || {
        i += 1;
        let patch = ResidentPatch { phone: Some(Some(Phone::parse(&phone(i)).unwrap())), ..Default::default() };
        store.update_resident(residents[i % residents.len()], patch).unwrap();
    };
    let latency = support::compare(15, 100, &mut baseline_update, &mut capture);
    support::report("capture: one field edit, durable", "plain UPDATE", &latency, "target <= 1.5x");
    store.flush().unwrap();

    let mut n = 0;
    let mut capture_and_flush = || {
        capture();
        n += 1;
        if n % 100 == 0 {
            store.flush().unwrap();
        }
    };
    let total = support::compare(15, 100, &mut baseline_update, &mut capture_and_flush);
    support::report("capture incl. its flush into CRDT", "plain UPDATE", &total, "the whole work");
}
