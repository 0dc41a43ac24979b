//! Helpers shared by the end-to-end tests: a real sync server on 127.0.0.1 with its own
//! temporary SQLite file, and devices with their own stores.

use std::net::SocketAddr;
use std::time::Duration;

use tempfile::TempDir;
use wangge_core::NewIncident;
use wangge_core::blobs::BlobHash;
use wangge_core::model::GridCode;
use wangge_core::sync::engine::SyncRound;
use wangge_core::sync::http::SyncClient;
use wangge_core::sync::wire;
use wangge_core::{OpenOptions, Store};
use wangge_server::service::AccessPolicy;
use wangge_server::{Service, SqliteStorage, Worker};

/// A running server; stops (gracefully) when dropped.
#[derive(Debug)]
pub struct TestServer {
    pub url: String,
    /// The operator's listener: `/status`, `/metrics`.
    pub admin_url: String,
    pub service: Service<SqliteStorage>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: TempDir,
}

impl TestServer {
    /// Starts a server on a free loopback port and waits until it answers.
    pub async fn start() -> TestServer {
        Self::start_with(AccessPolicy::default()).await
    }

    /// A server with its own token lifetime and request rates.
    pub async fn start_with(policy: AccessPolicy) -> TestServer {
        wangge_core::sync::http::install_crypto_provider();
        // Quiet unless asked for (the suite's log scan asks).
        if std::env::var_os(wangge_server::logging::LEVEL_VAR).is_some() {
            use wangge_server::logging::{LevelFilter, LogFormat, init};
            init(LogFormat::Text, LevelFilter::INFO);
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = SqliteStorage::open(&dir.path().join("server.db")).expect("the server database");
        let service = Service::with_access(storage, policy);
        let (listener, addr) =
            wangge_server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("a loopback port");
        let (admin, admin_addr) =
            wangge_server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("a loopback port");
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = service.clone();
        tokio::spawn(async move {
            let _ = wangge_server::serve_with_admin(listener, Some(admin), running, async {
                let _ = stopped.await;
            })
            .await;
        });
        let url = format!("http://{addr}");
        let admin_url = format!("http://{admin_addr}");
        wait_until_ready(&url).await;
        wait_until_ready(&admin_url).await;
        TestServer { url, admin_url, service, shutdown: Some(shutdown), _dir: dir }
    }

    /// The server's SQLite file (for tests that inspect or damage it directly).
    pub fn database_path(&self) -> std::path::PathBuf {
        self._dir.path().join("server.db")
    }

    pub fn grid(&self, code: &str, name: &str) -> GridCode {
        let code = GridCode::parse_default(code).expect("a valid grid code");
        self.service.create_grid(&code, name, "community").expect("the grid");
        code
    }

    /// Creates a worker and returns a one-time enrollment code.
    pub fn worker(&self, person: &str, role: &str, department: Option<&str>, grids: &[&GridCode]) -> String {
        let grids: Vec<&str> = grids.iter().map(|grid| grid.as_str()).collect();
        self.worker_of_areas(person, role, department, &grids)
    }

    /// Creates a worker assigned to grids or, for center staff, areas (a county's 6 digits,
    /// a township's 9, …) and returns a one-time enrollment code.
    pub fn worker_of_areas(&self, person: &str, role: &str, department: Option<&str>, areas: &[&str]) -> String {
        self.service
            .create_worker(&Worker {
                person: person.into(),
                role: role.into(),
                department: department.map(str::to_owned),
                grids: areas.iter().map(|area| (*area).to_owned()).collect(),
            })
            .expect("the worker");
        self.service.issue_enrollment_code(person).expect("an enrollment code")
    }
}

impl TestServer {
    /// Posts a sync request by hand, as a device with `token` would; the raw response.
    pub async fn post_sync(&self, token: &str, request: &wire::SyncRequest) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/v1/sync", self.url))
            .header(wire::PROTOCOL_HEADER, "1")
            .bearer_auth(token)
            .body(wire::encode(request))
            .send()
            .await
            .expect("the server answers")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Polls `/healthz` until the server answers (never sleeps blindly for a fixed time).
async fn wait_until_ready(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{url}/healthz")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the test server did not answer");
}

/// A device: its own store file and a client for the server.
#[derive(Debug)]
pub struct TestDevice {
    pub store: Store,
    pub client: SyncClient,
    _dir: TempDir,
}

impl TestDevice {
    /// A new device enrolled with `code`.
    pub async fn enrolled(server: &TestServer, code: &str) -> TestDevice {
        Self::enrolled_with(server, code, OpenOptions::default()).await
    }

    /// A new device, its store opened with `options` (a clock of its own, …), enrolled with `code`.
    pub async fn enrolled_with(server: &TestServer, code: &str, options: OpenOptions) -> TestDevice {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open_with(dir.path().join("device.db"), options).expect("the device store");
        let client = SyncClient::new(&server.url).expect("a client").with_retries(2, Duration::from_millis(10));
        client.enroll(&store, code, "test device").await.expect("enrollment");
        TestDevice { store, client, _dir: dir }
    }

    pub async fn sync(&self) -> wangge_core::sync::http::SyncProgress {
        self.client.sync(&self.store, None).await.expect("a sync")
    }

    /// Sends a round begun by hand and returns the server's decoded response, for the
    /// device to finish (or a test to tamper with first).
    pub async fn send_round(&self, server: &TestServer, round: &SyncRound) -> wire::SyncResponse {
        let token = self.store.sync_token().expect("the store").expect("an enrolled device");
        let response = server.post_sync(&token, &round.request).await.error_for_status().expect("a sync response");
        wire::decode(&response.bytes().await.expect("the body")).expect("a well-formed response")
    }
}

/// Bytes that look like a JPEG's: they do not compress (the same bytes for a seed).
pub fn photo(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A broken manhole cover, reported with one photo.
pub fn report_naming(grid: &GridCode, catalog_item: &str, photo: &BlobHash) -> NewIncident {
    NewIncident {
        grid: grid.clone(),
        catalog_item: catalog_item.to_owned(),
        title: "井盖破损".into(),
        description: "人行道井盖破损".into(),
        location: None,
        residents: vec![],
        households: vec![],
        organizations: vec![],
        photos: vec![photo.to_string()],
        reported_by_resident: None,
    }
}
