//! A throwaway PostgreSQL cluster, for the storage tests and the load generator (not used
//! by the server itself): `initdb` and `pg_ctl` (Debian's packages, the highest version
//! under `/usr/lib/postgresql`, else from `PATH`) in a temporary directory, on a free
//! loopback port, with trust authentication.
//!
//! PostgreSQL refuses to run as root: as root (here and in CI) every PostgreSQL command runs
//! as the `postgres` system user (`runuser -u postgres --`), in a directory it owns.
//!
//! Stopping: a watchdog shell started with the cluster waits for its standard input to
//! close, which happens when the [`Cluster`] is dropped or this process ends in any way
//! (even killed, or with the cluster in a static that is never dropped), then stops the
//! cluster (`pg_ctl stop -m immediate`) and deletes its directory.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use r2d2_postgres::postgres;

/// How a cluster keeps what it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// PostgreSQL's defaults (fsync and synchronous commit on), as the SQLite server's
    /// `synchronous = FULL`: for measuring.
    Full,
    /// fsync and synchronous commit off: for tests, which lose nothing to a crash.
    Off,
}

/// A running cluster; stopped, and its directory deleted, when dropped.
#[derive(Debug)]
pub struct Cluster {
    pub port: u16,
    /// The data directory.
    pub data: PathBuf,
    watchdog: Child,
    /// Closed on drop (or when the process ends): the watchdog then stops the cluster.
    signal: Option<ChildStdin>,
}

impl Cluster {
    pub fn start(durability: Durability) -> Result<Cluster, String> {
        let bin = binaries()?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("wangge-pg-")
            .tempdir()
            .map_err(|error| format!("a temporary directory: {error}"))?
            .keep();
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.args(["postgres:postgres"]).arg(&dir);
            run(chown, "chown of the cluster's directory to the postgres user")?;
        }
        let data = dir.join("data");
        let mut initdb = command(&bin.join("initdb"), as_postgres);
        initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
        run(initdb, "initdb")?;

        // Whatever happens from here, the watchdog removes the directory when we end.
        let mut watchdog = command(Path::new("sh"), as_postgres)
            .args([
                "-c",
                r#"cat >/dev/null; "$1" -D "$2" -m immediate -w stop >/dev/null 2>&1; rm -rf "$3""#,
                "watchdog",
            ])
            .arg(bin.join("pg_ctl"))
            .arg(&data)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("the cluster's watchdog: {error}"))?;
        let signal = watchdog.stdin.take();
        let mut cluster = Cluster { port: 0, data: data.clone(), watchdog, signal };
        let durability = match durability {
            Durability::Full => "",
            Durability::Off => " -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        };

        // A port free a moment ago may be taken by the time the server binds it: a few tries.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200{durability}",
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
                .map_err(|error| format!("pg_ctl: {error}"))?;
            if started.status.success() {
                cluster.port = port;
                return Ok(cluster);
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        // Dropping the cluster tells the watchdog to clean up now.
        Err(format!("the PostgreSQL cluster did not start:\n{last_log}"))
    }

    /// Creates an empty database; its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let port = self.port;
        let mut client = postgres::Client::connect(
            &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            postgres::NoTls,
        )
        .map_err(|error| format!("a connection to the cluster: {error}"))?;
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|error| format!("creating database {name}: {error}"))?;
        Ok(format!("postgres://postgres@127.0.0.1:{port}/{name}"))
    }

    /// The postmaster's process id (the first line of `postmaster.pid`).
    pub fn postmaster(&self) -> Option<u32> {
        std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        drop(self.signal.take());
        let _ = self.watchdog.wait();
    }
}

/// The directory of `initdb` and `pg_ctl`.
fn binaries() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
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
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
        .ok_or_else(|| {
            "PostgreSQL's initdb and pg_ctl were not found (in /usr/lib/postgresql/*/bin or on PATH): \
             run scripts/setup-postgres (it installs Debian's postgresql)"
                .to_owned()
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

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|error| format!("{what}: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

fn free_port() -> Result<u16, String> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|error| format!("a loopback port: {error}"))?;
    Ok(listener.local_addr().map_err(|error| error.to_string())?.port())
}
