//! One HTTP exchange of the sync protocol, timed: the body is encoded before the clock
//! starts and decoded after it stops, so a latency is the round trip as the device waits
//! for it (connection, server, bytes back), and the same client code drives the server
//! and the baseline.
//!
//! reqwest, as the core's client uses it, with one connection pool for every simulated
//! device: on loopback a device's own TCP connection would cost the server an accept and
//! nothing else that matters here (no TLS: a reverse proxy terminates it in production).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use wangge_core::sync::http::protocol_post;
use wangge_core::sync::wire::{self, ErrorBody};

/// Why an exchange did not give the answer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A refusal with its protocol code (4xx and 5xx with an `ErrorBody`).
    Refused { status: u16, code: String, message: String },
    /// No answer, a cut connection, or a body that does not decode.
    Transport(String),
}

impl Failure {
    /// A short label for counting: `403 forbidden`, `transport`.
    pub fn label(&self) -> String {
        match self {
            Failure::Refused { status, code, .. } => format!("{status} {code}"),
            Failure::Transport(_) => "transport".to_owned(),
        }
    }

    /// Whether this failure fails the run: every refusal except 409 (a document written by
    /// others 16 times while the push was checked) and 429 (a device over its request
    /// rate), which are expected under load and retried at the device's next turn. A
    /// transport failure (a connection the overloaded server did not take in time) is
    /// counted and reported but does not fail the run by itself; a server that died does.
    pub fn fails_run(&self) -> bool {
        match self {
            Failure::Refused { status, .. } => !matches!(status, 409 | 429),
            Failure::Transport(_) => false,
        }
    }
}

/// An error with its causes: reqwest's own message ("error sending request") says little.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A finished exchange: what came back, and what it cost.
#[derive(Debug)]
pub struct Exchange<T> {
    pub result: Result<T, Failure>,
    pub latency: Duration,
    pub bytes_up: usize,
    pub bytes_down: usize,
}

/// The HTTP client every simulated device shares.
#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    base_url: String,
}

impl Transport {
    pub fn new(base_url: &str) -> Result<Transport, String> {
        wangge_core::sync::http::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| format!("an HTTP client: {error}"))?;
        Ok(Transport { http, base_url: base_url.trim_end_matches('/').to_owned() })
    }

    /// The same client for another server (the baseline).
    pub fn with_base(&self, base_url: &str) -> Transport {
        Transport { http: self.http.clone(), base_url: base_url.trim_end_matches('/').to_owned() }
    }

    /// Posts `message` (CBOR + zstd) to `path` and decodes the answer.
    pub async fn post<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
        message: &Q,
    ) -> Exchange<A> {
        let body = wire::encode(message);
        let bytes_up = body.len();
        let request = protocol_post(&self.http, &self.base_url, path, token, body);
        let started = Instant::now();
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|bytes| (status, bytes))
            }
            Err(error) => Err(error),
        };
        let latency = started.elapsed();
        let (status, bytes) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                let result = Err(Failure::Transport(with_sources(&error.without_url())));
                return Exchange { result, latency, bytes_up, bytes_down: 0 };
            }
        };
        let bytes_down = bytes.len();
        let result = if status.is_success() {
            wire::decode(&bytes).map_err(|error| Failure::Transport(format!("an undecodable answer: {error}")))
        } else {
            let refusal: ErrorBody = wire::decode(&bytes).unwrap_or(ErrorBody {
                code: "unknown".into(),
                message: format!("the server answered {status}"),
                doc: None,
            });
            Err(Failure::Refused { status: status.as_u16(), code: refusal.code, message: refusal.message })
        };
        Exchange { result, latency, bytes_up, bytes_down }
    }

    /// Whether `GET path` answers 200 now.
    pub async fn get_ok(&self, path: &str) -> bool {
        match self.http.get(format!("{}{path}", self.base_url)).timeout(Duration::from_secs(2)).send().await {
            Ok(response) => response.status().is_success(),
            Err(_) => false,
        }
    }
}
