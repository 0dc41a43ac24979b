//! What a phase measured: every exchange's latency, bytes and outcome, by kind of sync.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::transport::Failure;

/// What a sync carried: the mix of the steady state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyncKind {
    /// An enrollment (`POST /v1/enroll`).
    Enroll,
    /// A page of a first sync (or of the collection's push of a demo register).
    First,
    /// A capture: a change to a grid's register (and its sensitive document).
    Capture,
    /// A new incident, reported by a grid worker.
    Report,
    /// An action on an incident: the center's accept, dispatch, verify, archive,
    /// evaluate, urge; a department's progress and completion.
    Act,
    /// Nothing to push: pulls only.
    Idle,
    /// The next page after a response that said `more`.
    More,
}

impl SyncKind {
    pub fn label(self) -> &'static str {
        match self {
            SyncKind::Enroll => "enrollments",
            SyncKind::First => "first-sync pages",
            SyncKind::Capture => "captures",
            SyncKind::Report => "incident reports",
            SyncKind::Act => "incident actions",
            SyncKind::Idle => "idle syncs",
            SyncKind::More => "next pages",
        }
    }
}

/// Who synced: the cost of a sync grows with what the device may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Full-time, part-time, professional workers and grid leaders (one to four grids).
    GridWorker,
    /// The same, on a full core store (the demo grids' full-time workers).
    FullStore,
    /// Township center staff: every grid of their township.
    Township,
    /// County and city center staff: every grid of the county.
    County,
    /// Department handlers: the incidents dispatched to their department.
    Department,
}

impl Group {
    pub fn label(self) -> &'static str {
        match self {
            Group::GridWorker => "grid workers",
            Group::FullStore => "full stores",
            Group::Township => "township centers",
            Group::County => "county/city centers",
            Group::Department => "departments",
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u32>,
    by_kind: BTreeMap<SyncKind, Vec<u32>>,
    by_group: BTreeMap<Group, (Vec<u32>, u64)>,
    bytes_up: u64,
    bytes_down: u64,
    failures: BTreeMap<String, u64>,
    unexpected: Vec<String>,
    n_changes_pushed: u64,
    n_changes_pulled: u64,
    n_snapshots: u64,
    transport_example: Option<String>,
}

/// Collects a phase's exchanges from every task.
#[derive(Debug, Default)]
pub struct Recorder {
    tally: Mutex<Tally>,
}

impl Recorder {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An exchange that was answered with success.
    pub fn answered(&self, kind: SyncKind, group: Group, latency: Duration, bytes_up: usize, bytes_down: usize) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let mut tally = self.tally();
        tally.latencies_us.push(us);
        tally.by_kind.entry(kind).or_default().push(us);
        let group = tally.by_group.entry(group).or_default();
        group.0.push(us);
        group.1 += bytes_down as u64;
        tally.bytes_up += bytes_up as u64;
        tally.bytes_down += bytes_down as u64;
    }

    /// What a successful sync moved.
    pub fn moved(&self, n_changes_pushed: usize, n_changes_pulled: usize, n_snapshots: usize) {
        let mut tally = self.tally();
        tally.n_changes_pushed += n_changes_pushed as u64;
        tally.n_changes_pulled += n_changes_pulled as u64;
        tally.n_snapshots += n_snapshots as u64;
    }

    /// An exchange that failed (its bytes still count).
    pub fn failed(&self, failure: &Failure, bytes_up: usize, bytes_down: usize) {
        let mut tally = self.tally();
        *tally.failures.entry(failure.label()).or_default() += 1;
        if let Failure::Transport(reason) = failure {
            tally.transport_example.get_or_insert_with(|| reason.clone());
        }
        tally.bytes_up += bytes_up as u64;
        tally.bytes_down += bytes_down as u64;
        if failure.fails_run() && tally.unexpected.len() < 10 {
            let text = match failure {
                Failure::Refused { status, code, message } => format!("{status} {code}: {message}"),
                Failure::Transport(reason) => format!("transport: {reason}"),
            };
            tally.unexpected.push(text);
        }
    }

    /// A problem found on the device's side (a response it could not apply): fails the run.
    pub fn problem(&self, what: String) {
        let mut tally = self.tally();
        *tally.failures.entry("client: response not applied".to_owned()).or_default() += 1;
        if tally.unexpected.len() < 10 {
            tally.unexpected.push(what);
        }
    }

    /// The phase's figures over `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let tally = self.tally();
        let mut latencies = tally.latencies_us.clone();
        latencies.sort_unstable();
        let n = latencies.len() as u64;
        let per = |total: u64| if n == 0 { 0.0 } else { total as f64 / n as f64 };
        let by_kind = tally
            .by_kind
            .iter()
            .map(|(kind, latencies)| {
                let mut latencies = latencies.clone();
                latencies.sort_unstable();
                (*kind, latencies.len() as u64, percentile(&latencies, 0.5), percentile(&latencies, 0.99))
            })
            .collect();
        let by_group = tally
            .by_group
            .iter()
            .map(|(group, (latencies, bytes_down))| {
                let mut latencies = latencies.clone();
                latencies.sort_unstable();
                let n = latencies.len() as u64;
                let down = if n == 0 { 0.0 } else { *bytes_down as f64 / n as f64 };
                (*group, n, percentile(&latencies, 0.5), percentile(&latencies, 0.99), down)
            })
            .collect();
        let n_unexpected = tally.failures.iter().filter(|(label, _)| fails_run(label)).map(|(_, n)| n).sum::<u64>();
        let n_transport = tally.failures.get(TRANSPORT).copied().unwrap_or(0);
        let transport_example = tally.transport_example.clone();
        Summary {
            elapsed,
            n,
            per_second: n as f64 / elapsed.as_secs_f64().max(1e-9),
            p50: percentile(&latencies, 0.5),
            p90: percentile(&latencies, 0.9),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().map_or(Duration::ZERO, |&us| Duration::from_micros(u64::from(us))),
            bytes_up: tally.bytes_up,
            bytes_down: tally.bytes_down,
            up_per_sync: per(tally.bytes_up),
            down_per_sync: per(tally.bytes_down),
            by_kind,
            by_group,
            failures: tally.failures.clone(),
            n_unexpected,
            n_transport,
            transport_example,
            unexpected: tally.unexpected.clone(),
            n_changes_pushed: tally.n_changes_pushed,
            n_changes_pulled: tally.n_changes_pulled,
            n_snapshots: tally.n_snapshots,
        }
    }
}

const TRANSPORT: &str = "transport";

fn fails_run(label: &str) -> bool {
    !(label.starts_with("409 ") || label.starts_with("429 ") || label == TRANSPORT)
}

fn percentile(sorted_us: &[u32], p: f64) -> Duration {
    if sorted_us.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    Duration::from_micros(u64::from(sorted_us[rank - 1]))
}

/// A phase's figures.
#[derive(Debug, Clone)]
pub struct Summary {
    pub elapsed: Duration,
    /// Exchanges answered with success.
    pub n: u64,
    pub per_second: f64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub up_per_sync: f64,
    pub down_per_sync: f64,
    /// Per kind: count, p50, p99.
    pub by_kind: Vec<(SyncKind, u64, Duration, Duration)>,
    /// Per group of devices: count, p50, p99, bytes down per sync.
    pub by_group: Vec<(Group, u64, Duration, Duration, f64)>,
    /// Failures by label (`403 forbidden`, `transport`, …).
    pub failures: BTreeMap<String, u64>,
    /// Refusals other than 409 and 429, and responses a device could not apply.
    pub n_unexpected: u64,
    /// Requests that got no answer (connections refused, reset or timed out).
    pub n_transport: u64,
    /// The first transport failure's reason.
    pub transport_example: Option<String>,
    /// The first few unexpected failures, for the report.
    pub unexpected: Vec<String>,
    pub n_changes_pushed: u64,
    pub n_changes_pulled: u64,
    pub n_snapshots: u64,
}

/// Milliseconds with a precision that suits them.
pub fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Bytes as B, KB or MB (decimal).
pub fn bytes(n: f64) -> String {
    if n < 10_000.0 {
        format!("{n:.0} B")
    } else if n < 10_000_000.0 {
        format!("{:.1} KB", n / 1000.0)
    } else {
        format!("{:.1} MB", n / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 0.5), Duration::from_micros(50));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_micros(99));
        assert_eq!(percentile(&sorted, 1.0), Duration::from_micros(100));
        assert_eq!(percentile(&[7], 0.99), Duration::from_micros(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn conflicts_rate_limits_and_transport_failures_do_not_fail_a_run_and_other_refusals_do() {
        let recorder = Recorder::default();
        let refused = |status: u16, code: &str| Failure::Refused { status, code: code.into(), message: "m".into() };
        recorder.failed(&refused(409, "conflict"), 10, 10);
        recorder.failed(&refused(429, "rate_limited"), 10, 10);
        assert_eq!(recorder.summary(Duration::from_secs(1)).n_unexpected, 0);
        recorder.failed(&Failure::Transport("cut".into()), 10, 0);
        assert_eq!(recorder.summary(Duration::from_secs(1)).n_unexpected, 0);
        recorder.failed(&refused(403, "forbidden"), 10, 10);
        recorder.failed(&refused(500, "internal"), 10, 10);
        let summary = recorder.summary(Duration::from_secs(1));
        assert_eq!((summary.n_unexpected, summary.n_transport), (2, 1));
        assert_eq!(summary.failures["403 forbidden"], 1);
    }
}
