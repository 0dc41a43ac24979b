//! Photos as blobs through the server: resumable chunked uploads checked against their
//! name, downloads only for devices that may read a document referring to them, limits.

use wangge_core::blobs::{BlobHash, BlobStore};
use wangge_core::incident::Actor;
use wangge_core::incident::roles::Role;
use wangge_core::model::{GridCode, IncidentId};
use wangge_core::sync::http::BlobUploads;
use wangge_core::sync::wire::{
    self, BlobStatus, BlobUploadRequest, ErrorBody, MAX_BLOB_BYTES, MAX_BLOB_CHUNK_BYTES, MAX_BODY_BYTES,
};
use wangge_core::{Error, NewIncident};
use wangge_server::Storage;
use wangge_tests::{TestDevice, TestServer, photo};

const CHUNK: usize = 64 * 1024;

/// Posts a body as a device would; the status and the body.
async fn post(server: &TestServer, path: &str, token: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .header(wire::PROTOCOL_HEADER, "1")
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

/// One chunk of an upload, sent by hand: the status and the answer's error code (empty on success).
async fn upload_chunk(
    server: &TestServer,
    token: &str,
    hash: &BlobHash,
    size: u64,
    offset: u64,
    chunk: &[u8],
) -> (u16, String) {
    let request = BlobUploadRequest { hash: hash.to_string(), size, offset, chunk: chunk.to_vec().into() };
    let (status, body) = post(server, "/v1/blobs/upload", token, wire::encode(&request)).await;
    let code = wire::decode::<ErrorBody>(&body).map(|error| error.code).unwrap_or_default();
    (status, code)
}

fn token(device: &TestDevice) -> String {
    device.store.sync_token().unwrap().unwrap()
}

/// Reports an incident in `grid` whose photos are `photos`, by worker `w1`.
fn report(device: &TestDevice, grid: &GridCode, photos: &[&BlobHash]) -> IncidentId {
    let me = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
    let item = device.store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    device
        .store
        .report_incident(
            NewIncident {
                grid: grid.clone(),
                catalog_item: item,
                title: "井盖破损".into(),
                description: "人行道井盖破损，有安全隐患".into(),
                location: None,
                residents: vec![],
                households: vec![],
                organizations: vec![],
                photos: photos.iter().map(ToString::to_string).collect(),
                reported_by_resident: None,
            },
            me,
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_upload_cut_in_the_middle_resumes_and_completes() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let center = TestDevice::enrolled(&server, &server.worker("c1", "center_staff_township", None, &[&grid])).await;
    let blobs = BlobStore::beside(&worker.store, 64 << 20).unwrap();
    let bytes = photo(1, 300_000);
    let hash = blobs.put(&bytes).unwrap();
    let size = bytes.len() as u64;

    // Two chunks arrive, then the connection is lost.
    for offset in [0, CHUNK] {
        let chunk = &bytes[offset..offset + CHUNK];
        assert_eq!(
            upload_chunk(&server, &token(&worker), &hash, size, offset as u64, chunk).await,
            (200, String::new())
        );
    }
    let client = worker.client.clone().with_blob_chunk_bytes(CHUNK);
    let cut = BlobStatus { received: 2 * CHUNK as u64, complete: false };
    assert_eq!(client.blob_status(&worker.store, &hash).await.unwrap(), cut);
    assert_eq!(blobs.pending_uploads().unwrap(), vec![hash.clone()]);

    // The next round resumes where the server's upload stands: only the rest is sent.
    let uploads = client.upload_pending_blobs(&worker.store, &blobs).await.unwrap();
    assert_eq!(uploads, BlobUploads { n_blobs: 1, bytes_sent: size - 2 * CHUNK as u64 });
    assert_eq!(client.blob_status(&worker.store, &hash).await.unwrap(), BlobStatus { received: size, complete: true });
    assert!(blobs.pending_uploads().unwrap().is_empty());
    assert_eq!(client.upload_blob(&worker.store, &blobs, &hash).await.unwrap(), 0, "a complete blob is not sent again");

    // An incident refers to the photo: a device that may read it gets identical bytes.
    report(&worker, &grid, &[&hash]);
    worker.sync().await;
    center.sync().await;
    let center_blobs = BlobStore::beside(&center.store, 64 << 20).unwrap();
    let downloaded = center
        .client
        .clone()
        .with_blob_chunk_bytes(CHUNK)
        .download_blob(&center.store, &center_blobs, &hash)
        .await
        .unwrap();
    assert_eq!(downloaded, bytes);
    assert_eq!(center_blobs.get(&hash).unwrap().unwrap(), bytes);
    assert!(!center_blobs.is_pending(&hash));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_that_sees_no_document_referring_to_a_blob_gets_403_and_no_data() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let other = server.grid("440703001001002", "长堤社区第2网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let center = TestDevice::enrolled(&server, &server.worker("c1", "center_staff_township", None, &[&grid])).await;
    let elsewhere = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&other])).await;
    let blobs = BlobStore::beside(&worker.store, 64 << 20).unwrap();
    let hash = blobs.put(&photo(2, 10_000)).unwrap();
    worker.client.upload_pending_blobs(&worker.store, &blobs).await.unwrap();

    #[track_caller]
    fn assert_forbidden(result: Result<Vec<u8>, Error>, blobs: &BlobStore, hash: &BlobHash) {
        match result {
            Err(Error::Refused { status: 403, code, .. }) => assert_eq!(code, "forbidden"),
            other => panic!("expected 403 forbidden, got {other:?}"),
        }
        assert!(!blobs.contains(hash));
        assert_eq!(blobs.len_bytes().unwrap(), 0);
    }

    // Uploaded, but no document refers to it yet: not even the grid's centre may read it.
    let center_blobs = BlobStore::beside(&center.store, 64 << 20).unwrap();
    let result = center.client.download_blob(&center.store, &center_blobs, &hash).await;
    assert_forbidden(result, &center_blobs, &hash);

    // An incident of the first grid refers to it: a worker of the other grid still may not.
    report(&worker, &grid, &[&hash]);
    worker.sync().await;
    elsewhere.sync().await;
    let elsewhere_blobs = BlobStore::beside(&elsewhere.store, 64 << 20).unwrap();
    let result = elsewhere.client.download_blob(&elsewhere.store, &elsewhere_blobs, &hash).await;
    assert_forbidden(result, &elsewhere_blobs, &hash);
    // No bytes in the refusal either: it is an error body.
    let request = wire::BlobDownloadRequest { hash: hash.to_string(), offset: 0, max: 0 };
    let (status, body) = post(&server, "/v1/blobs/download", &token(&elsewhere), wire::encode(&request)).await;
    assert_eq!(status, 403);
    assert_eq!(wire::decode::<ErrorBody>(&body).unwrap().code, "forbidden");
    assert!(wire::decode::<wire::BlobChunk>(&body).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn content_that_does_not_match_its_hash_is_refused_with_400_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let hash = BlobHash::of(&photo(3, 2 * CHUNK));
    let forged = photo(4, 2 * CHUNK);
    let size = forged.len() as u64;

    // The first chunk cannot be checked yet; the last one completes the upload and fails.
    assert_eq!(upload_chunk(&server, &token(&worker), &hash, size, 0, &forged[..CHUNK]).await, (200, String::new()));
    assert_eq!(
        upload_chunk(&server, &token(&worker), &hash, size, CHUNK as u64, &forged[CHUNK..]).await,
        (400, "malformed".into())
    );
    assert_eq!(worker.client.blob_status(&worker.store, &hash).await.unwrap(), BlobStatus::default());
    assert_eq!(server.service.storage().blob(hash.as_str()).unwrap(), None);
    let device = worker
        .store
        .with_reader(|conn| {
            conn.query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |row| row.get::<_, String>(0))
        })
        .unwrap();
    assert_eq!(server.service.storage().blob_upload(&device, hash.as_str()).unwrap(), None, "the upload was discarded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_or_chunk_over_the_limit_is_413_too_large() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let hash = BlobHash::of(b"a video, not a photo");
    assert_eq!(
        upload_chunk(&server, &token(&worker), &hash, MAX_BLOB_BYTES + 1, 0, b"the first bytes").await,
        (413, "too_large".into())
    );
    let big = vec![7u8; MAX_BLOB_CHUNK_BYTES + 1];
    assert_eq!(upload_chunk(&server, &token(&worker), &hash, MAX_BLOB_BYTES, 0, &big).await, (413, "too_large".into()));
    assert_eq!(worker.client.blob_status(&worker.store, &hash).await.unwrap(), BlobStatus::default());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_limit_is_413_too_large_with_an_error_body() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let (status, body) = post(&server, "/v1/sync", &token(&worker), vec![0; MAX_BODY_BYTES + 1]).await;
    assert_eq!(status, 413);
    assert_eq!(wire::decode::<ErrorBody>(&body).unwrap().code, "too_large");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_at_the_wrong_offset_is_409_conflict_and_changes_nothing() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let bytes = photo(5, 3 * CHUNK);
    let hash = BlobHash::of(&bytes);
    let size = bytes.len() as u64;
    assert_eq!(upload_chunk(&server, &token(&worker), &hash, size, 0, &bytes[..CHUNK]).await, (200, String::new()));
    // The first chunk again (its answer was lost), and a chunk that skips one.
    for offset in [0, 2 * CHUNK] {
        let chunk = &bytes[offset..offset + CHUNK];
        assert_eq!(
            upload_chunk(&server, &token(&worker), &hash, size, offset as u64, chunk).await,
            (409, "conflict".into())
        );
    }
    let status = worker.client.blob_status(&worker.store, &hash).await.unwrap();
    assert_eq!(status, BlobStatus { received: CHUNK as u64, complete: false });
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_upload_is_dropped_after_its_lifetime_and_the_device_starts_again() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let blobs = BlobStore::beside(&worker.store, 64 << 20).unwrap();
    let bytes = photo(5, 3 * CHUNK);
    let hash = blobs.put(&bytes).unwrap();
    let size = bytes.len() as u64;
    assert_eq!(upload_chunk(&server, &token(&worker), &hash, size, 0, &bytes[..CHUNK]).await, (200, String::new()));

    // Within its lifetime the upload stays.
    assert_eq!(server.service.discard_stale_uploads().unwrap(), 0);
    let device = server.service.storage().device_by_token(&wangge_server::service::hash_secret(&token(&worker)));
    let device = device.unwrap().unwrap().0.id;
    assert!(server.service.storage().blob_upload(&device, hash.as_str()).unwrap().is_some());

    // Past it (nothing received since a moment from now): dropped.
    let later_ms = chrono::Utc::now().timestamp_millis() + 1000;
    assert_eq!(server.service.storage().discard_stale_blob_uploads(later_ms).unwrap(), 1);
    assert_eq!(server.service.storage().blob_upload(&device, hash.as_str()).unwrap(), None);
    let client = worker.client.clone().with_blob_chunk_bytes(CHUNK);
    assert_eq!(client.blob_status(&worker.store, &hash).await.unwrap(), BlobStatus { received: 0, complete: false });

    // The device sends it whole again.
    let uploads = client.upload_pending_blobs(&worker.store, &blobs).await.unwrap();
    assert_eq!(uploads, BlobUploads { n_blobs: 1, bytes_sent: size });
    assert_eq!(client.blob_status(&worker.store, &hash).await.unwrap(), BlobStatus { received: size, complete: true });
}
