//! The processes a run measures apart from itself: the sync server (or the baseline), and
//! for PostgreSQL a throwaway cluster; and what `/proc` says about them (resident memory,
//! CPU time).
//!
//! A server is started with `--listen 127.0.0.1:0`; its address is read from the line it
//! prints when it listens (its output goes to a log file), then `/readyz` (`/healthz` for
//! the baseline) is polled until it answers.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::transport::Transport;

/// A child process serving HTTP on loopback.
#[derive(Debug)]
pub struct Served {
    child: Child,
    pub url: String,
    pub pid: u32,
    pub log: PathBuf,
}

impl Served {
    /// Starts `program args…` with its output in `log`, and waits until it answers `ready`.
    pub async fn start(program: &Path, args: &[String], log: &Path, ready: &str) -> Result<Served, String> {
        let output = std::fs::File::create(log).map_err(|error| format!("{}: {error}", log.display()))?;
        let errors = output.try_clone().map_err(|error| format!("{}: {error}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .map_err(|error| format!("{}: {error}", program.display()))?;
        let pid = child.id();
        let started = Instant::now();
        let url = loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(url) = text.lines().find_map(served_url) {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{} exited ({status}) before serving:\n{text}", program.display()));
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                return Err(format!("{} did not start serving within 120 s:\n{text}", program.display()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let served = Served { child, url, pid, log: log.to_owned() };
        let transport = Transport::new(&served.url)?;
        while !transport.get_ok(ready).await {
            if started.elapsed() > Duration::from_secs(120) {
                return Err(format!("{} is not ready after 120 s", program.display()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(served)
    }

    /// Whether it has ended (it should not have): how, and the end of its log.
    pub fn ended(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok()??;
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        Some(format!("it ended ({status}); the end of its log:\n{tail}"))
    }

    /// Interrupts it (Ctrl-C: a server finishes requests in flight) and waits; kills it
    /// if it has not ended after 30 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-INT", &self.pid.to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `http://…` from a line such as `wangge-server: serving sync protocol v1 on http://127.0.0.1:4242 (…)`.
fn served_url(line: &str) -> Option<String> {
    if !line.contains("serving") {
        return None;
    }
    let start = line.find("http://")?;
    let url: String = line[start..].chars().take_while(|c| !c.is_whitespace() && *c != ',').collect();
    Some(url)
}

/// The bytes of the files under `path` (or of the file itself).
pub fn disk_bytes(path: &Path) -> u64 {
    let Ok(metadata) = std::fs::symlink_metadata(path) else { return 0 };
    if !metadata.is_dir() {
        return metadata.len();
    }
    std::fs::read_dir(path).into_iter().flatten().flatten().map(|entry| disk_bytes(&entry.path())).sum()
}

/// Resident memory and CPU time of a process, from `/proc/<pid>/status` and `stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub rss_kb: u64,
    /// The highest resident memory since the process started (VmHWM).
    pub peak_kb: u64,
    pub cpu_s: f64,
}

/// The clock ticks `/proc/<pid>/stat` counts CPU time in (USER_HZ: 100 on Linux).
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

pub fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses).
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; here, after pid and comm, 12 and 13.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(Usage { rss_kb: field("VmRSS:"), peak_kb: field("VmHWM:"), cpu_s: ticks / ticks_per_second() })
}

/// The proportional set size (shared pages divided among their users) of a process, in
/// KB: what a group of processes sharing memory (PostgreSQL's) really takes, summed.
pub fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("Pss:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A process and its children (PostgreSQL's backends are the postmaster's children).
pub fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let parent = stat
            .rfind(')')
            .and_then(|end| stat[end + 2..].split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if parent == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

/// Samples a process's resident memory in the background (every 100 ms) to find its peak
/// within a phase.
#[derive(Debug)]
pub struct Sampler {
    samples: std::sync::Arc<std::sync::Mutex<Vec<(Instant, u64)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (into, stopped) = (std::sync::Arc::clone(&samples), std::sync::Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(usage) = usage(pid) else { break };
                into.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((Instant::now(), usage.rss_kb));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler { samples, stop, thread: Some(thread) }
    }

    /// The highest resident memory sampled between `from` and `to`, in KB.
    pub fn peak_kb(&self, from: Instant, to: Instant) -> u64 {
        let samples = self.samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        samples.iter().filter(|(at, _)| *at >= from && *at <= to).map(|(_, kb)| *kb).max().unwrap_or(0)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A throwaway PostgreSQL cluster: `initdb` and `pg_ctl` (Debian's packages, the highest
/// version under `/usr/lib/postgresql`, else from `PATH`) in a temporary directory, on a
/// free loopback port, trust authentication, PostgreSQL's default durability (fsync and
/// synchronous commit on, as the SQLite server's `synchronous = FULL`). As root, every
/// PostgreSQL command runs as the `postgres` system user. A watchdog shell started with it
/// stops the cluster and deletes its directory when this process ends in any way (its
/// standard input closes), as `sync-server/tests/storage/pg.rs` does for the tests.
#[derive(Debug)]
pub struct Cluster {
    pub url: String,
    pub data: PathBuf,
    watchdog: Child,
    signal: Option<ChildStdin>,
}

fn pg_binaries() -> Result<PathBuf, String> {
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

fn pg_command(program: &Path, as_postgres: bool) -> Command {
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

impl Cluster {
    pub fn start() -> Result<Cluster, String> {
        let bin = pg_binaries()?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("wangge-load-pg-")
            .tempdir()
            .map_err(|error| format!("a temporary directory: {error}"))?
            .keep();
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.args(["postgres:postgres"]).arg(&dir);
            run(chown, "chown of the cluster's directory to the postgres user")?;
        }
        let data = dir.join("data");
        let mut initdb = pg_command(&bin.join("initdb"), as_postgres);
        initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
        run(initdb, "initdb")?;
        let mut watchdog = pg_command(Path::new("sh"), as_postgres)
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
        let mut cluster = Cluster { url: String::new(), data: data.clone(), watchdog, signal };
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let options =
                format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100", dir.display());
            let log = dir.join(format!("log-{port}"));
            let started = pg_command(&bin.join("pg_ctl"), as_postgres)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .output()
                .map_err(|error| format!("pg_ctl: {error}"))?;
            if started.status.success() {
                let mut createdb = pg_command(&bin.join("createdb"), as_postgres);
                createdb.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "wangge"]);
                run(createdb, "createdb")?;
                cluster.url = format!("postgres://postgres@127.0.0.1:{port}/wangge");
                return Ok(cluster);
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        Err(format!("the PostgreSQL cluster did not start:\n{last_log}"))
    }

    /// The postmaster's process id (the first line of `postmaster.pid`).
    pub fn postmaster(&self) -> Option<u32> {
        std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing the watchdog's input stops the cluster and deletes its directory.
        drop(self.signal.take());
        let _ = self.watchdog.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_read_from_the_serving_line() {
        assert_eq!(
            served_url("wangge-server: serving sync protocol v1 on http://127.0.0.1:4242 (database x.db)").as_deref(),
            Some("http://127.0.0.1:4242")
        );
        assert_eq!(
            served_url("wangge-loadgen baseline: serving on http://127.0.0.1:9").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(served_url("2026-01-01 INFO request"), None);
    }

    #[test]
    fn this_process_has_a_resident_size_and_cpu_time() {
        let usage = usage(std::process::id()).expect("/proc of this process");
        assert!(usage.rss_kb > 0 && usage.peak_kb >= usage.rss_kb, "{usage:?}");
        assert!(usage.cpu_s >= 0.0);
    }
}
