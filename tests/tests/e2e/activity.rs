//! Field work through the server: visits, check-ins and patrols reach the grid's workers and
//! the center, not departments; check-ins are judged against the imported boundary; the
//! server takes only a worker's own, new entries.

use wangge_core::activity::doc as activity_doc;
use wangge_core::activity::track::{self, TrackPoint};
use wangge_core::activity::{NewVisit, VisitPurpose, VisitTarget};
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::incident::Actor;
use wangge_core::incident::roles::Role;
use wangge_core::model::{GridCode, Wgs84};
use wangge_core::sync::wire;
use wangge_tests::{TestDevice, TestServer};

const JIANGMEN: &str = include_str!("../../../core/src/place/testdata/jiangmen.geojson");
const L_GRID: &str = "440703001001001";

/// `x` metres east and `y` north of the fixture's corner (as in places.rs).
fn at(x: f64, y: f64) -> Wgs84 {
    let metres_per_degree = 6_371_008.8 * std::f64::consts::PI / 180.0;
    Wgs84::new(22.58 + y / metres_per_degree, 113.08 + x / (metres_per_degree * 22.58_f64.to_radians().cos())).unwrap()
}

fn actor(person: &str) -> Actor {
    Actor { person: person.into(), role: Role::FullTimeWorker, department: None }
}

const NOV_3: i64 = 1_793_671_200_000; // 2026-11-03 10:00 China time

#[tokio::test(flavor = "multi_thread")]
async fn field_work_reaches_the_grid_and_the_center_and_check_ins_are_judged_by_the_boundary() {
    let server = TestServer::start().await;
    assert!(server.service.import_boundaries(JIANGMEN, false).unwrap().written);
    let grid = GridCode::parse_default(L_GRID).unwrap();
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    // A township center is given its area: every grid within it.
    let center =
        TestDevice::enrolled(&server, &server.worker_of_areas("c1", "center_staff_township", None, &["440703001"]))
            .await;
    let handler =
        TestDevice::enrolled(&server, &server.worker("h1", "department_handler", Some("urban_management"), &[])).await;
    worker.sync().await;
    let records =
        generate_grid(&grid, &DemoOptions { households: 5, organizations: 1, components: 1, ..Default::default() });
    worker.store.import(&grid, &records).unwrap();
    let household = records.households[0].0;

    let visit = NewVisit {
        target: VisitTarget::Household(household),
        time_ms: NOV_3,
        location: Some(at(100.0, 500.0)),
        purpose: VisitPurpose::Routine,
        findings: "家中无异常".into(),
        follow_up: None,
    };
    let me = actor("w1");
    worker.store.record_visit(&grid, visit, &me).unwrap();
    worker.store.check_in(&grid, at(100.0, 500.0), NOV_3, &me).unwrap(); // inside the L
    worker.store.check_in(&grid, at(100.0, 1_500.0), NOV_3 + 60_000, &me).unwrap(); // well north of it
    let points: Vec<TrackPoint> = (0..100)
        .map(|i| {
            let p = at(50.0 + f64::from(i) * 5.0, 300.0);
            TrackPoint { time_ms: NOV_3 + i64::from(i) * 5_000, lat: p.lat(), lng: p.lng() }
        })
        .collect();
    let hash = format!("sha256:{}", "ef".repeat(32));
    worker.store.record_patrol(&grid, &points, &hash, &me).unwrap();
    assert!(track::encode(&points).unwrap().len() < 2_000);
    worker.sync().await;
    assert_eq!(worker.store.pending_changes().unwrap(), 0);

    center.sync().await;
    handler.sync().await;
    let month = (NOV_3 - 10 * 86_400_000, NOV_3 + 10 * 86_400_000);
    assert_eq!(center.store.visits(&grid, month.0, month.1).unwrap().len(), 1);
    assert_eq!(center.store.patrols(&grid, month.0, month.1).unwrap().len(), 1);
    let mut check_ins = center.store.check_ins(&grid, month.0, month.1).unwrap();
    check_ins.sort_by_key(|check_in| check_in.time_ms);
    assert_eq!(check_ins.iter().map(|c| c.inside_grid).collect::<Vec<_>>(), vec![Some(true), Some(false)]);
    assert_eq!(check_ins[0].distance_to_grid_m, None);
    let outside = check_ins[1].distance_to_grid_m.unwrap();
    assert!(outside > 50.0, "{outside}");
    let figures = center.store.worker_month("w1", "2026-11").unwrap();
    assert_eq!(
        (figures.n_visits, figures.n_check_in_days, figures.n_check_ins_outside, figures.n_patrols),
        (1, 1, 1, 1)
    );

    // A view of full values is audited, and the audit reaches the center but not a
    // part-time worker of the grid (it would tell what the sensitive data keeps from them).
    let part_time = TestDevice::enrolled(&server, &server.worker("p1", "part_time_worker", None, &[&grid])).await;
    let resident = records.residents[0].0;
    worker.store.reveal_resident(resident, "核实低保申请", &me, NOV_3).unwrap();
    worker.sync().await;
    center.sync().await;
    part_time.sync().await;
    assert_eq!(center.store.full_views(&grid, 0, i64::MAX).unwrap().len(), 1);
    assert!(part_time.store.full_views(&grid, 0, i64::MAX).unwrap().is_empty());
    assert_eq!(part_time.store.visits(&grid, 0, i64::MAX).unwrap().len(), 1);

    // A department does not receive field work.
    let activity = activity_doc::doc_id(&grid, "2026-11");
    assert!(handler.store.heads(&activity).is_err());
    assert!(center.store.heads(&activity).is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_takes_only_a_workers_own_new_entries() {
    let server = TestServer::start().await;
    let grid = server.grid(L_GRID, "长堤社区第1网格");
    let w1 = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let w2 = TestDevice::enrolled(&server, &server.worker("w2", "part_time_worker", None, &[&grid])).await;
    w1.sync().await;
    w2.sync().await;

    // A device that writes an entry in another worker's name is refused, and nothing of it
    // is stored; its own check-ins go through.
    w2.store.check_in(&grid, Wgs84::new(22.59, 113.08).unwrap(), NOV_3, &actor("w1")).unwrap();
    let round = w2.store.begin_sync(wire::DEFAULT_PULL_BUDGET).unwrap();
    let response = server.post_sync(&w2.store.sync_token().unwrap().unwrap(), &round.request).await;
    assert_eq!(response.status(), 403);
    let activity = activity_doc::doc_id(&grid, "2026-11");
    assert!(wangge_server::Storage::snapshot(server.service.storage(), &activity.to_string()).unwrap().is_none());

    let own = TestDevice::enrolled(&server, &server.worker("w3", "part_time_worker", None, &[&grid])).await;
    own.sync().await;
    own.store.check_in(&grid, Wgs84::new(22.59, 113.08).unwrap(), NOV_3, &actor("w3")).unwrap();
    own.sync().await;
    assert_eq!(own.store.pending_changes().unwrap(), 0);
    w1.sync().await;
    assert_eq!(w1.store.check_ins(&grid, 0, i64::MAX).unwrap().len(), 1);

    // An activity key that is not <grid>:<YYYY-MM> is refused as malformed.
    let bad = wire::SyncRequest {
        pushes: vec![wire::DocChanges { doc: "activity/440703001001001:2026-13".into(), changes: vec![] }],
        ..Default::default()
    };
    assert_eq!(server.post_sync(&own.store.sync_token().unwrap().unwrap(), &bad).await.status(), 400);
}
