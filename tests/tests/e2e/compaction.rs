//! A grid's documents compacted on the server into a new generation: the snapshot shrinks,
//! every device moves to it at its next sync with nothing lost (unsynced edits made before
//! the compaction included), the old history stays in the log and verifies, and a device
//! enrolled afterwards receives only the new generation.

use wangge_core::crdt::{DocId, DocKind};
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::model::*;
use wangge_core::sync::wire;
use wangge_server::storage::Storage;
use wangge_tests::{TestDevice, TestServer};

use crate::{REGISTER, SENSITIVE, dump};

const BUILDINGS: &str = "SELECT id, name, address, floors, units, status FROM buildings";

/// What a device shows of the grid: every register and sensitive row that sync touches.
fn content(device: &TestDevice) -> (Vec<String>, Vec<String>, Vec<String>) {
    (dump(&device.store, REGISTER), dump(&device.store, SENSITIVE), dump(&device.store, BUILDINGS))
}

/// A snapshot as it travels: alone in a response, CBOR and zstd.
fn on_the_wire(doc: &str, snapshot: Vec<u8>) -> usize {
    let response = wire::SyncResponse {
        pulls: vec![wire::DocPull { doc: doc.to_owned(), snapshot: Some(snapshot.into()), changes: vec![] }],
        ..Default::default()
    };
    wire::encode(&response).len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compacted_grid_shrinks_and_every_device_moves_to_it_with_its_unsynced_edits() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let a = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let b = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&grid])).await;

    // A long history: the demo grid imported, thousands of edits of the same fields, and a
    // year's turnover (the migrant households of the first survey left, a new survey's came).
    let records =
        generate_grid(&grid, &DemoOptions { households: 100, organizations: 10, components: 20, ..Default::default() });
    a.store.import(&grid, &records).unwrap();
    let buildings: Vec<BuildingId> = records.buildings.iter().map(|(id, _)| *id).collect();
    let residents: Vec<ResidentId> = records.residents.iter().map(|(id, _)| *id).collect();
    for round in 0..2000u16 {
        let patch = BuildingPatch { floors: Some(Some(1 + round % 30)), ..Default::default() };
        a.store.update_building(buildings[usize::from(round) % buildings.len()], patch).unwrap();
    }
    for round in 0..1000u32 {
        let phone = Phone::parse(&format!("138{:08}", 10_000_000 + round * 7919)).unwrap();
        let patch = ResidentPatch { phone: Some(Some(phone)), ..Default::default() };
        a.store.update_resident(residents[round as usize % residents.len()], patch).unwrap();
    }
    // Five years of turnover: each year's migrant households (a new survey of 40) leave
    // the next year, erased with their residents and buildings.
    let mut n_left = 0;
    let year = |seed: u64| {
        generate_grid(
            &grid,
            &DemoOptions { seed, households: 40, organizations: 0, components: 0, ..Default::default() },
        )
    };
    let mut previous: Option<GridRecords> = None;
    for seed in 2..=6 {
        if let Some(gone) = previous.take() {
            for (id, _) in &gone.residents {
                a.store.erase(RecordRef::Resident(*id)).unwrap();
                n_left += 1;
            }
            for (id, _) in &gone.households {
                a.store.erase(RecordRef::Household(*id)).unwrap();
            }
            for (id, _) in &gone.buildings {
                a.store.erase(RecordRef::Building(*id)).unwrap();
            }
        }
        let arrived = year(seed);
        a.store.import(&grid, &arrived).unwrap();
        previous = Some(arrived);
    }
    a.sync().await;
    let before_compaction = b.sync().await;
    assert_eq!(content(&a), content(&b));

    // Device b edits offline, before the compaction: an existing building, a new one, a
    // resident's phone (sensitive), a record erased.
    let renamed = BuildingPatch { name: Some(Label::parse("7栋(改)").unwrap()), ..Default::default() };
    b.store.update_building(buildings[0], renamed).unwrap();
    let added = b
        .store
        .add_building(
            &grid,
            NewBuilding {
                name: Label::parse("新建1栋").unwrap(),
                address: Address::parse("江门市蓬江区港口路99号").unwrap(),
                location: None,
                floors: Some(3),
                units: Some(1),
                usage: BuildingUse::Residential,
            },
        )
        .unwrap();
    let phone = Phone::parse("13912345678").unwrap();
    b.store.update_resident(residents[1], ResidentPatch { phone: Some(Some(phone)), ..Default::default() }).unwrap();
    let erased = records.components[0].0;
    b.store.erase(RecordRef::Component(erased)).unwrap();
    let n_pending = b.store.pending_changes().unwrap();
    assert_eq!(n_pending, 4);

    let register = DocId::new(DocKind::Register, &grid).to_string();
    let before = server.service.storage().snapshot(&register).unwrap().unwrap();
    let compacted = server.service.compact_grid(&grid).unwrap();
    let after = server.service.storage().snapshot(&register).unwrap().unwrap();

    let (wire_before, wire_after) = (on_the_wire(&register, before.clone()), on_the_wire(&register, after.clone()));
    for doc in &compacted {
        println!(
            "{}: generation {}, {} changes of history, snapshot {} → {} bytes ({:.1}×)",
            doc.doc,
            doc.generation,
            doc.n_changes_before,
            doc.bytes_before,
            doc.bytes_after,
            doc.bytes_before as f64 / doc.bytes_after as f64
        );
    }
    println!(
        "register on the wire (CBOR + zstd): {wire_before} → {wire_after} bytes ({:.1}×)",
        wire_before as f64 / wire_after as f64
    );
    assert_eq!(compacted.iter().map(|doc| doc.generation).collect::<Vec<_>>(), vec![2, 2]);
    assert!(compacted[0].n_changes_before > 2000, "{compacted:?}");
    assert!(n_left > 400, "{n_left} residents left");
    assert!(after.len() * 2 < before.len(), "register snapshot {} → {} bytes", before.len(), after.len());
    assert!(wire_after * 2 < wire_before, "register on the wire {wire_before} → {wire_after} bytes");

    // Device a (nothing unsynced) moves over and edits on the new generation.
    a.sync().await;
    let floors = BuildingPatch { floors: Some(Some(33)), ..Default::default() };
    a.store.update_building(buildings[2], floors).unwrap();
    a.sync().await;
    // Device b moves over: its edits of the old generation are replayed, pushed, taken.
    b.sync().await;
    a.sync().await;
    assert_eq!(b.store.pending_changes().unwrap(), 0, "b's replayed edits are acknowledged");
    assert_eq!(content(&a), content(&b));
    for device in [&a, &b] {
        assert_eq!(device.store.building(buildings[0]).unwrap().name.as_str(), "7栋(改)", "b's rename landed");
        assert_eq!(device.store.building(added).unwrap().floors, Some(3), "b's new building landed");
        assert_eq!(device.store.building(buildings[2]).unwrap().floors, Some(33), "a's edit after it");
        let sensitive = device.store.resident(residents[1]).unwrap().sensitive.unwrap();
        assert_eq!(sensitive.phone.unwrap().as_str(), "13912345678", "b's phone landed");
    }
    assert!(matches!(a.store.component(erased), Err(wangge_core::Error::NotFound { .. })), "b's erase landed");
    assert_eq!(a.store.list_components(&grid).unwrap(), b.store.list_components(&grid).unwrap());
    for device in [&a, &b] {
        for kind in [DocKind::Register, DocKind::Sensitive] {
            let doc = DocId::new(kind, &grid);
            let changes = device.store.changes_since(&doc, &[]).unwrap();
            assert!(changes.len() < 20, "{doc} holds {} changes: the old history came back", changes.len());
        }
    }

    // The old generation stays in the log, and the whole log verifies.
    let check = server.service.verify_log().unwrap();
    assert_eq!(check.problems, Vec::<String>::new());
    assert!(check.n_changes > 3000);

    // A device enrolled afterwards gets the new generation only.
    let c = TestDevice::enrolled(&server, &server.worker("w3", "full_time_worker", None, &[&grid])).await;
    let progress = c.sync().await;
    assert_eq!(content(&c), content(&a));
    let history = c.store.changes_since(&DocId::new(DocKind::Register, &grid), &[]).unwrap();
    assert!(history.len() < 20, "{} changes", history.len());
    println!(
        "a first sync of the grid: {} bytes before the compaction, {} after",
        before_compaction.bytes_received, progress.bytes_received
    );
}

/// A client from before compaction (no `generations` in its requests) is told to remove its
/// copy of a compacted document, then gets the new generation as a new document.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_older_than_compaction_removes_its_copy_and_gets_the_new_generation() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let a = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let records =
        generate_grid(&grid, &DemoOptions { households: 5, organizations: 1, components: 1, ..Default::default() });
    a.store.import(&grid, &records).unwrap();
    a.sync().await;
    server.service.compact_grid(&grid).unwrap();

    // Rounds by hand, as an older client sends them.
    let old_round = |device: &TestDevice| {
        let mut round = device.store.begin_sync(0).unwrap();
        round.request.generations = None;
        round
    };
    let round = old_round(&a);
    let response = a.send_round(&server, &round).await;
    assert!(response.removed.is_empty() && response.more, "{response:?}");
    a.store.finish_sync(round, response).unwrap();
    let round = old_round(&a);
    let response = a.send_round(&server, &round).await;
    let register = DocId::new(DocKind::Register, &grid).to_string();
    assert!(response.removed.contains(&register), "{:?}", response.removed);
    assert!(response.pulls.iter().all(|pull| pull.doc != register));
    a.store.finish_sync(round, response).unwrap();
    let round = old_round(&a);
    let response = a.send_round(&server, &round).await;
    let pull = response.pulls.iter().find(|pull| pull.doc == register).unwrap();
    assert!(pull.snapshot.is_some());
    a.store.finish_sync(round, response).unwrap();
    a.sync().await;
    assert_eq!(
        dump(&a.store, REGISTER).len(),
        records.buildings.len() + records.households.len() + records.residents.len()
    );
    assert_eq!(server.service.verify_log().unwrap().problems, Vec::<String>::new());

    // The old generation is checked against the log: a change of it deleted from the log is
    // found, and so is the compaction that no longer matches it.
    let db = rusqlite::Connection::open(server.database_path()).unwrap();
    let (first, start): (i64, i64) = db
        .query_row(
            "SELECT min(seq), (SELECT seq FROM changes WHERE doc_id = ?1 AND actor = ?2) FROM changes WHERE doc_id = ?1",
            rusqlite::params![register, wangge_core::reference::SERVER_ACTOR],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert!(first < start);
    db.execute("DELETE FROM changes WHERE seq = ?1", [first]).unwrap();
    let problems = server.service.verify_log().unwrap().problems;
    assert!(
        problems.iter().any(|problem| problem.starts_with(&format!("change #{start} of {register}: the generation"))),
        "{problems:?}"
    );
}
