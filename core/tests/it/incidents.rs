//! Incidents through the store: the closed loop, deadlines in working days, queries,
//! and two devices merging one incident.

use chrono::{DateTime, FixedOffset, TimeZone};
use wangge_core::calendar::CHINA_TIME;
use wangge_core::crdt::DocId;
use wangge_core::incident::catalog::{DeadlineSpec, MatterClass};
use wangge_core::incident::roles::{CenterLevel, DepartmentCode, Role};
use wangge_core::incident::{ActionKind, Actor, Mark, NotApplied, Phase, Verdict};
use wangge_core::model::*;
use wangge_core::{Due, Error, IncidentFilter, NewIncident, Store};

use super::*;

fn at(s: &str) -> DateTime<FixedOffset> {
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    CHINA_TIME.from_local_datetime(&naive).unwrap()
}

fn ms(s: &str) -> i64 {
    at(s).timestamp_millis()
}

fn worker() -> Actor {
    Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None }
}

fn center() -> Actor {
    Actor { person: "c1".into(), role: Role::CenterStaff(CenterLevel::Township), department: None }
}

fn handler(department: &str) -> Actor {
    Actor { person: format!("h-{department}"), role: Role::DepartmentHandler, department: Some(dept(department)) }
}

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).unwrap()
}

/// A catalog item with the usual 5-working-day deadline, and its lead department.
fn five_day_item(store: &Store) -> (String, String, MatterClass) {
    let catalog = store.catalog();
    let item = catalog
        .items()
        .find(|item| item.admitted && item.deadline == DeadlineSpec::WorkingDays(5))
        .expect("the default catalog has 5-day items");
    (item.code.clone(), item.departments[0].to_string(), item.class)
}

fn new_incident(store: &Store, title: &str) -> NewIncident {
    NewIncident {
        grid: grid_code(),
        catalog_item: five_day_item(store).0,
        title: title.into(),
        description: "路口井盖缺失，已设置警示".into(),
        location: Some(Wgs84::new(22.5912, 113.0815).unwrap()),
        residents: vec![],
        households: vec![],
        organizations: vec![],
        photos: vec![format!("sha256:{}", "ab".repeat(32))],
        reported_by_resident: None,
    }
}

/// Reported 09-29, accepted and dispatched on 2025-09-30 10:00 to the item's department.
fn dispatched(store: &Store) -> (IncidentId, String) {
    let (_, lead, _) = five_day_item(store);
    let id = store.report_incident_at(new_incident(store, "井盖缺失"), worker(), ms("2025-09-29 09:00")).unwrap();
    assert_eq!(store.act_at(id, center(), ActionKind::Accept, ms("2025-09-30 09:00")).unwrap(), Mark::Applied);
    let dispatch = ActionKind::Dispatch { lead: dept(&lead), co_handlers: vec![] };
    assert_eq!(store.act_at(id, center(), dispatch, ms("2025-09-30 10:00")).unwrap(), Mark::Applied);
    (id, lead)
}

#[test]
fn the_closed_loop_through_the_store() {
    let device = device();
    let store = &device.store;
    let (id, lead) = dispatched(store);
    let steps = [
        (handler(&lead), ActionKind::Progress { note: "已到现场".into() }),
        (handler(&lead), ActionKind::Complete { feedback: "已更换井盖".into(), evidence: vec![] }),
        (worker(), ActionKind::Verify { verdict: Verdict::Pass, note: "现场核实".into() }),
        (center(), ActionKind::Archive),
        (worker(), ActionKind::Evaluate { satisfaction: 5, comment: "满意".into() }),
    ];
    for (actor, kind) in steps {
        assert_eq!(store.act_at(id, actor, kind, ms("2025-10-09 15:00")).unwrap(), Mark::Applied);
    }
    let incident = store.incident(id, at("2025-11-01 09:00")).unwrap();
    assert_eq!(incident.phase, Phase::Archived);
    assert_eq!(incident.satisfaction, Some(5));
    let deadline = incident.deadline.unwrap();
    // 2025-09-30 + 5 working days = 2025-10-14 (National Day); completed on 10-09: in time.
    assert_eq!(deadline.due_at.date_naive(), date("2025-10-14"));
    assert!(!deadline.overdue);
    let timeline = store.incident_timeline(id).unwrap();
    assert_eq!(timeline.len(), 8);
    assert!(timeline[0].to_string().contains("上报"), "{}", timeline[0]);
    assert!(timeline.iter().all(|entry| entry.mark == Mark::Applied));
}

#[test]
fn a_refused_action_stays_in_the_timeline_with_its_reason() {
    let device = device();
    let (id, lead) = dispatched(&device.store);
    let mark =
        device.store.act(id, worker(), ActionKind::Complete { feedback: String::new(), evidence: vec![] }).unwrap();
    assert_eq!(mark, Mark::NotApplied(NotApplied::RoleNotAllowed { role: Role::FullTimeWorker }));
    let other = if lead == "public_security" { "justice" } else { "public_security" };
    let mark = device.store.act(id, handler(other), ActionKind::Reject { reasons: "非本部门".into() }).unwrap();
    assert_eq!(mark, Mark::NotApplied(NotApplied::NotResponsible));
    let timeline = device.store.incident_timeline(id).unwrap();
    assert_eq!(timeline.len(), 5);
    assert!(timeline[3].to_string().contains("not applied"), "{}", timeline[3]);
    assert_eq!(device.store.incident(id, at("2025-10-01 09:00")).unwrap().phase, Phase::Dispatched);
}

#[test]
fn reports_and_dispatches_are_checked_against_the_catalog() {
    let device = device();
    let store = &device.store;
    let mut unknown = new_incident(store, "x");
    unknown.catalog_item = "XX-999".into();
    assert!(matches!(store.report_incident(unknown, worker()), Err(Error::UnknownCatalogItem { .. })));
    let mut bad_photo = new_incident(store, "x");
    bad_photo.photos = vec!["photo.jpg".into()];
    assert!(
        matches!(store.report_incident(bad_photo, worker()), Err(Error::Invalid(invalid)) if invalid.field == "photo")
    );
    let mut elsewhere = new_incident(store, "x");
    elsewhere.residents = vec![ResidentId::new()];
    assert!(matches!(store.report_incident(elsewhere, worker()), Err(Error::NotFound { .. })));
    let mut other_grid = new_incident(store, "x");
    other_grid.grid = GridCode::parse_default("440703001001009").unwrap();
    assert!(matches!(store.report_incident(other_grid, worker()), Err(Error::UnknownGrid { .. })));

    let id = store.report_incident(new_incident(store, "井盖缺失"), worker()).unwrap();
    store.act(id, center(), ActionKind::Accept).unwrap();
    let error = store
        .act(id, center(), ActionKind::Dispatch { lead: dept("no_such_bureau"), co_handlers: vec![] })
        .unwrap_err();
    assert!(matches!(&error, Error::UnknownDepartment { code } if code == "no_such_bureau"), "{error}");
    assert_eq!(store.incident_timeline(id).unwrap().len(), 2, "nothing was written");
}

#[test]
fn deadlines_count_working_days_and_a_rejection_stops_the_clock() {
    let device = device();
    let store = &device.store;
    let (id, lead) = dispatched(store);
    let deadline = |now: &str| store.incident(id, at(now)).unwrap().deadline.unwrap();
    assert!(!deadline("2025-10-09 09:00").due_soon, "four working days left");
    assert!(deadline("2025-10-13 09:00").due_soon);
    assert!(deadline("2025-10-14 23:00").due_soon);
    assert!(deadline("2025-10-15 09:00").overdue);

    let soon = IncidentFilter { due: Some(Due::Soon), ..Default::default() };
    assert_eq!(store.incidents(&soon, at("2025-10-13 09:00")).unwrap().len(), 1);
    let overdue = IncidentFilter { due: Some(Due::Overdue), ..Default::default() };
    assert_eq!(store.incidents(&overdue, at("2025-10-13 09:00")).unwrap().len(), 0);
    assert_eq!(store.incidents(&overdue, at("2025-10-20 09:00")).unwrap().len(), 1);

    // Rejected on 10-10: the department's clock stops; nothing runs until redispatch.
    store
        .act_at(id, handler(&lead), ActionKind::Reject { reasons: "非本部门职责".into() }, ms("2025-10-10 09:00"))
        .unwrap();
    let incident = store.incident(id, at("2025-10-20 09:00")).unwrap();
    assert_eq!(incident.phase, Phase::Accepted);
    let frozen = incident.deadline.unwrap();
    assert!(!frozen.overdue && !frozen.due_soon);
    assert_eq!(store.incidents(&overdue, at("2025-10-20 09:00")).unwrap().len(), 0);
}

#[test]
fn queries_by_phase_department_class_reporter_and_date_with_counts() {
    let device = device();
    let store = &device.store;
    let (dispatched_id, lead) = dispatched(store);
    let (_, _, class) = five_day_item(store);
    let spot = store.report_incident_at(new_incident(store, "邻里噪声"), worker(), ms("2025-08-05 09:00")).unwrap();
    store
        .act_at(
            spot,
            worker(),
            ActionKind::ResolveOnSpot {
                note: "已劝导".into(), evidence: vec![format!("sha256:{}", "cd".repeat(32))]
            },
            ms("2025-08-05 09:30"),
        )
        .unwrap();
    let other = Actor { person: "w9".into(), ..worker() };
    let waiting = store.report_incident_at(new_incident(store, "占道经营"), other, ms("2025-10-02 09:00")).unwrap();
    let now = at("2025-10-05 12:00");

    let by_phase = |phases: Vec<Phase>| {
        store
            .incidents(&IncidentFilter { phases, ..Default::default() }, now)
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(by_phase(vec![Phase::Dispatched]), vec![dispatched_id]);
    assert_eq!(by_phase(vec![Phase::ResolvedOnSpot, Phase::Reported]), vec![waiting, spot]);

    let with_lead = IncidentFilter { department: Some(dept(&lead)), ..Default::default() };
    assert_eq!(store.incidents(&with_lead, now).unwrap().len(), 1);
    let of_class = IncidentFilter { class: Some(class), ..Default::default() };
    assert_eq!(store.incidents(&of_class, now).unwrap().len(), 3);
    let by_w9 = IncidentFilter { reporter: Some("w9".into()), ..Default::default() };
    assert_eq!(store.incidents(&by_w9, now).unwrap().len(), 1);
    let in_october = IncidentFilter {
        reported_from: Some(date("2025-10-01")),
        reported_until: Some(date("2025-10-31")),
        ..Default::default()
    };
    assert_eq!(store.incidents(&in_october, now).unwrap().len(), 1);
    let in_grid = IncidentFilter { grids: vec![grid_code()], ..Default::default() };
    assert_eq!(store.incidents(&in_grid, now).unwrap().len(), 3);

    let stats = store.incident_stats(&IncidentFilter::default(), now).unwrap();
    assert_eq!(stats.total, 3);
    assert_eq!(stats.by_class.get(class.code()), Some(&3));
    assert_eq!(stats.by_phase.get("dispatched"), Some(&1));
    assert_eq!(stats.by_month.get("2025-09"), Some(&1));
    assert_eq!(stats.by_month.get("2025-08"), Some(&1));
    assert_eq!(stats.n_resolved_on_spot, 1);
    assert_eq!(stats.on_the_spot_rate, Some(1.0 / 3.0));
    assert_eq!(stats.on_time_rate, None, "nothing completed yet");

    store
        .act_at(
            dispatched_id,
            handler(&lead),
            ActionKind::Complete { feedback: String::new(), evidence: vec![] },
            ms("2025-10-20 09:00"),
        )
        .unwrap();
    let late = store.incident_stats(&IncidentFilter::default(), at("2025-10-21 09:00")).unwrap();
    assert_eq!((late.n_completed, late.n_completed_on_time, late.on_time_rate), (1, 0, Some(0.0)));
}

#[test]
fn rebuilding_the_projection_gives_the_same_incidents() {
    let device = device();
    let store = &device.store;
    let (id, lead) = dispatched(store);
    store.act(id, handler(&lead), ActionKind::Complete { feedback: String::new(), evidence: vec![] }).unwrap();
    let now = at("2025-10-20 09:00");
    let before = (store.incidents(&IncidentFilter::default(), now).unwrap(), store.incident_timeline(id).unwrap());
    store.rebuild_projection().unwrap();
    let after = (store.incidents(&IncidentFilter::default(), now).unwrap(), store.incident_timeline(id).unwrap());
    assert_eq!(before, after);
}

#[test]
fn two_devices_merge_one_incident_and_derive_the_same_state() {
    let a = device();
    let b = device();
    let (id, lead) = dispatched(&a.store);
    let doc = DocId::incident(id);
    let all = a.store.changes_since(&doc, &[]).unwrap();
    b.store.apply_changes(&doc, &all).unwrap();
    let common = a.store.heads(&doc).unwrap();
    assert_eq!(b.store.heads(&doc).unwrap(), common);
    assert_eq!(b.store.incident(id, at("2025-10-01 09:00")).unwrap().phase, Phase::Dispatched);

    // Offline on both: the department completes on A while the center redispatches on B.
    let complete = ActionKind::Complete { feedback: "已处理".into(), evidence: vec![] };
    a.store.act_at(id, handler(&lead), complete, ms("2025-10-09 10:00")).unwrap();
    let redispatch = ActionKind::Redispatch { lead: dept("urban_management"), co_handlers: vec![] };
    b.store.act_at(id, center(), redispatch, ms("2025-10-09 11:00")).unwrap();
    let to_b = a.store.changes_since(&doc, &common).unwrap();
    let to_a = b.store.changes_since(&doc, &common).unwrap();
    b.store.apply_changes(&doc, &to_b).unwrap();
    a.store.apply_changes(&doc, &to_a).unwrap();

    let now = at("2025-10-10 09:00");
    assert_eq!(a.store.incident(id, now).unwrap(), b.store.incident(id, now).unwrap());
    assert_eq!(a.store.incident_timeline(id).unwrap(), b.store.incident_timeline(id).unwrap());
    let marks: Vec<bool> =
        a.store.incident_timeline(id).unwrap().iter().map(|entry| entry.mark == Mark::Applied).collect();
    assert_eq!(marks.iter().filter(|applied| !**applied).count(), 1, "one of the two lost the race: {marks:?}");
}

#[test]
fn each_department_has_its_own_clock() {
    let device = device();
    let store = &device.store;
    let (_, lead, _) = five_day_item(store);
    let co = if lead == "urban_management" { "public_security" } else { "urban_management" };
    let id = store.report_incident_at(new_incident(store, "道路积水"), worker(), ms("2025-09-29 09:00")).unwrap();
    store.act_at(id, center(), ActionKind::Accept, ms("2025-09-30 09:00")).unwrap();
    let dispatch = ActionKind::Dispatch { lead: dept(&lead), co_handlers: vec![dept(co)] };
    store.act_at(id, center(), dispatch, ms("2025-09-30 10:00")).unwrap();
    store.act_at(id, handler(co), ActionKind::Reject { reasons: "无职责".into() }, ms("2025-10-09 09:00")).unwrap();
    let clocks = store.incident_department_deadlines(id, at("2025-10-20 09:00")).unwrap();
    assert_eq!(clocks.len(), 2);
    assert!(clocks[0].lead && clocks[0].status.overdue, "the lead's clock runs on past 10-14");
    assert!(!clocks[1].lead && !clocks[1].status.overdue, "the co-handler's stopped on 10-09");
    assert_eq!(clocks[1].stop.as_deref(), Some("rejected"));
    assert_eq!(clocks[1].status.working_days_used, 1, "09-30 to 10-09: one working day");
}

/// Regressions from review: multi-line descriptions, refusals citing the catalog, the
/// readable timeline's details, and the error for an incident this device does not hold.
#[test]
fn descriptions_refusals_details_and_unknown_incidents() {
    let device = device();
    let store = &device.store;
    let mut multi_line = new_incident(store, "井盖缺失");
    multi_line.description = "路口井盖缺失\n已设置警示".into();
    let id = store.report_incident(multi_line, worker()).unwrap();

    let admitted = five_day_item(store).0;
    let cite =
        |code: &str| ActionKind::Refuse { catalog_reference: code.into(), reason: "不属于网格事项".into() };
    let error = store.act(id, center(), cite(&admitted)).unwrap_err();
    assert!(matches!(&error, Error::Invalid(invalid) if invalid.field == "catalog_reference"), "{error}");
    let not_admitted = store.catalog().items().find(|item| !item.admitted).unwrap().code.clone();
    assert_eq!(store.act(id, center(), cite(&not_admitted)).unwrap(), Mark::Applied);
    let timeline = store.incident_timeline(id).unwrap();
    assert!(timeline[1].to_string().contains(&not_admitted), "{}", timeline[1]);

    let (dispatched_id, lead) = dispatched(store);
    let line = store.incident_timeline(dispatched_id).unwrap()[2].to_string();
    assert!(line.contains(&format!("→ {lead}")), "{line}");

    let unknown = IncidentId::new();
    let error = store.changes_since(&DocId::incident(unknown), &[]).unwrap_err();
    assert!(matches!(error, Error::UnknownIncident { incident } if incident == unknown), "{error}");
    // Regression: the timeline of an unknown incident locked the reader twice (a hang).
    let error = store.incident_timeline(unknown).unwrap_err();
    assert!(matches!(error, Error::UnknownIncident { incident } if incident == unknown), "{error}");
}
