//! Field work through the store: visits (one raising an incident), check-ins, patrols with
//! their tracks, coverage and a worker's month; two devices merging a month's activity.

use chrono::TimeZone;
use wangge_core::activity::doc as activity_doc;
use wangge_core::activity::track::{self, TrackPoint};
use wangge_core::activity::{NewVisit, VisitPurpose, VisitTarget};
use wangge_core::calendar::CHINA_TIME;
use wangge_core::incident::Actor;
use wangge_core::incident::roles::Role;
use wangge_core::{Error, NewIncident, Store};

use super::*;

fn worker(person: &str) -> Actor {
    Actor { person: person.into(), role: Role::FullTimeWorker, department: None }
}

fn ms(y: i32, m: u32, d: u32, h: u32) -> i64 {
    CHINA_TIME.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp_millis()
}

fn visit(household: HouseholdId, time_ms: i64) -> NewVisit {
    NewVisit {
        target: VisitTarget::Household(household),
        time_ms,
        location: Some(Wgs84::new(22.5912, 113.0815).unwrap()),
        purpose: VisitPurpose::Care,
        findings: "独居老人身体良好，家中燃气灶老化".into(),
        follow_up: Some("联系燃气公司更换".into()),
    }
}

/// A walk from one building to near another, one point per 5 s.
fn walk_between(from: Wgs84, to: Wgs84, start_ms: i64) -> Vec<TrackPoint> {
    let n = 60;
    (0..=n)
        .map(|i| {
            let t = f64::from(i) / f64::from(n);
            TrackPoint {
                time_ms: start_ms + i64::from(i) * 5_000,
                lat: from.lat() + (to.lat() - from.lat()) * t,
                lng: from.lng() + (to.lng() - from.lng()) * t,
            }
        })
        .collect()
}

fn building_at(store: &Store, name: &str, lat: f64, lng: f64) -> BuildingId {
    store
        .add_building(&grid_code(), NewBuilding { location: Some(Wgs84::new(lat, lng).unwrap()), ..new_building(name) })
        .unwrap()
}

#[test]
fn a_visit_is_recorded_in_the_month_of_its_time_and_read_back() {
    let device = device();
    let (_, household, _) = family(&device.store);
    let time = ms(2026, 11, 3, 10);
    let id = device.store.record_visit(&grid_code(), visit(household, time), &worker("w1")).unwrap();

    let visits = device.store.visits(&grid_code(), ms(2026, 11, 1, 0), ms(2026, 12, 1, 0)).unwrap();
    assert_eq!(visits.len(), 1);
    let read = &visits[0];
    assert_eq!((read.id.as_str(), read.worker.as_str(), read.time_ms), (id.as_str(), "w1", time));
    assert_eq!(read.target, VisitTarget::Household(household));
    assert_eq!(read.purpose, VisitPurpose::Care);
    assert_eq!(read.follow_up.as_deref(), Some("联系燃气公司更换"));
    assert_eq!(read.incident, None);
    // The month's document exists, keyed by grid and month.
    assert!(device.store.heads(&activity_doc::doc_id(&grid_code(), "2026-11")).is_ok());
    assert!(device.store.heads(&activity_doc::doc_id(&grid_code(), "2026-12")).is_err());
    // Nothing in October.
    assert!(device.store.visits(&grid_code(), ms(2026, 10, 1, 0), ms(2026, 11, 1, 0)).unwrap().is_empty());
}

#[test]
fn a_visit_can_raise_an_incident_in_one_step() {
    let device = device();
    let (_, household, _) = family(&device.store);
    let item = device.store.catalog().admitted_items().next().unwrap().code.clone();
    let incident = NewIncident {
        grid: grid_code(),
        catalog_item: item,
        title: "燃气灶老化".into(),
        description: String::new(),
        location: None,
        residents: vec![],
        households: vec![household],
        organizations: vec![],
        photos: vec![],
        reported_by_resident: None,
    };
    let (visit_id, incident_id) = device
        .store
        .record_visit_with_incident(&grid_code(), visit(household, ms(2026, 11, 3, 10)), incident, &worker("w1"))
        .unwrap();
    let visits = device.store.visits(&grid_code(), 0, i64::MAX).unwrap();
    assert_eq!((visits[0].id.as_str(), visits[0].incident), (visit_id.as_str(), Some(incident_id)));
    assert_eq!(
        device.store.incident(incident_id, CHINA_TIME.timestamp_millis_opt(0).unwrap()).unwrap().title,
        "燃气灶老化"
    );
}

#[test]
fn a_bad_visit_stores_nothing_not_even_its_incident() {
    let device = device();
    let (_, household, _) = family(&device.store);
    let unknown = NewVisit { target: VisitTarget::Household(HouseholdId::new()), ..visit(household, 0) };
    assert!(matches!(device.store.record_visit(&grid_code(), unknown, &worker("w1")), Err(Error::NotFound { .. })));
    let too_long = NewVisit { findings: "很".repeat(2001), ..visit(household, 0) };
    let item = device.store.catalog().admitted_items().next().unwrap().code.clone();
    let incident = NewIncident {
        grid: grid_code(),
        catalog_item: item,
        title: "x".into(),
        description: String::new(),
        location: None,
        residents: vec![],
        households: vec![],
        organizations: vec![],
        photos: vec![],
        reported_by_resident: None,
    };
    let result = device.store.record_visit_with_incident(&grid_code(), too_long, incident, &worker("w1"));
    assert!(matches!(result, Err(Error::Invalid(ref invalid)) if invalid.field == "findings"));
    assert!(device.store.visits(&grid_code(), 0, i64::MAX).unwrap().is_empty());
    assert!(
        device.store.incidents(&Default::default(), CHINA_TIME.timestamp_millis_opt(0).unwrap()).unwrap().is_empty()
    );
    let other = GridCode::parse_default("440703001001009").unwrap();
    assert!(matches!(
        device.store.check_in(&other, Wgs84::new(22.59, 113.08).unwrap(), 0, &worker("w1")),
        Err(Error::UnknownGrid { .. })
    ));
}

#[test]
fn a_patrol_records_its_summary_and_the_buildings_it_passed() {
    let device = device();
    let a = building_at(&device.store, "1栋", 22.5900, 113.0800);
    let b = building_at(&device.store, "2栋", 22.5920, 113.0830);
    let far = building_at(&device.store, "9栋", 22.6100, 113.1000);
    let points = walk_between(
        Wgs84::new(22.5900, 113.0801).unwrap(),
        Wgs84::new(22.5920, 113.0829).unwrap(),
        ms(2026, 11, 5, 9),
    );
    let blob = track::encode(&points).unwrap();
    let hash = format!("sha256:{}", "ab".repeat(32));
    let patrol = device.store.record_patrol(&grid_code(), &points, &hash, &worker("w1")).unwrap();
    assert_eq!(patrol.summary.n_points, 61);
    assert_eq!(patrol.summary.duration_s(), 300);
    assert!((300.0..400.0).contains(&patrol.summary.distance_m), "{}", patrol.summary.distance_m);
    let mut passed = patrol.buildings_passed.clone();
    passed.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(passed, expected);
    assert!(!patrol.buildings_passed.contains(&far));
    assert_eq!(track::decode(&blob).unwrap().len(), 61);

    let read = device.store.patrols(&grid_code(), 0, i64::MAX).unwrap();
    assert_eq!(read, vec![patrol]);

    // Coverage: 2 of 3 buildings passed this month; nothing the month before.
    let coverage = device.store.coverage(&grid_code(), ms(2026, 11, 1, 0), ms(2026, 12, 1, 0), None).unwrap();
    assert_eq!((coverage.n_buildings, coverage.n_covered), (3, 2));
    assert!((coverage.share.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(device.store.coverage(&grid_code(), 0, ms(2026, 11, 1, 0), None).unwrap().n_covered, 0);
    assert_eq!(device.store.coverage(&grid_code(), 0, i64::MAX, Some("w2")).unwrap().n_covered, 0);
}

#[test]
fn a_workers_month_counts_visits_check_in_days_patrols_and_coverage() {
    let device = device();
    let (building, household, _) = family(&device.store);
    let _other = building_at(&device.store, "5栋", 22.5950, 113.0850);
    let me = worker("w1");
    device.store.record_visit(&grid_code(), visit(household, ms(2026, 11, 3, 10)), &me).unwrap();
    device.store.record_visit(&grid_code(), visit(household, ms(2026, 11, 4, 10)), &me).unwrap();
    device.store.record_visit(&grid_code(), visit(household, ms(2026, 10, 31, 10)), &me).unwrap();
    device.store.record_visit(&grid_code(), visit(household, ms(2026, 11, 4, 11)), &worker("w2")).unwrap();
    let here = Wgs84::new(22.5912, 113.0815).unwrap();
    for (day, hour) in [(3, 8), (3, 17), (4, 8), (30, 8)] {
        device.store.check_in(&grid_code(), here, ms(2026, 11, day, hour), &me).unwrap();
    }
    let points = walk_between(here, Wgs84::new(22.5930, 113.0830).unwrap(), ms(2026, 11, 6, 9));
    device.store.record_patrol(&grid_code(), &points, &format!("sha256:{}", "cd".repeat(32)), &me).unwrap();

    let month = device.store.worker_month("w1", "2026-11").unwrap();
    assert_eq!(month.n_visits, 2);
    assert_eq!(month.n_check_in_days, 3);
    assert_eq!(month.n_patrols, 1);
    assert!(month.patrol_distance_m > 200.0);
    // The family's building was visited; the other one is far from the walk.
    assert_eq!(month.coverage, Some(0.5));
    let _ = building;
    assert_eq!(device.store.worker_month("w2", "2026-11").unwrap().n_visits, 1);
    assert_eq!(device.store.worker_month("w1", "2026-10").unwrap().n_visits, 1);
    assert!(device.store.worker_month("w1", "2026-13").is_err());
}

#[test]
fn two_devices_merge_a_months_activity_and_project_the_same() {
    let a = device();
    let b = device();
    let (_, household, _) = family(&a.store);
    exchange(&a.store, &b.store);
    a.store.record_visit(&grid_code(), visit(household, ms(2026, 11, 3, 10)), &worker("w1")).unwrap();
    b.store.record_visit(&grid_code(), visit(household, ms(2026, 11, 3, 11)), &worker("w2")).unwrap();
    b.store.check_in(&grid_code(), Wgs84::new(22.59, 113.08).unwrap(), ms(2026, 11, 3, 8), &worker("w2")).unwrap();

    let doc = activity_doc::doc_id(&grid_code(), "2026-11");
    let (a_heads, b_heads) = (a.store.heads(&doc).unwrap(), b.store.heads(&doc).unwrap());
    let to_b = a.store.changes_since(&doc, &b_heads).unwrap();
    let to_a = b.store.changes_since(&doc, &a_heads).unwrap();
    a.store.apply_changes(&doc, &to_a).unwrap();
    b.store.apply_changes(&doc, &to_b).unwrap();

    let all = |store: &Store| {
        let mut visits = store.visits(&grid_code(), 0, i64::MAX).unwrap();
        visits.sort_by(|x, y| x.id.cmp(&y.id));
        (visits, store.check_ins(&grid_code(), 0, i64::MAX).unwrap())
    };
    assert_eq!(all(&a.store).0.len(), 2);
    assert_eq!(all(&a.store), all(&b.store));
    // A rebuild from the documents gives the same rows.
    let before = all(&a.store);
    a.store.rebuild_projection().unwrap();
    assert_eq!(all(&a.store), before);
}

#[test]
fn a_full_view_is_recorded_with_who_what_when_and_why() {
    let device = device();
    let (_, _, resident) = family(&device.store);
    let time = ms(2026, 11, 7, 15);
    let sensitive = device.store.reveal_resident(resident, "核实低保申请", &worker("w1"), time).unwrap();
    assert!(sensitive.id_number.is_some());
    let views = device.store.full_views(&grid_code(), 0, i64::MAX).unwrap();
    assert_eq!(views.len(), 1);
    let view = &views[0];
    assert_eq!((view.worker.as_str(), view.time_ms, view.reason.as_str()), ("w1", time, "核实低保申请"));
    assert_eq!(view.record, format!("resident/{resident}"));
    assert_eq!(view.fields, vec!["id_number".to_owned(), "phone".to_owned()]);

    // A part-time worker's role may not see full values; a view needs a reason.
    let part_time = Actor { person: "p1".into(), role: Role::PartTimeWorker, department: None };
    assert!(matches!(
        device.store.reveal_resident(resident, "看看", &part_time, time),
        Err(Error::NoSensitiveAccess { .. })
    ));
    assert!(matches!(device.store.reveal_resident(resident, " ", &worker("w1"), time), Err(Error::Invalid(_))));
    assert_eq!(device.store.full_views(&grid_code(), 0, i64::MAX).unwrap().len(), 1);
}
