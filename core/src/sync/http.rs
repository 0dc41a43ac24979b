//! The HTTP transport of the sync protocol (reqwest, rustls with the ring provider; no
//! OpenSSL anywhere).
//!
//! [`SyncClient::sync`] repeats rounds of [`Store::begin_sync`] / [`Store::finish_sync`]
//! until the server has no page left. Transport failures (no route, timeout, 5xx) are
//! retried with exponential backoff; protocol refusals (4xx) are not. Dropping the future
//! interrupts a sync safely: each round's changes to the store are transactional, and a
//! round cut off is repeated by the next sync.
//!
//! TLS: certificates are checked by the platform verifier (`rustls-platform-verifier`). On
//! Android the host app must initialise it from JNI before the first request (see the
//! bindings' README).

use std::time::Duration;

use super::wire::{
    self, CONTENT_TYPE, DEFAULT_PULL_BUDGET, EnrollRequest, EnrollResponse, ErrorBody, PROTOCOL_HEADER,
    PROTOCOL_VERSION, SyncResponse,
};
use crate::store::Store;
use crate::{Error, Result};

/// Progress of one sync, reported after every page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncProgress {
    pub pages: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub docs_pulled: u64,
    pub changes_pushed: u64,
}

/// Receives progress while a sync runs (a screen's progress bar).
pub trait SyncListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

/// Talks to one sync server.
#[derive(Debug, Clone)]
pub struct SyncClient {
    http: reqwest::Client,
    base_url: String,
    max_attempts: u32,
    first_backoff: Duration,
}

impl SyncClient {
    /// A client for the server at `base_url` (e.g. `https://sync.example.cn`).
    pub fn new(base_url: &str) -> Result<Self> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| Error::Transport { reason: error.to_string() })?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            max_attempts: 4,
            first_backoff: Duration::from_millis(200),
        })
    }

    /// How often a failed request is tried, and the first wait (doubled each time).
    pub fn with_retries(mut self, max_attempts: u32, first_backoff: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.first_backoff = first_backoff;
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
        let (response, _) = self.post::<EnrollResponse>("/v1/enroll", None, body).await?;
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
        loop {
            let round = store.begin_sync(DEFAULT_PULL_BUDGET)?;
            let body = wire::encode(&round.request);
            progress.bytes_sent += body.len() as u64;
            let (response, received): (SyncResponse, usize) = self.post("/v1/sync", Some(&token), body).await?;
            progress.bytes_received += received as u64;
            let outcome = store.finish_sync(round, response)?;
            progress.pages += 1;
            progress.docs_pulled += outcome.n_pulled_docs as u64;
            progress.changes_pushed += outcome.n_pushed_changes as u64;
            if let Some(listener) = listener {
                listener.on_progress(progress);
            }
            if !outcome.more {
                return Ok(progress);
            }
        }
    }

    /// Posts a body, retrying transport failures; returns the decoded answer and its size.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(T, usize)> {
        let mut backoff = self.first_backoff;
        let mut attempt = 1;
        loop {
            match self.post_once(path, token, body.clone()).await {
                Err(Error::Transport { reason }) if attempt < self.max_attempts => {
                    let _ = reason;
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
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(T, usize)> {
        let transport = |error: reqwest::Error| Error::Transport { reason: error.without_url().to_string() };
        let mut request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_server_error() {
            return Err(Error::Transport { reason: format!("server answered {status}") });
        }
        if !status.is_success() {
            let refusal: ErrorBody = wire::decode(&bytes)
                .unwrap_or(ErrorBody { code: "unknown".into(), message: format!("server answered {status}") });
            return Err(match refusal.code.as_str() {
                "revoked" => Error::Revoked,
                _ => Error::Refused { status: status.as_u16(), code: refusal.code, message: refusal.message },
            });
        }
        let decoded = wire::decode(&bytes).map_err(|error| Error::Transport { reason: error.to_string() })?;
        Ok((decoded, bytes.len()))
    }
}

/// Installs rustls's ring provider for the process (any reqwest client needs one); a
/// second call changes nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}
