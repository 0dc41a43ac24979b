//! Grid data through the server: every device that may see it converges; nobody else gets it.

use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::model::*;
use wangge_tests::{TestDevice, TestServer};

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn workers_of_every_role_converge_and_part_time_workers_get_no_sensitive_data() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let other = server.grid("440703001001002", "长堤社区第2网格");
    let full_time = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let part_time = TestDevice::enrolled(&server, &server.worker("p1", "part_time_worker", None, &[&grid])).await;
    let leader = TestDevice::enrolled(&server, &server.worker("l1", "grid_leader", None, &[&grid, &other])).await;
    let center =
        TestDevice::enrolled(&server, &server.worker("c1", "center_staff_township", None, &[&grid, &other])).await;
    let elsewhere = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&other])).await;

    // Offline: the full-time worker imports the grid and edits; the leader adds a building.
    let records =
        generate_grid(&grid, &DemoOptions { households: 30, organizations: 3, components: 3, ..Default::default() });
    full_time.store.import(&grid, &records).unwrap();
    let (resident, _) = records.residents[0];
    full_time
        .store
        .update_resident(
            resident,
            ResidentPatch { phone: Some(Some(Phone::parse("13900001111").unwrap())), ..Default::default() },
        )
        .unwrap();
    let building = leader
        .store
        .add_building(
            &grid,
            NewBuilding {
                name: Label::parse("新建1栋").unwrap(),
                address: Address::parse("江门市蓬江区港口路100号").unwrap(),
                location: None,
                floors: Some(6),
                units: Some(1),
                usage: BuildingUse::Residential,
            },
        )
        .unwrap();

    // Syncs in varied orders until everyone has everything.
    for device in [&leader, &full_time, &part_time, &center, &elsewhere, &leader, &full_time, &part_time, &center] {
        device.sync().await;
    }
    assert_eq!(full_time.store.pending_changes().unwrap(), 0);
    assert_eq!(leader.store.pending_changes().unwrap(), 0);

    let register = dump(&full_time.store, REGISTER);
    assert_eq!(full_time.store.building(building).unwrap().name.as_str(), "新建1栋");
    for device in [&part_time, &leader, &center] {
        assert_eq!(dump(&device.store, REGISTER), register);
    }
    let sensitive = dump(&full_time.store, SENSITIVE);
    assert!(!sensitive.is_empty());
    assert_eq!(dump(&leader.store, SENSITIVE), sensitive);
    assert_eq!(dump(&center.store, SENSITIVE), sensitive);
    // Minimum necessary: no sensitive document, no sensitive rows on the part-time phone.
    assert!(dump(&part_time.store, SENSITIVE).is_empty());
    let [_, sensitive_doc] =
        [DocKind::Register, DocKind::Sensitive].map(|kind| wangge_core::crdt::DocId::new(kind, &grid));
    assert!(part_time.store.heads(&sensitive_doc).is_err());
    // A worker of another grid received nothing of this one.
    assert!(dump(&elsewhere.store, REGISTER).is_empty());
    assert!(elsewhere.store.heads(&wangge_core::crdt::DocId::new(DocKind::Register, &grid)).is_err());
}

use wangge_core::crdt::DocKind;

#[tokio::test(flavor = "multi_thread")]
async fn one_edit_syncs_in_one_round_trip_and_few_bytes() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let a = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let b = TestDevice::enrolled(&server, &server.worker("l1", "grid_leader", None, &[&grid])).await;
    let records =
        generate_grid(&grid, &DemoOptions { households: 20, organizations: 2, components: 2, ..Default::default() });
    a.store.import(&grid, &records).unwrap();
    a.sync().await;
    b.sync().await;
    let (resident, _) = records.residents[3];
    a.store.update_resident(resident, ResidentPatch { relation: Some(Relation::Other), ..Default::default() }).unwrap();
    let pushed = a.sync().await;
    assert_eq!(pushed.pages, 1);
    let pulled = b.sync().await;
    assert_eq!(pulled.pages, 1);
    let total = pushed.bytes_sent + pushed.bytes_received + pulled.bytes_sent + pulled.bytes_received;
    assert!(total < 1024, "one edit cost {total} bytes on the wire");
    assert_eq!(b.store.resident(resident).unwrap().relation, Relation::Other);
}

/// A worker reassigned to another grid: edits made before learning of it are exported to a
/// file (the server no longer takes them), then the old grid's data is purged.
#[tokio::test(flavor = "multi_thread")]
async fn a_reassigned_workers_old_grid_is_exported_and_purged() {
    let server = TestServer::start().await;
    let old = server.grid("440703001001001", "长堤社区第1网格");
    let new = server.grid("440703001001002", "长堤社区第2网格");
    let device = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&old])).await;
    let records =
        generate_grid(&old, &DemoOptions { households: 10, organizations: 1, components: 1, ..Default::default() });
    device.store.import(&old, &records).unwrap();
    device.sync().await;
    let (resident, _) = records.residents[0];
    device
        .store
        .update_resident(resident, ResidentPatch { relation: Some(Relation::Other), ..Default::default() })
        .unwrap();

    // The operator moves the worker to the other grid.
    server
        .service
        .create_worker(&wangge_server::Worker {
            person: "w1".into(),
            role: "full_time_worker".into(),
            department: None,
            grids: vec![new.as_str().to_owned()],
        })
        .unwrap();
    device.sync().await;
    device.sync().await;

    assert!(device.store.resident(resident).is_err(), "the old grid's residents are gone");
    assert!(dump(&device.store, REGISTER).is_empty());
    assert!(dump(&device.store, SENSITIVE).is_empty());
    let exported: Vec<_> = std::fs::read_dir(device.store.path().parent().unwrap())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().contains(".removed-register-"))
        .collect();
    assert_eq!(exported.len(), 1, "the unsynced edit was exported");
    assert!(std::fs::metadata(exported[0].path()).unwrap().len() > 0);
    // The server never took the edit.
    let leader = TestDevice::enrolled(&server, &server.worker("l1", "grid_leader", None, &[&old])).await;
    leader.sync().await;
    assert_eq!(leader.store.resident(resident).unwrap().relation, Relation::Head);
}

/// Regression: the server counted a snapshot as delivered while building the response; a
/// response lost on the way meant the document never reached the device.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_in_a_lost_response_is_sent_again() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let a = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let records =
        generate_grid(&grid, &DemoOptions { households: 10, organizations: 1, components: 1, ..Default::default() });
    a.store.import(&grid, &records).unwrap();
    a.sync().await;

    let b = TestDevice::enrolled(&server, &server.worker("l1", "grid_leader", None, &[&grid])).await;
    // A round whose response never reaches the device.
    let round = b.store.begin_sync(wangge_core::sync::wire::DEFAULT_PULL_BUDGET).unwrap();
    drop(b.send_round(&server, &round).await);
    b.sync().await;
    assert_eq!(dump(&b.store, REGISTER), dump(&a.store, REGISTER));
    assert!(!dump(&b.store, REGISTER).is_empty());
}

/// Sends one round by hand and hands the decoded response to `tamper` before the device
/// applies it: a server (or a network) that sends something this device cannot take.
async fn sync_tampered(
    server: &TestServer,
    device: &TestDevice,
    tamper: impl FnOnce(&mut wangge_core::sync::wire::SyncResponse),
) -> wangge_core::sync::engine::SyncOutcome {
    use wangge_core::sync::wire;
    let round = device.store.begin_sync(wire::DEFAULT_PULL_BUDGET).unwrap();
    let mut response = device.send_round(server, &round).await;
    tamper(&mut response);
    device.store.finish_sync(round, response).unwrap()
}

/// Regression: one pulled document the device could not take failed the whole round, so
/// nothing after it arrived, and a held document with bad changes blocked every later round.
#[tokio::test(flavor = "multi_thread")]
async fn a_pulled_document_the_device_cannot_take_does_not_block_the_others() {
    use wangge_core::crdt::{DocId, DocKind};
    use wangge_core::sync::wire::DocPull;
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let a = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let records =
        generate_grid(&grid, &DemoOptions { households: 10, organizations: 1, components: 1, ..Default::default() });
    a.store.import(&grid, &records).unwrap();
    a.sync().await;

    // A document of a kind this version does not know comes first: the rest still lands.
    let b = TestDevice::enrolled(&server, &server.worker("l1", "grid_leader", None, &[&grid])).await;
    let outcome = sync_tampered(&server, &b, |response| {
        response.pulls.insert(
            0,
            DocPull {
                doc: "future/1".into(),
                snapshot: None,
                changes: vec![serde_bytes::ByteBuf::from(vec![1, 2, 3])],
            },
        );
    })
    .await;
    assert!(outcome.n_pulled_docs > 0);
    assert_eq!(dump(&b.store, REGISTER), dump(&a.store, REGISTER));
    let error = b.store.sync_status().unwrap().last_error.expect("the refused document is reported");
    assert!(error.contains("future/1"), "{error}");

    // Changes to a held document that do not apply: it is set aside and fetched whole again.
    let (resident, _) = records.residents[0];
    a.store
        .update_resident(resident, ResidentPatch { relation: Some(Relation::Spouse), ..Default::default() })
        .unwrap();
    a.sync().await;
    let register = DocId { kind: DocKind::Register, key: grid.as_str().to_owned() }.to_string();
    let mut corrupted = false;
    sync_tampered(&server, &b, |response| {
        for pull in &mut response.pulls {
            if pull.doc == register {
                pull.changes = vec![serde_bytes::ByteBuf::from(b"not an automerge change".to_vec())];
                corrupted = true;
            }
        }
    })
    .await;
    assert!(corrupted, "the edit was pulled as changes to the held register");
    b.sync().await;
    assert_eq!(b.store.sync_status().unwrap().last_error, None, "a round that went through clears the error");
    assert_eq!(b.store.resident(resident).unwrap().relation, Relation::Spouse);
    assert_eq!(dump(&b.store, REGISTER), dump(&a.store, REGISTER));
}

/// A device with more changes than one request may carry pushes them over several rounds.
#[tokio::test(flavor = "multi_thread")]
async fn changes_over_the_push_budget_go_in_the_next_rounds() {
    use wangge_core::sync::wire;
    let server = TestServer::start().await;
    let first = server.grid("440703001001001", "长堤社区第1网格");
    let second = server.grid("440703001001002", "长堤社区第2网格");
    let a = TestDevice::enrolled(&server, &server.worker("l1", "grid_leader", None, &[&first, &second])).await;
    for grid in [&first, &second] {
        let records =
            generate_grid(grid, &DemoOptions { households: 5, organizations: 1, components: 1, ..Default::default() });
        a.store.import(grid, &records).unwrap();
    }

    // A budget of one byte: one document per request.
    let mut rounds = 0;
    loop {
        let round = a.store.begin_sync_with(wire::DEFAULT_PULL_BUDGET, 1).unwrap();
        assert!(round.request.pushes.len() <= 1);
        let response = a.send_round(&server, &round).await;
        let outcome = a.store.finish_sync(round, response).unwrap();
        rounds += 1;
        if !outcome.more {
            break;
        }
        assert!(rounds < 20, "the rounds end");
    }
    assert!(rounds >= 4, "two registers and two sensitive documents, one per round: {rounds} rounds");
    assert_eq!(a.store.sync_status().unwrap().pending_changes, 0);

    let b = TestDevice::enrolled(&server, &server.worker("l2", "grid_leader", None, &[&first, &second])).await;
    b.sync().await;
    assert_eq!(dump(&b.store, REGISTER), dump(&a.store, REGISTER));
    assert!(!dump(&b.store, REGISTER).is_empty());
}

/// Six devices push edits of the same two documents at the same moment: the server applies
/// one push at a time on the latest snapshot, so every edit survives, in the log and in the
/// snapshots a new device starts from, and all converge.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pushes_to_one_document_keep_every_edit() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let mut devices = Vec::new();
    for n in 0..6 {
        let code = server.worker(&format!("l{n}"), "grid_leader", None, &[&grid]);
        devices.push(TestDevice::enrolled(&server, &code).await);
    }
    let records =
        generate_grid(&grid, &DemoOptions { households: 20, organizations: 2, components: 2, ..Default::default() });
    devices[0].store.import(&grid, &records).unwrap();
    devices[0].sync().await;
    for device in &devices[1..] {
        device.sync().await;
    }

    // Offline: each device changes its own residents' phones and, all of them, one shared
    // resident's relation (a real conflict, resolved the same way everywhere).
    let residents: Vec<ResidentId> = records.residents.iter().map(|(id, _)| *id).collect();
    let mut expected = Vec::new();
    for (n, device) in devices.iter().enumerate() {
        for k in 0..5 {
            let resident = residents[1 + n * 5 + k];
            let phone = Phone::parse(&format!("1390000{n}{k:03}")).unwrap();
            device
                .store
                .update_resident(resident, ResidentPatch { phone: Some(Some(phone.clone())), ..Default::default() })
                .unwrap();
            expected.push((resident, phone));
        }
        let relation = if n % 2 == 0 { Relation::Other } else { Relation::Child };
        device
            .store
            .update_resident(residents[0], ResidentPatch { relation: Some(relation), ..Default::default() })
            .unwrap();
    }

    // All at once, then once more each so everyone pulls what the others pushed.
    {
        let [a, b, c, d, e, f] = &devices[..] else { unreachable!() };
        tokio::join!(a.sync(), b.sync(), c.sync(), d.sync(), e.sync(), f.sync());
    }
    for device in &devices {
        device.sync().await;
    }
    // A device enrolled afterwards starts from the server's snapshots: they hold every edit.
    let newcomer = TestDevice::enrolled(&server, &server.worker("l9", "grid_leader", None, &[&grid])).await;
    newcomer.sync().await;
    devices.push(newcomer);

    for device in &devices {
        assert_eq!(device.store.pending_changes().unwrap(), 0);
        for (resident, phone) in &expected {
            let sensitive = device.store.resident(*resident).unwrap().sensitive.unwrap();
            assert_eq!(sensitive.phone.as_ref(), Some(phone));
        }
        assert_eq!(dump(&device.store, REGISTER), dump(&devices[0].store, REGISTER));
        assert_eq!(dump(&device.store, SENSITIVE), dump(&devices[0].store, SENSITIVE));
    }
}

/// A reassigned worker's old grid leaves no trace on the device's disk: canary names, ID
/// numbers and phones are in none of the files the store and its blob store wrote.
#[tokio::test(flavor = "multi_thread")]
async fn a_purged_grid_leaves_no_trace_on_disk() {
    let server = TestServer::start().await;
    let old = server.grid("440703001001001", "长堤社区第1网格");
    let new = server.grid("440703001001002", "长堤社区第2网格");
    let device = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&old])).await;
    let records =
        generate_grid(&old, &DemoOptions { households: 10, organizations: 1, components: 1, ..Default::default() });
    device.store.import(&old, &records).unwrap();
    let household = records.households[0].0;
    let canaries =
        [("甄金丝雀", "11010519491231002X", "13912345678"), ("贾百灵鸟", "440703199001011212", "13687654321")];
    for (name, id_number, phone) in canaries {
        device
            .store
            .add_resident(
                &old,
                NewResident {
                    household: Some(household),
                    name: PersonName::parse(name).unwrap(),
                    id_number: Some(IdNumber::parse(id_number).unwrap()),
                    phone: Some(Phone::parse(phone).unwrap()),
                    gender: None,
                    birth_date: None,
                    relation: Relation::Other,
                    residence_type: ResidenceType::Registered,
                    tags: Default::default(),
                },
            )
            .unwrap();
    }
    // Searched for, so that the search indexes hold them too.
    assert_eq!(device.store.search_residents("金丝", 10).unwrap().len(), 1);
    device.sync().await;
    assert_eq!(device.store.pending_changes().unwrap(), 0);

    let dir = device.store.path().parent().unwrap().to_path_buf();
    let hits = |canary: &str| -> Vec<String> {
        let mut hits = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(canary.len()).any(|window| window == canary.as_bytes())
            {
                hits.push(path.display().to_string());
            }
        }
        hits
    };
    // The scan finds what is there: before the purge, the projection holds the canaries.
    assert!(!hits(canaries[0].1).is_empty(), "the scan must see the live data");

    server
        .service
        .create_worker(&wangge_server::Worker {
            person: "w1".into(),
            role: "full_time_worker".into(),
            department: None,
            grids: vec![new.as_str().to_owned()],
        })
        .unwrap();
    device.sync().await;
    device.sync().await;
    assert!(dump(&device.store, REGISTER).is_empty());
    for (name, id_number, phone) in canaries {
        for canary in [name, id_number, phone] {
            assert_eq!(hits(canary), Vec::<String>::new(), "a canary is left on disk");
        }
    }
}
