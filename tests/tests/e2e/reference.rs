//! The server's reference document: catalog, calendar and grid metadata reach every device.

use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_tests::{TestDevice, TestServer};

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_calendar_published_by_the_operator_reaches_the_devices() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let device = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    device.sync().await;
    assert!(!device.store.calendar().is_published(2027));
    assert!(device.store.catalog().items().count() >= 40, "the server's catalog arrived");

    // 2027's schedule is published: the server adds it (here: New Year's Day only).
    let mut json: serde_json::Value = serde_json::from_str(wangge_core::calendar::CHINA_JSON).unwrap();
    json["years"]["2027"] = serde_json::json!({ "holidays": ["2027-01-01"], "workdays": [] });
    server.service.set_calendar(&json.to_string()).unwrap();
    device.sync().await;
    assert!(device.store.calendar().is_published(2027));
    let new_year = chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
    let answer = device.store.calendar().is_working_day(new_year);
    assert!(!answer.value && !answer.estimated);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grid_assigned_after_enrollment_arrives_with_its_name() {
    let server = TestServer::start().await;
    let first = server.grid("440703001001001", "长堤社区第1网格");
    let later = server.grid("440703001001002", "长堤社区第2网格");
    let other = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&later])).await;
    let records =
        generate_grid(&later, &DemoOptions { households: 5, organizations: 1, components: 1, ..Default::default() });
    other.store.import(&later, &records).unwrap();
    other.sync().await;

    let leader = TestDevice::enrolled(&server, &server.worker("l1", "grid_leader", None, &[&first])).await;
    leader.sync().await;
    server
        .service
        .create_worker(&wangge_server::Worker {
            person: "l1".into(),
            role: "grid_leader".into(),
            department: None,
            grids: vec![first.as_str().into(), later.as_str().into()],
        })
        .unwrap();
    leader.sync().await;
    let grids = leader.store.grids().unwrap();
    let added = grids.iter().find(|grid| grid.code == later).expect("the later grid is on the device");
    assert_eq!(added.name, "长堤社区第2网格");
    assert_eq!(dump(&leader.store, REGISTER).len(), dump(&other.store, REGISTER).len());
    assert_eq!(dump(&leader.store, SENSITIVE), dump(&other.store, SENSITIVE));
}

/// A township center is given its area, not a list: every grid within it, including one
/// created after enrollment, and none outside.
#[tokio::test(flavor = "multi_thread")]
async fn a_center_sees_every_grid_of_its_jurisdiction() {
    let server = TestServer::start().await;
    let inside = server.grid("440703001001001", "长堤社区第1网格");
    let outside = server.grid("440703002001001", "棠下村第1网格");
    let code = server.service.issue_enrollment_code("c1").err();
    assert!(code.is_some(), "no worker yet");
    let center =
        TestDevice::enrolled(&server, &server.worker_of_areas("c1", "center_staff_township", None, &["440703001"]))
            .await;
    center.sync().await;
    let later = server.grid("440703001002001", "海旁社区第1网格");
    center.sync().await;
    let grids: Vec<GridCode> = center.store.grids().unwrap().into_iter().map(|grid| grid.code).collect();
    assert!(grids.contains(&inside) && grids.contains(&later), "{grids:?}");
    assert!(!grids.contains(&outside), "{grids:?}");
}

use wangge_core::model::GridCode;
