//! The PostgreSQL tests' cluster: one per test process ([`wangge_server::throwaway_postgres`],
//! fsync off), started by the first test that asks ([`database`]), and one new database per
//! test. The cluster lives in a static that is never dropped: its watchdog stops it when
//! the process ends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use wangge_server::throwaway_postgres::{Cluster, Durability};

static CLUSTER: Mutex<Option<Cluster>> = Mutex::new(None);
static N_DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A new, empty database on the process's cluster (started first if need be): its URL.
pub fn database() -> String {
    let mut cluster = CLUSTER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let cluster = cluster.get_or_insert_with(|| {
        Cluster::start(Durability::Off).unwrap_or_else(|error| panic!("the test cluster: {error}"))
    });
    let name = format!("test_{}", N_DATABASES.fetch_add(1, Ordering::SeqCst));
    cluster.create_database(&name).unwrap_or_else(|error| panic!("a test database: {error}"))
}
