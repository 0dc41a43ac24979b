//! What is near a point: great-circle (haversine) distances on the mean sphere, nearest
//! first. Over a few kilometres the sphere is within 0.3% of the ellipsoid: plenty to
//! rank what a worker can walk to.

use std::fmt;

use geo::{Distance, Haversine};

use crate::model::{BuildingId, ComponentId, GridCode, IncidentId, Wgs84};

/// The mean radius (GRS80) of the sphere geo's haversine measures on, in metres.
pub(super) const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The great-circle distance between two points, in metres.
pub fn distance_m(a: Wgs84, b: Wgs84) -> f64 {
    Haversine.distance(a.to_point(), b.to_point())
}

/// An item and its distance from the point asked about.
#[derive(Debug, Clone, PartialEq)]
pub struct Near<T> {
    pub item: T,
    pub distance_m: f64,
}

/// The items within `radius_m` metres of `center` (the edge included), nearest first;
/// items at the same distance keep their order.
pub fn nearby<T>(center: Wgs84, radius_m: f64, items: impl IntoIterator<Item = (T, Wgs84)>) -> Vec<Near<T>> {
    let bounds = bounding_box(center, radius_m);
    let mut near: Vec<Near<T>> = items
        .into_iter()
        .filter(|(_, location)| bounds.contains(*location))
        .filter_map(|(item, location)| {
            let distance_m = distance_m(center, location);
            (distance_m <= radius_m).then_some(Near { item, distance_m })
        })
        .collect();
    near.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
    near
}

/// A latitude and longitude range, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lng: f64,
    pub max_lng: f64,
}

impl BoundingBox {
    pub fn contains(&self, point: Wgs84) -> bool {
        (self.min_lat..=self.max_lat).contains(&point.lat()) && (self.min_lng..=self.max_lng).contains(&point.lng())
    }
}

/// The smallest latitude and longitude range holding every point within `radius_m`
/// metres of `center` on the sphere [`distance_m`] measures on: a cheap first filter
/// (for SQL) before exact distances. Near a pole, or across the antimeridian, it spans
/// every longitude.
pub fn bounding_box(center: Wgs84, radius_m: f64) -> BoundingBox {
    // A hair wider than the exact cap, so rounding never drops a point on the edge.
    const SLACK_DEGREES: f64 = 1e-9;
    let angle = (radius_m.max(0.0) / EARTH_RADIUS_M).min(std::f64::consts::PI);
    let d_lat = angle.to_degrees() + SLACK_DEGREES;
    let (min_lat, max_lat) = (center.lat() - d_lat, center.lat() + d_lat);
    let all_longitudes = |min_lat: f64, max_lat: f64| BoundingBox {
        min_lat: min_lat.max(-90.0),
        max_lat: max_lat.min(90.0),
        min_lng: -180.0,
        max_lng: 180.0,
    };
    if min_lat <= -90.0 || max_lat >= 90.0 {
        return all_longitudes(min_lat, max_lat);
    }
    // The widest longitude offset of a spherical cap not holding a pole.
    let ratio = angle.sin() / center.lat().to_radians().cos();
    if ratio >= 1.0 {
        return all_longitudes(min_lat, max_lat);
    }
    let d_lng = ratio.asin().to_degrees() + SLACK_DEGREES;
    let (min_lng, max_lng) = (center.lng() - d_lng, center.lng() + d_lng);
    if min_lng < -180.0 || max_lng > 180.0 {
        return all_longitudes(min_lat, max_lat);
    }
    BoundingBox { min_lat, max_lat, min_lng, max_lng }
}

/// A record found near a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NearbyRecord {
    Building(BuildingId),
    Component(ComponentId),
    Incident(IncidentId),
}

/// A building, component or open incident near a point: what a list shows.
#[derive(Clone, PartialEq)]
pub struct NearbyItem {
    pub record: NearbyRecord,
    pub grid: GridCode,
    /// The building's or component's name, the incident's title.
    pub label: String,
    pub location: Wgs84,
    pub distance_m: f64,
}

impl fmt::Debug for NearbyItem {
    /// Without the label (an incident's title may name a resident) and the location.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NearbyItem")
            .field("record", &self.record)
            .field("grid", &self.grid.as_str())
            .field("distance_m", &self.distance_m)
            .finish_non_exhaustive()
    }
}
