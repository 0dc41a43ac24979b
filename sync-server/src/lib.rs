//! wangge-server: the sync server. [`service`] is the protocol's server side over a
//! [`storage::Storage`]; [`http`] carries it; the binary (`main.rs`) runs and administers it.

pub mod center_http;
pub mod demo;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod public_page;
pub mod service;
pub mod storage;

use std::net::SocketAddr;

pub use service::{Service, ServiceError};
pub use storage::{PostgresStorage, SqliteStorage, Storage, Worker, WorkerContact};

/// Serves until `shutdown` completes, finishing requests in flight (graceful shutdown).
pub async fn serve<S: Storage>(
    listener: tokio::net::TcpListener,
    service: Service<S>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(service.clone()));
    let served = axum::serve(listener, http::router(service)).with_graceful_shutdown(shutdown).await;
    housekeeping.abort();
    served
}

/// Hourly, from the start: drops blob uploads abandoned for longer than their lifetime,
/// and quiet devices' request counters.
async fn housekeeping<S: Storage>(service: Service<S>) {
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        hourly.tick().await;
        service.forget_idle_devices();
        let service = service.clone();
        match tokio::task::spawn_blocking(move || service.discard_stale_uploads()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(n, "dropped abandoned blob uploads"),
            Ok(Err(error)) => tracing::error!(%error, "dropping abandoned blob uploads failed"),
            Err(error) => tracing::error!(%error, "housekeeping failed"),
        }
    }
}

/// Binds `addr` (port 0: any free port) and returns the listener with its real address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
