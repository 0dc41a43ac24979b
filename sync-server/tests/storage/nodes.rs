//! Two server nodes on one PostgreSQL database (two `Service`s, each with its own pool, as
//! two processes would have), and many devices with the core's real sync client pushing
//! edits of the same document through both at once. Nothing is lost: every device, and a
//! device enrolled afterwards, ends with every edit.
//!
//! Without versioned commits, two nodes merging pushes of one document from the same
//! snapshot store each their own result, and the later drops the other's change from the
//! snapshot (a newcomer, who gets the snapshot, never sees it; its author's next push
//! depends on a change the server's snapshot lacks). Without the log's lock, a device that
//! pulls while others push can move its cursor past a change still being committed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wangge_core::Store;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::model::{Address, BuildingId, BuildingUse, GridCode, Label, NewBuilding};
use wangge_core::sync::http::SyncClient;
use wangge_server::{PostgresStorage, Service, Worker};

use crate::pg;

const DEVICES: usize = 12;
const ROUNDS: usize = 4;

/// A device with a client for each node.
struct Device {
    store: Store,
    nodes: [SyncClient; 2],
    _dir: tempfile::TempDir,
}

impl Device {
    async fn enrolled(urls: &[String; 2], code: &str, node: usize) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("device.db")).unwrap();
        let client = |url: &String| SyncClient::new(url).unwrap().with_retries(2, Duration::from_millis(10));
        let nodes = [client(&urls[0]), client(&urls[1])];
        nodes[node].enroll(&store, code, "test device").await.unwrap();
        Device { store, nodes, _dir: dir }
    }

    async fn sync(&self, node: usize) -> u64 {
        self.nodes[node].sync(&self.store, None).await.unwrap().docs_pulled
    }
}

fn building(n: usize) -> NewBuilding {
    NewBuilding {
        name: Label::parse(&format!("{n}栋")).unwrap(),
        address: Address::parse(&format!("江门市蓬江区港口路{n}号")).unwrap(),
        location: None,
        floors: Some(6),
        units: Some(1),
        usage: BuildingUse::Residential,
    }
}

#[test]
fn two_nodes_on_one_database_lose_no_edit_and_skip_no_change() {
    wangge_core::sync::http::install_crypto_provider();
    let url = pg::database();
    // Storage is synchronous: set up before the runtime, as the binary does.
    let nodes = [0, 1].map(|_| Service::new(PostgresStorage::connect(&url).unwrap()));
    let grid = GridCode::parse_default("440703001001001").unwrap();
    nodes[0].create_grid(&grid, "长堤社区第1网格", "community").unwrap();
    let codes: Vec<String> = (0..=DEVICES)
        .map(|i| {
            let node = &nodes[i % 2];
            let person = format!("w{i}");
            let worker = Worker {
                person: person.clone(),
                role: "full_time_worker".into(),
                department: None,
                grids: vec![grid.as_str().to_owned()],
            };
            node.create_worker(&worker).unwrap();
            node.issue_enrollment_code(&person).unwrap()
        })
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (devices, newcomer) = runtime.block_on(async {
        let mut urls = Vec::new();
        let mut stops = Vec::new();
        for node in &nodes {
            // Bound before serving: connections wait in the backlog until `serve` runs.
            let (listener, addr) = wangge_server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(wangge_server::serve(listener, node.clone(), async {
                let _ = stopped.await;
            }));
            urls.push(format!("http://{addr}"));
            stops.push(stop);
        }
        let urls: [String; 2] = urls.try_into().unwrap();

        let mut devices = Vec::new();
        for (i, code) in codes[..DEVICES].iter().enumerate() {
            let device = Device::enrolled(&urls, code, i % 2).await;
            device.sync(i % 2).await;
            devices.push(Arc::new(device));
        }

        // Each round every device adds a building to the grid's register, then all sync at
        // once, half through each node (alternating per round).
        let mut added: Vec<BuildingId> = Vec::new();
        for round in 0..ROUNDS {
            for (i, device) in devices.iter().enumerate() {
                added.push(device.store.add_building(&grid, building(round * DEVICES + i)).unwrap());
            }
            let mut syncs = tokio::task::JoinSet::new();
            for (i, device) in devices.iter().enumerate() {
                let device = Arc::clone(device);
                syncs.spawn(async move { device.sync((i + round) % 2).await });
            }
            syncs.join_all().await;
        }

        // Until quiet: a pass in which nothing was pulled and nothing is pending.
        let mut quiet = false;
        for pass in 0..10 {
            let mut pulled = 0;
            for (i, device) in devices.iter().enumerate() {
                pulled += device.sync((i + pass) % 2).await;
            }
            let mut pending = 0;
            for device in &devices {
                pending += device.store.pending_changes().unwrap();
            }
            if pulled == 0 && pending == 0 {
                quiet = true;
                break;
            }
        }
        assert!(quiet, "the devices did not settle in 10 passes");

        let newcomer = Device::enrolled(&urls, &codes[DEVICES], 1).await;
        newcomer.sync(1).await;
        for stop in stops {
            let _ = stop.send(());
        }
        (devices, (newcomer, added))
    });
    let (newcomer, added) = newcomer;

    assert_eq!(added.len(), DEVICES * ROUNDS);
    let register = DocId::new(DocKind::Register, &grid);
    let heads = newcomer.store.heads(&register).unwrap();
    for (i, device) in devices.iter().enumerate() {
        assert_eq!(device.store.heads(&register).unwrap(), heads, "device {i} and the newcomer differ");
    }
    for store in devices.iter().map(|device| &device.store).chain([&newcomer.store]) {
        for id in &added {
            assert!(store.building(*id).is_ok(), "building {id} is missing");
        }
    }
    // The server's snapshot holds every edit, and its log verifies.
    let snapshot = wangge_server::Storage::snapshot(nodes[1].storage(), &register.to_string()).unwrap().unwrap();
    let mut stored_heads = automerge::AutoCommit::load(&snapshot).unwrap().get_heads();
    stored_heads.sort();
    let mut heads = heads;
    heads.sort();
    assert_eq!(stored_heads, heads);
    let check = nodes[0].verify_log().unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}
