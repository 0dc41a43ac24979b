//! The HTTP face of the sync service (axum): `POST /v1/enroll`, `POST /v1/sync`,
//! `GET /healthz`. Bodies are the protocol's CBOR + gzip; errors are an `ErrorBody` with
//! the HTTP status of the refusal. Blocking storage work runs off the async workers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use wangge_core::sync::wire::{
    self, CONTENT_TYPE, ErrorBody, MAX_BODY_BYTES, PROTOCOL_HEADER, PROTOCOL_VERSION, WireError,
};

use crate::service::{Service, ServiceError};
use crate::storage::Storage;

pub fn router<S: Storage>(service: Service<S>) -> Router {
    Router::new()
        .route("/v1/enroll", post(enroll::<S>))
        .route("/v1/sync", post(sync::<S>))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

fn cbor<T: serde::Serialize>(status: StatusCode, message: &T) -> Response {
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], wire::encode(message)).into_response()
}

fn refusal(error: ServiceError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    cbor(status, &ErrorBody { code: error.code().to_owned(), message: error.to_string() })
}

fn malformed(error: WireError) -> ServiceError {
    match error {
        WireError::TooLarge { .. } => ServiceError::Malformed(error.to_string()),
        WireError::Compression(_) | WireError::Cbor(_) => ServiceError::Malformed(error.to_string()),
    }
}

fn check_version(headers: &HeaderMap) -> Result<(), ServiceError> {
    let version = headers.get(PROTOCOL_HEADER).and_then(|value| value.to_str().ok());
    if version == Some(PROTOCOL_VERSION.to_string().as_str()) { Ok(()) } else { Err(ServiceError::UnsupportedVersion) }
}

async fn run<S: Storage, T: Send + 'static>(
    service: Service<S>,
    work: impl FnOnce(Service<S>) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(move || work(service))
        .await
        .unwrap_or_else(|_| Err(ServiceError::Malformed("the request could not be handled".into())))
}

async fn enroll<S: Storage>(State(service): State<Service<S>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        check_version(&headers)?;
        let request = wire::decode(&body).map_err(malformed)?;
        run(service, move |service| service.enroll(request)).await
    }
    .await;
    match result {
        Ok(response) => cbor(StatusCode::OK, &response),
        Err(error) => refusal(error),
    }
}

async fn sync<S: Storage>(State(service): State<Service<S>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        check_version(&headers)?;
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned)
            .ok_or(ServiceError::Unauthorized)?;
        let request = wire::decode(&body).map_err(malformed)?;
        run(service, move |service| service.sync(&token, request)).await
    }
    .await;
    match result {
        Ok(response) => cbor(StatusCode::OK, &response),
        Err(error) => refusal(error),
    }
}
