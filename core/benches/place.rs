//! Point → grid and nearby on realistic sizes.
//!
//! - `GridIndex::locate` over a city's grids (3,025 grids of 400 m, each boundary with 160
//!   points, as digitised along streets), against testing every grid's polygon in turn;
//!   and over a district's 50.
//! - `Store::locate` (the index cached per version of the reference document) against
//!   `GridIndex::locate` itself: what the store adds.
//! - `Store::nearby` (300 m) over a district-sized store (20 grids, with their buildings,
//!   components and 300 open incidents), against reading every located row and measuring
//!   in Rust: what the SQL bounding box saves.
//!
//! Also printed: checking how the city's grids fit together (the server's import),
//! building the index from the reference document once (a new version
//! arrived), and the reference document's size with the city's boundaries.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Instant;

use automerge::ActorId;
use geo::{Coord, CoordinatePosition, LineString, MultiPolygon, Polygon};
use wangge_core::demo::generate_city;
use wangge_core::incident::Actor;
use wangge_core::incident::roles::Role;
use wangge_core::model::*;
use wangge_core::place::boundaries::{GridBoundary, GridIndex, check_partition, distance_m};
use wangge_core::reference::{self, GridMeta};
use wangge_core::{NewIncident, Store};

const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;
const CELL_M: f64 = 400.0;

fn to_coord(x: f64, y: f64) -> Coord<f64> {
    let lat = 22.58 + y / METRES_PER_DEGREE;
    Coord { x: 113.08 + x / (METRES_PER_DEGREE * 22.58_f64.to_radians().cos()), y: lat }
}

/// `n` × `n` square grids tiling a city, each edge digitised every 10 m.
fn city(n: usize) -> Vec<GridBoundary> {
    let mut grids = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            let (x0, y0) = (i as f64 * CELL_M, j as f64 * CELL_M);
            let mut ring = Vec::new();
            for (dx, dy, sx, sy) in
                [(0.0, 0.0, 1.0, 0.0), (CELL_M, 0.0, 0.0, 1.0), (CELL_M, CELL_M, -1.0, 0.0), (0.0, CELL_M, 0.0, -1.0)]
            {
                for step in 0..40 {
                    let t = f64::from(step) * 10.0;
                    ring.push(to_coord(x0 + dx + sx * t, y0 + dy + sy * t));
                }
            }
            ring.push(ring[0]);
            let code = format!("440703{:03}{:03}{:03}", 1 + i / 10, 1 + j / 10, 1 + (i % 10) * 10 + j % 10);
            grids.push(GridBoundary {
                code: GridCode::parse_default(&code).unwrap(),
                name: format!("{i}-{j}网格"),
                kind: GridKind::Community,
                area: MultiPolygon(vec![Polygon::new(LineString(ring), Vec::new())]),
            });
        }
    }
    grids
}

/// Points spread over the city and a little beyond it.
fn points(n: usize, extent_m: f64) -> Vec<Wgs84> {
    let mut state = 11_u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1_u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let coord = to_coord(next() * extent_m * 1.1 - extent_m * 0.05, next() * extent_m * 1.1 - extent_m * 0.05);
            Wgs84::new(coord.y, coord.x).unwrap()
        })
        .collect()
}

fn locate_comparison(n: usize, name: &str) {
    let grids = city(n);
    let index = GridIndex::new(grids.clone());
    let points = points(100, n as f64 * CELL_M);
    let comparison = support::compare(
        9,
        3,
        || {
            for point in &points {
                let coord = point.to_point().0;
                let found = grids
                    .iter()
                    .find(|grid| grid.area.coordinate_position(&coord) != geo::coordinate_position::CoordPos::Outside);
                std::hint::black_box(found);
            }
        },
        || {
            for point in &points {
                std::hint::black_box(index.locate(*point));
            }
        },
    );
    let per_point = |d: std::time::Duration| d / 100;
    let per_call =
        support::Comparison { baseline: per_point(comparison.baseline), subject: per_point(comparison.subject) };
    support::report(name, "every polygon", &per_call, "per point");
}

fn main() {
    locate_comparison(7, "locate, 49 grids");
    locate_comparison(55, "locate, 3,025 grids");
    for n in [7, 55] {
        let grids = city(n);
        let start = Instant::now();
        let issues = check_partition(&grids);
        assert!(issues.is_empty(), "{issues:?}");
        println!("check_partition, {} grids: {} (the server's import)", n * n, support::ms(start.elapsed()));
    }

    // The city's boundaries in a device's reference document.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("device.db")).unwrap();
    let grids = city(55);
    let mut server = reference::genesis().with_actor(ActorId::from(reference::SERVER_ACTOR));
    for grid in &grids {
        let meta = GridMeta {
            name: grid.name.clone(),
            kind: grid.kind.code().into(),
            boundary: Some(grid.geometry_json()),
            ..GridMeta::default()
        };
        reference::set_grid(&mut server, grid.code.as_str(), &meta).unwrap();
    }
    server.commit();
    let changes: Vec<Vec<u8>> = server.get_changes(&[]).into_iter().map(|change| change.raw_bytes().to_vec()).collect();
    let json_bytes: usize = grids.iter().map(|grid| grid.geometry_json().len()).sum();
    println!(
        "reference document with 3,025 boundaries: {:.1} MB saved ({:.1} MB of GeoJSON)",
        server.save().len() as f64 / 1e6,
        json_bytes as f64 / 1e6
    );
    store.apply_changes(&reference::doc_id(), &changes).unwrap();
    let start = Instant::now();
    let index = store.grid_index().unwrap();
    println!(
        "index built from the reference document: {} (3,025 grids, once per version)",
        support::ms(start.elapsed())
    );
    let points = points(100, 55.0 * CELL_M);
    let cached = support::compare(
        9,
        3,
        || {
            for point in &points {
                std::hint::black_box(index.locate(*point));
            }
        },
        || {
            for point in &points {
                std::hint::black_box(store.locate(*point).unwrap());
            }
        },
    );
    let cached = support::Comparison { baseline: cached.baseline / 100, subject: cached.subject / 100 };
    support::report("Store::locate, 3,025 grids", "GridIndex", &cached, "per point, index cached");
    drop(store);

    // Nearby over a district.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("device.db")).unwrap();
    let district = generate_city(20, 500, 7);
    for (grid, records) in &district {
        store.add_grid(grid, true).unwrap();
        store.import(&grid.code, records).unwrap();
    }
    let (grid, records) = &district[3];
    let center = records.buildings.iter().find_map(|(_, building)| building.location).unwrap();
    let item = store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    let worker = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
    for (i, (_, building)) in records.buildings.iter().cycle().take(300).enumerate() {
        let incident = NewIncident {
            grid: grid.code.clone(),
            catalog_item: item.clone(),
            title: format!("事件{i}"),
            description: "路面破损".into(),
            location: building.location,
            residents: vec![],
            households: vec![],
            organizations: vec![],
            photos: vec![],
            reported_by_resident: None,
        };
        store.report_incident(incident, worker.clone()).unwrap();
    }
    let n_located: i64 = store
        .with_reader(|conn| {
            conn.query_row(
                "SELECT (SELECT count(*) FROM buildings WHERE location IS NOT NULL)
                      + (SELECT count(*) FROM components WHERE location IS NOT NULL)
                      + (SELECT count(*) FROM incidents WHERE location IS NOT NULL)",
                [],
                |row| row.get(0),
            )
        })
        .unwrap();
    let n_found = store.nearby(center, 300.0).unwrap().len();
    println!("store: 20 grids, {n_located} located buildings, components and incidents; {n_found} within 300 m");
    let nearby = support::compare(
        9,
        5,
        || {
            let rows: Vec<(String, String)> = store
                .with_reader(|conn| {
                    let mut statement = conn.prepare_cached(
                        "SELECT id, location FROM buildings WHERE location IS NOT NULL
                         UNION ALL SELECT id, location FROM components WHERE location IS NOT NULL
                         UNION ALL SELECT id, location FROM incidents WHERE location IS NOT NULL",
                    )?;
                    statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect()
                })
                .unwrap();
            let mut near: Vec<(f64, String)> = rows
                .into_iter()
                .filter_map(|(id, location)| {
                    let (lat, lng) = location.split_once(',')?;
                    let location = Wgs84::new(lat.parse().ok()?, lng.parse().ok()?).ok()?;
                    let distance = distance_m(center, location);
                    (distance <= 300.0).then_some((distance, id))
                })
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            std::hint::black_box(near);
        },
        || {
            std::hint::black_box(store.nearby(center, 300.0).unwrap());
        },
    );
    support::report("Store::nearby, 300 m", "scan all", &nearby, "a list a worker waits for");
}
