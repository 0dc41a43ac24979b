//! The phases of a run over the fleet of simulated devices: enrollment, the collection of
//! the demo grids, first syncs, the steady state (paced at a rate, or as fast as a number
//! of concurrent syncs allows), and a final round that checks nothing was left behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chacha20::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Mutex;
use wangge_core::sync::wire::{EnrollResponse, SyncRequest, SyncResponse};

use crate::device::{Context, LightDevice};
use crate::full::FullDevice;
use crate::stats::{Group, Recorder, SyncKind};
use crate::transport::Transport;

/// One simulated device.
#[derive(Debug)]
pub enum Sim {
    Light(Box<LightDevice>),
    Full(Box<FullDevice>),
}

impl Sim {
    fn person(&self) -> &str {
        match self {
            Sim::Light(device) => &device.person,
            Sim::Full(device) => &device.person,
        }
    }

    fn group(&self) -> Group {
        match self {
            Sim::Light(device) => device.group(),
            Sim::Full(_) => Group::FullStore,
        }
    }
}

/// Every device of the city, each used by one task at a time.
#[derive(Debug)]
pub struct Fleet {
    pub devices: Vec<Mutex<Sim>>,
    pub context: Arc<Context>,
}

/// How the steady state is driven.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Syncs start at this rate (per second, over the whole city: Poisson arrivals, each
    /// taken by a device that is not syncing), whatever the latency: an open system, as
    /// thousands of phones are.
    Rate(f64),
    /// This many syncs in flight at all times, each starting when one ends: the most the
    /// server does.
    Max { concurrency: usize },
}

impl Pace {
    pub fn label(&self) -> String {
        match self {
            Pace::Rate(rate) => format!("paced at {rate:.0}/s"),
            Pace::Max { concurrency } => format!("as fast as it goes, {concurrency} in flight"),
        }
    }
}

/// What a turn does before syncing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Pages of a first sync (nothing captured).
    First,
    /// The steady state's mix: capture, report, act or nothing, then sync.
    Steady,
    /// A last sync to leave nothing unacknowledged.
    Final,
}

/// Runs `work(index)` for every index below `n`, `concurrency` at a time.
pub async fn for_each<F, Fut>(n: usize, concurrency: usize, work: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let work = Arc::new(work);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (next, work) = (Arc::clone(&next), Arc::clone(&work));
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= n {
                    break;
                }
                work(index).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Enrolls every device with its one-time code.
pub async fn enroll(
    fleet: &Arc<Fleet>,
    codes: Arc<Vec<String>>,
    transport: &Transport,
    recorder: &Arc<Recorder>,
    concurrency: usize,
) {
    let (fleet, transport, recorder) = (Arc::clone(fleet), transport.clone(), Arc::clone(recorder));
    for_each(codes.len(), concurrency, move |index| {
        let (fleet, codes, transport, recorder) =
            (Arc::clone(&fleet), Arc::clone(&codes), transport.clone(), Arc::clone(&recorder));
        async move {
            let mut sim = fleet.devices[index].lock().await;
            let request = match &*sim {
                Sim::Light(device) => device.enroll_request(&codes[index]),
                Sim::Full(device) => device.enroll_request(&codes[index]),
            };
            let exchange = transport.post::<_, EnrollResponse>("/v1/enroll", None, &request).await;
            match exchange.result {
                Ok(response) => {
                    recorder.answered(
                        SyncKind::Enroll,
                        sim.group(),
                        exchange.latency,
                        exchange.bytes_up,
                        exchange.bytes_down,
                    );
                    match &mut *sim {
                        Sim::Light(device) => device.enrolled(response),
                        Sim::Full(device) => {
                            if let Err(problem) = device.enrolled(response) {
                                recorder.problem(problem);
                            }
                        }
                    }
                }
                Err(failure) => recorder.failed(&failure, exchange.bytes_up, exchange.bytes_down),
            }
        }
    })
    .await;
}

/// The demo grids' full-time workers (the devices at `indices`) import their registers and
/// push them: the city's content reaches the server as a real first collection does.
/// Returns the changes the imports made.
pub async fn collect(
    fleet: &Arc<Fleet>,
    indices: Arc<Vec<usize>>,
    transport: &Transport,
    recorder: &Arc<Recorder>,
    concurrency: usize,
) -> usize {
    let n_changes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (fleet2, transport, recorder2, counted) =
        (Arc::clone(fleet), transport.clone(), Arc::clone(recorder), Arc::clone(&n_changes));
    for_each(indices.len(), concurrency, move |slot| {
        let (fleet, transport, recorder, indices, counted) = (
            Arc::clone(&fleet2),
            transport.clone(),
            Arc::clone(&recorder2),
            Arc::clone(&indices),
            Arc::clone(&counted),
        );
        async move {
            let mut sim = fleet.devices[indices[slot]].lock().await;
            if let Sim::Full(device) = &mut *sim {
                match device.import().await {
                    Ok(summary) => {
                        counted.fetch_add(summary.n_changes, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(problem) => recorder.problem(problem),
                }
            }
            turn(&mut sim, &transport, &fleet.context, &recorder, Turn::First).await;
        }
    })
    .await;
    n_changes.load(std::sync::atomic::Ordering::Relaxed)
}

/// Every device's first sync, page by page.
pub async fn first_syncs(fleet: &Arc<Fleet>, transport: &Transport, recorder: &Arc<Recorder>, concurrency: usize) {
    let (fleet2, transport, recorder) = (Arc::clone(fleet), transport.clone(), Arc::clone(recorder));
    for_each(fleet.devices.len(), concurrency, move |index| {
        let (fleet, transport, recorder) = (Arc::clone(&fleet2), transport.clone(), Arc::clone(&recorder));
        async move {
            let mut sim = fleet.devices[index].lock().await;
            turn(&mut sim, &transport, &fleet.context, &recorder, Turn::First).await;
        }
    })
    .await;
}

/// A last sync of every device; returns the devices left with unacknowledged changes, and
/// the captures the full stores could not replay.
pub async fn final_syncs(
    fleet: &Arc<Fleet>,
    transport: &Transport,
    recorder: &Arc<Recorder>,
    concurrency: usize,
) -> (Vec<String>, usize) {
    let (fleet2, transport, recorder2) = (Arc::clone(fleet), transport.clone(), Arc::clone(recorder));
    for_each(fleet.devices.len(), concurrency, move |index| {
        let (fleet, transport, recorder) = (Arc::clone(&fleet2), transport.clone(), Arc::clone(&recorder2));
        async move {
            let mut sim = fleet.devices[index].lock().await;
            turn(&mut sim, &transport, &fleet.context, &recorder, Turn::Final).await;
        }
    })
    .await;
    let mut left = Vec::new();
    let mut n_failed_captures = 0;
    for device in &fleet.devices {
        let mut sim = device.lock().await;
        let pending = match &mut *sim {
            Sim::Light(device) => {
                // What it pulled and did not need yet: applied now, dependencies checked.
                for problem in device.catch_up_all() {
                    recorder.problem(format!("{}: {problem}", device.person));
                }
                device.n_pending() as u64
            }
            Sim::Full(device) => match device.leftovers().await {
                Ok((pending, failed)) => {
                    n_failed_captures += failed;
                    pending
                }
                Err(problem) => {
                    recorder.problem(problem);
                    0
                }
            },
        };
        if pending > 0 {
            left.push(format!("{} ({pending})", sim.person()));
        }
    }
    (left, n_failed_captures)
}

/// What the steady state's driver itself saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Driven {
    pub elapsed: Duration,
    /// Arrivals that found every device busy (paced): none should.
    pub n_no_device: u64,
    /// How late the driver started a sync after its arrival time, at worst: a generator
    /// short of CPU shows here.
    pub max_lag: Duration,
}

/// The steady state for `duration`, paced or as fast as it goes.
pub async fn steady(
    fleet: &Arc<Fleet>,
    transport: &Transport,
    recorder: &Arc<Recorder>,
    pace: Pace,
    duration: Duration,
    seed: u64,
) -> Driven {
    let idle: Arc<std::sync::Mutex<Vec<usize>>> = Arc::new(std::sync::Mutex::new((0..fleet.devices.len()).collect()));
    let started = Instant::now();
    let deadline = started + duration;
    let mut driven = Driven::default();
    let job = {
        let (fleet, transport, recorder, idle) =
            (Arc::clone(fleet), transport.clone(), Arc::clone(recorder), Arc::clone(&idle));
        move |index: usize| {
            let (fleet, transport, recorder, idle) =
                (Arc::clone(&fleet), transport.clone(), Arc::clone(&recorder), Arc::clone(&idle));
            async move {
                {
                    let mut sim = fleet.devices[index].lock().await;
                    turn(&mut sim, &transport, &fleet.context, &recorder, Turn::Steady).await;
                }
                if let Ok(mut idle) = idle.lock() {
                    idle.push(index);
                }
            }
        }
    };
    let take = |idle: &std::sync::Mutex<Vec<usize>>, rng: &mut ChaCha8Rng| -> Option<usize> {
        let mut idle = idle.lock().ok()?;
        if idle.is_empty() {
            return None;
        }
        let k = rng.random_range(0..idle.len());
        Some(idle.swap_remove(k))
    };
    let mut tasks = tokio::task::JoinSet::new();
    match pace {
        Pace::Rate(rate) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut next = started;
            while next < deadline {
                tokio::time::sleep_until(next.into()).await;
                driven.max_lag = driven.max_lag.max(Instant::now().saturating_duration_since(next));
                match take(&idle, &mut rng) {
                    Some(index) => {
                        tasks.spawn(job(index));
                    }
                    None => driven.n_no_device += 1,
                }
                while tasks.try_join_next().is_some() {}
                // Exponential gaps: Poisson arrivals.
                let uniform: f64 = rng.random::<f64>().max(1e-12);
                next += Duration::from_secs_f64(-uniform.ln() / rate.max(1e-6));
            }
        }
        Pace::Max { concurrency } => {
            for worker in 0..concurrency.max(1) {
                let (job, idle) = (job.clone(), Arc::clone(&idle));
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ worker as u64);
                tasks.spawn(async move {
                    while Instant::now() < deadline {
                        match take(&idle, &mut rng) {
                            Some(index) => job(index).await,
                            None => tokio::task::yield_now().await,
                        }
                    }
                });
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    driven.elapsed = started.elapsed();
    driven
}

/// One turn of a device: maybe a change, then a sync, and its next pages if any.
async fn turn(sim: &mut Sim, transport: &Transport, context: &Context, recorder: &Recorder, mode: Turn) {
    match sim {
        Sim::Light(device) => light_turn(device, transport, context, recorder, mode).await,
        Sim::Full(device) => full_turn(device, transport, context, recorder, mode).await,
    }
}

fn first_kind(mode: Turn, page: usize, kind: SyncKind) -> SyncKind {
    match (mode, page) {
        (Turn::First, _) => SyncKind::First,
        (_, 0) => kind,
        _ => SyncKind::More,
    }
}

async fn light_turn(
    device: &mut LightDevice,
    transport: &Transport,
    context: &Context,
    recorder: &Recorder,
    mode: Turn,
) {
    let kind = match mode {
        Turn::Steady => match device.prepare(context) {
            Ok(kind) => kind,
            Err(problem) => {
                recorder.problem(format!("{}: {problem}", device.person));
                return;
            }
        },
        Turn::First => SyncKind::First,
        Turn::Final => SyncKind::Idle,
    };
    for page in 0.. {
        let request: SyncRequest = device.request();
        let n_pushed = request.pushes.iter().map(|push| push.changes.len()).sum();
        let exchange = transport.post::<_, SyncResponse>("/v1/sync", Some(device.token()), &request).await;
        let response = match exchange.result {
            Ok(response) => response,
            Err(failure) => {
                recorder.failed(&failure, exchange.bytes_up, exchange.bytes_down);
                if failure.fails_run() {
                    device.drop_pending();
                }
                return;
            }
        };
        let group = device.group();
        recorder.answered(
            first_kind(mode, page, kind),
            group,
            exchange.latency,
            exchange.bytes_up,
            exchange.bytes_down,
        );
        match device.apply(&request, response, context) {
            Ok(applied) => {
                recorder.moved(n_pushed, applied.n_changes_pulled, applied.n_snapshots);
                if !applied.more {
                    return;
                }
            }
            Err(problem) => {
                recorder.problem(format!("{}: {problem}", device.person));
                return;
            }
        }
    }
}

async fn full_turn(device: &mut FullDevice, transport: &Transport, context: &Context, recorder: &Recorder, mode: Turn) {
    let kind = match mode {
        Turn::Steady => match device.prepare(context).await {
            Ok(kind) => kind,
            Err(problem) => {
                recorder.problem(format!("{}: {problem}", device.person));
                return;
            }
        },
        Turn::First => SyncKind::First,
        Turn::Final => SyncKind::Idle,
    };
    for page in 0.. {
        let round = match device.begin().await {
            Ok(round) => round,
            Err(problem) => {
                recorder.problem(problem);
                return;
            }
        };
        let n_pushed = round.request.pushes.iter().map(|push| push.changes.len()).sum();
        let exchange = transport.post::<_, SyncResponse>("/v1/sync", Some(device.token()), &round.request).await;
        let response = match exchange.result {
            Ok(response) => response,
            Err(failure) => {
                recorder.failed(&failure, exchange.bytes_up, exchange.bytes_down);
                return;
            }
        };
        let group = Group::FullStore;
        recorder.answered(
            first_kind(mode, page, kind),
            group,
            exchange.latency,
            exchange.bytes_up,
            exchange.bytes_down,
        );
        let n_snapshots = response.pulls.iter().filter(|pull| pull.snapshot.is_some()).count();
        let n_changes: usize = response.pulls.iter().map(|pull| pull.changes.len()).sum();
        match device.finish(round, response).await {
            Ok((more, _)) => {
                recorder.moved(n_pushed, n_changes, n_snapshots);
                if !more {
                    return;
                }
            }
            Err(problem) => {
                recorder.problem(problem);
                return;
            }
        }
    }
}
