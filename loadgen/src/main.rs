//! `wangge-loadgen`: a city of simulated devices against a real sync server on loopback.
//!
//! ```text
//! cargo build --release -p wangge-server -p wangge-loadgen
//! target/release/wangge-loadgen --devices 4000 --duration 60 --database sqlite
//! ```
//!
//! The city (grids, workers of every role, enrollment codes) is written with the server's
//! library on a fresh database; then the server runs as its own process
//! (`wangge-server serve`, whose memory and CPU are read from `/proc`), devices enroll, the
//! demo grids' full-time workers collect their registers with full core stores and push
//! them, every device syncs for the first time, and the steady state runs for a fixed time
//! at a rate (or as fast as it goes) with a mix of captures, incident reports, incident
//! actions and idle syncs. A last sync checks that every change was acknowledged. Then a
//! plain axum endpoint without CRDT or storage work (the baseline, also its own process) is
//! driven by the same devices with the same client code at the same pace, and each figure
//! is printed with its ratio against it.
//!
//! The exit status is non-zero when any request was refused unexpectedly (anything but
//! 409 `conflict` and 429 `rate_limited`, which are counted and retried), failed, or
//! answered with something a device could not apply.

mod baseline;
mod city;
mod device;
mod full;
mod process;
mod run;
mod stats;
mod transport;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use wangge_core::incident::catalog::Catalog;
use wangge_server::{Service, Worker};

use crate::city::{City, demo_records};
use crate::device::{Context, LightDevice, Mix};
use crate::full::FullDevice;
use crate::process::{Sampler, Served};
use crate::run::{Fleet, Pace, Sim};
use crate::stats::{Recorder, Summary, bytes, ms};
use crate::transport::Transport;
use wangge_server::throwaway_postgres::{Cluster, Durability};

#[derive(Debug, Parser)]
#[command(name = "wangge-loadgen", version, about = "Load generator for the wangge sync server")]
struct Cli {
    #[command(subcommand)]
    internal: Option<Internal>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// A SQLite file in the run's directory.
    Sqlite,
    /// A throwaway PostgreSQL cluster (initdb and pg_ctl from /usr/lib/postgresql).
    Postgres,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Simulated devices, one per worker.
    #[arg(long, default_value_t = 4000)]
    devices: usize,
    /// Grids in the city. Default: a quarter of the devices.
    #[arg(long)]
    grids: Option<usize>,
    /// Grids whose full-time worker runs a full core store and imports a demo register
    /// first. Default: 2.4% of the grids (24 of 1,000), at least one.
    #[arg(long)]
    demo_grids: Option<usize>,
    /// Households of each demo grid's register.
    #[arg(long, default_value_t = 500)]
    demo_households: usize,
    /// Seconds of steady state (each rate), and as many against the baseline.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Steady-state syncs per second over the whole city, or `max` for as many as
    /// `--concurrency` syncs in flight allow. Repeat for several steady phases.
    #[arg(long = "rate", default_value = "500")]
    rates: Vec<String>,
    /// Syncs in flight in `max` mode.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Devices enrolling or syncing for the first time at once.
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    #[arg(long, value_enum, default_value = "sqlite")]
    database: Backend,
    /// The server binary, or `self` for this binary's copy of `wangge-server serve` (the
    /// same library call). Default: `wangge-server` beside this binary if it is there.
    #[arg(long)]
    server: Option<String>,
    /// Seeds the city's records and every device's choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the run's files go (a new temporary directory inside, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Skip the baseline.
    #[arg(long)]
    no_baseline: bool,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// What `wangge-server serve` runs, from this binary (`--server self`).
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        database: String,
        #[arg(long)]
        listen: SocketAddr,
    },
    /// The baseline endpoint.
    #[command(hide = true)]
    Baseline {
        #[arg(long)]
        listen: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wangge-loadgen: a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.internal {
        // Opened, and at the end dropped, outside the runtime: PostgreSQL's client blocks.
        Some(Internal::Serve { database, listen }) => {
            wangge_server::storage::open(&database).map_err(|error| error.to_string()).and_then(|storage| {
                let service = Service::new(storage);
                let served = runtime.block_on(serve(service.clone(), listen));
                drop(runtime);
                drop(service);
                served
            })
        }
        Some(Internal::Baseline { listen }) => {
            runtime.block_on(baseline::serve(listen)).map_err(|error| error.to_string())
        }
        None => runtime.block_on(load(&cli.run)).and_then(|passed| {
            if passed { Ok(()) } else { Err("the run failed: see the refusals and errors above".to_owned()) }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wangge-loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `wangge-server serve`, as its `main.rs` runs it: the request log at info on stdout.
async fn serve(service: Service<Box<dyn wangge_server::Storage>>, listen: SocketAddr) -> Result<(), String> {
    wangge_server::logging::init(wangge_server::logging::LogFormat::Text, wangge_server::logging::LevelFilter::INFO);
    let (listener, addr) = wangge_server::bind(listen).await.map_err(|error| error.to_string())?;
    println!("wangge-server (wangge-loadgen serve): serving sync protocol v1 on http://{addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    wangge_server::serve(listener, service, shutdown).await.map_err(|error| error.to_string())
}

fn parse_pace(rate: &str, concurrency: usize) -> Result<Pace, String> {
    if rate == "max" {
        return Ok(Pace::Max { concurrency });
    }
    match rate.parse::<f64>() {
        Ok(rate) if rate > 0.0 => Ok(Pace::Rate(rate)),
        _ => Err(format!("--rate {rate}: a number of syncs per second, or max")),
    }
}

/// The server program and the arguments before `serve`'s own.
fn server_program(choice: Option<&str>) -> Result<(PathBuf, bool), String> {
    let me = std::env::current_exe().map_err(|error| format!("this binary's path: {error}"))?;
    match choice {
        Some("self") => Ok((me, true)),
        Some(path) => Ok((PathBuf::from(path), false)),
        None => {
            let beside = me.with_file_name("wangge-server");
            if beside.exists() { Ok((beside, false)) } else { Ok((me, true)) }
        }
    }
}

/// Writes the city with the server's library: grids, workers; returns each worker's code.
fn setup_city(database: &str, city: &City) -> Result<Vec<String>, String> {
    let storage = wangge_server::storage::open(database).map_err(|error| format!("the database: {error}"))?;
    let service = Service::new(storage);
    for grid in &city.grids {
        service
            .create_grid(&grid.code, &grid.name, "community")
            .map_err(|error| format!("grid {}: {error}", grid.code))?;
    }
    let mut codes = Vec::with_capacity(city.workers.len());
    for worker in &city.workers {
        service
            .create_worker(&Worker {
                person: worker.person.clone(),
                role: worker.role.code().to_owned(),
                department: worker.department.as_ref().map(ToString::to_string),
                grids: worker.areas.clone(),
            })
            .map_err(|error| format!("worker {}: {error}", worker.person))?;
        codes.push(service.issue_enrollment_code(&worker.person).map_err(|error| error.to_string())?);
    }
    Ok(codes)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

/// CPU seconds of each process of a PostgreSQL cluster: the postmaster and its children
/// as they are now (a pool opens connections, each a new backend, as it needs them).
fn cluster_cpu(postmaster: u32) -> HashMap<u32, f64> {
    process::with_children(postmaster).into_iter().filter_map(|pid| Some((pid, process::usage(pid)?.cpu_s))).collect()
}

/// CPU seconds a cluster's processes used between two readings (a backend started in
/// between counts whole).
fn cluster_cpu_between(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after.iter().map(|(pid, cpu_s)| cpu_s - before.get(pid).unwrap_or(&0.0)).sum()
}

/// The summed PSS of a cluster's processes.
fn cluster_pss_kb(postmaster: u32) -> u64 {
    process::with_children(postmaster).into_iter().map(process::pss_kb).sum()
}

/// One steady phase's figures, for the report and the ratios.
#[derive(Debug, Clone)]
struct Measured {
    pace: Pace,
    summary: Summary,
    driven: run::Driven,
    /// CPU seconds per second of the phase: the server, the generator, PostgreSQL.
    server_cores: f64,
    generator_cores: f64,
    database_cores: Option<f64>,
    /// Resident memory of the server (or the baseline): peak during the phase and at its end.
    rss_peak_kb: u64,
    rss_end_kb: u64,
    /// The generator's own resident memory at the end of the phase.
    generator_rss_kb: u64,
}

fn print_summary(summary: &Summary) {
    let kinds: Vec<String> = summary.by_kind.iter().map(|(kind, n, _, _)| format!("{n} {}", kind.label())).collect();
    println!("    syncs       {} ({:.1}/s): {}", summary.n, summary.per_second, kinds.join(", "));
    println!(
        "    latency     p50 {}  p90 {}  p99 {}  max {}",
        ms(summary.p50),
        ms(summary.p90),
        ms(summary.p99),
        ms(summary.max)
    );
    for (kind, n, p50, p99) in &summary.by_kind {
        println!("      {:<17} {n:>7}  p50 {:>9}  p99 {:>9}", kind.label(), ms(*p50), ms(*p99));
    }
    for (group, n, p50, p99, down) in &summary.by_group {
        println!(
            "      {:<17} {n:>7}  p50 {:>9}  p99 {:>9}  down {:>9}/sync",
            group.label(),
            ms(*p50),
            ms(*p99),
            bytes(*down)
        );
    }
    println!(
        "    bytes/sync  up {}, down {} (bodies; {} changes pushed, {} pulled, {} snapshots)",
        bytes(summary.up_per_sync),
        bytes(summary.down_per_sync),
        summary.n_changes_pushed,
        summary.n_changes_pulled,
        summary.n_snapshots
    );
    let refusals: Vec<String> = summary
        .failures
        .iter()
        .filter(|(label, _)| label.as_str() != "transport")
        .map(|(label, n)| format!("{label}: {n}"))
        .collect();
    if refusals.is_empty() {
        println!("    refusals    none");
    } else {
        println!("    refusals    {}", refusals.join(", "));
        for text in &summary.unexpected {
            println!("      unexpected: {text}");
        }
    }
    match &summary.transport_example {
        None => println!("    no answer   none"),
        Some(example) => println!("    no answer   {} requests (e.g. {example})", summary.n_transport),
    }
}

fn print_measured(measured: &Measured, what: &str) {
    print_summary(&measured.summary);
    let database = measured.database_cores.map_or_else(String::new, |cores| format!(", PostgreSQL {cores:.2}"));
    println!(
        "    {what:<11} RSS {} at the end, peak {}; CPU: {what} {:.2} cores{database}, generator {:.2} cores (RSS {}) ({:.2} ms of {what} CPU per sync)",
        mb(measured.rss_end_kb),
        mb(measured.rss_peak_kb),
        measured.server_cores,
        measured.generator_cores,
        mb(measured.generator_rss_kb),
        measured.server_cores * 1000.0 / measured.summary.per_second.max(1e-9),
    );
    if measured.driven.n_no_device > 0 || measured.driven.max_lag > Duration::from_millis(100) {
        println!(
            "    driver      {} arrivals found every device busy; started syncs up to {} late",
            measured.driven.n_no_device,
            ms(measured.driven.max_lag)
        );
    }
}

/// Runs one steady phase against `served` and measures it.
#[allow(clippy::too_many_arguments)]
async fn measure(
    fleet: &Arc<Fleet>,
    transport: &Transport,
    served: &Served,
    sampler: &Sampler,
    postmaster: Option<u32>,
    pace: Pace,
    duration: Duration,
    seed: u64,
) -> Measured {
    let recorder = Arc::new(Recorder::default());
    let before = process::usage(served.pid).unwrap_or_default();
    let me_before = process::usage(std::process::id()).unwrap_or_default();
    let pg_before = postmaster.map(cluster_cpu);
    let started = Instant::now();
    let driven = run::steady(fleet, transport, &recorder, pace, duration, seed).await;
    let ended = Instant::now();
    let after = process::usage(served.pid).unwrap_or_default();
    let me_after = process::usage(std::process::id()).unwrap_or_default();
    let seconds = driven.elapsed.as_secs_f64().max(1e-9);
    Measured {
        pace,
        summary: recorder.summary(driven.elapsed),
        driven,
        server_cores: (after.cpu_s - before.cpu_s) / seconds,
        generator_cores: (me_after.cpu_s - me_before.cpu_s) / seconds,
        database_cores: pg_before
            .zip(postmaster.map(cluster_cpu))
            .map(|(before, after)| cluster_cpu_between(&before, &after) / seconds),
        rss_peak_kb: sampler.peak_kb(started, ended).max(after.rss_kb),
        rss_end_kb: after.rss_kb,
        generator_rss_kb: me_after.rss_kb,
    }
}

/// Whether a phase went without unexpected refusals or errors (said when not).
fn check(what: &str, summary: &Summary) -> bool {
    if summary.n_unexpected > 0 {
        println!("  FAILED: {} unexpected refusals or errors in {what}", summary.n_unexpected);
    }
    if let Some(example) = &summary.transport_example {
        println!("  note: {} requests got no answer in {what} (e.g. {example})", summary.n_transport);
    }
    summary.n_unexpected == 0
}

fn ratio(server: f64, baseline: f64) -> String {
    if baseline <= 0.0 { "-".to_owned() } else { format!("{:.2}x", server / baseline) }
}

async fn load(args: &RunArgs) -> Result<bool, String> {
    let n_grids = args.grids.unwrap_or(args.devices / 4).max(1);
    let n_demo = args.demo_grids.unwrap_or_else(|| (n_grids * 24).div_ceil(1000).max(1));
    let paces: Vec<Pace> =
        args.rates.iter().map(|rate| parse_pace(rate, args.concurrency)).collect::<Result<_, _>>()?;
    let duration = Duration::from_secs(args.duration);
    let city = City::plan(args.devices, n_grids, n_demo, args.seed)?;
    let counts = city.role_counts();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let backend = match args.database {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    println!(
        "wangge-loadgen: {backend}, {} devices ({} full-time, {} part-time, {} grid leaders, {} professional, {} center staff, {} department handlers), {} grids ({} with a {}-household demo register)",
        city.workers.len(),
        counts.full_time,
        counts.part_time,
        counts.grid_leaders,
        counts.professional,
        counts.center,
        counts.departments,
        city.grids.len(),
        city.n_demo(),
        args.demo_households
    );
    println!("machine: {cores} cores, load average {} at the start", load_average());

    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).map_err(|error| format!("{}: {error}", parent.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("wangge-load-")
        .tempdir_in(&parent)
        .map_err(|error| format!("a directory in {}: {error}", parent.display()))?;
    let cluster = match args.database {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let started = Instant::now();
            let cluster = tokio::task::spawn_blocking(|| {
                let cluster = Cluster::start(Durability::Full)?;
                let url = cluster.create_database("wangge")?;
                Ok::<_, String>((cluster, url))
            })
            .await
            .map_err(|error| error.to_string())??;
            println!("postgres: a throwaway cluster in {:.1} s", started.elapsed().as_secs_f64());
            Some(cluster)
        }
    };
    let database = match &cluster {
        Some((_, url)) => url.clone(),
        None => dir.path().join("server.db").display().to_string(),
    };
    let cluster = cluster.map(|(cluster, _)| cluster);

    let started = Instant::now();
    let codes = {
        let (database, city) = (database.clone(), city.clone());
        tokio::task::spawn_blocking(move || setup_city(&database, &city)).await.map_err(|error| error.to_string())??
    };
    println!(
        "setup (the server's library, in this process): {} grids, {} workers with enrollment codes in {:.1} s",
        city.grids.len(),
        city.workers.len(),
        started.elapsed().as_secs_f64()
    );

    let (program, is_self) = server_program(args.server.as_deref())?;
    let mut server_args: Vec<String> = ["serve", "--database", database.as_str(), "--listen", "127.0.0.1:0"]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
    if !is_self {
        // Its operator's pages on a port of their own, not the default one.
        server_args.extend(["--admin-listen".to_owned(), "127.0.0.1:0".to_owned()]);
    }
    let mut server = Served::start(&program, &server_args, &dir.path().join("server.log"), "/readyz").await?;
    let shown =
        if is_self { format!("{} serve (--server self)", program.display()) } else { program.display().to_string() };
    println!("server: {shown}, pid {}, {}", server.pid, server.url);
    let server_log = server.log.clone();
    let database_files: Vec<PathBuf> = match &cluster {
        Some(cluster) => vec![cluster.data.clone()],
        None => ["server.db", "server.db-wal", "server.db-shm"].iter().map(|name| dir.path().join(name)).collect(),
    };
    let sampler = Sampler::start(server.pid);
    let postmaster: Option<u32> = cluster.as_ref().and_then(Cluster::postmaster);
    let transport = Transport::new(&server.url)?;

    let context = Arc::new(Context {
        catalog: Catalog::default_catalog(),
        reportable_items: city.reportable_items.clone(),
        mix: Mix::default(),
    });
    let stores = dir.path().join("devices");
    std::fs::create_dir_all(&stores).map_err(|error| error.to_string())?;
    let mut devices = Vec::with_capacity(city.workers.len());
    let mut full_stores = Vec::new();
    for (index, worker) in city.workers.iter().enumerate() {
        let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(index as u64);
        let sim = match worker.full_store {
            Some(grid) => {
                let code = city.grids[grid].code.clone();
                let records = demo_records(&code, args.demo_households, args.seed);
                full_stores.push(index);
                Sim::Full(Box::new(FullDevice::open(&stores, &worker.person, code, records, seed)?))
            }
            None => Sim::Light(Box::new(LightDevice::new(worker, seed))),
        };
        devices.push(tokio::sync::Mutex::new(sim));
    }
    let fleet = Arc::new(Fleet { devices, context });
    let mut passed = true;

    // Enrollment.
    let recorder = Arc::new(Recorder::default());
    let started = Instant::now();
    run::enroll(&fleet, Arc::new(codes), &transport, &recorder, args.setup_concurrency).await;
    let summary = recorder.summary(started.elapsed());
    println!(
        "enrollment: {} devices in {:.1} s ({:.0}/s), p50 {}, p99 {}",
        summary.n,
        summary.elapsed.as_secs_f64(),
        summary.per_second,
        ms(summary.p50),
        ms(summary.p99)
    );
    passed &= check("enrollment", &summary);
    if let Some(ended) = server.ended() {
        let kept = dir.keep();
        return Err(format!("the server stopped: {ended}\n(the run's files are kept in {})", kept.display()));
    }

    // The demo grids' first collection.
    let recorder = Arc::new(Recorder::default());
    let started = Instant::now();
    let n_demo_changes =
        run::collect(&fleet, Arc::new(full_stores), &transport, &recorder, args.setup_concurrency.min(4)).await;
    let summary = recorder.summary(started.elapsed());
    println!(
        "collection: {} full stores imported {} households each ({} changes) and pushed them in {:.1} s, {} up, {} requests, p50 {}, max {}",
        city.n_demo(),
        args.demo_households,
        n_demo_changes,
        summary.elapsed.as_secs_f64(),
        bytes(summary.bytes_up as f64),
        summary.n,
        ms(summary.p50),
        ms(summary.max)
    );
    passed &= check("the collection", &summary);
    if let Some(ended) = server.ended() {
        let kept = dir.keep();
        return Err(format!("the server stopped: {ended}\n(the run's files are kept in {})", kept.display()));
    }

    // First syncs.
    let recorder = Arc::new(Recorder::default());
    let before = process::usage(server.pid).unwrap_or_default();
    let started = Instant::now();
    run::first_syncs(&fleet, &transport, &recorder, args.setup_concurrency).await;
    let summary = recorder.summary(started.elapsed());
    let after = process::usage(server.pid).unwrap_or_default();
    println!(
        "first syncs: {} devices, {} pages in {:.1} s ({:.0} pages/s), {} down ({} per device), {} snapshots; page p50 {}, p99 {}, max {}; server CPU {:.1} s, RSS {}",
        city.workers.len(),
        summary.n,
        summary.elapsed.as_secs_f64(),
        summary.per_second,
        bytes(summary.bytes_down as f64),
        bytes(summary.bytes_down as f64 / city.workers.len().max(1) as f64),
        summary.n_snapshots,
        ms(summary.p50),
        ms(summary.p99),
        ms(summary.max),
        after.cpu_s - before.cpu_s,
        mb(after.rss_kb)
    );
    for (group, n, p50, p99, down) in &summary.by_group {
        println!(
            "    {:<19} {n:>6} pages, p50 {:>9}, p99 {:>9}, {:>9} down per page",
            group.label(),
            ms(*p50),
            ms(*p99),
            bytes(*down)
        );
    }
    println!(
        "    generator   RSS {} (the simulated devices' documents and stores)",
        mb(process::usage(std::process::id()).unwrap_or_default().rss_kb)
    );
    passed &= check("the first syncs", &summary);
    if let Some(ended) = server.ended() {
        let kept = dir.keep();
        return Err(format!("the server stopped: {ended}\n(the run's files are kept in {})", kept.display()));
    }

    // Steady state against the server.
    let mut measured = Vec::new();
    for (i, pace) in paces.iter().enumerate() {
        println!("steady state, server, {} for {} s:", pace.label(), args.duration);
        let phase = measure(
            &fleet,
            &transport,
            &server,
            &sampler,
            postmaster,
            *pace,
            duration,
            args.seed.wrapping_add(i as u64),
        )
        .await;
        print_measured(&phase, "server");
        passed &= check("the steady state", &phase.summary);
        if let Some(ended) = server.ended() {
            let kept = dir.keep();
            return Err(format!("the server stopped: {ended}\n(the run's files are kept in {})", kept.display()));
        }
        measured.push(phase);
    }

    // Nothing left behind.
    let recorder = Arc::new(Recorder::default());
    let (left, n_failed_captures) = run::final_syncs(&fleet, &transport, &recorder, args.setup_concurrency).await;
    let summary = recorder.summary(Duration::from_secs(1));
    passed &= check("the final syncs", &summary);
    if let Some(ended) = server.ended() {
        let kept = dir.keep();
        return Err(format!("the server stopped: {ended}\n(the run's files are kept in {})", kept.display()));
    }
    if left.is_empty() && n_failed_captures == 0 {
        println!("final sync: every change acknowledged, no capture failed");
    } else {
        println!(
            "  FAILED: after a last sync, {} devices hold unacknowledged changes ({}); {n_failed_captures} captures failed",
            left.len(),
            left.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        );
        passed = false;
    }
    // The closed loop as a county center sees it.
    for device in &fleet.devices {
        if let Sim::Light(device) = &*device.lock().await
            && device.is_upper_center()
        {
            let (applied, not_applied, phases) = device.incident_marks();
            let phases: Vec<String> = phases.iter().map(|(phase, n)| format!("{n} {phase}")).collect();
            println!(
                "incidents (as {} holds them): {}; actions applied {applied}, not applied {not_applied} (lost a race)",
                device.person,
                phases.join(", ")
            );
            break;
        }
    }
    let end = process::usage(server.pid).unwrap_or_default();
    let postgres_pss = postmaster.map(cluster_pss_kb);
    println!(
        "server memory: {} at the end, {} at its peak (VmHWM, setup and first syncs included){}",
        mb(end.rss_kb),
        mb(end.peak_kb),
        postgres_pss.map_or_else(String::new, |kb| format!("; PostgreSQL's processes: {} (PSS)", mb(kb)))
    );
    let on_disk: u64 = database_files.iter().map(|path| process::disk_bytes(path)).sum();
    println!("server database on disk: {}", bytes(on_disk as f64));
    drop(sampler);
    server.stop();

    // The baseline, after every server phase (its acknowledgements are not the server's).
    let mut baselines = Vec::new();
    if !args.no_baseline {
        let me = std::env::current_exe().map_err(|error| error.to_string())?;
        let baseline_args: Vec<String> =
            ["baseline", "--listen", "127.0.0.1:0"].iter().map(|a| (*a).to_owned()).collect();
        let baseline = match Served::start(&me, &baseline_args, &dir.path().join("baseline.log"), "/healthz").await {
            Ok(baseline) => baseline,
            Err(error) => {
                let kept = dir.keep();
                return Err(format!("the baseline: {error}\n(the run's files are kept in {})", kept.display()));
            }
        };
        let sampler = Sampler::start(baseline.pid);
        let transport = transport.with_base(&baseline.url);
        for (i, pace) in paces.iter().enumerate() {
            println!(
                "steady state, baseline (plain axum, no CRDT, no storage), {} for {} s:",
                pace.label(),
                args.duration
            );
            let phase = measure(
                &fleet,
                &transport,
                &baseline,
                &sampler,
                None,
                *pace,
                duration,
                args.seed.wrapping_add(i as u64),
            )
            .await;
            print_measured(&phase, "baseline");
            passed &= check("the baseline", &phase.summary);
            baselines.push(phase);
        }
        drop(sampler);
        baseline.stop();
    }

    println!("load average {} at the end", load_average());
    println!(
        "| backend | devices | pace | syncs/s | p50 | p99 | bytes/sync (up+down) | server RSS peak | vs baseline: syncs/s, p50, p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, server) in measured.iter().enumerate() {
        let pace = match server.pace {
            Pace::Rate(rate) => format!("{rate:.0}/s"),
            Pace::Max { concurrency } => format!("max ({concurrency} in flight)"),
        };
        let s = &server.summary;
        let vs = baselines.get(i).map_or_else(
            || "-".to_owned(),
            |b| {
                let b = &b.summary;
                format!(
                    "{}, {}, {}",
                    ratio(s.per_second, b.per_second),
                    ratio(s.p50.as_secs_f64(), b.p50.as_secs_f64()),
                    ratio(s.p99.as_secs_f64(), b.p99.as_secs_f64())
                )
            },
        );
        println!(
            "| {backend} | {} | {pace} | {:.0} | {} | {} | {} | {} | {vs} |",
            city.workers.len(),
            s.per_second,
            ms(s.p50),
            ms(s.p99),
            bytes(s.up_per_sync + s.down_per_sync),
            mb(server.rss_peak_kb.max(end.peak_kb)),
        );
    }
    for (server, baseline) in measured.iter().zip(&baselines) {
        let (s, b) = (&server.summary, &baseline.summary);
        println!("ratios ({}), server vs baseline:", server.pace.label());
        println!(
            "  syncs/s      {:>10.1} vs {:>10.1}  ratio {}",
            s.per_second,
            b.per_second,
            ratio(s.per_second, b.per_second)
        );
        for (name, x, y) in [("p50", s.p50, b.p50), ("p90", s.p90, b.p90), ("p99", s.p99, b.p99), ("max", s.max, b.max)]
        {
            println!("  {name:<12} {:>10} vs {:>10}  ratio {}", ms(x), ms(y), ratio(x.as_secs_f64(), y.as_secs_f64()));
        }
        println!(
            "  bytes/sync   {:>10} vs {:>10}  ratio {}",
            bytes(s.up_per_sync + s.down_per_sync),
            bytes(b.up_per_sync + b.down_per_sync),
            ratio(s.up_per_sync + s.down_per_sync, b.up_per_sync + b.down_per_sync)
        );
        println!(
            "  RSS peak     {:>10} vs {:>10}  ratio {}",
            mb(server.rss_peak_kb),
            mb(baseline.rss_peak_kb),
            ratio(server.rss_peak_kb as f64, baseline.rss_peak_kb as f64)
        );
        println!(
            "  CPU per sync {:>7.2} ms vs {:>7.2} ms  ratio {}",
            server.server_cores * 1000.0 / s.per_second.max(1e-9),
            baseline.server_cores * 1000.0 / b.per_second.max(1e-9),
            ratio(server.server_cores / s.per_second.max(1e-9), baseline.server_cores / b.per_second.max(1e-9))
        );
    }
    drop(cluster);
    if passed {
        println!("PASSED: no unexpected refusal or error");
    } else {
        // Kept for a look: the server's request log, the full stores.
        let kept = dir.keep();
        println!("FAILED: the run's files are kept in {} (server log: {})", kept.display(), server_log.display());
    }
    Ok(passed)
}
