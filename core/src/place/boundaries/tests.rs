#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::testdata::*;
use super::*;

fn code(code: &str) -> GridCode {
    GridCode::parse_default(code).unwrap()
}

/// A square of `side` metres with its south-west corner at (x, y), as GeoJSON positions.
fn square(x: f64, y: f64, side: f64) -> Value {
    let corners = [(x, y), (x + side, y), (x + side, y + side), (x, y + side), (x, y)];
    Value::Array(corners.iter().map(|&(x, y)| position(x, y)).collect())
}

fn position(x: f64, y: f64) -> Value {
    let coord = coord(x, y);
    json!([coord.x, coord.y])
}

fn feature(code: &str, geometry: Value) -> Value {
    json!({ "type": "Feature", "properties": { "code": code, "name": "长堤社区第一网格", "kind": "community" }, "geometry": geometry })
}

fn polygon_geometry(rings: Vec<Value>) -> Value {
    json!({ "type": "Polygon", "coordinates": rings })
}

fn collection(features: Vec<Value>) -> String {
    json!({ "type": "FeatureCollection", "features": features }).to_string()
}

/// The problems found in a file with the given features, as (index, code, problem).
#[track_caller]
fn problems(features: Vec<Value>) -> Vec<(usize, Option<String>, FeatureProblem)> {
    match import_geojson(&collection(features)) {
        Err(BoundaryError::Features(errors)) => {
            errors.into_iter().map(|error| (error.index, error.code, error.problem)).collect()
        }
        other => panic!("expected problems with features, got {other:?}"),
    }
}

/// The one problem of a file with one bad feature (code 440703001001001).
#[track_caller]
fn check_problem(geometry: Value, expected: FeatureProblem) {
    let found = problems(vec![feature(L_GRID, geometry)]);
    assert_eq!(found, vec![(0, Some(L_GRID.to_owned()), expected)]);
}

#[track_caller]
fn assert_area(found_m2: f64, expected_m2: f64) {
    assert!(
        (found_m2 - expected_m2).abs() <= expected_m2 * 0.01,
        "area {found_m2:.1} m², expected {expected_m2} m² ± 1%"
    );
}

#[track_caller]
fn assert_grid(located: Located, expected: &str) {
    match located {
        Located::Grid { grid, .. } => assert_eq!(grid.as_str(), expected),
        other => panic!("expected grid {expected}, got {other:?}"),
    }
}

// ---- import and export ----

#[test]
fn the_fixture_file_imports_to_the_grids_drawn_in_code() {
    let imported = import_geojson(JIANGMEN_GEOJSON).unwrap();
    assert_eq!(imported, jiangmen());
    let kinds: Vec<GridKind> = imported.iter().map(|grid| grid.kind).collect();
    use GridKind::*;
    assert_eq!(kinds, [Community, Community, Community, Unit, Compound, Community, Community]);
    assert_eq!(imported[0].name, "长堤社区第一网格");
}

/// `UPDATE_FIXTURES=1 cargo test -p wangge-core --lib place` rewrites the file.
#[test]
fn the_fixture_file_is_what_export_writes() {
    let exported = export_geojson(&jiangmen());
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/place/testdata/jiangmen.geojson");
        std::fs::write(path, &exported).unwrap();
        return;
    }
    assert_eq!(exported, JIANGMEN_GEOJSON);
}

#[test]
fn grids_have_the_areas_they_were_drawn_with() {
    let areas: Vec<f64> = jiangmen().iter().map(GridBoundary::area_m2).collect();
    for (found, expected) in
        areas.into_iter().zip([170_000.0, 210_000.0, 110_000.0, 10_000.0, 40_000.0, 170_000.0, 180_000.0])
    {
        assert_area(found, expected);
    }
}

#[test]
fn a_round_trip_through_geojson_keeps_every_boundary() {
    let grids = jiangmen();
    let text = export_geojson(&grids);
    assert_eq!(import_geojson(&text).unwrap(), grids);
    assert_eq!(export_geojson(&import_geojson(&text).unwrap()), text);
}

#[test]
fn a_grid_in_two_parts_round_trips_as_a_multipolygon() {
    let islands = grid(
        "440703001003001",
        "荷塘海上网格",
        GridKind::Sea,
        vec![rectangle(0.0, 0.0, 300.0, 300.0), rectangle(500.0, 0.0, 800.0, 300.0)],
    );
    let text = export_geojson(std::slice::from_ref(&islands));
    assert!(text.contains("\"MultiPolygon\""));
    assert_eq!(import_geojson(&text).unwrap(), vec![islands]);
}

#[test]
fn the_geometry_json_reads_back_to_the_same_area() {
    for grid in jiangmen() {
        assert_eq!(parse_geometry_json(&grid.geometry_json()).unwrap(), grid.area);
    }
}

#[test]
fn rings_are_oriented_as_rfc_7946_asks() {
    // Drawn clockwise, with a counter-clockwise hole: imported the other way round.
    let outer: Vec<Value> = square(0.0, 0.0, 300.0).as_array().unwrap().iter().rev().cloned().collect();
    let hole = square(100.0, 100.0, 50.0);
    let imported =
        import_geojson(&collection(vec![feature(L_GRID, polygon_geometry(vec![Value::Array(outer), hole]))])).unwrap();
    let polygon = &imported[0].area.0[0];
    use geo::Winding;
    assert!(polygon.exterior().is_ccw());
    assert!(polygon.interiors()[0].is_cw());
    assert_eq!(import_geojson(&export_geojson(&imported)).unwrap(), imported);
}

#[test]
fn an_altitude_is_dropped() {
    let ring: Vec<Value> = square(0.0, 0.0, 300.0)
        .as_array()
        .unwrap()
        .iter()
        .map(|position| json!([position[0], position[1], 12.5]))
        .collect();
    let imported =
        import_geojson(&collection(vec![feature(L_GRID, polygon_geometry(vec![Value::Array(ring)]))])).unwrap();
    let expected =
        import_geojson(&collection(vec![feature(L_GRID, polygon_geometry(vec![square(0.0, 0.0, 300.0)]))])).unwrap();
    assert_eq!(imported, expected);
}

// ---- refusals ----

#[test]
fn text_that_is_not_json_is_refused_with_its_line_and_column() {
    let error = import_geojson("{\"type\": \"FeatureCollection\",\n \"features\": [}").unwrap_err();
    assert!(matches!(error, BoundaryError::Json { line: 2, reason: "a syntax error", .. }), "{error:?}");
    assert!(matches!(import_geojson("{\"type\": ").unwrap_err(), BoundaryError::Json { reason: "it ends early", .. }));
}

#[test]
fn geojson_that_is_not_a_feature_collection_is_refused() {
    let lone = feature(L_GRID, polygon_geometry(vec![square(0.0, 0.0, 300.0)])).to_string();
    assert_eq!(import_geojson(&lone).unwrap_err(), BoundaryError::NotAFeatureCollection { found: "`Feature`".into() });
    assert_eq!(
        import_geojson("[1, 2]").unwrap_err(),
        BoundaryError::NotAFeatureCollection { found: "an array".into() }
    );
    assert_eq!(import_geojson(r#"{"type": "FeatureCollection"}"#).unwrap_err(), BoundaryError::NoFeatures);
    assert_eq!(import_geojson(&collection(vec![])).unwrap_err(), BoundaryError::NoFeatures);
}

#[test]
fn missing_and_invalid_properties_are_named() {
    let geometry = polygon_geometry(vec![square(0.0, 0.0, 300.0)]);
    let with_properties =
        |properties: Value| json!({ "type": "Feature", "properties": properties, "geometry": geometry });
    let found = problems(vec![
        with_properties(json!({ "name": "一网格", "kind": "community" })),
        with_properties(json!({ "code": "44070300100100", "name": "一网格", "kind": "community" })),
        with_properties(json!({ "code": 440703001001003_u64, "name": "一网格", "kind": "community" })),
        with_properties(json!({ "code": "440703001001004", "name": "一网格", "kind": "township" })),
        with_properties(json!({ "code": "440703001001005", "name": "  ", "kind": "community" })),
        json!({ "type": "Feature", "geometry": geometry }),
    ]);
    let invalid = |property, reason: &str| FeatureProblem::InvalidProperty { property, reason: reason.into() };
    assert_eq!(
        found,
        vec![
            (0, None, FeatureProblem::MissingProperty { property: "code" }),
            (1, None, invalid("code", "must be 15 characters long, found 14")),
            (2, None, invalid("code", "must be a string")),
            (
                3,
                Some("440703001001004".into()),
                invalid("kind", "is not a grid kind: one of community, village, unit, compound, industrial_park, sea")
            ),
            (4, Some("440703001001005".into()), invalid("name", "must not be empty")),
            (5, None, FeatureProblem::MissingProperty { property: "code" }),
            (5, None, FeatureProblem::MissingProperty { property: "name" }),
            (5, None, FeatureProblem::MissingProperty { property: "kind" }),
        ]
    );
}

#[test]
fn a_geometry_that_is_not_a_polygon_is_refused() {
    check_problem(
        json!({ "type": "Point", "coordinates": [113.08, 22.58] }),
        FeatureProblem::NotAPolygon { found: "`Point`".into() },
    );
    check_problem(
        json!({ "type": "LineString", "coordinates": square(0.0, 0.0, 300.0) }),
        FeatureProblem::NotAPolygon { found: "`LineString`".into() },
    );
    check_problem(Value::Null, FeatureProblem::NoGeometry);
    check_problem(
        json!({ "type": "Polygon", "coordinates": [["113.08", "22.58"]] }),
        FeatureProblem::Coordinates { reason: "are not arrays of [longitude, latitude] numbers" },
    );
}

#[test]
fn an_unclosed_ring_is_refused() {
    let mut ring = square(0.0, 0.0, 300.0).as_array().unwrap().clone();
    ring.pop();
    ring.push(position(0.0, 150.0));
    check_problem(polygon_geometry(vec![Value::Array(ring)]), FeatureProblem::UnclosedRing { polygon: 0, ring: 0 });
}

#[test]
fn a_ring_of_three_positions_is_refused() {
    let ring = json!([position(0.0, 0.0), position(300.0, 0.0), position(0.0, 0.0)]);
    check_problem(polygon_geometry(vec![ring]), FeatureProblem::TooFewPoints { polygon: 0, ring: 0, found: 3 });
}

#[test]
fn a_self_intersecting_bow_tie_is_refused() {
    let bow_tie = json!([
        position(0.0, 0.0),
        position(300.0, 300.0),
        position(300.0, 0.0),
        position(0.0, 300.0),
        position(0.0, 0.0)
    ]);
    check_problem(
        polygon_geometry(vec![bow_tie]),
        FeatureProblem::InvalidPolygon {
            reason: "polygon at index 0 is invalid: exterior ring has a self-intersection".into(),
        },
    );
}

#[test]
fn a_hole_outside_its_shell_is_refused() {
    check_problem(
        polygon_geometry(vec![square(0.0, 0.0, 300.0), square(400.0, 0.0, 50.0)]),
        FeatureProblem::InvalidPolygon {
            reason:
                "polygon at index 0 is invalid: interior ring at index 0 is not contained within the polygon's exterior"
                    .into(),
        },
    );
}

#[test]
fn overlapping_parts_of_a_multipolygon_are_refused() {
    let geometry =
        json!({ "type": "MultiPolygon", "coordinates": [[square(0.0, 0.0, 300.0)], [square(200.0, 200.0, 300.0)]] });
    let found = problems(vec![feature(L_GRID, geometry)]);
    assert!(
        matches!(&found[..], [(0, Some(_), FeatureProblem::InvalidPolygon { reason })] if reason.contains("overlap")),
        "{found:?}"
    );
}

#[test]
fn a_ring_that_goes_out_and_back_is_refused() {
    let there_and_back = json!([position(0.0, 0.0), position(300.0, 0.0), position(300.0, 0.0), position(0.0, 0.0)]);
    check_problem(
        polygon_geometry(vec![there_and_back]),
        FeatureProblem::InvalidPolygon {
            reason: "polygon at index 0 is invalid: exterior ring must have at least 3 distinct points".into(),
        },
    );
}

#[test]
fn a_sliver_under_a_square_metre_has_no_area() {
    // A valid triangle 100 m long and about a centimetre high.
    let sliver = json!([position(0.0, 0.0), position(100.0, 0.0), position(50.0, 0.006), position(0.0, 0.0)]);
    check_problem(polygon_geometry(vec![sliver]), FeatureProblem::NoArea { polygon: 0 });
}

#[test]
fn swapped_longitude_and_latitude_are_explained() {
    let swapped: Vec<Value> = square(0.0, 0.0, 300.0).as_array().unwrap().iter().map(|p| json!([p[1], p[0]])).collect();
    check_problem(
        polygon_geometry(vec![Value::Array(swapped)]),
        FeatureProblem::Position {
            polygon: 0,
            ring: 0,
            position: 0,
            reason: "latitude out of range; GeoJSON puts the longitude first: [longitude, latitude]",
        },
    );
}

#[test]
fn a_repeated_code_is_refused_naming_the_first_feature() {
    let found = problems(vec![
        feature(L_GRID, polygon_geometry(vec![square(0.0, 0.0, 300.0)])),
        feature(U_GRID, polygon_geometry(vec![square(300.0, 0.0, 300.0)])),
        feature(L_GRID, polygon_geometry(vec![square(600.0, 0.0, 300.0)])),
    ]);
    assert_eq!(found, vec![(2, Some(L_GRID.into()), FeatureProblem::DuplicateCode { first: 0 })]);
}

#[test]
fn every_bad_feature_is_reported_not_only_the_first() {
    let found = problems(vec![
        feature(L_GRID, json!({ "type": "Point", "coordinates": [113.08, 22.58] })),
        feature(HOLED_GRID, polygon_geometry(vec![square(0.0, 0.0, 300.0)])),
        json!({ "type": "Polygon" }),
        feature(U_GRID, Value::Null),
    ]);
    let indexes: Vec<usize> = found.iter().map(|(index, ..)| *index).collect();
    assert_eq!(indexes, [0, 2, 3]);
    assert_eq!(found[1].2, FeatureProblem::NotAFeature { found: "`Polygon`".into() });
}

#[test]
fn refusals_never_quote_a_coordinate() {
    let geometries = [
        json!({ "type": "Polygon", "coordinates": [[[113.0812345, "x"]]] }),
        json!({ "type": "Polygon", "coordinates": 113.0812345 }),
        polygon_geometry(vec![json!([
            [113.0812345, 122.5812345],
            [113.0812345, 122.5812345],
            [113.0812345, 122.5812345],
            [113.0812345, 122.5812345]
        ])]),
        polygon_geometry(vec![json!([
            [213.0812345, 22.5812345],
            [113.0812345, 22.5812345],
            [113.0812345, 22.5812345],
            [213.0812345, 22.5812345]
        ])]),
    ];
    for geometry in geometries {
        let message = import_geojson(&collection(vec![feature(L_GRID, geometry)])).unwrap_err().to_string();
        assert!(!message.contains("113.08") && !message.contains("22.58"), "{message}");
    }
    let message = import_geojson("{\"type\": 113.0812345}").unwrap_err().to_string();
    assert!(!message.contains("113.08"), "{message}");
}

#[test]
fn a_boundary_debug_line_names_the_grid_but_not_where_it_is() {
    let line = format!("{:?}", l_grid());
    assert!(line.contains(L_GRID) && line.contains("n_points: 7"), "{line}");
    assert!(!line.contains("113.") && !line.contains("22.5"), "{line}");
}

#[test]
fn grids_are_read_from_reference_metadata_and_unreadable_ones_named() {
    let meta = |grid: &GridBoundary| GridMeta {
        name: grid.name.clone(),
        kind: grid.kind.code().into(),
        boundary: Some(grid.geometry_json()),
        ..GridMeta::default()
    };
    let mut entries: Vec<(String, GridMeta)> =
        jiangmen().iter().map(|grid| (grid.code.to_string(), meta(grid))).collect();
    entries.push((
        "440703001009001".into(),
        GridMeta { name: "无边界".into(), kind: "community".into(), ..GridMeta::default() },
    ));
    entries.push((
        "440703001009002".into(),
        GridMeta {
            name: "新格式".into(),
            kind: "community".into(),
            boundary: Some("{\"type\":\"Circle\"}".into()),
            ..GridMeta::default()
        },
    ));
    entries.reverse();
    let (boundaries, unreadable) = from_reference(&entries, CodeFormat::default());
    assert_eq!(boundaries, jiangmen());
    assert_eq!(unreadable, ["440703001009002"]);
}

// ---- partition ----

#[test]
fn grids_that_tile_their_communities_have_no_issues() {
    assert_eq!(check_partition(&jiangmen()), vec![]);
}

#[test]
fn an_overlap_is_reported_with_its_area() {
    // 002's bottom arm starts 20 m inside the L: 20 m × 250 m.
    let issues = check_partition(&with(jiangmen(), holed_grid(380.0)));
    let [PartitionIssue::Overlap { a, b, area_m2 }] = issues.as_slice() else { panic!("{issues:?}") };
    assert_eq!((a.as_str(), b.as_str()), (L_GRID, HOLED_GRID));
    assert_area(*area_m2, 5_000.0);
}

#[test]
fn an_overlap_across_communities_is_reported() {
    let wider = grid(
        POND_GRID,
        "白沙社区第一网格",
        GridKind::Community,
        vec![polygon(
            &[(890.0, 0.0), (1200.0, 0.0), (1200.0, 600.0), (890.0, 600.0)],
            &[&[(1000.0, 200.0), (1100.0, 200.0), (1100.0, 300.0), (1000.0, 300.0)]],
        )],
    );
    let issues = check_partition(&with(jiangmen(), wider));
    let [PartitionIssue::Overlap { a, b, area_m2 }] = issues.as_slice() else { panic!("{issues:?}") };
    assert_eq!((a.as_str(), b.as_str()), (U_GRID, POND_GRID));
    assert_area(*area_m2, 6_000.0);
}

#[test]
fn a_gap_between_grids_is_reported_with_its_area_and_neighbours() {
    // The compound starts 20 m above the U's notch floor: 100 m × 20 m enclosed by 003 and 005.
    let issues = check_partition(&with(jiangmen(), compound_grid(220.0)));
    let [PartitionIssue::Gap { community, bordering, area_m2 }] = issues.as_slice() else { panic!("{issues:?}") };
    assert_eq!(community, "440703001001");
    assert_eq!(bordering, &[code(U_GRID), code(COMPOUND_GRID)]);
    assert_area(*area_m2, 2_000.0);
    assert_eq!(
        issues[0].to_string(),
        format!("a gap of {:.0} m² in community 440703001001, between grids {U_GRID}, {COMPOUND_GRID}", area_m2)
    );
}

#[test]
fn a_hole_its_dedicated_grid_fills_only_partly_leaves_a_gap() {
    // The school is drawn 10 m inside the hole cut for it: 100² − 80² m² are nobody's.
    let issues = check_partition(&with(jiangmen(), school_grid(10.0)));
    let [PartitionIssue::Gap { bordering, area_m2, .. }] = issues.as_slice() else { panic!("{issues:?}") };
    assert_eq!(bordering, &[code(HOLED_GRID), code(SCHOOL_GRID)]);
    assert_area(*area_m2, 3_600.0);
}

#[test]
fn a_hole_no_grid_fills_is_left_out_on_purpose_not_a_gap() {
    // The pond of B001, and 002's hole once the school grid is gone.
    let without_school: Vec<GridBoundary> =
        jiangmen().into_iter().filter(|grid| grid.code.as_str() != SCHOOL_GRID).collect();
    assert_eq!(check_partition(&without_school), vec![]);
}

#[test]
fn a_dedicated_grid_drawn_inside_a_basic_grid_is_not_an_overlap() {
    let mut grids = jiangmen();
    grids.push(grid("440703001001006", "白石小区网格", GridKind::Compound, vec![rectangle(50.0, 50.0, 150.0, 150.0)]));
    assert_eq!(check_partition(&grids), vec![]);
}

#[test]
fn a_dedicated_grid_reaching_out_of_its_basic_grid_is_an_overlap() {
    let mut grids = jiangmen();
    // Half in the L, half in 002's arm.
    grids.push(grid("440703001001006", "白石小区网格", GridKind::Compound, vec![rectangle(350.0, 50.0, 450.0, 150.0)]));
    let issues = check_partition(&grids);
    let found: Vec<(&str, &str, f64)> = issues
        .iter()
        .map(|issue| match issue {
            PartitionIssue::Overlap { a, b, area_m2 } => (a.as_str(), b.as_str(), *area_m2),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(found.len(), 2, "{issues:?}");
    assert_eq!((found[0].0, found[0].1), (L_GRID, "440703001001006"));
    assert_eq!((found[1].0, found[1].1), (HOLED_GRID, "440703001001006"));
    assert_area(found[0].2, 5_000.0);
    assert_area(found[1].2, 5_000.0);
}

#[test]
fn slivers_under_a_square_metre_are_floating_noise() {
    // The U's west edge moved 1 mm into 002 (a 0.6 m² sliver) is not an overlap.
    let u = [
        (649.999, 0.0),
        (900.0, 0.0),
        (900.0, 600.0),
        (825.0, 600.0),
        (825.0, 200.0),
        (725.0, 200.0),
        (725.0, 600.0),
        (649.999, 600.0),
    ];
    let nudged = grid(U_GRID, "长堤社区第三网格", GridKind::Community, vec![polygon(&u, &[])]);
    assert_eq!(check_partition(&with(jiangmen(), nudged)), vec![]);
}

// ---- point → grid ----

fn index() -> GridIndex {
    GridIndex::new(jiangmen())
}

#[test]
fn a_point_inside_a_concave_grid_is_in_it_with_its_community_and_township() {
    assert_eq!(
        index().locate(at(100.0, 500.0)),
        Located::Grid { grid: code(L_GRID), community: "440703001001".into(), township: "440703001".into() }
    );
    assert_grid(index().locate(at(300.0, 100.0)), L_GRID);
    assert_grid(index().locate(at(1400.0, 100.0)), EAST_GRID);
}

#[test]
fn a_point_in_the_notch_of_the_l_is_not_in_the_l() {
    let l = l_grid();
    let notch = at(300.0, 400.0);
    let bbox = geo::BoundingRect::bounding_rect(&l.area).unwrap();
    assert!(geo::Intersects::intersects(&bbox, &notch.to_point()), "the notch is inside the L's bounding box");
    assert!(!l.contains(notch));
    assert_grid(index().locate(notch), HOLED_GRID);
}

#[test]
fn a_point_in_the_notch_of_the_u_is_in_the_grid_that_fills_it() {
    assert_grid(index().locate(at(775.0, 400.0)), COMPOUND_GRID);
    assert_grid(index().locate(at(690.0, 400.0)), U_GRID);
    assert_grid(index().locate(at(860.0, 580.0)), U_GRID);
}

#[test]
fn a_point_in_a_hole_is_in_the_dedicated_grid_inside_it() {
    assert_grid(index().locate(at(500.0, 350.0)), SCHOOL_GRID);
    assert_grid(index().locate(at(500.0, 420.0)), HOLED_GRID);
}

#[test]
fn a_point_in_a_hole_no_grid_fills_is_outside_with_the_distance_to_the_shore() {
    let Located::Outside { nearest_grid, distance_m } = index().locate(at(1050.0, 250.0)) else { panic!() };
    assert_eq!(nearest_grid.as_str(), POND_GRID);
    assert!((distance_m - 50.0).abs() < 0.5, "{distance_m}");
}

#[test]
fn a_point_outside_every_grid_gets_the_nearest_grid_and_its_distance() {
    let Located::Outside { nearest_grid, distance_m } = index().locate(at(-200.0, 300.0)) else { panic!() };
    assert_eq!(nearest_grid.as_str(), L_GRID);
    assert!((distance_m - 200.0).abs() < 2.0, "{distance_m}");
    let Located::Outside { nearest_grid, distance_m } = index().locate(at(700.0, -350.0)) else { panic!() };
    assert_eq!(nearest_grid.as_str(), U_GRID);
    assert!((distance_m - 350.0).abs() < 3.5, "{distance_m}");
    // Beyond a corner: the distance is to the corner.
    let Located::Outside { nearest_grid, distance_m } = index().locate(at(1530.0, 640.0)) else { panic!() };
    assert_eq!(nearest_grid.as_str(), EAST_GRID);
    assert!((distance_m - 50.0).abs() < 0.5, "{distance_m}");
}

#[test]
fn a_point_on_a_shared_edge_goes_to_the_smaller_code_or_the_dedicated_grid() {
    assert_grid(index().locate(at(200.0, 400.0)), L_GRID);
    assert_grid(index().locate(at(650.0, 100.0)), HOLED_GRID);
    // On the ring of the hole cut for the school: the school's own edge.
    assert_grid(index().locate(at(450.0, 350.0)), SCHOOL_GRID);
}

#[test]
fn a_point_where_basic_grids_overlap_is_ambiguous() {
    let index = GridIndex::new(with(jiangmen(), holed_grid(380.0)));
    assert_eq!(index.locate(at(390.0, 100.0)), Located::Ambiguous { grids: vec![code(L_GRID), code(HOLED_GRID)] });
}

#[test]
fn a_dedicated_grid_drawn_inside_a_basic_grid_takes_the_point() {
    let mut grids = jiangmen();
    grids.push(grid("440703001001006", "白石小区网格", GridKind::Compound, vec![rectangle(50.0, 50.0, 150.0, 150.0)]));
    let index = GridIndex::new(grids);
    assert_grid(index.locate(at(100.0, 100.0)), "440703001001006");
    assert_grid(index.locate(at(160.0, 100.0)), L_GRID);
}

#[test]
fn no_boundaries_is_its_own_answer() {
    assert_eq!(GridIndex::new(Vec::new()).locate(at(0.0, 0.0)), Located::NoBoundaries);
}

/// A city's worth of grids: `n` × `n` squares of 400 m, each with a notch cut out of it.
fn city(n: usize) -> Vec<GridBoundary> {
    let mut grids = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let (x, y) = (i as f64 * 600.0, j as f64 * 600.0);
            let l = polygon(
                &[
                    (x, y),
                    (x + 400.0, y),
                    (x + 400.0, y + 200.0),
                    (x + 200.0, y + 200.0),
                    (x + 200.0, y + 400.0),
                    (x, y + 400.0),
                ],
                &[],
            );
            let code = format!("440703{:03}{:03}{:03}", 1 + i / 10, 1 + j, 1 + i % 10);
            grids.push(grid(&code, "网格", GridKind::Community, vec![l]));
        }
    }
    grids
}

#[test]
fn the_nearest_grid_is_the_one_a_search_of_every_grid_finds() {
    let grids = city(12);
    let index = GridIndex::new(grids.clone());
    let mut state = 7_u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1_u64 << 53) as f64
    };
    for _ in 0..200 {
        let point = at(next() * 8_000.0 - 500.0, next() * 8_000.0 - 500.0);
        let brute = grids
            .iter()
            .map(|grid| (grid.distance_m(point), grid.code.clone()))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .unwrap();
        let (nearest, distance) = index.nearest(point).unwrap();
        assert_eq!((distance, &nearest.code), (brute.0, &brute.1));
        match index.locate(point) {
            Located::Grid { grid, .. } => assert_eq!((grid, distance), (brute.1, 0.0)),
            Located::Outside { nearest_grid, distance_m } => assert_eq!((nearest_grid, distance_m), (brute.1, brute.0)),
            other => panic!("{other:?}"),
        }
    }
}

// ---- nearby ----

#[test]
fn nearby_items_come_nearest_first_and_stop_at_the_radius() {
    let items = [
        ("far", at(0.0, 260.0)),
        ("near", at(30.0, 40.0)),
        ("edge", at(0.0, 199.9)),
        ("mid", at(-100.0, 0.0)),
        ("out", at(300.0, 0.0)),
    ];
    let found = nearby(at(0.0, 0.0), 200.0, items);
    let names: Vec<&str> = found.iter().map(|near| near.item).collect();
    assert_eq!(names, ["near", "mid", "edge"]);
    assert!((found[0].distance_m - 50.0).abs() < 0.05, "{}", found[0].distance_m);
    assert!(found.windows(2).all(|pair| pair[0].distance_m <= pair[1].distance_m));
    assert!(nearby(at(0.0, 0.0), 0.0, items).is_empty());
}

#[test]
fn a_degree_of_latitude_is_111_km() {
    let a = Wgs84::new(22.0, 113.0).unwrap();
    let b = Wgs84::new(23.0, 113.0).unwrap();
    assert!((distance_m(a, b) - 111_195.0).abs() < 1.0);
}

#[test]
fn the_bounding_box_holds_every_point_of_the_circle() {
    use geo::Destination;
    for (lat, lng) in [(22.58, 113.08), (53.5, 123.0), (-33.9, 151.2), (0.0, 0.0)] {
        let center = Wgs84::new(lat, lng).unwrap();
        for radius in [1.0, 250.0, 5_000.0] {
            let bounds = bounding_box(center, radius);
            for bearing in (0..360).step_by(5) {
                let edge = geo::Haversine.destination(center.to_point(), f64::from(bearing), radius);
                let edge = Wgs84::new(edge.y(), edge.x()).unwrap();
                assert!(bounds.contains(edge), "{bearing}° at {radius} m");
            }
            // Tight: the box is no more than a hair wider than the circle.
            let north = bounds.max_lat - lat;
            assert!((north * 111_195.0 - radius).abs() < 0.01 * radius + 0.01);
        }
    }
    let polar = bounding_box(Wgs84::new(89.99, 10.0).unwrap(), 5_000.0);
    assert_eq!((polar.min_lng, polar.max_lng, polar.max_lat), (-180.0, 180.0, 90.0));
}
