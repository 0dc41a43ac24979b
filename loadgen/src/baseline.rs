//! The baseline: a plain axum endpoint with no CRDT and no storage work, in its own
//! process like the server. `POST /v1/sync` decodes the request (CBOR + zstd, as the
//! server does) and answers with a comparable body: every pushed document acknowledged and
//! its changes sent back as a pull, the cursor unchanged. The same devices drive it with
//! the same client code at the same rate, so the ratio of each figure against it is what
//! the sync server's own work costs.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use wangge_core::sync::wire::{self, CONTENT_TYPE, DocPull, SyncRequest, SyncResponse};

async fn echo(body: Bytes) -> Response {
    let Ok(request) = wire::decode::<SyncRequest>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let response = SyncResponse {
        acks: request.pushes.iter().map(|push| push.doc.clone()).collect(),
        pulls: request
            .pushes
            .into_iter()
            .map(|push| DocPull { doc: push.doc, snapshot: None, changes: push.changes })
            .collect(),
        cursor: request.cursor,
        more: false,
        removed: Vec::new(),
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], wire::encode(&response)).into_response()
}

/// Serves the baseline on `listen` until Ctrl-C; prints the address it serves on.
pub async fn serve(listen: SocketAddr) -> std::io::Result<()> {
    let app = Router::new().route("/v1/sync", post(echo)).route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("wangge-loadgen baseline: serving on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
