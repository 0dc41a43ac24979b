//! Writes the upgrade fixtures with the code of a previous version: copied by
//! `scripts/make-upgrade-fixtures` into that version's `tests/examples/` (in a throwaway
//! git worktree) and run there, so that every byte in the fixture comes from that version.
//!
//! What it writes into the directory it is given:
//! - `server.db`: the server's SQLite database (grid, workers, three devices, the log) at
//!   moment T1, copied with `VACUUM INTO`;
//! - `device.db` (and `device.db.blobs/`): device A's store at T1, closed cleanly: its
//!   grid imported and synced, incidents in several states, then edits not yet synced
//!   (changes made but unacknowledged, a capture still pending, a photo not uploaded);
//! - `manifest.json`: what device A's store holds at T1 (`describe.rs`), who the devices
//!   are, their tokens, the edits waiting;
//! - `replay/`: device A's sync requests after T1, exactly as its code encoded them (the
//!   push of its waiting edits, then a pull), and its documents after them.
//!
//! The two fixtures pair up: the store's cursor and acknowledgements match the server's
//! log. Names and ID numbers come from the demo generator: made up, valid check digits.
//!
//! Lines marked `VERSION:` differ between the versions it is built at; the script edits
//! them (see `scripts/make-upgrade-fixtures`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use wangge_core::blobs::BlobStore;
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::incident::roles::{CenterLevel, DepartmentCode, Role};
use wangge_core::incident::{ActionKind, Actor, Mark};
use wangge_core::model::*;
use wangge_core::sync::http::SyncClient;
use wangge_core::sync::wire;
use wangge_core::{NewIncident, Store};
use wangge_server::{Service, SqliteStorage, Worker};

include!("describe.rs");

const GRID: &str = "440703001001001";

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: generate <output dir>"));
    std::fs::create_dir_all(out.join("replay/documents")).expect("the output directory");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(generate(&out));
}

async fn generate(out: &Path) {
    wangge_core::sync::http::install_crypto_provider();
    let work = tempfile::tempdir().expect("a temporary directory");
    let server_db = work.path().join("server.db");
    let storage = SqliteStorage::open(&server_db).expect("the server database");
    let service = Service::new(storage); // VERSION: service
    let (listener, addr) = wangge_server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("a port");
    let running = service.clone();
    tokio::spawn(async move {
        let _ = wangge_server::serve(listener, running, std::future::pending::<()>()).await;
    });
    let url = format!("http://{addr}");
    wait_until_ready(&url).await;

    let grid = GridCode::parse_default(GRID).expect("a grid code");
    service.create_grid(&grid, "长堤社区第1网格", "community").expect("the grid");
    let worker = |person: &str, role: &str, department: Option<&str>, grids: &[&str]| {
        service
            .create_worker(&Worker {
                person: person.into(),
                role: role.into(),
                department: department.map(str::to_owned),
                grids: grids.iter().map(|grid| (*grid).to_owned()).collect(),
            })
            .expect("a worker");
        service.issue_enrollment_code(person).expect("a code")
    };
    let code_a = worker("w-a", "full_time_worker", None, &[GRID]);
    let code_b = worker("w-b", "full_time_worker", None, &[GRID]);
    let code_center = worker("c-1", "center_staff_township", None, &[GRID]);
    // A worker with no device yet: the tests enroll their new device as this one.
    worker("w-new", "full_time_worker", None, &[GRID]);

    let client = SyncClient::new(&url).expect("a client").with_retries(2, Duration::from_millis(10));
    let a_dir = work.path().join("a");
    std::fs::create_dir_all(&a_dir).expect("a directory");
    let a = Store::open(a_dir.join("device.db")).expect("device A");
    client.enroll(&a, &code_a, "device A").await.expect("A enrolls");
    let b = Store::open(work.path().join("b.db")).expect("device B");
    client.enroll(&b, &code_b, "device B").await.expect("B enrolls");
    let center = Store::open(work.path().join("center.db")).expect("the center's device");
    client.enroll(&center, &code_center, "center").await.expect("the center enrolls");
    let me = Actor { person: "w-a".into(), role: Role::FullTimeWorker, department: None };
    let staff = Actor { person: "c-1".into(), role: Role::CenterStaff(CenterLevel::Township), department: None };

    // A imports a small grid and reports incidents; the center takes one through the loop.
    client.sync(&a, None).await.expect("A's first sync");
    let options = DemoOptions { seed: 9, households: 8, organizations: 2, components: 2, ..DemoOptions::default() };
    let records = generate_grid(&grid, &options);
    a.import(&grid, &records).expect("the import");
    let blobs = BlobStore::beside(&a, 64 * 1024 * 1024).expect("A's blobs");
    let item = a.catalog().items().find(|item| item.admitted).expect("an item").code.clone();
    let household = records.households[0].0;
    let resident = records.residents[0].0;
    let report = |title: &str, photos: Vec<String>| NewIncident {
        grid: grid.clone(),
        catalog_item: item.clone(),
        title: title.into(),
        description: format!("{title}（测试数据）"),
        location: None,
        residents: vec![],
        households: vec![household],
        organizations: vec![],
        photos,
        reported_by_resident: None,
    };
    let photo = blobs.put(b"\xff\xd8\xff\xe0 a small test photo, not a real JPEG").expect("a photo");
    let reported =
        a.report_incident(report("楼道堆放杂物", vec![photo.as_str().to_owned()]), me.clone()).expect("reported");
    let dispatched = a.report_incident(report("路灯损坏", vec![]), me.clone()).expect("reported");
    let resolved = a.report_incident(report("邻里噪音纠纷", vec![]), me.clone()).expect("reported");
    let evidence = vec![photo.as_str().to_owned()];
    let mark = a.act(resolved, me.clone(), ActionKind::ResolveOnSpot { note: "当场调解".into(), evidence });
    assert_eq!(mark.expect("resolved on the spot"), Mark::Applied);
    client.sync(&a, None).await.expect("A pushes");
    client.upload_pending_blobs(&a, &blobs).await.expect("the photo");
    client.sync(&center, None).await.expect("the center pulls");
    assert_eq!(center.act(dispatched, staff.clone(), ActionKind::Accept).expect("accepted"), Mark::Applied);
    let lead = DepartmentCode::parse("urban_management").expect("a department");
    let dispatch = ActionKind::Dispatch { lead, co_handlers: vec![] };
    assert_eq!(center.act(dispatched, staff.clone(), dispatch).expect("dispatched"), Mark::Applied);
    assert_eq!(center.act(resolved, staff.clone(), ActionKind::Archive).expect("archived"), Mark::Applied);
    client.sync(&center, None).await.expect("the center pushes");
    client.sync(&b, None).await.expect("B pulls");
    let b_phone = Phone::parse("13700001111").expect("a phone");
    b.update_resident(records.residents[1].0, ResidentPatch { phone: Some(Some(b_phone)), ..ResidentPatch::default() })
        .expect("B changes a phone");
    client.sync(&b, None).await.expect("B pushes");
    client.sync(&a, None).await.expect("A pulls");

    // A's edits that wait: made into changes (flushed), then one capture left pending, an
    // incident action and a report with a photo not uploaded.
    let phone = Phone::parse("13900002222").expect("a phone");
    a.update_resident(resident, ResidentPatch { phone: Some(Some(phone)), ..ResidentPatch::default() })
        .expect("A changes a phone");
    let building = records.buildings[0].0;
    a.update_building(building, BuildingPatch { floors: Some(Some(9)), ..BuildingPatch::default() })
        .expect("A changes the floors");
    a.flush().expect("the flush");
    let late_photo = blobs.put(b"\xff\xd8\xff\xe0 another test photo, waiting for upload").expect("a photo");
    // Reported before the capture below: writing an incident flushes pending captures.
    let waiting =
        a.report_incident(report("井盖缺失", vec![late_photo.as_str().to_owned()]), me.clone()).expect("reported");
    let newcomer = a
        .add_resident(
            &grid,
            NewResident {
                household: Some(household),
                name: PersonName::parse("测试新人").expect("a name"),
                id_number: Some(IdNumber::parse("440703199001010017").expect("an ID number")),
                phone: Some(Phone::parse("13800003333").expect("a phone")),
                gender: None,
                birth_date: None,
                relation: Relation::Other,
                residence_type: ResidenceType::Registered,
                tags: Default::default(),
            }
            .with_derived_fields()
            .expect("derived fields"),
        )
        .expect("A adds a resident");
    let n_pending_captures: i64 = a
        .with_reader(|conn| conn.query_row("SELECT count(*) FROM pending_captures", [], |row| row.get(0)))
        .expect("the pending captures");
    assert!(n_pending_captures > 0, "a capture stays pending in the fixture");

    // T1: the manifest, then the store closed and copied, then the server copied.
    let described = describe_store(&a, &grid);
    let token_a = a.sync_token().expect("A's token").expect("enrolled");
    let device_a = a.device_id().expect("A's id").expect("enrolled");
    let token_b = b.sync_token().expect("B's token").expect("enrolled");
    drop(a);
    // The store's connections are closed but its WAL may remain: fold it into the file
    // (a plain checkpoint, content unchanged) so that the fixture is one file.
    let conn = rusqlite::Connection::open(a_dir.join("device.db")).expect("A's file");
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0)).expect("a checkpoint");
    assert_eq!(busy, 0, "nothing else has A's store open");
    drop(conn);
    for side in ["-wal", "-shm"] {
        assert!(!a_dir.join(format!("device.db{side}")).exists(), "A's store closed cleanly");
    }
    std::fs::copy(a_dir.join("device.db"), out.join("device.db")).expect("the store copied");
    copy_dir(&a_dir.join("device.db.blobs"), &out.join("device.db.blobs"));
    let copy = rusqlite::Connection::open(&server_db).expect("the server database");
    copy.execute("VACUUM INTO ?1", [out.join("server.db").to_str().expect("a path")]).expect("the server copied");

    let manifest = json!({
        "generated_by": env!("CARGO_PKG_VERSION"),
        "store": described,
        "pending": {
            "captures": n_pending_captures,
            "phone_of": resident.to_string(), "phone": "13900002222",
            "floors_of": building.to_string(), "floors": 9,
            "new_resident": newcomer.to_string(),
            "incident": waiting.to_string(),
            "photo": late_photo.as_str(),
        },
        "uploaded_photo": photo.as_str(),
        "incidents": { "reported": reported.to_string(), "dispatched": dispatched.to_string(), "resolved": resolved.to_string() },
        "b_phone": { "of": records.residents[1].0.to_string(), "phone": "13700001111" },
        "devices": {
            "a": { "id": device_a, "person": "w-a", "token": token_a },
            "b": { "person": "w-b", "token": token_b },
        },
        "new_worker": "w-new",
    });
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&manifest).expect("json")).expect("written");

    // After T1: A's requests as its code sends them, recorded for replay.
    let a = Store::open(a_dir.join("device.db")).expect("device A again");
    let http = reqwest::Client::new();
    let mut requests = Vec::new();
    let mut n = 0;
    loop {
        let round = a.begin_sync(wire::DEFAULT_PULL_BUDGET).expect("a round");
        let pushes = round.request.pushes.len();
        let body = wire::encode(&round.request);
        n += 1;
        let name = format!("{n:02}.request");
        std::fs::write(out.join("replay").join(&name), &body).expect("written");
        let response = post(&http, &url, &token_a, body).await;
        requests.push(json!({ "file": name, "pushes": pushes, "more": response.more }));
        let outcome = a.finish_sync(round, response).expect("A finishes a round");
        if !outcome.more && pushes == 0 {
            break;
        }
    }
    let mut documents = Vec::new();
    for doc in a.documents().expect("A's documents") {
        let id = doc.to_string();
        if !(id.starts_with("register/") || id.starts_with("sensitive/") || id.starts_with("incident/")) {
            continue;
        }
        let file = id.replace('/', "_");
        std::fs::write(out.join("replay/documents").join(&file), a.document_bytes(&doc).expect("a document"))
            .expect("written");
        documents.push(json!({ "doc": id, "file": file }));
    }
    let replay = json!({ "requests": requests, "documents": documents });
    std::fs::write(out.join("replay/replay.json"), serde_json::to_string_pretty(&replay).expect("json"))
        .expect("written");
    println!("fixtures written to {}", out.display());
}

async fn post(http: &reqwest::Client, url: &str, token: &str, body: Vec<u8>) -> wire::SyncResponse {
    let response = http
        .post(format!("{url}/v1/sync"))
        .header(wire::PROTOCOL_HEADER, "1")
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("the server answers")
        .error_for_status()
        .expect("a sync response");
    wire::decode(&response.bytes().await.expect("the body")).expect("a response")
}

async fn wait_until_ready(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..500 {
        if let Ok(response) = client.get(format!("{url}/healthz")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server did not answer");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("the blobs") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copied");
        }
    }
}
