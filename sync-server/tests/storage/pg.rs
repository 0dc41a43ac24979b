//! A throwaway PostgreSQL cluster for tests: `initdb` and `pg_ctl` (Debian's packages, the
//! highest version under `/usr/lib/postgresql`, else from `PATH`) in a temporary directory,
//! on a free loopback port, trust authentication, fsync off. One cluster per test process,
//! started by the first test that asks ([`database`]), and one new database per test.
//!
//! PostgreSQL refuses to run as root: as root (here and in CI) every PostgreSQL command runs
//! as the `postgres` system user (`runuser -u postgres --`), in a directory it owns.
//!
//! Stopping: the cluster belongs to the whole process (tests run on several threads and
//! share it), and a static is never dropped; so a watchdog shell started with it waits for
//! its standard input to close, which happens when this process ends in any way (even
//! killed), then stops the cluster (`pg_ctl stop -m immediate`) and deletes the directory.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running cluster; stopped by its watchdog when this process ends.
#[derive(Debug)]
pub struct Cluster {
    pub port: u16,
    watchdog: Child,
    /// Closed when the process ends (or the cluster is dropped): the watchdog then stops
    /// the cluster and deletes its directory.
    signal: Option<ChildStdin>,
}

static CLUSTER: Mutex<Option<Cluster>> = Mutex::new(None);
static N_DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A new, empty database on the process's cluster (started first if need be): its URL.
pub fn database() -> String {
    let port = {
        let mut cluster = CLUSTER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cluster.get_or_insert_with(start).port
    };
    let name = format!("test_{}", N_DATABASES.fetch_add(1, Ordering::SeqCst));
    let mut client = r2d2_postgres::postgres::Client::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        r2d2_postgres::postgres::NoTls,
    )
    .expect("a connection to the test cluster");
    client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).expect("a test database");
    format!("postgres://postgres@127.0.0.1:{port}/{name}")
}

/// The directory of `initdb` and `pg_ctl`.
fn binaries() -> PathBuf {
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL's initdb and pg_ctl were not found (in /usr/lib/postgresql/*/bin or on PATH): \
             the PostgreSQL tests need them; run scripts/setup-postgres (it installs Debian's postgresql)"
        )
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// A command that runs as the `postgres` user when we are root.
fn command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

#[track_caller]
fn run(mut command: Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("{what}: {error}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}):\n{text}", output.status);
    text
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

fn start() -> Cluster {
    let bin = binaries();
    let as_postgres = is_root();
    let dir = tempfile::Builder::new().prefix("wangge-pg-").tempdir().expect("a temporary directory").keep();
    if as_postgres {
        let mut chown = Command::new("chown");
        chown.args(["postgres:postgres"]).arg(&dir);
        run(chown, "chown of the cluster's directory to the postgres user");
    }
    let data = dir.join("data");
    let mut initdb = command(&bin.join("initdb"), as_postgres);
    initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
    run(initdb, "initdb");

    // Whatever happens from here, the watchdog removes the directory when we end.
    let mut watchdog = command(Path::new("sh"), as_postgres)
        .args(["-c", r#"cat >/dev/null; "$1" -D "$2" -m immediate -w stop >/dev/null 2>&1; rm -rf "$3""#, "watchdog"])
        .arg(bin.join("pg_ctl"))
        .arg(&data)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the cluster's watchdog");
    let stdin = watchdog.stdin.take().expect("the watchdog's input");

    // A port free a moment ago may be taken by the time the server binds it: a few tries.
    let mut last_log = String::new();
    for _ in 0..5 {
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        let log = dir.join(format!("log-{port}"));
        // `-w`: pg_ctl polls until the server accepts connections, for at most `-t` seconds.
        let started = command(&bin.join("pg_ctl"), as_postgres)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .expect("pg_ctl");
        if started.status.success() {
            return Cluster { port, watchdog, signal: Some(stdin) };
        }
        last_log = std::fs::read_to_string(&log).unwrap_or_default();
    }
    // Tell the watchdog to clean up now.
    drop(stdin);
    let _ = watchdog.wait();
    panic!("the test cluster did not start:\n{last_log}");
}

impl Drop for Cluster {
    fn drop(&mut self) {
        drop(self.signal.take());
        let _ = self.watchdog.wait();
    }
}
