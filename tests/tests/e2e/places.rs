//! Grid boundaries: the operator imports them on the server, they travel to devices in the
//! reference document, and a device locates points by them, offline.

use wangge_core::model::{GridCode, Wgs84};
use wangge_core::place::boundaries::{Located, PartitionIssue, import_geojson};
use wangge_core::reference;
use wangge_server::Storage;
use wangge_tests::{TestDevice, TestServer};

/// Two communities of 江门市蓬江区 tiled exactly (see `core/src/place/boundaries/testdata.rs`
/// for the drawing): an L, an inverted L with a hole for a school grid, a U whose notch is a
/// compound grid; next door two rectangles, one around a pond that no grid covers.
const JIANGMEN: &str = include_str!("../../../core/src/place/testdata/jiangmen.geojson");

const L_GRID: &str = "440703001001001";
const HOLED_GRID: &str = "440703001001002";
const SCHOOL_GRID: &str = "440703001001004";
const POND_GRID: &str = "440703001002001";

/// The point `x` metres east and `y` metres north of the fixture's corner (113.08° E,
/// 22.58° N), as the fixture was drawn.
fn at(x: f64, y: f64) -> Wgs84 {
    let metres_per_degree = 6_371_008.8 * std::f64::consts::PI / 180.0;
    let lat = 22.58 + y / metres_per_degree;
    let lng = 113.08 + x / (metres_per_degree * 22.58_f64.to_radians().cos());
    Wgs84::new(lat, lng).unwrap()
}

fn in_grid(located: &Located) -> &str {
    match located {
        Located::Grid { grid, .. } => grid.as_str(),
        other => panic!("expected a grid, got {other:?}"),
    }
}

/// The server's reference document as it stands.
fn published(server: &TestServer) -> automerge::AutoCommit {
    let snapshot = server.service.storage().snapshot(&reference::doc_id().to_string()).unwrap().unwrap();
    automerge::AutoCommit::load(&snapshot).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_locates_points_by_the_boundaries_the_server_imported() {
    let server = TestServer::start().await;
    let report = server.service.import_boundaries(JIANGMEN, false).unwrap();
    assert!(report.written && report.issues.is_empty(), "{:?}", report.issues);
    assert_eq!(report.grids.len(), 7);
    assert!(report.grids.iter().all(|grid| grid.new));

    let l_grid = GridCode::parse_default(L_GRID).unwrap();
    let device = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&l_grid])).await;
    device.sync().await;
    let grids = device.store.grids().unwrap();
    assert_eq!(grids.iter().find(|grid| grid.code == l_grid).unwrap().name, "长堤社区第一网格");

    // Offline from here on: every answer comes from the reference data on the device.
    let located = device.store.locate(at(100.0, 500.0)).unwrap();
    assert_eq!(
        located,
        Located::Grid { grid: l_grid.clone(), community: "440703001001".into(), township: "440703001".into() }
    );
    // The notch of the L (inside its bounding box) belongs to the next grid; a grid the
    // worker is not assigned to is located all the same.
    assert_eq!(in_grid(&device.store.locate(at(300.0, 400.0)).unwrap()), HOLED_GRID);
    assert_eq!(in_grid(&device.store.locate(at(500.0, 350.0)).unwrap()), SCHOOL_GRID);
    let Located::Outside { nearest_grid, distance_m } = device.store.locate(at(1050.0, 250.0)).unwrap() else {
        panic!("the pond is in no grid")
    };
    assert_eq!(nearest_grid.as_str(), POND_GRID);
    assert!((distance_m - 50.0).abs() < 0.5, "{distance_m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redrawn_boundaries_reach_the_device_with_its_next_sync() {
    let server = TestServer::start().await;
    server.service.import_boundaries(JIANGMEN, false).unwrap();
    let l_grid = GridCode::parse_default(L_GRID).unwrap();
    let device = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&l_grid])).await;
    device.sync().await;
    let notch = at(300.0, 400.0);
    assert_eq!(in_grid(&device.store.locate(notch).unwrap()), HOLED_GRID);

    // The two grids swap the notch: the L becomes a rectangle, 002 loses its western arm.
    let mut file: serde_json::Value = serde_json::from_str(JIANGMEN).unwrap();
    let corner = |x: f64, y: f64| {
        let point = at(x, y);
        serde_json::json!([(point.lng() * 1e7).round() / 1e7, (point.lat() * 1e7).round() / 1e7])
    };
    let rectangle = |x0: f64, y0: f64, x1: f64, y1: f64| {
        serde_json::json!([[corner(x0, y0), corner(x1, y0), corner(x1, y1), corner(x0, y1), corner(x0, y0)]])
    };
    file["features"][0]["geometry"]["coordinates"] = rectangle(0.0, 0.0, 400.0, 600.0);
    let mut holed = rectangle(400.0, 0.0, 650.0, 600.0);
    holed.as_array_mut().unwrap().push(file["features"][1]["geometry"]["coordinates"][1].clone());
    file["features"][1]["geometry"]["coordinates"] = holed;
    let report = server.service.import_boundaries(&file.to_string(), false).unwrap();
    assert!(report.written && report.issues.is_empty(), "{:?}", report.issues);
    assert!(report.grids.iter().all(|grid| !grid.new));

    device.sync().await;
    assert_eq!(in_grid(&device.store.locate(notch).unwrap()), L_GRID);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_whose_grids_overlap_is_refused_unless_the_operator_accepts_it() {
    let server = TestServer::start().await;
    server.service.import_boundaries(JIANGMEN, false).unwrap();
    let heads = published(&server).get_heads();

    // A new grid drawn over the whole L, in a file of its own: checked against the L the
    // server already has.
    let mut file: serde_json::Value = serde_json::from_str(JIANGMEN).unwrap();
    let mut copy = file["features"][0].clone();
    copy["properties"]["code"] = "440703001001009".into();
    file["features"] = serde_json::json!([copy]);
    let file = file.to_string();
    let report = server.service.import_boundaries(&file, false).unwrap();
    assert!(!report.written);
    let [PartitionIssue::Overlap { a, b, area_m2 }] = report.issues.as_slice() else { panic!("{:?}", report.issues) };
    assert_eq!((a.as_str(), b.as_str()), (L_GRID, "440703001001009"));
    assert!((area_m2 - 170_000.0).abs() < 1_700.0, "{area_m2}");
    assert!(server.service.storage().grid("440703001001009").unwrap().is_none());
    assert_eq!(published(&server).get_heads(), heads, "nothing was published");

    let report = server.service.import_boundaries(&file, true).unwrap();
    assert!(report.written && report.issues.len() == 1);
    assert!(server.service.storage().grid("440703001001009").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_keeps_the_supervision_phone_and_a_repeat_publishes_nothing() {
    let server = TestServer::start().await;
    let l_grid = server.grid(L_GRID, "长堤社区1网格");
    server
        .service
        .update_reference(|doc| {
            let mut meta = reference::read(doc)?.grids.into_iter().find(|(code, _)| code == L_GRID).unwrap().1;
            meta.supervision_phone = Some("0750-3123456".into());
            reference::set_grid(doc, l_grid.as_str(), &meta)
        })
        .unwrap();
    let report = server.service.import_boundaries(JIANGMEN, false).unwrap();
    assert!(!report.grids[0].new && report.grids[1].new);

    let doc = published(&server);
    let grids = reference::read(&doc).unwrap().grids;
    let (_, meta) = grids.iter().find(|(code, _)| code == L_GRID).unwrap();
    assert_eq!(meta.name, "长堤社区第一网格");
    assert_eq!(meta.supervision_phone.as_deref(), Some("0750-3123456"));
    let expected = import_geojson(JIANGMEN).unwrap();
    assert_eq!(meta.boundary.as_deref(), Some(expected[0].geometry_json().as_str()));

    let heads = published(&server).get_heads();
    server.service.import_boundaries(JIANGMEN, false).unwrap();
    assert_eq!(published(&server).get_heads(), heads);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_boundaries_is_refused_saying_what_is_wrong() {
    let server = TestServer::start().await;
    let error = server
        .service
        .import_boundaries(
            r#"{"type": "FeatureCollection", "features": [{"type": "Feature",
        "properties": {"code": "440703001001001", "name": "一网格", "kind": "community"},
        "geometry": {"type": "Point", "coordinates": [113.08, 22.58]}}]}"#,
            false,
        )
        .unwrap_err();
    assert_eq!(error.code(), "malformed");
    let message = error.to_string();
    assert!(
        message.contains("feature 0 (440703001001001): the geometry is a `Point`, not a Polygon or MultiPolygon"),
        "{message}"
    );
    assert!(!message.contains("113.08"), "{message}");
}
