//! wangge-server: the sync server. [`service`] is the protocol's server side over a
//! [`storage::Storage`]; [`http`] carries it; the binary (`main.rs`) runs and administers it.

pub mod demo;
pub mod http;
pub mod service;
pub mod storage;

use std::net::SocketAddr;

pub use service::{Service, ServiceError};
pub use storage::{SqliteStorage, Storage, Worker};

/// Serves until `shutdown` completes, finishing requests in flight (graceful shutdown).
pub async fn serve<S: Storage>(
    listener: tokio::net::TcpListener,
    service: Service<S>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, http::router(service)).with_graceful_shutdown(shutdown).await
}

/// Binds `addr` (port 0: any free port) and returns the listener with its real address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
