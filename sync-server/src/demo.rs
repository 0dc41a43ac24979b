//! `wangge-server demo`: the README's run command. A sync server on an embedded SQLite
//! file with a demo city — one county, two townships, three communities, six grids of
//! 300–500 households, the catalog and its departments, workers of every role — and
//! simulated devices that enroll, capture offline, run an incident through the closed
//! loop and sync, printing what happened and the bytes it cost.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use wangge_core::Store;
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::incident::roles::{DepartmentCode, Role};
use wangge_core::incident::{ActionKind, Actor, Verdict};
use wangge_core::model::*;
use wangge_core::sync::http::{SyncClient, SyncProgress};

use crate::{Service, SqliteStorage, Worker};

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The six grids: (code, name, households).
const GRIDS: [(&str, &str, usize); 6] = [
    ("440703001001001", "长堤社区第1网格", 420),
    ("440703001001002", "长堤社区第2网格", 380),
    ("440703001002001", "海旁社区第1网格", 460),
    ("440703001002002", "海旁社区第2网格", 300),
    ("440703002001001", "棠下村第1网格", 350),
    ("440703002001002", "棠下村第2网格", 500),
];

struct Device {
    name: &'static str,
    actor: Actor,
    store: Store,
    client: SyncClient,
}

impl Device {
    async fn sync(&self) -> DemoResult<SyncProgress> {
        Ok(self.client.sync(&self.store, None).await?)
    }
}

fn report(what: &str, progress: &SyncProgress) {
    println!(
        "  {what}: {} page(s), {} B up, {} B down, {} document(s) pulled",
        progress.pages, progress.bytes_sent, progress.bytes_received, progress.docs_pulled
    );
}

pub fn run(dir: &Path) -> DemoResult<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run_city(dir))
}

async fn run_city(dir: &Path) -> DemoResult<()> {
    wangge_core::sync::http::install_crypto_provider();
    let service = Service::new(SqliteStorage::open(&dir.join("server.db"))?);
    let codes: Vec<GridCode> =
        GRIDS.iter().map(|(code, _, _)| GridCode::parse_default(code)).collect::<Result<_, _>>()?;
    for ((_, name, _), code) in GRIDS.iter().zip(&codes) {
        service.create_grid(code, name, if code.township_code().ends_with("002") { "village" } else { "community" })?;
    }
    let (listener, addr) = crate::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(listener, service.clone(), async {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}");
    println!("wangge-server demo: sync server on {url}, database {}", dir.join("server.db").display());
    println!("city: county 440703, 2 townships, 3 communities, {} grids", codes.len());

    let grid_strings: Vec<String> = codes.iter().map(|code| code.as_str().to_owned()).collect();
    let mut people: Vec<(&'static str, Worker)> = Vec::new();
    for (i, code) in grid_strings.iter().enumerate() {
        let person: &'static str = ["w-01", "w-02", "w-03", "w-04", "w-05", "w-06"][i];
        people.push((
            person,
            Worker {
                person: person.into(),
                role: "full_time_worker".into(),
                department: None,
                grids: vec![code.clone()],
            },
        ));
    }
    let extra = [
        ("p-01", "part_time_worker", None, vec![grid_strings[0].clone()]),
        ("l-01", "grid_leader", None, grid_strings[..2].to_vec()),
        (
            "z-01",
            "professional_worker",
            Some("urban_management".to_owned()),
            vec![grid_strings[0].clone(), grid_strings[2].clone()],
        ),
        // Centers are given their area: every grid within it.
        ("c-01", "center_staff_township", None, vec!["440703001".to_owned()]),
        ("c-02", "center_staff_county", None, vec!["440703".to_owned()]),
        ("h-01", "department_handler", Some("urban_management".to_owned()), vec![]),
        ("h-02", "department_handler", Some("market_regulation".to_owned()), vec![]),
    ];
    for (person, role, department, grids) in extra {
        people.push((person, Worker { person: person.into(), role: role.into(), department, grids }));
    }
    for (_, worker) in &people {
        service.create_worker(worker)?;
    }
    println!(
        "workers: {} (full-time, part-time, grid leader, professional, township and county center, 2 department handlers)",
        people.len()
    );

    let mut devices = Vec::new();
    for (name, worker) in &people {
        let store = Store::open(dir.join(format!("device-{name}.db")))?;
        let client = SyncClient::new(&url)?;
        let code = service.issue_enrollment_code(&worker.person)?;
        client.enroll(&store, &code, name).await?;
        let role = Role::from_code(&worker.role).unwrap_or(Role::FullTimeWorker);
        let department = worker.department.as_deref().map(DepartmentCode::parse).transpose()?;
        devices.push(Device { name, actor: Actor { person: worker.person.clone(), role, department }, store, client });
    }
    println!("enrolled {} devices with one-time codes", devices.len());

    // Each full-time worker records their grid offline, then syncs.
    println!("first collection, offline, then one sync each:");
    for (i, ((_, _, households), code)) in GRIDS.iter().zip(&codes).enumerate() {
        let device = &devices[i];
        let started = Instant::now();
        let records =
            generate_grid(code, &DemoOptions { seed: i as u64 + 1, households: *households, ..Default::default() });
        let summary = device.store.import(code, &records)?;
        let progress = device.sync().await?;
        report(
            &format!(
                "{} {} ({} records, {:.1} s)",
                device.name,
                code,
                summary.n_records,
                started.elapsed().as_secs_f64()
            ),
            &progress,
        );
    }
    let by_name = |name: &str| devices.iter().find(|device| device.name == name).ok_or("no such demo device");
    for name in ["p-01", "l-01", "c-01"] {
        let device = by_name(name)?;
        let started = Instant::now();
        let progress = device.sync().await?;
        report(&format!("{name} first sync ({:.2} s)", started.elapsed().as_secs_f64()), &progress);
    }
    let part_time = by_name("p-01")?;
    let n_sensitive: i64 = part_time
        .store
        .with_reader(|conn| conn.query_row("SELECT count(*) FROM resident_details", [], |row| row.get(0)))?;
    println!("  the part-time worker's phone holds {n_sensitive} sensitive rows (minimum necessary)");

    // An offline edit and its sync.
    let w1 = by_name("w-01")?;
    let household = w1.store.list_households(&codes[0])?[0].id;
    let head = w1.store.residents_of_household(household)?[0].id;
    w1.store.update_resident(
        head,
        ResidentPatch { phone: Some(Some(Phone::parse("13800138000")?)), ..Default::default() },
    )?;
    report("w-01 syncs one changed phone", &w1.sync().await?);
    report("l-01 receives it", &by_name("l-01")?.sync().await?);

    // An incident through the closed loop, every step on its own device.
    println!("an incident through the loop:");
    let item = w1
        .store
        .catalog()
        .items()
        .find(|item| item.admitted && item.departments.first().is_some_and(|d| d.as_str() == "urban_management"))
        .ok_or("the catalog has urban-management items")?
        .clone();
    let incident = w1.store.report_incident(
        wangge_core::NewIncident {
            grid: codes[0].clone(),
            catalog_item: item.code.clone(),
            title: item.name.clone(),
            description: "巡查发现".into(),
            location: None,
            residents: vec![],
            households: vec![household],
            organizations: vec![],
            photos: vec![],
            reported_by_resident: None,
        },
        w1.actor.clone(),
    )?;
    report("w-01 reports offline, then syncs", &w1.sync().await?);
    let center = by_name("c-01")?;
    center.sync().await?;
    center.store.act(incident, center.actor.clone(), ActionKind::Accept)?;
    let wrong = DepartmentCode::parse("market_regulation")?;
    center.store.act(incident, center.actor.clone(), ActionKind::Dispatch { lead: wrong, co_handlers: vec![] })?;
    report("c-01 accepts and dispatches to market_regulation", &center.sync().await?);
    let h2 = by_name("h-02")?;
    h2.sync().await?;
    h2.store.act(incident, h2.actor.clone(), ActionKind::Reject { reasons: "不属于市场监管职责".into() })?;
    report("h-02 rejects: not its duty", &h2.sync().await?);
    center.sync().await?;
    let right = DepartmentCode::parse("urban_management")?;
    center.store.act(incident, center.actor.clone(), ActionKind::Redispatch { lead: right, co_handlers: vec![] })?;
    report("c-01 redispatches to urban_management", &center.sync().await?);
    let h1 = by_name("h-01")?;
    h1.sync().await?;
    h1.store.act(incident, h1.actor.clone(), ActionKind::Complete { feedback: "已处置".into(), evidence: vec![] })?;
    report("h-01 completes", &h1.sync().await?);
    w1.sync().await?;
    w1.store.act(incident, w1.actor.clone(), ActionKind::Verify { verdict: Verdict::Pass, note: "现场核实".into() })?;
    report("w-01 verifies on site", &w1.sync().await?);
    center.sync().await?;
    center.store.act(incident, center.actor.clone(), ActionKind::Archive)?;
    report("c-01 archives", &center.sync().await?);
    w1.sync().await?;
    let now = chrono::Utc::now().with_timezone(&wangge_core::calendar::CHINA_TIME);
    println!("  final: {} on the worker's phone; timeline:", w1.store.incident(incident, now)?.phase.label_zh());
    for entry in w1.store.incident_timeline(incident)? {
        println!("    {entry}");
    }
    let h1_holds = h1.store.incidents(&wangge_core::IncidentFilter::default(), now)?.len();
    println!("  the urban-management handler's device holds {h1_holds} incident(s) and no register");

    field_work(&service, &devices, &codes).await?;

    let _ = stop.send(());
    server.await??;
    println!("stores are in {}", dir.display());
    Ok(())
}

/// A morning on foot for w-01: a visit, a check-in, an hour's patrol; the leader sees it,
/// and the grid's public card (what `/public/grids/{code}` shows) reaches the devices.
async fn field_work(service: &Service<SqliteStorage>, devices: &[Device], codes: &[GridCode]) -> DemoResult<()> {
    use wangge_core::activity::track::{self, TrackPoint};
    use wangge_core::activity::{NewVisit, VisitPurpose, VisitTarget};
    let by_name = |name: &str| devices.iter().find(|device| device.name == name).ok_or("a demo device");
    println!("field work:");
    service.set_supervision_phone(&codes[0], Some("12345"))?;
    service.set_worker_contact("w-01", Some("黄小梅"), Some("13800138001"))?;
    service.set_worker_contact("l-01", Some("陈建国"), Some("13800138002"))?;
    let w1 = by_name("w-01")?;
    w1.sync().await?;
    let grid = &codes[0];
    let buildings = w1.store.list_buildings(grid)?;
    let start = buildings.iter().find_map(|building| building.location).ok_or("a located building")?;
    let now_ms = w1.store.clock().now_ms();
    let household = w1.store.list_households(grid)?[0].id;
    w1.store.record_visit(
        grid,
        NewVisit {
            target: VisitTarget::Household(household),
            time_ms: now_ms,
            location: Some(start),
            purpose: VisitPurpose::Care,
            findings: "独居老人身体良好，燃气灶已更换".into(),
            follow_up: None,
        },
        &w1.actor,
    )?;
    w1.store.check_in(grid, start, now_ms, &w1.actor)?;
    // An hour's walk at one fix per 5 s (about 5 m a step), winding north-east.
    let (mut lat, mut lng) = (start.lat(), start.lng());
    let points: Vec<TrackPoint> = (0..720)
        .map(|i| {
            let heading = (f64::from(i) / 40.0).sin().abs();
            lat += 4.5e-5 * heading.sin();
            lng += 4.5e-5 * heading.cos();
            TrackPoint { time_ms: now_ms + i64::from(i) * 5_000, lat, lng }
        })
        .collect();
    let blob = track::encode(&points).map_err(|error| error.to_string())?;
    let blobs = wangge_core::blobs::BlobStore::beside(&w1.store, 64 * 1024 * 1024)?;
    let hash = blobs.put(&blob)?;
    let patrol = w1.store.record_patrol(grid, &points, hash.as_str(), &w1.actor)?;
    println!(
        "  w-01 visits a household, checks in and patrols for an hour: {:.0} m, {} building(s) passed, track {} B",
        patrol.summary.distance_m,
        patrol.buildings_passed.len(),
        blob.len()
    );
    report("w-01 syncs its field work", &w1.sync().await?);
    let uploaded = w1.client.upload_pending_blobs(&w1.store, &blobs).await?;
    println!("  w-01 uploads the track: {} blob(s), {} B", uploaded.n_blobs, uploaded.bytes_sent);
    let leader = by_name("l-01")?;
    report("l-01 syncs", &leader.sync().await?);
    let month = wangge_core::activity::doc::month_of(now_ms);
    let figures = leader.store.worker_month("w-01", &month)?;
    println!(
        "  w-01's month as the leader sees it: {} visit(s), {} check-in day(s), {} patrol(s) {:.0} m, coverage {:.0}%",
        figures.n_visits,
        figures.n_check_in_days,
        figures.n_patrols,
        figures.patrol_distance_m,
        figures.coverage.unwrap_or(0.0) * 100.0
    );
    let card = leader.store.grid_card(grid)?;
    println!(
        "  public card of {} (/public/grids/{}): {} leader(s), {} worker(s) posted, supervision phone {}",
        card.name,
        card.code,
        card.leaders.len(),
        card.workers.len(),
        card.supervision_phone.as_deref().unwrap_or("none")
    );
    Ok(())
}
