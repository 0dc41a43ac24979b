//! wangge-server: the sync server. [`service`] is the protocol's server side over a
//! [`storage::Storage`]; [`http`] carries it; the binary (`main.rs`) runs and administers it.

pub mod center_http;
pub mod demo;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod public_page;
pub mod qr;
pub mod service;
pub mod status_page;
pub mod storage;
#[doc(hidden)]
pub mod throwaway_postgres;

use std::net::SocketAddr;

pub use service::{Service, ServiceError};
pub use storage::{PostgresStorage, SqliteStorage, Storage, Worker, WorkerContact};

/// Serves until `shutdown` completes, finishing requests in flight (graceful shutdown).
pub async fn serve<S: Storage>(
    listener: tokio::net::TcpListener,
    service: Service<S>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_admin(listener, None, service, shutdown).await
}

/// Serves devices on `listener` and, when given, the operator's pages (`/status`,
/// `/metrics`) on `admin`, until `shutdown` completes; both finish requests in flight.
pub async fn serve_with_admin<S: Storage>(
    listener: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
    service: Service<S>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(service.clone()));
    let (public, admin_router) = http::routers(service);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopping = tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    };
    let admin_served = admin.map(|admin| {
        let until = until_stopped(stopped.clone());
        tokio::spawn(async move { axum::serve(admin, admin_router).with_graceful_shutdown(until).await })
    });
    let served = axum::serve(listener, public).with_graceful_shutdown(until_stopped(stopped)).await;
    if let Some(admin_served) = admin_served {
        let _ = admin_served.await;
    }
    stopping.abort();
    housekeeping.abort();
    served
}

/// Hourly, from the start: drops blob uploads abandoned for longer than their lifetime,
/// quiet devices' request counters, and moves incidents archived longer ago than the
/// retention off devices (`service/retention.rs`).
async fn housekeeping<S: Storage>(service: Service<S>) {
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        hourly.tick().await;
        service.forget_idle_devices();
        chore(&service, "dropped abandoned blob uploads", Service::discard_stale_uploads).await;
        chore(&service, "archived incidents past their retention left devices", Service::retire_archived_incidents)
            .await;
    }
}

/// One housekeeping job on a blocking thread; logs how many things it did, or its error.
async fn chore<S: Storage>(
    service: &Service<S>,
    done: &'static str,
    job: fn(&Service<S>) -> Result<usize, service::ServiceError>,
) {
    let service = service.clone();
    match tokio::task::spawn_blocking(move || job(&service)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(n, "{done}"),
        Ok(Err(error)) => tracing::error!(%error, job = done, "housekeeping job failed"),
        Err(error) => tracing::error!(%error, job = done, "housekeeping job failed"),
    }
}

/// Binds `addr` (port 0: any free port) and returns the listener with its real address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
