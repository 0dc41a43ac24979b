//! Coordinate systems: WGS-84 (what the core stores), GCJ-02 and BD-09.
//!
//! Map SDKs in mainland China do not draw WGS-84. Amap (高德), Tencent and Google's China
//! tiles draw GCJ-02: WGS-84 moved by a deliberately irregular offset of a few hundred
//! metres. Baidu draws BD-09: GCJ-02 moved once more. A GPS position goes through
//! [`wgs84_to_gcj02`] before it is drawn on such a map; a position picked on the map comes
//! back through [`gcj02_to_wgs84`] before it is stored.
//!
//! ```
//! use wangge_core::place::coords::{LatLng, gcj02_to_wgs84, wgs84_to_gcj02};
//!
//! let gps = LatLng { lat: 39.915, lng: 116.404 };
//! let on_amap = wgs84_to_gcj02(gps); // 555 m to the east-north-east
//! assert!((on_amap.lng - 116.410244).abs() < 1e-6);
//! let stored = gcj02_to_wgs84(on_amap);
//! assert!((stored.lat - gps.lat).abs() < 1e-8 && (stored.lng - gps.lng).abs() < 1e-8);
//! ```
//!
//! - **Forward** (WGS-84 → GCJ-02 → BD-09): the widely published formulas (eviltransform,
//!   coordtransform): GCJ-02 on the Krasovsky ellipsoid (a = 6378245 m,
//!   e² = 0.00669342162296594323), BD-09 as Baidu's rotation and scaling around the origin.
//! - **Back**: there is no closed form. The inverses iterate the forward formula to its
//!   fixed point until the round trip is within 1e-9° (0.1 mm; the requirement is 0.5 m):
//!   three or four steps, never more than eight.
//! - **Where**: only in mainland China; anywhere else every conversion returns its input
//!   unchanged. [`in_mainland_china`] asks an outline of the mainland, not a rectangle, so
//!   Seoul, Hanoi and Singapore are not offset. Hong Kong, Macau, Taiwan and the islands
//!   Taiwan holds (Kinmen, Matsu, Pratas) are outside: by convention no GCJ-02 offset is
//!   applied there. The outline (`china_outline.rs`: 1,930 vertices simplified from the map
//!   of China in the npm package `echarts` 4.9.0, Apache-2.0) runs about 3 km beyond the
//!   coast and the land borders, so no coastal town, harbour or island loses its offset;
//!   the price is that foreign land within about 3 km of a border (part of Mong Cai,
//!   across the river from Dongxing) counts as inside. The South China Sea islands are not
//!   in the source and count as outside.
//! - **Which point decides**: the WGS-84 position where the conversion has one, otherwise
//!   the GCJ-02 one, whether it is the input or the result; so a stored position drawn on
//!   a map and picked back lands where it started, even next to the outline.

use std::f64::consts::PI;
use std::sync::LazyLock;

use geo::{BoundingRect, Coord, Intersects, LineString, Polygon, Rect};

use crate::model::Wgs84;

#[path = "china_outline.rs"]
mod china_outline;

/// A latitude and longitude in degrees, in the system that the function taking or
/// returning it names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

impl From<Wgs84> for LatLng {
    fn from(position: Wgs84) -> Self {
        LatLng { lat: position.lat(), lng: position.lng() }
    }
}

/// WGS-84 (GPS) → GCJ-02 (Amap, Tencent).
pub fn wgs84_to_gcj02(wgs: LatLng) -> LatLng {
    if !in_mainland_china(wgs.lat, wgs.lng) {
        return wgs;
    }
    add_gcj02_offset(wgs)
}

/// GCJ-02 (Amap, Tencent) → WGS-84 (GPS), within 1e-9° of the exact inverse.
pub fn gcj02_to_wgs84(gcj: LatLng) -> LatLng {
    let wgs = remove_gcj02_offset(gcj);
    if in_mainland_china(wgs.lat, wgs.lng) { wgs } else { gcj }
}

/// GCJ-02 (Amap, Tencent) → BD-09 (Baidu).
pub fn gcj02_to_bd09(gcj: LatLng) -> LatLng {
    if !in_mainland_china(gcj.lat, gcj.lng) {
        return gcj;
    }
    add_bd09_offset(gcj)
}

/// BD-09 (Baidu) → GCJ-02 (Amap, Tencent), within 1e-9° of the exact inverse.
pub fn bd09_to_gcj02(bd: LatLng) -> LatLng {
    let gcj = remove_bd09_offset(bd);
    if in_mainland_china(gcj.lat, gcj.lng) { gcj } else { bd }
}

/// WGS-84 (GPS) → BD-09 (Baidu).
pub fn wgs84_to_bd09(wgs: LatLng) -> LatLng {
    if !in_mainland_china(wgs.lat, wgs.lng) {
        return wgs;
    }
    add_bd09_offset(add_gcj02_offset(wgs))
}

/// BD-09 (Baidu) → WGS-84 (GPS), within 1e-9° of the exact inverse.
pub fn bd09_to_wgs84(bd: LatLng) -> LatLng {
    let wgs = remove_gcj02_offset(remove_bd09_offset(bd));
    if in_mainland_china(wgs.lat, wgs.lng) { wgs } else { bd }
}

/// Whether a position is in mainland China, where the GCJ-02 and BD-09 offsets apply:
/// inside the outline of the mainland (Hainan and the offshore islands included; Hong
/// Kong, Macau, Taiwan and the islands it holds not), about 3 km beyond the coast and the
/// land borders. `false` for anything that is not a number.
pub fn in_mainland_china(lat: f64, lng: f64) -> bool {
    let position = Coord { x: lng, y: lat };
    MAINLAND_CHINA.iter().any(|(bounds, polygon)| bounds.intersects(&position) && polygon.intersects(&position))
}

/// The outline's polygons with their bounding boxes, which turn away most positions
/// without walking a polygon's vertices.
static MAINLAND_CHINA: LazyLock<Vec<(Rect<f64>, Polygon<f64>)>> = LazyLock::new(|| {
    china_outline::MAINLAND_CHINA_RINGS
        .iter()
        .map(|ring| Polygon::new(LineString::from(ring.to_vec()), vec![]))
        .filter_map(|polygon| Some((polygon.bounding_rect()?, polygon)))
        .collect()
});

/// The inverses stop when the forward formula brings their result this close to the
/// input, in degrees (about 0.1 mm).
const INVERSE_TOLERANCE_DEGREES: f64 = 1e-9;

/// The most steps an inverse takes. Each step shrinks the error some 300-fold, so the
/// tolerance is reached in at most four over all of China; the cap only bounds the work
/// for inputs that are not numbers.
const MAX_INVERSE_STEPS: usize = 8;

/// Semi-major axis of the Krasovsky 1940 ellipsoid, in metres, as GCJ-02 uses it.
const KRASOVSKY_SEMI_MAJOR_AXIS_M: f64 = 6_378_245.0;

/// Its eccentricity squared: the published 0.00669342162296594323, rounded to an `f64`.
const KRASOVSKY_ECCENTRICITY_SQUARED: f64 = 0.006_693_421_622_965_943;

/// Baidu's angle scale: π · 3000 / 180.
const BD09_X_PI: f64 = PI * 3000.0 / 180.0;

/// The GCJ-02 offset applied to a WGS-84 position, wherever it is.
fn add_gcj02_offset(wgs: LatLng) -> LatLng {
    let (north_m, east_m) = gcj02_offset_m(wgs.lng - 105.0, wgs.lat - 35.0);
    let lat_radians = wgs.lat.to_radians();
    let sin_lat = lat_radians.sin();
    let magic = 1.0 - KRASOVSKY_ECCENTRICITY_SQUARED * sin_lat * sin_lat;
    let sqrt_magic = magic.sqrt();
    let meridian_radius_m = KRASOVSKY_SEMI_MAJOR_AXIS_M * (1.0 - KRASOVSKY_ECCENTRICITY_SQUARED) / (magic * sqrt_magic);
    let parallel_radius_m = KRASOVSKY_SEMI_MAJOR_AXIS_M / sqrt_magic * lat_radians.cos();
    LatLng {
        lat: wgs.lat + north_m * 180.0 / (meridian_radius_m * PI),
        lng: wgs.lng + east_m * 180.0 / (parallel_radius_m * PI),
    }
}

/// The published obfuscation polynomial: the offset in metres (north, east) at `x`
/// degrees east of 105°E and `y` degrees north of 35°N.
fn gcj02_offset_m(x: f64, y: f64) -> (f64, f64) {
    let waves = (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    let mut north = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    north += waves;
    north += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    north += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    let mut east = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    east += waves;
    east += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    east += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    (north, east)
}

fn remove_gcj02_offset(gcj: LatLng) -> LatLng {
    invert(add_gcj02_offset, gcj, gcj)
}

/// Baidu's offset applied to a GCJ-02 position, wherever it is.
fn add_bd09_offset(gcj: LatLng) -> LatLng {
    let (x, y) = (gcj.lng, gcj.lat);
    let radius = x.hypot(y) + 0.00002 * (y * BD09_X_PI).sin();
    let angle = y.atan2(x) + 0.000003 * (x * BD09_X_PI).cos();
    LatLng { lat: radius * angle.sin() + 0.006, lng: radius * angle.cos() + 0.0065 }
}

/// Baidu's published inverse, good to a few decimetres, refined to the tolerance.
fn remove_bd09_offset(bd: LatLng) -> LatLng {
    let (x, y) = (bd.lng - 0.0065, bd.lat - 0.006);
    let radius = x.hypot(y) - 0.00002 * (y * BD09_X_PI).sin();
    let angle = y.atan2(x) - 0.000003 * (x * BD09_X_PI).cos();
    let published = LatLng { lat: radius * angle.sin(), lng: radius * angle.cos() };
    invert(add_bd09_offset, bd, published)
}

/// The position that `forward` takes to `target`, by the fixed-point iteration
/// p ← p − (forward(p) − target) from `start`: it converges because the offsets change
/// slowly with position.
fn invert(forward: fn(LatLng) -> LatLng, target: LatLng, start: LatLng) -> LatLng {
    let mut guess = start;
    for _ in 0..MAX_INVERSE_STEPS {
        let image = forward(guess);
        let (error_lat, error_lng) = (image.lat - target.lat, image.lng - target.lng);
        if error_lat.abs() < INVERSE_TOLERANCE_DEGREES && error_lng.abs() < INVERSE_TOLERANCE_DEGREES {
            break;
        }
        guess = LatLng { lat: guess.lat - error_lat, lng: guess.lng - error_lng };
    }
    guess
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use geo::{Distance, Haversine, MultiPolygon, Point, Validation};

    use super::*;

    fn at(lat: f64, lng: f64) -> LatLng {
        LatLng { lat, lng }
    }

    fn distance_m(a: LatLng, b: LatLng) -> f64 {
        Haversine.distance(Point::new(a.lng, a.lat), Point::new(b.lng, b.lat))
    }

    /// Asserts a published value to 1e-6° (about 0.1 m).
    #[track_caller]
    fn check(actual: LatLng, expected: LatLng) {
        let close = (actual.lat - expected.lat).abs() < 1e-6 && (actual.lng - expected.lng).abs() < 1e-6;
        assert!(close, "{actual:?} is not within 1e-6° of {expected:?}");
    }

    #[track_caller]
    fn check_within_half_a_metre(actual: LatLng, expected: LatLng) {
        let error_m = distance_m(actual, expected);
        assert!(error_m < 0.5, "{actual:?} is {error_m} m from {expected:?}");
    }

    // wandergis/coordtransform, test/app.js (the reference most ports copy, e.g. hutool's
    // CoordinateUtilTest): wgs84togcj02(116.404, 39.915) and gcj02tobd09(116.404, 39.915).
    // wyxloading/coordtransform-rs, tests/tests.rs: wgs84_to_bd09(116.404, 39.915), the
    // same formulas chained, so the BD-09 of the same Beijing point.
    #[test]
    fn beijing_matches_coordtransform() {
        let wgs = at(39.915, 116.404);
        check(wgs84_to_gcj02(wgs), at(39.91640428150164, 116.41024449916938));
        check(gcj02_to_bd09(at(39.915, 116.404)), at(39.92133699351021, 116.41036949371029));
        check(wgs84_to_bd09(wgs), at(39.922699552216216, 116.41662724378733));
        check(gcj02_to_bd09(wgs84_to_gcj02(wgs)), at(39.922699552216216, 116.41662724378733));
    }

    // googollee/eviltransform, go/transform_test.go and python/test.py: (wgsLat, wgsLng,
    // gcjLat, gcjLng) for Shanghai, Shenzhen and Beijing.
    const EVILTRANSFORM: [(f64, f64, f64, f64); 3] = [
        (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
        (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
        (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
    ];

    #[test]
    fn shanghai_shenzhen_and_beijing_match_eviltransform() {
        for (wgs_lat, wgs_lng, gcj_lat, gcj_lng) in EVILTRANSFORM {
            check(wgs84_to_gcj02(at(wgs_lat, wgs_lng)), at(gcj_lat, gcj_lng));
        }
    }

    // hujiulong/gcoord, test/unit/crs/WGS84.spec.ts and GCJ02.spec.ts: [123, 45] (Jilin)
    // from WGS-84 to GCJ-02 and BD-09, from GCJ-02 to WGS-84 and BD-09.
    #[test]
    fn jilin_matches_gcoord() {
        check(wgs84_to_gcj02(at(45.0, 123.0)), at(45.00197815, 123.00607541));
        check(wgs84_to_bd09(at(45.0, 123.0)), at(45.0083293, 123.0124491));
        check(gcj02_to_wgs84(at(45.0, 123.0)), at(44.99804071, 122.99395597));
        check(gcj02_to_bd09(at(45.0, 123.0)), at(45.00636899, 123.00636499));
    }

    #[test]
    fn inverses_of_the_published_values_are_within_half_a_metre() {
        check_within_half_a_metre(gcj02_to_wgs84(at(39.91640428150164, 116.41024449916938)), at(39.915, 116.404));
        check_within_half_a_metre(bd09_to_gcj02(at(39.92133699351021, 116.41036949371029)), at(39.915, 116.404));
        check_within_half_a_metre(bd09_to_wgs84(at(39.922699552216216, 116.41662724378733)), at(39.915, 116.404));
        for (wgs_lat, wgs_lng, gcj_lat, gcj_lng) in EVILTRANSFORM {
            check_within_half_a_metre(gcj02_to_wgs84(at(gcj_lat, gcj_lng)), at(wgs_lat, wgs_lng));
        }
        // coordtransform's bd09togcj02(116.404, 39.915), Baidu's one-step inverse.
        check_within_half_a_metre(bd09_to_gcj02(at(39.915, 116.404)), at(39.90865673957631, 116.39762729119315));
    }

    /// Every 0.5° from 73°E to 135°E and 18°N to 54°N, the points in mainland China.
    fn grid_over_china() -> Vec<LatLng> {
        let mut points = Vec::new();
        for i in 0..=(36 * 2) {
            for j in 0..=(62 * 2) {
                let point = at(18.0 + f64::from(i) * 0.5, 73.0 + f64::from(j) * 0.5);
                if in_mainland_china(point.lat, point.lng) {
                    points.push(point);
                }
            }
        }
        points
    }

    #[test]
    fn round_trips_over_china_are_within_half_a_metre() {
        let grid = grid_over_china();
        assert!(grid.len() > 3_000, "{} grid points", grid.len());
        let mut worst_m: f64 = 0.0;
        let mut n_on_the_edge = 0;
        for point in grid {
            assert_ne!(wgs84_to_gcj02(point), point);
            // A GPS position drawn on a map and back.
            let mut trips = vec![
                (point, gcj02_to_wgs84(wgs84_to_gcj02(point))),
                (point, bd09_to_wgs84(wgs84_to_bd09(point))),
                (point, bd09_to_gcj02(gcj02_to_bd09(point))),
            ];
            // A position picked on a map and back, unless it is so near the outline that its
            // WGS-84 position is outside: then no position is offset to it.
            if gcj02_to_wgs84(point) != point && bd09_to_wgs84(point) != point {
                trips.push((point, wgs84_to_gcj02(gcj02_to_wgs84(point))));
                trips.push((point, wgs84_to_bd09(bd09_to_wgs84(point))));
            } else {
                n_on_the_edge += 1;
            }
            for (start, end) in trips {
                worst_m = worst_m.max(distance_m(start, end));
            }
        }
        assert!(worst_m < 0.5, "worst round trip {worst_m} m");
        assert!(n_on_the_edge < 10, "{n_on_the_edge} grid points on the edge");
    }

    #[test]
    fn outside_mainland_china_nothing_moves() {
        for (name, lat, lng) in [("Seoul", 37.5665, 126.9780), ("Singapore", 1.3521, 103.8198)] {
            let point = at(lat, lng);
            let conversions: [fn(LatLng) -> LatLng; 6] =
                [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09, bd09_to_wgs84];
            for convert in conversions {
                assert_eq!(convert(point), point, "{name}");
            }
        }
    }

    #[test]
    fn not_a_number_is_returned_as_it_is() {
        let converted = gcj02_to_wgs84(at(f64::NAN, 116.4));
        assert!(converted.lat.is_nan());
        assert_eq!(converted.lng, 116.4);
        assert!(!in_mainland_china(f64::NAN, f64::NAN));
    }

    #[test]
    fn the_outline_is_mainland_china() {
        let inside = [
            ("Beijing", 39.9042, 116.4074),
            ("Shanghai", 31.2304, 121.4737),
            ("Urumqi", 43.8256, 87.6168),
            ("Lhasa", 29.6520, 91.1721),
            ("Harbin", 45.8038, 126.5350),
            ("Sanya, Hainan", 18.2528, 109.5119),
            ("Jiangmen", 22.58, 113.08),
            ("Shenzhen Futian, by Hong Kong", 22.5431, 114.0579),
            ("Zhuhai Gongbei, by Macau", 22.2210, 113.5500),
            ("Xiamen, by Kinmen", 24.4798, 118.0894),
            ("Pingtan island", 25.50, 119.79),
            ("Shengsi islands", 30.72, 122.45),
        ];
        let outside = [
            ("Seoul", 37.5665, 126.9780),
            ("Singapore", 1.3521, 103.8198),
            ("Tokyo", 35.6762, 139.6503),
            ("Hanoi", 21.0278, 105.8342),
            ("Taipei", 25.0330, 121.5654),
            ("Hong Kong", 22.3193, 114.1694),
            ("Macau", 22.1987, 113.5439),
            ("Kinmen", 24.4360, 118.3180),
            ("Ulaanbaatar", 47.8864, 106.9057),
            ("the sea east of Shanghai", 31.0, 123.5),
        ];
        for (name, lat, lng) in inside {
            assert!(in_mainland_china(lat, lng), "{name} should be inside");
        }
        for (name, lat, lng) in outside {
            assert!(!in_mainland_china(lat, lng), "{name} should be outside");
        }
    }

    #[test]
    fn the_outline_is_valid_and_as_documented() {
        let outline = MultiPolygon::new(MAINLAND_CHINA.iter().map(|(_, polygon)| polygon.clone()).collect());
        assert!(outline.is_valid(), "{:?}", outline.validation_errors());
        assert_eq!(outline.0.len(), 32);
        assert_eq!(outline.0.iter().map(|polygon| polygon.exterior().0.len()).sum::<usize>(), 1_930);
    }
}
