//! Writes the seed corpora (`fuzz/corpus/<target>/`) from real traffic: a server set up
//! as the targets set it up, a device with the fixture's actor that imports a small grid,
//! edits it, reports an incident and records a visit, then syncs; a second device enrolls
//! and syncs. Every message, document and change on the way is a seed.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/corpus
//! ```

use std::path::{Path, PathBuf};

use wangge_core::Store;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::incident::{self, Action, ActionKind, Actor, roles::Role};
use wangge_core::model::{GridCode, Phone, ResidentPatch};
use wangge_core::sync::wire::{
    self, BlobChunk, BlobDownloadRequest, BlobStatus, BlobStatusRequest, BlobUploadRequest, DEFAULT_PULL_BUDGET,
    DeviceStatus, EnrollRequest, ErrorBody, SyncRequest,
};
use wangge_fuzz::targets::push_target;
use wangge_fuzz::{ACTOR, CODE_FREE, GRID, INCIDENT, MAGIC, MONTH, enrollment, set_up_server};

fn write(out: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).expect("the corpus directory");
    std::fs::write(dir.join(name), bytes).expect("a seed file");
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (service, token) = set_up_server(&dir.path().join("server.db"));
    let grid = GridCode::parse_default(GRID).expect("a grid code");

    // The device, with the actor the fixture server enrolled.
    let device_path = dir.path().join("device.db");
    drop(Store::open(&device_path).expect("the device store"));
    let conn = rusqlite::Connection::open(&device_path).expect("the device database");
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'device_actor'", [ACTOR.to_vec()]).expect("the actor");
    drop(conn);
    let store = Store::open(&device_path).expect("the device store");
    store.apply_enrollment(&wire::EnrollResponse { token: token.clone(), ..enrollment() }).expect("enrollment");

    // Field work: a small grid, a changed phone, a visit.
    let options =
        wangge_core::demo::DemoOptions { households: 4, organizations: 1, components: 1, ..Default::default() };
    let records = wangge_core::demo::generate_grid(&grid, &options);
    store.import(&grid, &records).expect("the import");
    if let Some((resident, _)) = records.residents.first() {
        let patch =
            ResidentPatch { phone: Some(Some(Phone::parse("13800138000").expect("a phone"))), ..Default::default() };
        store.update_resident(*resident, patch).expect("a phone change");
    }
    let worker = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
    if let Some((household, _)) = records.households.first() {
        let visit = wangge_core::activity::NewVisit {
            target: wangge_core::activity::VisitTarget::Household(*household),
            time_ms: 1_767_225_600_000 + 86_400_000,
            location: None,
            purpose: wangge_core::activity::VisitPurpose::Routine,
            findings: "家中一切正常".into(),
            follow_up: None,
        };
        store.record_visit(&grid, visit, &worker).expect("a visit");
    }

    let round = store.begin_sync(DEFAULT_PULL_BUDGET).expect("a round");
    write(&out, "wire_sync_request", "first-push", &wire::encode(&round.request));
    for push in &round.request.pushes {
        let Some(selector) = (0..5u8).find(|selector| push_target(*selector) == push.doc) else { continue };
        let mut input = vec![selector];
        for change in &push.changes {
            input.extend_from_slice(change);
        }
        write(&out, "changes_apply", &push.doc.replace(['/', ':'], "-"), &input);
        write(&out, "removed_changes", &push.doc.replace(['/', ':'], "-"), &input[1..]);
    }

    // An incident reported on the device's own document (its fixed id), as the store does.
    let mut doc = incident::doc::genesis(INCIDENT).with_actor(automerge::ActorId::from(ACTOR.as_slice()));
    let heads = doc.get_heads();
    incident::doc::write_report(
        &mut doc,
        &[
            ("grid", GRID.to_owned()),
            ("catalog_item", "MD-001".to_owned()),
            ("title", "楼道噪声".to_owned()),
            ("description", "夜间装修噪声扰民".to_owned()),
        ],
    )
    .expect("the report");
    let action = Action {
        id: "01934b1e-0000-7000-8000-0000000000a1".into(),
        actor: worker,
        device_time_ms: 1,
        kind: ActionKind::Report,
    };
    incident::doc::append_action(&mut doc, &action).expect("the report action");
    doc.commit();
    let mut input = vec![2u8];
    for change in doc.get_changes(&heads) {
        input.extend_from_slice(change.raw_bytes());
    }
    write(&out, "changes_apply", "incident-report", &input);
    assert_eq!(push_target(3), format!("activity/{GRID}:{MONTH}"));

    let response = service.sync(&token, round.request.clone()).expect("the sync");
    write(&out, "wire_sync_response", "first-sync", &wire::encode(&response));
    for pull in &response.pulls {
        if let Some(snapshot) = &pull.snapshot {
            write(&out, "document_load", &pull.doc.replace(['/', ':'], "-"), snapshot);
        }
    }
    store.finish_sync(round, response).expect("the device takes the response");
    for doc in store.documents().expect("the documents") {
        let bytes = store.document_bytes(&doc).expect("the document");
        write(&out, "document_load", &format!("device-{}", doc.to_string().replace(['/', ':'], "-")), &bytes);
    }
    let request = SyncRequest {
        cursor: 7,
        received: vec![format!("register/{GRID}")],
        reset: vec![format!("sensitive/{GRID}")],
        status: Some(DeviceStatus { version: "0.1.0".into(), pending: 2, all_pushed: true }),
        generations: Some(true),
        ..SyncRequest::default()
    };
    write(&out, "wire_sync_request", "pull-only", &wire::encode(&request));

    // A second device enrolls with the free code and takes its first page.
    let enroll = EnrollRequest {
        code: CODE_FREE.into(),
        actor: b"wangge-fuzz-dev2".to_vec(),
        device_name: "第二台设备".into(),
        app_version: "0.1.0".into(),
    };
    write(&out, "wire_enroll", "request", &wire::encode(&enroll));
    let enrolled = service.enroll(enroll).expect("the second device enrolls");
    write(&out, "wire_enroll", "response", &wire::encode(&enrolled));
    let first = service
        .sync(&enrolled.token, SyncRequest { pull_budget: DEFAULT_PULL_BUDGET, ..SyncRequest::default() })
        .expect("a first sync");
    write(&out, "wire_sync_response", "second-device-first-sync", &wire::encode(&first));

    // Blobs: a whole upload, its status, a download, and the answers.
    let blob = b"a photo of the stairwell".to_vec();
    let hash = wangge_core::blobs::BlobHash::of(&blob).to_string();
    let upload =
        BlobUploadRequest { hash: hash.clone(), size: blob.len() as u64, offset: 0, chunk: blob.clone().into() };
    write(&out, "wire_blob", "upload", &wire::encode(&upload));
    let status = service.upload_blob(&token, upload).expect("the upload");
    write(&out, "wire_blob", "status-answer", &wire::encode(&status));
    write(&out, "wire_blob", "status", &wire::encode(&BlobStatusRequest { hash: hash.clone() }));
    write(&out, "wire_blob", "download", &wire::encode(&BlobDownloadRequest { hash, offset: 3, max: 8 }));
    write(&out, "wire_blob", "chunk", &wire::encode(&BlobChunk { chunk: blob[3..11].to_vec().into(), total: 24 }));
    write(&out, "wire_blob", "status-partial", &wire::encode(&BlobStatus { received: 8, complete: false }));
    let refusal = ErrorBody { code: "malformed".into(), message: "x".into(), doc: Some(format!("register/{GRID}")) };
    write(&out, "wire_blob", "error", &wire::encode(&refusal));

    // A removed document's export, as the device writes it.
    let copy = &store;
    let edit = records.residents.first().map(|(resident, _)| *resident);
    if let Some(resident) = edit {
        let patch =
            ResidentPatch { phone: Some(Some(Phone::parse("020-83334567").expect("a phone"))), ..Default::default() };
        copy.update_resident(resident, patch).expect("an unsynced edit");
    }
    let register = DocId { kind: DocKind::Register, key: GRID.into() };
    if let Some(export) = copy.purge_document(&register).expect("the purge") {
        write(&out, "removed_changes", "export", &std::fs::read(export).expect("the export"));
    }

    // Texts.
    let link = wangge_core::sync::link::enrollment_link("https://sync.example.gov.cn:8443/wangge", CODE_FREE);
    write(&out, "enrollment_link", "link", link.as_bytes());
    write(&out, "enrollment_link", "code", CODE_FREE.as_bytes());
    write(&out, "enrollment_link", "http", b"wangge:enroll?server=http%3A%2F%2F10.0.0.2%3A8080&code=abc123");
    for (name, text) in [
        ("id-number", "11010519491231002X"),
        ("mobile", "+86 138-0013-8000"),
        ("landline", "020-83334567-801"),
        ("uscc", "91350100M000100Y43"),
        ("grid", GRID),
        ("doc", "incident/01934b1e-0000-7000-8000-000000000001"),
    ] {
        write(&out, "field_parsers", name, text.as_bytes());
    }
    let geojson = include_str!("../../core/src/place/testdata/jiangmen.geojson");
    write(&out, "geojson_import", "jiangmen", geojson.as_bytes());
    write(
        &out,
        "geojson_import",
        "polygon",
        br#"{"type":"Polygon","coordinates":[[[113.0,22.5],[113.01,22.5],[113.01,22.51],[113.0,22.5]]]}"#,
    );

    // The magic bytes alone: the shortest start of a change.
    write(&out, "changes_apply", "magic", &[[0u8].as_slice(), &MAGIC].concat());
}
