//! The HTTP face of the sync service (axum): `POST /v1/enroll`, `POST /v1/sync`,
//! `POST /v1/blobs/{upload,status,download}`, `GET /healthz`. Bodies are the protocol's
//! CBOR + gzip; errors are an `ErrorBody` with the HTTP status of the refusal, an oversized
//! body included (413 `too_large`). Blocking storage work runs off the async workers.
//!
//! And one page for everyone, without a token: `GET /public/grids/{code}`, a grid's
//! public card as HTML (`public_page.rs`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wangge_core::sync::wire::{
    self, CONTENT_TYPE, ErrorBody, MAX_BODY_BYTES, PROTOCOL_HEADER, PROTOCOL_VERSION, WireError,
};

use crate::public_page;
use crate::service::{Service, ServiceError};
use crate::storage::Storage;

pub fn router<S: Storage>(service: Service<S>) -> Router {
    Router::new()
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
        .route("/public/grids/{code}", get(public_grid::<S>))
        // Bodies are read up to the limit and no further; a longer one is refused below
        // (`body`) with a CBOR 413 rather than axum's plain text.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

fn cbor<T: Serialize>(status: StatusCode, message: &T) -> Response {
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], wire::encode(message)).into_response()
}

fn refusal(error: ServiceError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let doc = error.doc().map(str::to_owned);
    cbor(status, &ErrorBody { code: error.code().to_owned(), message: error.to_string(), doc })
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
