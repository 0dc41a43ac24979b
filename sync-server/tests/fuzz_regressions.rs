//! Inputs the fuzz targets (`fuzz/`) found a server-side bug with, fed through the same
//! path again: every file in `tests/fixtures/fuzz/<target>/` (the request bodies the server
//! saw; `changes_apply` inputs are saved as the sync request they became), and every seed
//! in `fuzz/corpus/<target>/`. Each must be answered — taken or refused with a 4xx, never
//! a panic or a 500. docs/testing.md ("Fuzzing") says how a crash becomes a file here.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use wangge_core::model::GridCode;
use wangge_core::sync::wire::{self, BlobDownloadRequest, BlobStatusRequest, BlobUploadRequest, EnrollRequest};
use wangge_server::{Service, ServiceError, SqliteStorage, Storage, Worker};

// The fuzz fixture's server (fuzz/src/lib.rs, `set_up_server`): the same grid, workers,
// codes and device actor, so that a saved input means the same thing here.
const GRID: &str = "440703001001001";
const ACTOR: [u8; 16] = *b"wangge-fuzz-dev1";
const CODE_USED: &str = "0f0f0f0f0f0f0f0f0f01";
const CODE_FREE: &str = "0f0f0f0f0f0f0f0f0f02";

struct Server {
    service: Service<SqliteStorage>,
    token: String,
    _dir: tempfile::TempDir,
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::new(SqliteStorage::open(&dir.path().join("server.db")).unwrap());
    service.create_grid(&GridCode::parse_default(GRID).unwrap(), "fuzz grid", "community").unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for (person, code) in [("w1", CODE_USED), ("w2", CODE_FREE)] {
        let worker = Worker {
            person: person.into(),
            role: "full_time_worker".into(),
            department: None,
            grids: vec![GRID.into()],
        };
        service.create_worker(&worker).unwrap();
        service.storage().create_enrollment_code(person, &wangge_server::service::hash_secret(code), now).unwrap();
    }
    let enrolled = service
        .enroll(EnrollRequest {
            code: CODE_USED.into(),
            actor: ACTOR.to_vec(),
            device_name: "fuzz device".into(),
            app_version: "0".into(),
        })
        .unwrap();
    Server { service, token: enrolled.token, _dir: dir }
}

/// Every file of the fixtures' and the seeds' directories of a target (none yet is fine).
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in [root.join("tests/fixtures/fuzz").join(target), root.join("fuzz/corpus").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        files.extend(entries.map(|entry| entry.unwrap().path()).filter(|path| path.is_file()));
    }
    files.sort();
    files
}

/// Taken, or refused as a client error: never a panic, never a 500.
#[track_caller]
fn check_answered<T>(input: &Path, result: Result<T, ServiceError>) {
    if let Err(error) = result {
        assert!(error.status() < 500, "{}: {error:?} ({})", input.display(), error.status());
    }
}

#[test]
fn sync_requests_and_pushed_changes_are_answered() {
    let mut n_inputs = 0;
    for target in ["wire_sync_request", "changes_apply"] {
        for input in inputs(target) {
            let body = std::fs::read(&input).unwrap();
            // The seeds of changes_apply are the target's own format, not request bodies.
            let Ok(request) = wire::decode(&body) else { continue };
            let server = server();
            check_answered(&input, server.service.sync(&server.token, request));
            n_inputs += 1;
        }
    }
    assert!(n_inputs >= 2, "the seeds of wire_sync_request are there");
}

/// A pushed change whose columns expand to millions of operations is refused before
/// automerge takes it: a 4 KB change of 4,194,294 operations (runs of one key, one value)
/// took the fuzz target 18 s and 1.7 GB, and the server took it and stored it.
#[test]
fn a_change_of_millions_of_operations_is_refused() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let input = root.join("tests/fixtures/fuzz/changes_apply/a-4-kb-change-of-4-million-operations");
    let request: wire::SyncRequest = wire::decode(&std::fs::read(&input).unwrap()).unwrap();
    assert_eq!(request.pushes[0].changes.len(), 1);
    let server = server();
    let started = std::time::Instant::now();
    let error = server.service.sync(&server.token, request).unwrap_err();
    assert_eq!(error.status(), 400, "{error:?}");
    assert!(format!("{error:?}").contains("a change does not decode"), "{error:?}");
    // Refused before automerge expands anything (taken, it cost the fuzz build 18 s).
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn enrollment_requests_are_answered() {
    for input in inputs("wire_enroll") {
        let Ok(request) = wire::decode::<EnrollRequest>(&std::fs::read(&input).unwrap()) else { continue };
        check_answered(&input, server().service.enroll(request));
    }
}

#[test]
fn blob_requests_are_answered() {
    for input in inputs("wire_blob") {
        let body = std::fs::read(&input).unwrap();
        if let Ok(request) = wire::decode::<BlobUploadRequest>(&body) {
            let server = server();
            check_answered(&input, server.service.upload_blob(&server.token, request));
        }
        if let Ok(request) = wire::decode::<BlobStatusRequest>(&body) {
            let server = server();
            check_answered(&input, server.service.blob_status(&server.token, request));
        }
        if let Ok(request) = wire::decode::<BlobDownloadRequest>(&body) {
            let server = server();
            check_answered(&input, server.service.download_blob(&server.token, request));
        }
    }
}
