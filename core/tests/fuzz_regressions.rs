//! Inputs the fuzz targets (`fuzz/`) found a bug in the core with, fed through the same
//! path again: every file in `tests/fixtures/fuzz/<target>/` (the bytes the code under
//! test saw) and every seed in `fuzz/corpus/<target>/`. Each must come back as a value or
//! a clean error: never a panic, a hang or an unbounded allocation. docs/testing.md
//! ("Fuzzing") says how a crash becomes a file here.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
use wangge_core::Store;
use wangge_core::crdt::{self, DocId, DocKind};
use wangge_core::model::{GridCode, IdNumber, Phone, Uscc};
use wangge_core::place::boundaries;
use wangge_core::sync::wire::{self, DEFAULT_PULL_BUDGET, DocPull, EnrollResponse, GridInfo, SyncResponse, WorkerInfo};

const GRID: &str = "440703001001001";

/// Every file of the fixtures' and the seeds' directories of a target (none yet is fine).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in [root.join("tests/fixtures/fuzz").join(target), root.join("fuzz/corpus").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        files.extend(entries.map(|entry| entry.unwrap().path()).filter(|path| path.is_file()));
    }
    files.sort();
    files.into_iter().map(|path| (path.clone(), std::fs::read(&path).unwrap())).collect()
}

/// The fuzz fixture's enrolled device (fuzz/src/lib.rs, `DeviceFixture`).
fn enrolled_device(dir: &Path) -> Store {
    let store = Store::open(dir.join("device.db")).unwrap();
    store
        .apply_enrollment(&EnrollResponse {
            token: "fuzz-token".into(),
            device_id: "fuzz-device".into(),
            worker: WorkerInfo {
                person: "w1".into(),
                role: "full_time_worker".into(),
                department: None,
                grids: vec![GridInfo {
                    code: GRID.into(),
                    name: "fuzz grid".into(),
                    kind: "community".into(),
                    sensitive: true,
                }],
            },
        })
        .unwrap();
    store
}

/// What the device does with a response: the whole `finish_sync`.
fn take_response(response: SyncResponse) {
    let dir = tempfile::tempdir().unwrap();
    let store = enrolled_device(dir.path());
    let round = store.begin_sync(DEFAULT_PULL_BUDGET).unwrap();
    let _ = store.finish_sync(round, response);
}

#[test]
fn sync_responses_are_taken_or_refused() {
    let inputs = inputs("wire_sync_response");
    assert!(inputs.len() >= 2, "the seeds of wire_sync_response are there");
    for (_, body) in inputs {
        if let Ok(response) = wire::decode::<SyncResponse>(&body) {
            take_response(response);
        }
    }
}

#[test]
fn enrollment_responses_are_recorded_or_refused() {
    for (_, body) in inputs("wire_enroll") {
        if let Ok(response) = wire::decode::<EnrollResponse>(&body) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path().join("device.db")).unwrap();
            if store.apply_enrollment(&response).is_ok() {
                store.begin_sync(DEFAULT_PULL_BUDGET).unwrap();
            }
        }
    }
}

/// The document id a loaded document says it has, as the fuzz target reads it.
fn doc_id_of(doc: &AutoCommit) -> DocId {
    let text = |key: &str| match doc.get(ROOT, key) {
        Ok(Some((automerge::Value::Scalar(value), _))) => value.as_str().map(str::to_owned),
        _ => None,
    };
    let kind = text("kind").and_then(|kind| DocKind::from_code(&kind)).unwrap_or(DocKind::Register);
    let key = match kind {
        DocKind::Incident => text("id").unwrap_or_default(),
        DocKind::Activity => text("key").unwrap_or_default(),
        DocKind::Reference => "city".to_owned(),
        DocKind::Register | DocKind::Sensitive => text("grid").unwrap_or_else(|| GRID.to_owned()),
    };
    DocId { kind, key }
}

#[test]
fn documents_load_and_are_read_or_refused() {
    let inputs = inputs("document_load");
    assert!(inputs.len() >= 4, "the seeds of document_load are there");
    for (_, bytes) in inputs {
        let Ok(mut doc) = crdt::untrusted::load(&bytes) else { continue };
        let id = doc_id_of(&doc);
        if crdt::check_layout(&doc, &id).is_err() {
            continue;
        }
        match id.kind {
            DocKind::Register | DocKind::Sensitive => {
                for kind in id.kind.record_kinds() {
                    let Ok(Some((automerge::Value::Object(ObjType::Map), container))) = doc.get(ROOT, kind.plural())
                    else {
                        continue;
                    };
                    let keys: Vec<String> = doc.keys(&container).take(64).collect();
                    for key in keys {
                        let record = key.split('/').next().unwrap_or_default().to_owned();
                        let _ = crdt::read_record(&doc, id.kind, *kind, &record);
                        let _ = crdt::conflicts(&mut doc, id.kind, *kind, &record);
                    }
                }
                let _ = crdt::generation::compact(&id, &mut doc, 0);
            }
            DocKind::Incident => {
                let timeline = wangge_core::incident::doc::read_timeline(&doc).unwrap_or_default();
                let _ = wangge_core::incident::derive(timeline.iter().map(Option::as_ref));
                let _ = wangge_core::incident::doc::blob_refs(&doc);
            }
            DocKind::Activity => {
                for container in wangge_core::activity::doc::CONTAINERS {
                    let _ = wangge_core::activity::doc::entries(&doc, container);
                }
                let _ = wangge_core::activity::doc::authors(&doc);
            }
            DocKind::Reference => {
                if let Ok(reference) = wangge_core::reference::read(&doc) {
                    let (grids, _) =
                        boundaries::from_reference(&reference.grids, wangge_core::model::CodeFormat::default());
                    let _ = boundaries::GridIndex::new(grids);
                }
            }
        }
        let pull = DocPull { doc: id.to_string(), snapshot: Some(bytes.into()), changes: Vec::new() };
        take_response(SyncResponse { pulls: vec![pull], ..SyncResponse::default() });
    }
}

#[test]
fn boundary_files_are_imported_or_refused() {
    for (_, bytes) in inputs("geojson_import") {
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        let _ = boundaries::parse_geometry_json(text);
        let Ok(grids) = boundaries::import_geojson(text) else { continue };
        let _ = boundaries::check_partition(&grids);
        for grid in &grids {
            let _ = grid.area_m2();
            boundaries::parse_geometry_json(&grid.geometry_json()).unwrap();
        }
        let _ = boundaries::GridIndex::new(grids);
    }
}

#[test]
fn enrollment_links_and_fields_are_parsed_or_refused() {
    for target in ["enrollment_link", "field_parsers"] {
        for (_, bytes) in inputs(target) {
            let Ok(text) = std::str::from_utf8(&bytes) else { continue };
            let _ = wangge_core::sync::link::parse_enrollment_link(text);
            let _ = IdNumber::parse(text);
            let _ = Phone::parse(text);
            let _ = Uscc::parse(text);
            let _ = GridCode::parse_default(text);
            let _ = wangge_core::blobs::BlobHash::parse(text);
            let _ = DocId::parse(text);
        }
    }
}

#[test]
fn exports_of_removed_documents_are_read_or_refused() {
    for (_, bytes) in inputs("removed_changes") {
        let dir = tempfile::tempdir().unwrap();
        let store = enrolled_device(dir.path());
        let path = dir.path().join(format!("device.db.removed-register-{GRID}-1767225600000.changes"));
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(removed) = store.read_removed_changes(&path) {
            let _ = store.apply_changes(&removed.doc, &removed.changes);
        }
    }
}
