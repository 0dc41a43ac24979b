//! Real-shaped grids for tests, drawn in metres east and north of a corner in 江门市蓬江区
//! (113.08° E, 22.58° N) and turned into WGS-84 on a sphere, rounded to 1e-7° (about a
//! centimetre, what GIS exports carry).
//!
//! ```text
//!  y=600 ┌────────┬──────────────┬──┬────┬──┐┌──────────┬──────────┐
//!        │        │   002        │  │005 │  ││  B001    │  B002    │
//!        │  001   │   ┌──┐       │  │    │  ││  ┌──┐    │          │
//!        │  (L)   │   │004       │  │    │  ││  └──┘pond│          │
//!  y=250 │    ┌───┘   └──┘       │  └────┘  ││          │          │
//!        │    │  002 (inverted L)│  003 (U) ││          │          │
//!  y=0   └────┴──────────────────┴──────────┘└──────────┴──────────┘
//!        x=0  200   400          650  725 825 900       1200       1500
//! ```
//!
//! Community 440703001001 (长堤社区) is tiled exactly by five grids: 001 an L, 002 an
//! inverted L with a hole for the school grid 004, 003 a U whose notch is the compound
//! grid 005. Community 440703001002 (白沙社区) has two rectangles; B001 leaves out a pond
//! (a hole no grid fills).

use geo::orient::Direction;
use geo::{Coord, LineString, MultiPolygon, Orient, Polygon};

use super::GridBoundary;
use crate::model::{GridCode, GridKind, Wgs84};

const ORIGIN_LAT: f64 = 22.58;
const ORIGIN_LNG: f64 = 113.08;
const METRES_PER_DEGREE: f64 = super::nearby::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

fn round7(degrees: f64) -> f64 {
    (degrees * 1e7).round() / 1e7
}

/// The point `x` metres east and `y` metres north of the corner.
pub(crate) fn coord(x: f64, y: f64) -> Coord<f64> {
    let lat = ORIGIN_LAT + y / METRES_PER_DEGREE;
    let lng = ORIGIN_LNG + x / (METRES_PER_DEGREE * ORIGIN_LAT.to_radians().cos());
    Coord { x: round7(lng), y: round7(lat) }
}

/// The same point as a location.
pub(crate) fn at(x: f64, y: f64) -> Wgs84 {
    let coord = coord(x, y);
    Wgs84::new(coord.y, coord.x).expect("near 江门")
}

fn ring(points: &[(f64, f64)]) -> LineString<f64> {
    LineString(points.iter().map(|&(x, y)| coord(x, y)).collect())
}

/// A polygon from an exterior and holes, each a list of (x, y) corners in metres.
pub(crate) fn polygon(exterior: &[(f64, f64)], holes: &[&[(f64, f64)]]) -> Polygon<f64> {
    Polygon::new(ring(exterior), holes.iter().map(|hole| ring(hole)).collect())
}

pub(crate) fn rectangle(x0: f64, y0: f64, x1: f64, y1: f64) -> Polygon<f64> {
    polygon(&[(x0, y0), (x1, y0), (x1, y1), (x0, y1)], &[])
}

pub(crate) fn grid(code: &str, name: &str, kind: GridKind, parts: Vec<Polygon<f64>>) -> GridBoundary {
    GridBoundary {
        code: GridCode::parse_default(code).expect("a valid code"),
        name: name.to_owned(),
        kind,
        area: MultiPolygon(parts).orient(Direction::Default),
    }
}

pub(crate) const L_GRID: &str = "440703001001001";
pub(crate) const HOLED_GRID: &str = "440703001001002";
pub(crate) const U_GRID: &str = "440703001001003";
pub(crate) const SCHOOL_GRID: &str = "440703001001004";
pub(crate) const COMPOUND_GRID: &str = "440703001001005";
pub(crate) const POND_GRID: &str = "440703001002001";
pub(crate) const EAST_GRID: &str = "440703001002002";

pub(crate) const SCHOOL_HOLE: [(f64, f64); 4] = [(450.0, 300.0), (550.0, 300.0), (550.0, 400.0), (450.0, 400.0)];

pub(crate) fn l_grid() -> GridBoundary {
    let l = polygon(&[(0.0, 0.0), (400.0, 0.0), (400.0, 250.0), (200.0, 250.0), (200.0, 600.0), (0.0, 600.0)], &[]);
    grid(L_GRID, "长堤社区第一网格", GridKind::Community, vec![l])
}

/// The inverted L east of the L, its bottom arm starting at `x0` (400 to tile exactly).
pub(crate) fn holed_grid(x0: f64) -> GridBoundary {
    let exterior = [(x0, 0.0), (650.0, 0.0), (650.0, 600.0), (200.0, 600.0), (200.0, 250.0), (x0, 250.0)];
    grid(HOLED_GRID, "长堤社区第二网格", GridKind::Community, vec![polygon(&exterior, &[&SCHOOL_HOLE])])
}

pub(crate) fn u_grid() -> GridBoundary {
    let u = [
        (650.0, 0.0),
        (900.0, 0.0),
        (900.0, 600.0),
        (825.0, 600.0),
        (825.0, 200.0),
        (725.0, 200.0),
        (725.0, 600.0),
        (650.0, 600.0),
    ];
    grid(U_GRID, "长堤社区第三网格", GridKind::Community, vec![polygon(&u, &[])])
}

/// The school in the hole of 002, inset by `inset` metres (0 fills the hole).
pub(crate) fn school_grid(inset: f64) -> GridBoundary {
    let part = rectangle(450.0 + inset, 300.0 + inset, 550.0 - inset, 400.0 - inset);
    grid(SCHOOL_GRID, "江门市第一中学网格", GridKind::Unit, vec![part])
}

/// The compound in the notch of the U, from `y0` up (200 fills the notch).
pub(crate) fn compound_grid(y0: f64) -> GridBoundary {
    grid(COMPOUND_GRID, "港口花园小区网格", GridKind::Compound, vec![rectangle(725.0, y0, 825.0, 600.0)])
}

pub(crate) fn pond_grid() -> GridBoundary {
    let pond: &[(f64, f64)] = &[(1000.0, 200.0), (1100.0, 200.0), (1100.0, 300.0), (1000.0, 300.0)];
    let exterior = [(900.0, 0.0), (1200.0, 0.0), (1200.0, 600.0), (900.0, 600.0)];
    grid(POND_GRID, "白沙社区第一网格", GridKind::Community, vec![polygon(&exterior, &[pond])])
}

pub(crate) fn east_grid() -> GridBoundary {
    grid(EAST_GRID, "白沙社区第二网格", GridKind::Community, vec![rectangle(1200.0, 0.0, 1500.0, 600.0)])
}

/// The two communities, tiled exactly.
pub(crate) fn jiangmen() -> Vec<GridBoundary> {
    vec![l_grid(), holed_grid(400.0), u_grid(), school_grid(0.0), compound_grid(200.0), pond_grid(), east_grid()]
}

/// Replaces the grid with the same code.
pub(crate) fn with(mut grids: Vec<GridBoundary>, replacement: GridBoundary) -> Vec<GridBoundary> {
    let slot = grids.iter_mut().find(|grid| grid.code == replacement.code).expect("a grid with that code");
    *slot = replacement;
    grids
}

/// The same boundaries as the fixture file `testdata/jiangmen.geojson` (a test checks).
pub(crate) const JIANGMEN_GEOJSON: &str = include_str!("../testdata/jiangmen.geojson");
