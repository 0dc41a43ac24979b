//! The HTTP transport of the sync protocol (reqwest, rustls with the ring provider; no
//! OpenSSL anywhere).
//!
//! [`SyncClient::sync`] repeats rounds of [`Store::begin_sync`] / [`Store::finish_sync`]
//! until the server has no page left. Transport failures (no route, timeout, 5xx) are
//! retried with exponential backoff; protocol refusals (4xx) are not. Dropping the future
//! interrupts a sync safely: each round's changes to the store are transactional, and a
//! round cut off is repeated by the next sync.
//!
//! Blobs (photos) travel apart from documents, in chunks: [`SyncClient::upload_blob`]
//! resumes from where the server's upload stands, [`SyncClient::download_blob`] from the
//! bytes already on the device. After a sync, the app calls
//! [`SyncClient::upload_pending_blobs`] for the photos the device took.
//!
//! TLS: certificates are checked by the platform verifier (`rustls-platform-verifier`:
//! the system's trust store on iOS, macOS, Windows and Linux). On Android, where that
//! verifier needs a JNI initialisation from the app, they are checked against Mozilla's
//! root certificates bundled in the library (`webpki-root-certs`): nothing to set up.

use std::time::Duration;

use super::wire::{
    self, BlobChunk, BlobDownloadRequest, BlobStatus, BlobStatusRequest, BlobUploadRequest, CONTENT_TYPE,
    DEFAULT_PULL_BUDGET, EnrollRequest, EnrollResponse, ErrorBody, MAX_BLOB_CHUNK_BYTES, PROTOCOL_HEADER,
    PROTOCOL_VERSION, SERVER_TIME_HEADER, SyncResponse,
};
use crate::blobs::{BlobHash, BlobStore};
use crate::store::Store;
use crate::{Error, Result};

/// How many documents one sync may set aside after refused pushes before giving up.
const MAX_SET_ASIDE: u32 = 8;

/// Progress of one sync, reported after every page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncProgress {
    pub pages: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub docs_pulled: u64,
    pub changes_pushed: u64,
}

/// What [`SyncClient::upload_pending_blobs`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlobUploads {
    /// Blobs the server now has whole (some perhaps from another device already).
    pub n_blobs: usize,
    /// Bytes of blobs sent (not counting encoding).
    pub bytes_sent: u64,
}

/// Receives progress while a sync runs (a screen's progress bar).
pub trait SyncListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);

    /// After each page, the documents whose content it changed (pulled or purged).
    fn on_documents_changed(&self, _docs: &[String]) {}
}

/// A protocol request as every client sends it: a body (CBOR + zstd, [`wire::encode`]) posted
/// to `path` under `base_url`, with the content type, the protocol version and, once
/// enrolled, the device's token.
pub fn protocol_post(
    http: &reqwest::Client,
    base_url: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let request = http
        .post(format!("{base_url}{path}"))
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
        .body(body);
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// Talks to one sync server.
#[derive(Debug, Clone)]
pub struct SyncClient {
    http: reqwest::Client,
    base_url: String,
    max_attempts: u32,
    first_backoff: Duration,
    blob_chunk_bytes: usize,
}

impl SyncClient {
    /// A client for the server at `base_url` (e.g. `https://sync.example.cn`).
    pub fn new(base_url: &str) -> Result<Self> {
        install_crypto_provider();
        let builder =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).timeout(Duration::from_secs(60));
        #[cfg(target_os = "android")]
        let builder = builder.tls_certs_only(bundled_roots());
        let http = builder.build().map_err(|error| Error::Transport { reason: error.to_string() })?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            max_attempts: 4,
            first_backoff: Duration::from_millis(200),
            blob_chunk_bytes: MAX_BLOB_CHUNK_BYTES,
        })
    }

    /// How often a failed request is tried, and the first wait (doubled each time).
    pub fn with_retries(mut self, max_attempts: u32, first_backoff: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.first_backoff = first_backoff;
        self
    }

    /// The size of the chunks blobs travel in (at most 1 MiB, the protocol's limit):
    /// smaller on a poor connection loses less when a request is cut off.
    pub fn with_blob_chunk_bytes(mut self, chunk_bytes: usize) -> Self {
        self.blob_chunk_bytes = chunk_bytes.clamp(1, MAX_BLOB_CHUNK_BYTES);
        self
    }

    /// Exchanges a one-time enrollment code for a token, and records it in the store
    /// with the worker's grids.
    pub async fn enroll(&self, store: &Store, code: &str, device_name: &str) -> Result<EnrollResponse> {
        let actor = hex_to_bytes(&store.device_actor());
        let request = EnrollRequest {
            code: code.trim().to_owned(),
            actor,
            device_name: device_name.to_owned(),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let body = wire::encode(&request);
        let (response, _) = self.post::<EnrollResponse>(store, "/v1/enroll", None, body).await?;
        store.apply_enrollment(&response)?;
        Ok(response)
    }

    /// Syncs the store: pushes what the server has not acknowledged, pulls its scopes'
    /// changes page by page. Errors are also recorded in the store's sync status.
    pub async fn sync(&self, store: &Store, listener: Option<&dyn SyncListener>) -> Result<SyncProgress> {
        let result = self.sync_pages(store, listener).await;
        if let Err(error) = &result {
            store.record_sync_error(&error.to_string())?;
        }
        result
    }

    async fn sync_pages(&self, store: &Store, listener: Option<&dyn SyncListener>) -> Result<SyncProgress> {
        let token = store.sync_token()?.ok_or(Error::NotEnrolled)?;
        let mut progress = SyncProgress::default();
        let mut set_aside = 0;
        loop {
            let round = store.begin_sync(DEFAULT_PULL_BUDGET)?;
            let body = wire::encode(&round.request);
            progress.bytes_sent += body.len() as u64;
            let (response, received): (SyncResponse, usize) =
                match self.post(store, "/v1/sync", Some(&token), body).await {
                    // A push refused for one document would be refused again forever: set that
                    // document aside (its unsynced changes exported to a file), get it anew.
                    Err(Error::Refused { status: 400 | 403, doc: Some(doc), .. }) if set_aside < MAX_SET_ASIDE => {
                        if let Some(doc_id) = crate::crdt::DocId::parse(&doc) {
                            store.set_aside(&doc_id)?;
                            set_aside += 1;
                            continue;
                        }
                        return Err(Error::document(&doc, "the server refused a document this version cannot name"));
                    }
                    result => result?,
                };
            progress.bytes_received += received as u64;
            let outcome = store.finish_sync(round, response)?;
            progress.pages += 1;
            progress.docs_pulled += outcome.n_pulled_docs as u64;
            progress.changes_pushed += outcome.n_pushed_changes as u64;
            if let Some(listener) = listener {
                if !outcome.changed_docs.is_empty() {
                    listener.on_documents_changed(&outcome.changed_docs);
                }
                listener.on_progress(progress);
            }
            if !outcome.more {
                return Ok(progress);
            }
        }
    }

    /// Where the server's upload of a blob from this device stands.
    pub async fn blob_status(&self, store: &Store, hash: &BlobHash) -> Result<BlobStatus> {
        let token = store.sync_token()?.ok_or(Error::NotEnrolled)?;
        self.blob_status_with(store, &token, hash).await
    }

    async fn blob_status_with(&self, store: &Store, token: &str, hash: &BlobHash) -> Result<BlobStatus> {
        let request = BlobStatusRequest { hash: hash.to_string() };
        Ok(self.post(store, "/v1/blobs/status", Some(token), wire::encode(&request)).await?.0)
    }

    /// Uploads a blob of this device's blob store, continuing from where the server's
    /// upload stands (an upload cut off resumes; one the server has whole is not sent
    /// again), then marks it uploaded. Returns the bytes sent.
    pub async fn upload_blob(&self, store: &Store, blobs: &BlobStore, hash: &BlobHash) -> Result<u64> {
        let token = store.sync_token()?.ok_or(Error::NotEnrolled)?;
        let bytes = blobs.get(hash)?.ok_or_else(|| Error::UnknownBlob { hash: hash.to_string() })?;
        if BlobHash::of(&bytes) != *hash {
            // Damaged on this device: the server would refuse it after the last chunk.
            return Err(Error::BlobMismatch { hash: hash.to_string() });
        }
        let size = bytes.len() as u64;
        let mut status = self.blob_status_with(store, &token, hash).await?;
        let mut sent = 0;
        let mut n_conflicts = 0;
        while !status.complete {
            // An upload of another size (never from this client) restarts at 0.
            let offset = if status.received > size { 0 } else { status.received };
            let end = size.min(offset + self.blob_chunk_bytes as u64);
            let chunk = bytes[offset as usize..end as usize].to_vec();
            let request = BlobUploadRequest { hash: hash.to_string(), size, offset, chunk: chunk.into() };
            match self.post::<BlobStatus>(store, "/v1/blobs/upload", Some(&token), wire::encode(&request)).await {
                Ok((next, _)) => {
                    sent += end - offset;
                    n_conflicts = 0;
                    if !next.complete && next.received <= offset && end > offset {
                        return Err(Error::Transport { reason: "the server did not take a blob chunk".into() });
                    }
                    status = next;
                }
                // The server's upload is elsewhere (a retried chunk that had arrived): ask.
                Err(Error::Refused { status: 409, .. }) if n_conflicts < 3 => {
                    n_conflicts += 1;
                    status = self.blob_status_with(store, &token, hash).await?;
                }
                Err(error) => return Err(error),
            }
        }
        blobs.mark_uploaded(hash)?;
        Ok(sent)
    }

    /// Uploads every blob put on this device that the server does not have whole yet; to
    /// be called after [`SyncClient::sync`]. A blob the server refuses does not hold back
    /// the others: the first refusal is returned (and recorded in the sync status) after
    /// trying them all; a transport failure or a revoked device stops at once.
    pub async fn upload_pending_blobs(&self, store: &Store, blobs: &BlobStore) -> Result<BlobUploads> {
        let mut uploads = BlobUploads::default();
        let mut refused = None;
        for hash in blobs.pending_uploads()? {
            match self.upload_blob(store, blobs, &hash).await {
                Ok(bytes_sent) => {
                    uploads.n_blobs += 1;
                    uploads.bytes_sent += bytes_sent;
                }
                Err(error @ (Error::Transport { .. } | Error::Revoked | Error::NotEnrolled))
                | Err(error @ Error::Refused { status: 401, .. }) => {
                    store.record_sync_error(&error.to_string())?;
                    return Err(error);
                }
                Err(error) => {
                    refused.get_or_insert(error);
                }
            }
        }
        match refused {
            Some(error) => {
                store.record_sync_error(&error.to_string())?;
                Err(error)
            }
            None => Ok(uploads),
        }
    }

    /// A blob's bytes: from the blob store if there, else downloaded (resuming a download
    /// cut off before), checked against the name and stored. The server answers 403 unless
    /// a document this device may read refers to the blob, and 404 `not_found` while no
    /// device has uploaded it whole.
    pub async fn download_blob(&self, store: &Store, blobs: &BlobStore, hash: &BlobHash) -> Result<Vec<u8>> {
        if let Some(bytes) = blobs.get(hash)? {
            return Ok(bytes);
        }
        let token = store.sync_token()?.ok_or(Error::NotEnrolled)?;
        let mut offset = blobs.partial_len(hash)?;
        let max = u32::try_from(self.blob_chunk_bytes).unwrap_or(u32::MAX);
        loop {
            let request = BlobDownloadRequest { hash: hash.to_string(), offset, max };
            let answer: BlobChunk =
                match self.post(store, "/v1/blobs/download", Some(&token), wire::encode(&request)).await {
                    Ok((answer, _)) => answer,
                    // Bytes from before that run past the blob: not its bytes, start again.
                    Err(Error::Refused { status: 400, .. }) if offset > 0 => {
                        blobs.discard_partial(hash)?;
                        offset = 0;
                        continue;
                    }
                    Err(error) => return Err(error),
                };
            if offset + answer.chunk.len() as u64 > answer.total {
                // Not this blob's bytes before (or a confused server): start again.
                blobs.discard_partial(hash)?;
                return Err(Error::BlobMismatch { hash: hash.to_string() });
            }
            blobs.append_partial(hash, &answer.chunk)?;
            offset += answer.chunk.len() as u64;
            if offset == answer.total {
                break;
            }
            if answer.chunk.is_empty() {
                return Err(Error::Transport { reason: "the server sent an empty blob chunk".into() });
            }
        }
        blobs.finish_partial(hash)
    }

    /// Posts a body, retrying transport failures; returns the decoded answer and its size.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        store: &Store,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(T, usize)> {
        let mut backoff = self.first_backoff;
        let mut attempt = 1;
        loop {
            match self.post_once(store, path, token, body.clone()).await {
                Err(Error::Transport { .. }) if attempt < self.max_attempts => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn post_once<T: serde::de::DeserializeOwned>(
        &self,
        store: &Store,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(T, usize)> {
        let transport = |error: reqwest::Error| Error::Transport { reason: error.without_url().to_string() };
        let request = protocol_post(&self.http, &self.base_url, path, token, body);
        let sent_ms = store.clock().device_ms();
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        // Every answer says the server's time: the store's clock follows it ([`crate::clock`]).
        let server_ms = response
            .headers()
            .get(SERVER_TIME_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<i64>().ok());
        if let Some(server_ms) = server_ms {
            store.observe_server_time(server_ms, sent_ms, store.clock().device_ms())?;
        }
        let bytes = response.bytes().await.map_err(transport)?;
        // A busy server (5xx) or one slowing this device down (429): try again later.
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Error::Transport { reason: format!("server answered {status}") });
        }
        if !status.is_success() {
            let refusal: ErrorBody = wire::decode(&bytes).unwrap_or(ErrorBody {
                code: "unknown".into(),
                message: format!("server answered {status}"),
                doc: None,
            });
            return Err(match refusal.code.as_str() {
                "revoked" => Error::Revoked,
                _ => Error::Refused {
                    status: status.as_u16(),
                    code: refusal.code,
                    message: refusal.message,
                    doc: refusal.doc,
                },
            });
        }
        let decoded = wire::decode(&bytes).map_err(|error| Error::Transport { reason: error.to_string() })?;
        Ok((decoded, bytes.len()))
    }
}

/// Mozilla's root certificates, as bundled for Android.
#[cfg(any(target_os = "android", test))]
fn bundled_roots() -> Vec<reqwest::Certificate> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok())
        .collect()
}

/// Installs rustls's ring provider for the process (any reqwest client needs one); a
/// second call changes nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What Android builds with: every bundled root parses, and a client accepts them as its
    /// only roots.
    #[test]
    fn the_bundled_roots_make_a_client() {
        install_crypto_provider();
        let roots = bundled_roots();
        assert_eq!(roots.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(roots.len() > 100);
        reqwest::Client::builder().tls_certs_only(roots).build().unwrap();
    }
}
