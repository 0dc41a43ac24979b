//! A request that panics inside the server fails alone: it is answered 500 `internal`,
//! while other devices' requests, running at the same time, succeed, and the server (its
//! blocking pool included) goes on serving. The panic is a real one, in the storage under
//! the service: a wrapper around the SQLite storage panics when one chosen device's
//! request reaches it.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wangge_core::Store;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::model::GridCode;
use wangge_core::sync::http::SyncClient;
use wangge_core::sync::wire::{self, ErrorBody, SyncRequest};
use wangge_server::storage::*;
use wangge_server::{Service, SqliteStorage, Worker};

/// The SQLite storage, except that `held_documents` (read in the middle of every sync,
/// after the device is authenticated) panics for one chosen device.
#[derive(Debug)]
struct PanickingStorage {
    inner: SqliteStorage,
    panic_for: Mutex<Option<String>>,
    n_panics: AtomicUsize,
}

macro_rules! forward {
    ($($name:ident($($arg:ident: $type:ty),*) -> $output:ty;)*) => {
        $(
            fn $name(&self, $($arg: $type),*) -> Result<$output> {
                self.inner.$name($($arg),*)
            }
        )*
    };
}

impl Storage for PanickingStorage {
    fn held_documents(&self, device: &str) -> Result<HashMap<String, (i64, HeldState)>> {
        if self.panic_for.lock().unwrap().as_deref() == Some(device) {
            self.n_panics.fetch_add(1, Ordering::SeqCst);
            panic!("a bug in the storage, for one device's request");
        }
        self.inner.held_documents(device)
    }

    // Every other method, as in `storage/boxed.rs`.
    forward! {
        create_grid(grid: &GridRecord) -> ();
        grid(code: &str) -> Option<GridRecord>;
        grids_within(prefix: &str) -> Vec<GridRecord>;
        create_worker(worker: &Worker) -> ();
        worker(person: &str) -> Option<Worker>;
        set_worker_contact(person: &str, contact: &WorkerContact) -> bool;
        worker_contact(person: &str) -> Option<WorkerContact>;
        grid_staff(grid: &str) -> Vec<(Worker, WorkerContact)>;
        create_enrollment_code(person: &str, code_hash: &str, now_ms: i64) -> ();
        redeem_enrollment_code(
            code_hash: &str, device: &Device, token_hash: &str, now_ms: i64, issued_after_ms: i64
        ) -> Option<(String, String)>;
        device_by_token(token_hash: &str) -> Option<(Device, Worker)>;
        revoke_device(device_id: &str) -> bool;
        renew_device(device_id: &str, last_seen_ms: i64, token_expires_ms: i64) -> ();
        record_sync(device_id: &str, report: &SyncReport) -> ();
        snapshot(doc: &str) -> Option<Vec<u8>>;
        document(doc: &str) -> Option<StoredDocument>;
        commit(updates: &[DocUpdate], received_ms: i64) -> ();
        visible_documents(scopes: &[String]) -> HashSet<String>;
        set_held_many(device: &str, held: &[(String, i64, HeldState)]) -> ();
        forget_held(device: &str, doc: &str) -> ();
        log_after(cursor: i64, device: &str, limit: usize) -> Vec<LogEntry>;
        log_after_in(cursor: i64, docs: &[String], limit: usize) -> Vec<LogEntry>;
        max_seq() -> i64;
        changes_after(after_seq: i64, limit: usize) -> Vec<LogEntry>;
        changes_of(doc: &str) -> Vec<LogEntry>;
        documents_changed(after_seq: i64, up_to_seq: i64) -> Vec<String>;
        devices() -> Vec<Device>;
        blob(hash: &str) -> Option<BlobRecord>;
        blob_upload(device: &str, hash: &str) -> Option<BlobRecord>;
        append_blob_chunk(
            device: &str, hash: &str, size: u64, offset: u64, chunk: &[u8], now_ms: i64
        ) -> BlobAppend;
        read_blob(id: i64, offset: u64, max: usize) -> Vec<u8>;
        finish_blob_upload(id: i64) -> ();
        discard_blob_upload(id: i64) -> ();
        discard_stale_blob_uploads(updated_before_ms: i64) -> usize;
        blob_referenced(hash: &str, scopes: &[String]) -> bool;
    }
}

/// `POST /v1/sync` over a plain TCP connection: the status and the decoded error body.
fn post_sync(addr: SocketAddr, token: &str, request: &SyncRequest) -> (u16, Option<ErrorBody>) {
    let body = wire::encode(request);
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/sync HTTP/1.1\r\nhost: {addr}\r\nwangge-protocol: 1\r\nauthorization: Bearer {token}\r\n\
         content-type: application/cbor\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|window| window == b"\r\n\r\n").expect("a whole HTTP response");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|status| status.parse().ok()).expect("a status line");
    (status, wire::decode::<ErrorBody>(&response[split + 4..]).ok())
}

struct TestDevice {
    store: Store,
    client: SyncClient,
    device_id: String,
    token: String,
    _dir: tempfile::TempDir,
}

async fn enrolled(url: &str, code: &str) -> TestDevice {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("device.db")).unwrap();
    let client = SyncClient::new(url).unwrap().with_retries(1, Duration::from_millis(10));
    let enrollment = client.enroll(&store, code, "test device").await.unwrap();
    TestDevice { store, client, device_id: enrollment.device_id, token: enrollment.token, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_request_is_answered_500_and_others_are_served_meanwhile_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let storage = PanickingStorage {
        inner: SqliteStorage::open(&dir.path().join("server.db")).unwrap(),
        panic_for: Mutex::new(None),
        n_panics: AtomicUsize::new(0),
    };
    let service = Service::new(storage);
    let grid = GridCode::parse_default("440703001001001").unwrap();
    service.create_grid(&grid, "长堤社区第一网格", "community").unwrap();
    let mut codes = Vec::new();
    for person in ["w1", "w2", "w3"] {
        let worker = Worker {
            person: person.into(),
            role: "full_time_worker".into(),
            department: None,
            grids: vec![grid.as_str().into()],
        };
        service.create_worker(&worker).unwrap();
        codes.push(service.issue_enrollment_code(person).unwrap());
    }
    let (listener, addr) = wangge_server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(wangge_server::serve(listener, service.clone(), async {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}");
    let doomed = enrolled(&url, &codes[0]).await;
    let writer = enrolled(&url, &codes[1]).await;
    let reader = enrolled(&url, &codes[2]).await;
    *service.storage().panic_for.lock().unwrap() = Some(doomed.device_id.clone());

    // The doomed device's requests and the others' rounds, all at once.
    let options =
        wangge_core::demo::DemoOptions { households: 3, organizations: 1, components: 1, ..Default::default() };
    writer.store.import(&grid, &wangge_core::demo::generate_grid(&grid, &options)).unwrap();
    let doomed_requests = (0..6).map(|_| {
        let token = doomed.token.clone();
        tokio::task::spawn_blocking(move || post_sync(addr, &token, &SyncRequest::default()))
    });
    let doomed_requests = futures_join(doomed_requests.collect());
    let others = async {
        for _ in 0..3 {
            writer.client.sync(&writer.store, None).await.expect("the writer's sync is served");
            reader.client.sync(&reader.store, None).await.expect("the reader's sync is served");
        }
    };
    let (answers, ()) = tokio::join!(doomed_requests, others);
    for (status, body) in answers {
        assert_eq!(status, 500);
        let body = body.expect("a CBOR error body");
        assert_eq!(body.code, "internal");
        assert_eq!(body.message, "internal error", "the panic's message stays in the server");
    }
    assert_eq!(service.storage().n_panics.load(Ordering::SeqCst), 6);

    // The others' work went through: the reader holds what the writer pushed.
    let register = DocId { kind: DocKind::Register, key: grid.as_str().into() };
    assert_eq!(writer.store.pending_changes().unwrap(), 0);
    assert_eq!(reader.store.heads(&register).unwrap(), writer.store.heads(&register).unwrap());

    // The bug gone, the same device is served again: the server and its blocking pool survived.
    *service.storage().panic_for.lock().unwrap() = None;
    let (status, _) =
        tokio::task::spawn_blocking(move || post_sync(addr, &doomed.token, &SyncRequest::default())).await.unwrap();
    assert_eq!(status, 200);
    doomed.client.sync(&doomed.store, None).await.expect("the once doomed device syncs");
    assert_eq!(doomed.store.heads(&register).unwrap(), writer.store.heads(&register).unwrap());

    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

/// Awaits every task, in order.
async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}
