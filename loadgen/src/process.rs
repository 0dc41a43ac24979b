//! The processes a run measures apart from itself: the sync server (or the baseline), and
//! for PostgreSQL a throwaway cluster (`wangge_server::throwaway_postgres`); and what
//! `/proc` says about them (resident memory,
//! CPU time).
//!
//! A server is started with `--listen 127.0.0.1:0`; its address is read from the line it
//! prints when it listens (its output goes to a log file), then `/readyz` (`/healthz` for
//! the baseline) is polled until it answers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
