//! The HTTP face of the sync service (axum): `POST /v1/enroll`, `POST /v1/sync`,
//! `POST /v1/blobs/{upload,status,download}`, `GET /healthz`. Bodies are the protocol's
//! CBOR + zstd; errors are an `ErrorBody` with the HTTP status of the refusal, an oversized
//! body included (413 `too_large`), and 429 `rate_limited` with `Retry-After`. Blocking
//! storage work runs off the async workers. Every request is logged (`logging.rs`) and
//! counted (`metrics.rs`); `GET /readyz` answers once the storage does.
//!
//! The admin router, for the operator's own network only (its listener binds loopback by
//! default): `GET /status` (`status_page.rs`), `GET /metrics`, `/healthz`, `/readyz`.
//!
//! And one page for everyone, without a token: `GET /public/grids/{code}`, a grid's
//! public card as HTML (`public_page.rs`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wangge_core::sync::wire::{
    self, CONTENT_TYPE, ErrorBody, MAX_BODY_BYTES, PROTOCOL_HEADER, PROTOCOL_VERSION, SERVER_TIME_HEADER, WireError,
};

use crate::metrics::{Metrics, Observed};
use crate::public_page;
use crate::service::{Service, ServiceError};
use crate::status_page::{self, Status};
use crate::storage::Storage;

/// The public router (devices and the public grid pages).
pub fn router<S: Storage>(service: Service<S>) -> Router {
    routers(service).0
}

/// The public router and the admin router (`/status`, `/metrics`, `/healthz`, `/readyz`),
/// counting into the same metrics.
pub fn routers<S: Storage>(service: Service<S>) -> (Router, Router) {
    let metrics = Arc::new(Metrics::default());
    let admin = Router::new()
        .route("/status", get(status::<S>))
        .route("/metrics", get(scrape::<S>))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready::<S>))
        .layer(Extension(Arc::clone(&metrics)))
        .with_state(service.clone());
    let public = Router::new()
        .route("/v1/enroll", post(enroll::<S>))
        .route("/v1/sync", post(|state, headers, body| authorized(state, headers, body, Service::<S>::sync)))
        .route(
            "/v1/blobs/upload",
            post(|state, headers, body| authorized(state, headers, body, Service::<S>::upload_blob)),
        )
        .route(
            "/v1/blobs/status",
            post(|state, headers, body| authorized(state, headers, body, Service::<S>::blob_status)),
        )
        .route(
            "/v1/blobs/download",
            post(|state, headers, body| authorized(state, headers, body, Service::<S>::download_blob)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready::<S>))
        .route("/public/grids/{code}", get(public_grid::<S>))
        // The centers' API (HTTP + JSON) and its OpenAPI document.
        .merge(crate::center_http::routes::<S>())
        // Bodies are read up to the limit and no further; a longer one is refused below
        // (`body`) with a CBOR 413 rather than axum's plain text.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&metrics), observe))
        .layer(axum::middleware::map_response(stamp_server_time))
        .with_state(service);
    (public, admin)
}

/// Every answer carries the server's time: devices count deadlines by it, not by their own
/// clocks (`wangge_core::clock`).
async fn stamp_server_time(mut response: Response) -> Response {
    response.headers_mut().insert(SERVER_TIME_HEADER, axum::http::HeaderValue::from(crate::service::now_ms()));
    response
}

/// A refused request's protocol code, for the request's log line and metrics.
#[derive(Debug, Clone, Copy)]
struct RefusalCode(&'static str);

/// One log event and the metrics per request, after it was answered (`us`: microseconds).
async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |route| route.as_str().to_owned());
    let bytes_in =
        request.headers().get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse().ok()).unwrap_or(0);
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let refusal = response.extensions().get::<RefusalCode>().map(|code| code.0);
    metrics.observe(&Observed {
        route: &route,
        status,
        seconds: elapsed.as_secs_f64(),
        bytes_in,
        bytes_out: axum::body::HttpBody::size_hint(response.body()).exact().unwrap_or(0),
        refusal,
    });
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let refusal = refusal.unwrap_or("");
    if response.status().is_server_error() {
        tracing::error!(%method, route, status, us, refusal, "request failed");
    } else {
        tracing::info!(%method, route, status, us, refusal, "request");
    }
    response
}

/// Ready when the storage answers (`/healthz` only says the process runs).
async fn ready<S: Storage>(State(service): State<Service<S>>) -> Response {
    match run(service, |service| Ok(service.storage().max_seq()?)).await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response()
        }
    }
}

/// The operator's page (`status_page.rs`).
async fn status<S: Storage>(
    State(service): State<Service<S>>,
    Extension(metrics): Extension<Arc<Metrics>>,
) -> Response {
    let now = crate::service::now_ms();
    let (refusals, errors) = (metrics.refusal_counts(), metrics.server_error_count());
    match run(service, move |service| Status::read(&service, now, refusals, errors)).await {
        Ok(status) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
            status_page::page(&status),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
}

/// Prometheus' scrape.
async fn scrape<S: Storage>(
    State(service): State<Service<S>>,
    Extension(metrics): Extension<Arc<Metrics>>,
) -> Response {
    let now = crate::service::now_ms();
    match run(service, move |service| metrics.render(&service, now)).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response(),
    }
}

fn cbor<T: Serialize>(status: StatusCode, message: &T) -> Response {
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], wire::encode(message)).into_response()
}

fn refusal(error: ServiceError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let doc = error.doc().map(str::to_owned);
    if let ServiceError::Internal(cause) = &error {
        // The cause stays here: the device is told only that it failed.
        tracing::error!(cause = %cause, "storage error");
    }
    let mut response = cbor(status, &ErrorBody { code: error.code().to_owned(), message: error.to_string(), doc });
    response.extensions_mut().insert(RefusalCode(error.code()));
    if let ServiceError::RateLimited { retry_after_s } = error {
        response.headers_mut().insert(header::RETRY_AFTER, retry_after_s.into());
    }
    response
}

fn malformed(error: WireError) -> ServiceError {
    match error {
        WireError::TooLarge { .. } => ServiceError::Malformed(error.to_string()),
        WireError::Compression(_) | WireError::Cbor(_) => ServiceError::Malformed(error.to_string()),
    }
}

/// The body, or why it could not be read: over [`MAX_BODY_BYTES`] is `too_large`.
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ServiceError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServiceError::TooLarge(format!("a request body is at most {MAX_BODY_BYTES} bytes"))
        } else {
            ServiceError::Malformed("the body could not be read".into())
        }
    })
}

fn check_version(headers: &HeaderMap) -> Result<(), ServiceError> {
    let version = headers.get(PROTOCOL_HEADER).and_then(|value| value.to_str().ok());
    if version == Some(PROTOCOL_VERSION.to_string().as_str()) { Ok(()) } else { Err(ServiceError::UnsupportedVersion) }
}

async fn run<S: Storage, T: Send + 'static>(
    service: Service<S>,
    work: impl FnOnce(Service<S>) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(move || work(service)).await.unwrap_or_else(|_| Err(ServiceError::Failed))
}

async fn enroll<S: Storage>(
    State(service): State<Service<S>>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        check_version(&headers)?;
        let request = wire::decode(&body(request)?).map_err(malformed)?;
        run(service, move |service| service.enroll(request)).await
    }
    .await;
    match result {
        Ok(response) => cbor(StatusCode::OK, &response),
        Err(error) => refusal(error),
    }
}

/// An endpoint for enrolled devices: version, bearer token, body, then the service.
async fn authorized<S: Storage, Q: DeserializeOwned + Send + 'static, A: Serialize + Send + 'static>(
    State(service): State<Service<S>>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
    work: fn(&Service<S>, &str, Q) -> Result<A, ServiceError>,
) -> Response {
    let result = async {
        check_version(&headers)?;
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned)
            .ok_or(ServiceError::Unauthorized)?;
        let request = wire::decode(&body(request)?).map_err(malformed)?;
        run(service, move |service| work(&service, &token, request)).await
    }
    .await;
    match result {
        Ok(response) => cbor(StatusCode::OK, &response),
        Err(error) => refusal(error),
    }
}

/// A grid's public card as a page: no token, cached for a while; 404 with a short page
/// for a code that is not a known grid's.
async fn public_grid<S: Storage>(
    State(service): State<Service<S>>,
    code: Result<Path<String>, PathRejection>,
) -> Response {
    let result = match code {
        Ok(Path(code)) => run(service, move |service| service.grid_card(&code)).await,
        Err(_) => Err(ServiceError::NotFound("no such grid".into())),
    };
    let (status, page, cache) = match result {
        Ok(card) => (StatusCode::OK, public_page::grid_page(&card), public_page::CACHE_CONTROL),
        Err(ServiceError::NotFound(_)) => (StatusCode::NOT_FOUND, public_page::not_found_page(), "public, max-age=60"),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, public_page::error_page(), "no-store"),
    };
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, cache),
        (header::CONTENT_SECURITY_POLICY, public_page::CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    (status, headers, page).into_response()
}
