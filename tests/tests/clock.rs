//! Clock skew (issue 9): devices whose clocks are set a year ahead, a year behind, to 1970
//! and to 2040 end in the same state as devices with correct clocks, and deadlines are
//! counted by the server's time.
//!
//! `devices_with_skewed_clocks_end_as_with_correct_clocks` runs one scripted workload
//! (a grid imported; buildings, households and residents captured and edited, one field
//! edited by two devices at once and the conflict resolved; three incidents through the
//! closed loop — one archived, one left with a department, one rejected and re-dispatched;
//! syncs between five devices and a real server) once with correct clocks, once with every
//! device at each skew, and once with each device at a different one. Every run must end
//! with every device holding the same projection, and the same as the correct run's once
//! two things are normalised: the ids a run creates (random UUIDs) become the workload's
//! names for them, and the times stamped on incidents (`*_ms` columns, an action's
//! `device_time_ms`) become a mark — after each is checked to lie within the run's span
//! by the server's clock, whatever the stamping device's clock said.
//!
//! Deadlines: on every device, the open incident's deadline is the one counted from the
//! server's time of its dispatch, not overdue by the server's clock, and overdue 30 days
//! later by the server's clock; the archived one was completed on time.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, FixedOffset, TimeZone};
use wangge_core::OpenOptions;
use wangge_core::calendar::CHINA_TIME;
use wangge_core::clock::{SystemClock, WallClock};
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::incident::roles::{CenterLevel, DepartmentCode, Role};
use wangge_core::incident::{ActionKind, Actor, Mark, Phase, Verdict};
use wangge_core::model::*;
use wangge_core::{Due, IncidentFilter, NewIncident, Store, clock_deadline};
use wangge_tests::{TestDevice, TestServer};

const DAY_MS: i64 = 24 * 3600 * 1000;
const YEAR_MS: i64 = 365 * DAY_MS;

/// How a device's clock is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skew {
    Correct,
    YearAhead,
    YearBehind,
    /// 1970-01-01 00:00 UTC when the run starts, running from there.
    At1970,
    /// 2040-01-01 00:00 UTC when the run starts, running from there.
    At2040,
}

impl Skew {
    fn wall(self) -> Arc<dyn WallClock> {
        let started = server_ms();
        let from = |at: i64| -> Arc<dyn WallClock> { Arc::new(move || at + (server_ms() - started)) };
        match self {
            Skew::Correct => Arc::new(SystemClock),
            Skew::YearAhead => Arc::new(|| server_ms() + YEAR_MS),
            Skew::YearBehind => Arc::new(|| server_ms() - YEAR_MS),
            Skew::At1970 => from(0),
            Skew::At2040 => from(chrono::Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap().timestamp_millis()),
        }
    }
}

/// The server runs in this process on the system clock: its time.
fn server_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn server_now() -> DateTime<FixedOffset> {
    chrono::Utc::now().with_timezone(&CHINA_TIME)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn devices_with_skewed_clocks_end_as_with_correct_clocks() {
    use Skew::*;
    let started = Instant::now();
    let correct = run([Correct; 5]).await;
    let skewed = [
        [YearAhead; 5],
        [YearBehind; 5],
        [At1970; 5],
        [At2040; 5],
        // Each device its own: the worker a year ahead, the center at 1970, ….
        [YearAhead, YearBehind, At1970, At2040, Correct],
    ];
    let mut runs = tokio::task::JoinSet::new();
    for skews in skewed {
        runs.spawn(async move { (skews, run(skews).await) });
    }
    while let Some(joined) = runs.join_next().await {
        let (skews, state) = joined.unwrap();
        for (what, expected) in &correct {
            let found = &state[what];
            assert!(
                found == expected,
                "clocks {skews:?}: {what} differs from the run with correct clocks:\n  lacks {:?}\n  has besides {:?}",
                expected.iter().filter(|row| !found.contains(row)).collect::<Vec<_>>(),
                found.iter().filter(|row| !expected.contains(row)).collect::<Vec<_>>()
            );
        }
        println!("clocks {skews:?}: the same final state as with correct clocks");
    }
    println!("6 runs in {:.1} s", started.elapsed().as_secs_f64());
}

/// The devices of a run, in the order `Skew`s are given.
const PEOPLE: [(&str, &str, Option<&str>); 5] = [
    ("w1", "full_time_worker", None),
    ("w2", "part_time_worker", None),
    ("c1", "center_staff_township", None),
    ("h-police", "department_handler", Some("public_security")),
    ("h-urban", "department_handler", Some("urban_management")),
];

/// Runs the workload with these clocks; returns the final state, normalised, by what it is
/// (`register`, `incidents`, …), after checking every device holds the same.
async fn run(skews: [Skew; 5]) -> BTreeMap<String, Vec<String>> {
    let run_started_ms = server_ms();
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let mut devices = Vec::new();
    for ((person, role, department), skew) in PEOPLE.into_iter().zip(skews) {
        let areas: Vec<&GridCode> = if department.is_some() { vec![] } else { vec![&grid] };
        let code = server.worker(person, role, department, &areas);
        let options = OpenOptions { clock: Some(skew.wall()), ..Default::default() };
        devices.push(TestDevice::enrolled_with(&server, &code, options).await);
    }
    let [w1, w2, c1, police, urban] = &devices[..] else { unreachable!() };
    let worker = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
    let part_timer = Actor { person: "w2".into(), role: Role::PartTimeWorker, department: None };
    let staff = Actor { person: "c1".into(), role: Role::CenterStaff(CenterLevel::Township), department: None };
    let police_handler =
        Actor { person: "h-police".into(), role: Role::DepartmentHandler, department: Some(dept("public_security")) };
    let urban_handler =
        Actor { person: "h-urban".into(), role: Role::DepartmentHandler, department: Some(dept("urban_management")) };
    let sync_all = || async {
        for device in &devices {
            device.sync().await;
        }
    };
    // The workload's names for the ids a run creates.
    let mut names: BTreeMap<String, String> = BTreeMap::new();

    // The register: imported by the worker, then captures and edits on several devices.
    let records = generate_grid(&grid, &DemoOptions { seed: 9, households: 3, ..Default::default() });
    w1.store.import(&grid, &records).unwrap();
    sync_all().await;
    let building = w1.store.add_building(&grid, new_building("3栋", Some(6))).unwrap();
    names.insert(building.to_string(), "building B".into());
    let household = NewHousehold {
        building: Some(building),
        room: Some(Room::parse("301室").unwrap()),
        address: None,
        residence_type: ResidenceType::Registered,
    };
    let household = w1.store.add_household(&grid, household).unwrap();
    names.insert(household.to_string(), "household H".into());
    let resident = NewResident {
        household: Some(household),
        name: PersonName::parse("王芳").unwrap(),
        id_number: Some(IdNumber::parse(&id_number("440703", "19900315", "002")).unwrap()),
        phone: Some(Phone::parse("13900001111").unwrap()),
        gender: None,
        birth_date: None,
        relation: Relation::Head,
        residence_type: ResidenceType::Registered,
        tags: Default::default(),
    };
    let resident = w1.store.add_resident(&grid, resident).unwrap();
    names.insert(resident.to_string(), "resident R".into());
    w1.sync().await;
    w2.sync().await;
    // The part-time worker (its clock another than the worker's) edits after the worker:
    // the later edit wins, whatever the clocks say.
    w2.store.update_building(building, BuildingPatch { floors: Some(Some(9)), ..Default::default() }).unwrap();
    let own = w2.store.add_building(&grid, new_building("5栋", Some(2))).unwrap();
    names.insert(own.to_string(), "building P".into());
    w2.sync().await;
    w1.sync().await;
    // Both edit the room at once; the worker resolves the conflict.
    w1.store
        .update_household(
            household,
            HouseholdPatch { room: Some(Some(Room::parse("302室").unwrap())), ..Default::default() },
        )
        .unwrap();
    w2.store
        .update_household(
            household,
            HouseholdPatch { room: Some(Some(Room::parse("303室").unwrap())), ..Default::default() },
        )
        .unwrap();
    w2.sync().await;
    w1.sync().await;
    let conflicts = w1.store.conflicts(RecordRef::Household(household)).unwrap();
    assert_eq!(conflicts.len(), 1, "clocks {skews:?}: the concurrent edits of the room are a conflict");
    w1.store
        .update_household(
            household,
            HouseholdPatch { room: Some(Some(Room::parse("303室").unwrap())), ..Default::default() },
        )
        .unwrap();
    w1.sync().await;

    // Incidents through the loop, each step on the device whose role takes it.
    let item = w1.store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    let archived = w1.store.report_incident(new_incident(&grid, &item, "占道经营"), worker.clone()).unwrap();
    let open = w2.store.report_incident(new_incident(&grid, &item, "井盖缺失"), part_timer.clone()).unwrap();
    let rejected = w1.store.report_incident(new_incident(&grid, &item, "乱堆杂物"), worker.clone()).unwrap();
    names.insert(archived.to_string(), "incident A".into());
    names.insert(open.to_string(), "incident O".into());
    names.insert(rejected.to_string(), "incident J".into());
    sync_all().await;
    for id in [archived, open, rejected] {
        assert_eq!(c1.store.act(id, staff.clone(), ActionKind::Accept).unwrap(), Mark::Applied);
    }
    let to = |department: &str| ActionKind::Dispatch { lead: dept(department), co_handlers: vec![] };
    c1.store.act(archived, staff.clone(), to("public_security")).unwrap();
    let open_dispatched_ms = server_ms();
    c1.store.act(open, staff.clone(), to("urban_management")).unwrap();
    c1.store.act(rejected, staff.clone(), to("public_security")).unwrap();
    sync_all().await;
    let complete = ActionKind::Complete { feedback: "已清理".into(), evidence: vec![] };
    assert_eq!(police.store.act(archived, police_handler.clone(), complete).unwrap(), Mark::Applied);
    let reject = ActionKind::Reject { reasons: "不属于公安职责".into() };
    assert_eq!(police.store.act(rejected, police_handler, reject).unwrap(), Mark::Applied);
    police.sync().await;
    sync_all().await;
    let verify = ActionKind::Verify { verdict: Verdict::Pass, note: "现场核实".into() };
    assert_eq!(w1.store.act(archived, worker.clone(), verify).unwrap(), Mark::Applied);
    let redispatch = ActionKind::Redispatch { lead: dept("urban_management"), co_handlers: vec![] };
    assert_eq!(c1.store.act(rejected, staff.clone(), redispatch).unwrap(), Mark::Applied);
    w1.sync().await;
    c1.sync().await;
    assert_eq!(c1.store.act(archived, staff.clone(), ActionKind::Archive).unwrap(), Mark::Applied);
    let progress = ActionKind::Progress { note: "已联系".into() };
    assert_eq!(urban.store.act(open, urban_handler, progress).unwrap(), Mark::Applied);
    // Quiet: everyone syncs until nothing is pending anywhere.
    for _ in 0..3 {
        sync_all().await;
    }
    let run_ended_ms = server_ms();

    // Deadlines by the server's time, on every device that holds the incidents.
    for (device, skew) in devices.iter().zip(skews) {
        assert_eq!(device.store.pending_changes().unwrap(), 0, "clocks {skews:?}: {skew:?} has changes pending");
        if device.store.incidents(&IncidentFilter::default(), device.store.now()).unwrap().is_empty() {
            continue;
        }
        check_deadlines(&device.store, open, archived, &item, open_dispatched_ms, run_ended_ms)
            .unwrap_or_else(|problem| panic!("clocks {skews:?}, the device at {skew:?}: {problem}"));
    }

    // The same state everywhere (like with like), normalised for comparing runs.
    let span = run_started_ms..=run_ended_ms;
    let mut state: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (what, sql) in STATE {
        let dumps: Vec<Vec<String>> = devices
            .iter()
            .zip(skews)
            .map(|(device, skew)| {
                dump(&device.store, sql, &names, &span)
                    .unwrap_or_else(|problem| panic!("clocks {skews:?}, the device at {skew:?}: {what}: {problem}"))
            })
            .collect();
        // The center (c1) holds everything of the grid; the worker the same; the part-time
        // worker all but sensitive rows; a department only the incidents sent to it.
        let center = &dumps[2];
        assert!(!center.is_empty(), "clocks {skews:?}: the center has no {what}");
        for (i, rows) in dumps.iter().enumerate() {
            let (person, _, department) = PEOPLE[i];
            let same = match person {
                "w1" => rows == center,
                "w2" if what.starts_with("resident ") => rows.is_empty(),
                "w2" => rows == center,
                _ if department.is_some() && what.starts_with("incident") => {
                    !rows.is_empty() && rows.iter().all(|row| center.contains(row))
                }
                _ => department.is_none() || rows.is_empty(),
            };
            assert!(same, "clocks {skews:?}: {what} on {person} ({:?}) are not the center's: {rows:#?}", skews[i]);
            state.insert(format!("{what} on {person}"), rows.clone());
        }
    }
    state
}

/// What the final state is compared on: every projected row of the register, the
/// sensitive details and the incidents (the local rowid left out).
const STATE: [(&str, &str); 8] = [
    ("buildings", "SELECT id, grid_code, name, address, location, floors, units, usage, status FROM buildings"),
    ("households", "SELECT id, grid_code, building, room, address, residence_type, status FROM households"),
    ("residents", "SELECT id, grid_code, household, name, gender, relation, residence_type, status FROM residents"),
    (
        "resident details",
        "SELECT resident_id, grid_code, id_number, phone, birth_date, phone_tail, id_tail FROM resident_details",
    ),
    ("resident tags", "SELECT resident_id, tag FROM resident_tags"),
    (
        "incidents",
        "SELECT id, grid_code, catalog_item, class, title, description, location, phase, reporter, reported_ms,
            lead_department, co_handlers, lead_started_ms, lead_stopped_ms, lead_stop, handled, resolved_on_spot,
            n_rejections, n_urged, escalated, satisfaction, closed_ms, n_actions, n_not_applied FROM incidents",
    ),
    ("incident actions", "SELECT incident_id, position, action, mark FROM incident_actions"),
    (
        "incident departments",
        "SELECT incident_id, position, department, lead, started_ms, stopped_ms, stop FROM incident_departments",
    ),
];

/// Rows as sorted text: the run's ids by their names, and each stamped time (a `*_ms`
/// column, an action's `device_time_ms`) checked to lie in the run's span by the server's
/// clock, then replaced by `<server time>`.
fn dump(
    store: &Store,
    sql: &str,
    names: &BTreeMap<String, String>,
    span: &std::ops::RangeInclusive<i64>,
) -> Result<Vec<String>, String> {
    // The devices' corrected clocks are off by up to half a round trip, and the run's
    // bounds are read around the work: a few seconds of slack.
    let slack = (span.start() - 10_000)..=(span.end() + 10_000);
    let check_time = |what: &str, ms: i64| -> Result<String, String> {
        if slack.contains(&ms) {
            Ok("<server time>".into())
        } else {
            Err(format!(
                "{what} is {} ({ms}), outside the run's span by the server's clock",
                CHINA_TIME.timestamp_millis_opt(ms).single().map(|time| time.to_rfc3339()).unwrap_or_default()
            ))
        }
    };
    let rows: Vec<Vec<(String, rusqlite::types::Value)>> = store
        .with_reader(|conn| {
            let mut statement = conn.prepare(sql)?;
            let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
            let rows = statement
                .query_map([], |row| {
                    columns
                        .iter()
                        .enumerate()
                        .map(|(i, column)| Ok((column.clone(), row.get::<_, rusqlite::types::Value>(i)?)))
                        .collect::<Result<Vec<_>, _>>()
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .unwrap();
    let mut out = Vec::new();
    for row in rows {
        let mut cells = Vec::new();
        for (column, value) in row {
            let cell = match value {
                rusqlite::types::Value::Integer(ms) if column.ends_with("_ms") => check_time(&column, ms)?,
                rusqlite::types::Value::Text(json) if column == "action" => {
                    let mut action: serde_json::Value = serde_json::from_str(&json).unwrap();
                    let ms = action["device_time_ms"].as_i64().ok_or("an action without a time")?;
                    action["device_time_ms"] = check_time("an action's device_time_ms", ms)?.into();
                    // The action's own id: random, and named by its position already.
                    action["id"] = "<action>".into();
                    action.to_string()
                }
                other => format!("{other:?}"),
            };
            cells.push(cell);
        }
        let mut line = cells.join("|");
        for (id, name) in names {
            line = line.replace(id.as_str(), name);
        }
        out.push(line);
    }
    out.sort();
    Ok(out)
}

/// The open incident's deadline on `store`, as of the server's time: counted from the
/// server's time of the dispatch, not overdue now, overdue 30 days on; the archived one
/// completed on time.
fn check_deadlines(
    store: &Store,
    open: IncidentId,
    archived: IncidentId,
    item: &str,
    dispatched_ms: i64,
    run_ended_ms: i64,
) -> Result<(), String> {
    let now = store.now();
    let drift = (now.timestamp_millis() - server_ms()).abs();
    if drift > 10_000 {
        return Err(format!("the store's clock is {drift} ms from the server's"));
    }
    let held: Vec<IncidentId> = store
        .incidents(&IncidentFilter::default(), now)
        .map_err(|error| error.to_string())?
        .iter()
        .map(|summary| summary.id)
        .collect();
    let overdue = IncidentFilter { due: Some(Due::Overdue), ..Default::default() };
    if !store.incidents(&overdue, now).map_err(|error| error.to_string())?.is_empty() {
        return Err("an incident is overdue by the server's clock".into());
    }
    if held.contains(&open) {
        let expected =
            clock_deadline(&store.catalog(), &store.calendar(), item, Some(dispatched_ms), None, server_now())
                .ok_or("no deadline for the catalog item")?;
        let summary = store.incident(open, now).map_err(|error| error.to_string())?;
        let deadline = summary.deadline.ok_or("the open incident has no deadline")?;
        if deadline.due_at != expected.due_at || deadline.overdue || deadline.estimated != expected.estimated {
            return Err(format!("the open incident's deadline is {deadline:?}, by the server's time {expected:?}"));
        }
        let later = CHINA_TIME.timestamp_millis_opt(run_ended_ms + 30 * DAY_MS).unwrap();
        let found: Vec<IncidentId> = store
            .incidents(&overdue, later)
            .map_err(|error| error.to_string())?
            .iter()
            .map(|summary| summary.id)
            .collect();
        if !found.contains(&open) {
            return Err(format!("30 days on, the open incident is not overdue: {found:?}"));
        }
    }
    if held.contains(&archived) {
        let archived = store.incident(archived, now).map_err(|error| error.to_string())?;
        let on_time = archived.deadline.is_some_and(|deadline| !deadline.overdue);
        if archived.phase != Phase::Archived || !on_time {
            return Err(format!("the archived incident: {:?}, deadline {:?}", archived.phase, archived.deadline));
        }
    }
    Ok(())
}

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).unwrap()
}

fn new_building(name: &str, floors: Option<u16>) -> NewBuilding {
    NewBuilding {
        name: Label::parse(name).unwrap(),
        address: Address::parse("江门市蓬江区港口路8号").unwrap(),
        location: None,
        floors,
        units: Some(1),
        usage: BuildingUse::Residential,
    }
}

fn new_incident(grid: &GridCode, item: &str, title: &str) -> NewIncident {
    NewIncident {
        grid: grid.clone(),
        catalog_item: item.to_owned(),
        title: title.into(),
        description: String::new(),
        location: None,
        residents: vec![],
        households: vec![],
        organizations: vec![],
        photos: vec![],
        reported_by_resident: None,
    }
}

/// A valid ID number: area, birth date (YYYYMMDD), sequence, and its check character.
fn id_number(area: &str, born: &str, sequence: &str) -> String {
    let first17 = format!("{area}{born}{sequence}");
    let check = wangge_core::model::check_character(&first17).unwrap();
    format!("{first17}{check}")
}
