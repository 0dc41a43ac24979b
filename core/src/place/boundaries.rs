//! Grid boundaries: GeoJSON import and export, validation, point → grid, nearby.
//!
//! Boundaries arrive as a GeoJSON FeatureCollection, one feature per grid, with the
//! properties `code`, `name` and `kind` and a Polygon or MultiPolygon geometry in WGS-84
//! (`[longitude, latitude]`, as GeoJSON has it). [`import_geojson`] refuses a file that
//! is not exactly that, naming every bad feature by its index and code (never a
//! coordinate); [`check_partition`] then finds where grids overlap and where a
//! community's grids leave a gap, with the area in square metres, so that a bad
//! partition is never accepted silently. The server publishes each grid's geometry in
//! the reference document ([`crate::reference::GridMeta::boundary`]); a device builds a
//! [`GridIndex`] from what it received to answer "which grid is this point in".
//!
//! ```
//! use wangge_core::place::boundaries::{GridIndex, Located, check_partition, export_geojson, import_geojson};
//! use wangge_core::model::Wgs84;
//!
//! let geojson = r#"{"type": "FeatureCollection", "features": [{"type": "Feature",
//!     "properties": {"code": "440703001001001", "name": "长堤社区第1网格", "kind": "community"},
//!     "geometry": {"type": "Polygon", "coordinates": [[[113.080, 22.580], [113.084, 22.580],
//!         [113.084, 22.583], [113.080, 22.583], [113.080, 22.580]]]}}]}"#;
//! let grids = import_geojson(geojson)?;
//! assert!(check_partition(&grids).is_empty());
//! assert_eq!(import_geojson(&export_geojson(&grids))?, grids);
//!
//! let index = GridIndex::new(grids);
//! let Located::Grid { grid, community, township } = index.locate(Wgs84::new(22.581, 113.082)?) else {
//!     panic!("the point is inside the grid")
//! };
//! assert_eq!((grid.as_str(), community.as_str(), township.as_str()), ("440703001001001", "440703001001", "440703001"));
//! assert!(matches!(index.locate(Wgs84::new(22.590, 113.082)?), Located::Outside { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What is near a point ([`nearby`], and `Store::nearby` over the device's projection)
//! is measured along the great circle (haversine), nearest first.

use std::collections::HashMap;
use std::fmt;

use geo::orient::Direction;
use geo::{Coord, CoordinatePosition, GeodesicArea, LineString, MultiPolygon, Orient, Polygon, Validation};
use serde_json::{Map, Value};

use crate::model::{CodeFormat, Grid, GridCode, GridKind, Wgs84};
use crate::reference::GridMeta;

mod index;
mod nearby;
mod partition;

pub use index::{GridIndex, Located};
pub use nearby::{BoundingBox, Near, NearbyItem, NearbyRecord, bounding_box, distance_m, nearby};
pub use partition::{PartitionIssue, SLIVER_M2, check_partition};

/// One grid's boundary: its code, name and kind, and its area (WGS-84; `x` is the
/// longitude, `y` the latitude), each polygon's exterior counter-clockwise and its holes
/// clockwise (RFC 7946).
#[derive(Clone, PartialEq)]
pub struct GridBoundary {
    pub code: GridCode,
    pub name: String,
    pub kind: GridKind,
    pub area: MultiPolygon<f64>,
}

impl fmt::Debug for GridBoundary {
    /// The geometry is summarised: a boundary has hundreds of points, and a log line
    /// needs to say which grid, not where.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GridBoundary")
            .field("code", &self.code.as_str())
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("n_polygons", &self.area.0.len())
            .field("n_points", &geo::CoordsIter::coords_count(&self.area))
            .finish()
    }
}

impl GridBoundary {
    /// Whether the point lies in the grid: inside it or on its boundary, never in a hole.
    pub fn contains(&self, point: Wgs84) -> bool {
        self.area.coordinate_position(&point.to_point().0) != geo::coordinate_position::CoordPos::Outside
    }

    /// The great-circle distance from the point to the grid's nearest edge, in metres: 0
    /// inside the grid.
    pub fn distance_m(&self, point: Wgs84) -> f64 {
        index::distance_to(&self.area, point.to_point()).unwrap_or(f64::INFINITY)
    }

    /// The grid's area on the WGS-84 ellipsoid, in square metres.
    pub fn area_m2(&self) -> f64 {
        // Oriented first: the ellipsoid's area routines take a clockwise shell for the rest
        // of the Earth, and the fields are public.
        self.area.orient(Direction::Default).geodesic_area_unsigned()
    }

    /// The boundary as a GeoJSON geometry: a Polygon, or a MultiPolygon when the grid has
    /// several parts. This is what the reference document carries for the grid.
    pub fn geometry_json(&self) -> String {
        geojson::Geometry::new(geometry(&self.area)).to_string()
    }
}

/// Why a boundary file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BoundaryError {
    #[error("not JSON ({reason}) at line {line}, column {column}")]
    Json { reason: &'static str, line: usize, column: usize },
    #[error("not a GeoJSON FeatureCollection: its type is {found}")]
    NotAFeatureCollection { found: String },
    /// No `features` array, or an empty one.
    #[error("the FeatureCollection has no features")]
    NoFeatures,
    /// Every problem found, in feature order.
    #[error("{}", describe_features(.0))]
    Features(Vec<FeatureError>),
}

fn describe_features(errors: &[FeatureError]) -> String {
    const SHOWN: usize = 10;
    let mut text = format!("{} problem(s) in the features: ", errors.len());
    let shown: Vec<String> = errors.iter().take(SHOWN).map(ToString::to_string).collect();
    text.push_str(&shown.join("; "));
    if errors.len() > SHOWN {
        text.push_str(&format!("; and {} more", errors.len() - SHOWN));
    }
    text
}

/// A problem with one feature: its index in the file (from 0), its code when it has a
/// valid one, and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("feature {index}{}: {problem}", .code.as_ref().map(|code| format!(" ({code})")).unwrap_or_default())]
pub struct FeatureError {
    pub index: usize,
    pub code: Option<String>,
    pub problem: FeatureProblem,
}

/// What is wrong with a feature. Rings are counted from 0 within their polygon, ring 0
/// being the exterior; positions from 0 within their ring.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureProblem {
    #[error("not a Feature (its type is {found})")]
    NotAFeature { found: String },
    #[error("property `{property}` is missing")]
    MissingProperty { property: &'static str },
    #[error("property `{property}` {reason}")]
    InvalidProperty { property: &'static str, reason: String },
    #[error("no geometry")]
    NoGeometry,
    #[error("the geometry is a {found}, not a Polygon or MultiPolygon")]
    NotAPolygon { found: String },
    #[error("the coordinates {reason}")]
    Coordinates { reason: &'static str },
    #[error("position {position} of ring {ring} of polygon {polygon}: {reason}")]
    Position { polygon: usize, ring: usize, position: usize, reason: &'static str },
    #[error("ring {ring} of polygon {polygon} is not closed: its last position must repeat its first")]
    UnclosedRing { polygon: usize, ring: usize },
    #[error("ring {ring} of polygon {polygon} has {found} positions; a closed ring needs at least 4")]
    TooFewPoints { polygon: usize, ring: usize, found: usize },
    #[error("polygon {polygon} encloses no area")]
    NoArea { polygon: usize },
    /// A self-intersection, a hole outside its shell or crossing it, parts that overlap:
    /// in the words of geo's validation.
    #[error("invalid polygon: {reason}")]
    InvalidPolygon { reason: String },
    #[error("the code repeats feature {first}'s")]
    DuplicateCode { first: usize },
}

/// Reads grid boundaries from a GeoJSON FeatureCollection, with grid codes in the default
/// format (15 digits). See [`import_geojson_with`].
pub fn import_geojson(text: &str) -> Result<Vec<GridBoundary>, BoundaryError> {
    import_geojson_with(text, CodeFormat::default())
}

/// Reads grid boundaries from a GeoJSON FeatureCollection whose features have the
/// properties `code`, `name`, `kind` (a [`GridKind`] code) and a Polygon or MultiPolygon
/// geometry. Every feature is checked and every problem reported: valid polygons (closed
/// rings of at least 4 positions, no self-intersection, holes inside their shell, parts
/// that do not overlap, some area), coordinates within range, codes unique. A third
/// coordinate (altitude) is dropped; rings are oriented as RFC 7946 asks. Grids come back
/// in file order.
///
/// This does not check how the grids fit together: see [`check_partition`].
pub fn import_geojson_with(text: &str, format: CodeFormat) -> Result<Vec<GridBoundary>, BoundaryError> {
    let root: Value = serde_json::from_str(text).map_err(|error| BoundaryError::Json {
        reason: match error.classify() {
            serde_json::error::Category::Eof => "it ends early",
            serde_json::error::Category::Syntax => "a syntax error",
            serde_json::error::Category::Data | serde_json::error::Category::Io => "unreadable",
        },
        line: error.line(),
        column: error.column(),
    })?;
    let Value::Object(mut root) = root else {
        return Err(BoundaryError::NotAFeatureCollection { found: json_kind(&root) });
    };
    match root.get("type") {
        Some(Value::String(found)) if found == "FeatureCollection" => {}
        found => return Err(BoundaryError::NotAFeatureCollection { found: type_name(found) }),
    }
    let features = match root.remove("features") {
        Some(Value::Array(features)) if !features.is_empty() => features,
        _ => return Err(BoundaryError::NoFeatures),
    };
    let mut boundaries = Vec::with_capacity(features.len());
    let mut errors = Vec::new();
    let mut first_index: HashMap<String, usize> = HashMap::new();
    for (index, feature) in features.into_iter().enumerate() {
        match read_feature(feature, format) {
            Ok(boundary) => {
                let code = boundary.code.as_str().to_owned();
                if let Some(&first) = first_index.get(&code) {
                    errors.push(FeatureError {
                        index,
                        code: Some(code),
                        problem: FeatureProblem::DuplicateCode { first },
                    });
                } else {
                    first_index.insert(code, index);
                    boundaries.push(boundary);
                }
            }
            Err((code, problems)) => {
                if let Some(code) = &code {
                    first_index.entry(code.clone()).or_insert(index);
                }
                errors.extend(problems.into_iter().map(|problem| FeatureError { index, code: code.clone(), problem }));
            }
        }
    }
    if errors.is_empty() { Ok(boundaries) } else { Err(BoundaryError::Features(errors)) }
}

/// Writes boundaries as a GeoJSON FeatureCollection, one feature per line, in the order
/// given; [`import_geojson`] reads it back to the same boundaries.
pub fn export_geojson(boundaries: &[GridBoundary]) -> String {
    let features: Vec<String> = boundaries
        .iter()
        .map(|boundary| {
            let mut properties = Map::new();
            properties.insert("code".into(), boundary.code.as_str().into());
            properties.insert("name".into(), boundary.name.as_str().into());
            properties.insert("kind".into(), boundary.kind.code().into());
            let feature = geojson::Feature {
                bbox: None,
                geometry: Some(geojson::Geometry::new(geometry(&boundary.area))),
                id: None,
                properties: Some(properties),
                foreign_members: None,
            };
            feature.to_string()
        })
        .collect();
    format!("{{\"type\":\"FeatureCollection\",\"features\":[\n{}\n]}}\n", features.join(",\n"))
}

/// Reads a boundary as the reference document carries it (a GeoJSON Polygon or
/// MultiPolygon geometry, see [`GridBoundary::geometry_json`]). The server checked it on
/// import; this checks only that it is well-formed.
pub fn parse_geometry_json(text: &str) -> Result<MultiPolygon<f64>, FeatureProblem> {
    let value: Value =
        serde_json::from_str(text).map_err(|_| FeatureProblem::Coordinates { reason: "are not valid JSON" })?;
    read_geometry(value)
}

/// The boundaries of the grids in the reference document that have one, in code order,
/// and the codes of those whose code, kind or boundary this version cannot read (left
/// out, as a newer catalog would be).
pub fn from_reference(grids: &[(String, GridMeta)], format: CodeFormat) -> (Vec<GridBoundary>, Vec<String>) {
    let mut boundaries = Vec::new();
    let mut unreadable = Vec::new();
    for (code, meta) in grids {
        let Some(boundary) = &meta.boundary else { continue };
        let read = (|| {
            Some(GridBoundary {
                code: GridCode::parse(code, format).ok()?,
                name: meta.name.clone(),
                kind: GridKind::from_code(&meta.kind)?,
                area: parse_geometry_json(boundary).ok()?,
            })
        })();
        match read {
            Some(boundary) => boundaries.push(boundary),
            None => unreadable.push(code.clone()),
        }
    }
    boundaries.sort_by(|a, b| a.code.cmp(&b.code));
    unreadable.sort();
    (boundaries, unreadable)
}

/// The feature as a boundary, or its code (when valid) and every problem found.
fn read_feature(feature: Value, format: CodeFormat) -> Result<GridBoundary, (Option<String>, Vec<FeatureProblem>)> {
    let Value::Object(mut feature) = feature else {
        return Err((None, vec![FeatureProblem::NotAFeature { found: json_kind(&feature) }]));
    };
    match feature.get("type") {
        Some(Value::String(found)) if found == "Feature" => {}
        found => return Err((None, vec![FeatureProblem::NotAFeature { found: type_name(found) }])),
    }
    let mut problems = Vec::new();
    let properties = match feature.remove("properties") {
        Some(Value::Object(properties)) => properties,
        _ => Map::new(),
    };
    let text = |property: &'static str, problems: &mut Vec<FeatureProblem>| match properties.get(property) {
        None | Some(Value::Null) => {
            problems.push(FeatureProblem::MissingProperty { property });
            None
        }
        Some(Value::String(text)) => Some(text.as_str()),
        Some(_) => {
            problems.push(FeatureProblem::InvalidProperty { property, reason: "must be a string".into() });
            None
        }
    };
    let code = text("code", &mut problems).and_then(|code| match GridCode::parse(code, format) {
        Ok(code) => Some(code),
        Err(error) => {
            problems.push(FeatureProblem::InvalidProperty { property: "code", reason: error.reason.to_string() });
            None
        }
    });
    let name = text("name", &mut problems);
    let kind = text("kind", &mut problems).and_then(|kind| {
        let found = GridKind::from_code(kind);
        if found.is_none() {
            let kinds: Vec<&str> = GridKind::ALL.iter().map(|kind| kind.code()).collect();
            problems.push(FeatureProblem::InvalidProperty {
                property: "kind",
                reason: format!("is not a grid kind: one of {}", kinds.join(", ")),
            });
        }
        found
    });
    // The name follows the rules of a grid's name (trimmed, 1 to 50 characters).
    let grid = match (&code, name, kind) {
        (Some(code), Some(name), Some(kind)) => match Grid::new(code.clone(), name, kind) {
            Ok(grid) => Some(grid),
            Err(error) => {
                problems.push(FeatureProblem::InvalidProperty { property: "name", reason: error.reason.to_string() });
                None
            }
        },
        _ => None,
    };
    let area = match feature.remove("geometry") {
        None | Some(Value::Null) => {
            problems.push(FeatureProblem::NoGeometry);
            None
        }
        Some(geometry) => match read_geometry(geometry).and_then(|area| check_polygons(&area).map(|()| area)) {
            Ok(area) => Some(area),
            Err(problem) => {
                problems.push(problem);
                None
            }
        },
    };
    match (grid, area) {
        (Some(grid), Some(area)) if problems.is_empty() => {
            Ok(GridBoundary { code: grid.code, name: grid.name, kind: grid.kind, area })
        }
        _ => Err((code.map(|code| code.as_str().to_owned()), problems)),
    }
}

/// A GeoJSON Polygon or MultiPolygon geometry as a multipolygon, oriented, with every ring
/// closed and every position in range.
fn read_geometry(geometry: Value) -> Result<MultiPolygon<f64>, FeatureProblem> {
    let found = match &geometry {
        Value::Object(object) => object.get("type"),
        _ => None,
    };
    match found {
        Some(Value::String(kind)) if kind == "Polygon" || kind == "MultiPolygon" => {}
        found => return Err(FeatureProblem::NotAPolygon { found: type_name(found) }),
    }
    // serde's messages are not passed on: they may quote a coordinate.
    let geometry: geojson::Geometry = serde_json::from_value(geometry)
        .map_err(|_| FeatureProblem::Coordinates { reason: "are not arrays of [longitude, latitude] numbers" })?;
    let polygons = match geometry.value {
        geojson::GeometryValue::Polygon { coordinates } => vec![coordinates],
        geojson::GeometryValue::MultiPolygon { coordinates } => coordinates,
        other => return Err(FeatureProblem::NotAPolygon { found: other.type_name().to_owned() }),
    };
    if polygons.is_empty() {
        return Err(FeatureProblem::Coordinates { reason: "hold no polygon" });
    }
    let mut area = Vec::with_capacity(polygons.len());
    for (polygon_index, rings) in polygons.into_iter().enumerate() {
        let mut rings = rings
            .into_iter()
            .enumerate()
            .map(|(ring_index, ring)| read_ring(polygon_index, ring_index, ring))
            .collect::<Result<Vec<_>, _>>()?;
        if rings.is_empty() {
            return Err(FeatureProblem::Coordinates { reason: "hold a polygon without rings" });
        }
        let exterior = rings.remove(0);
        area.push(Polygon::new(exterior, rings));
    }
    Ok(MultiPolygon(area).orient(Direction::Default))
}

fn read_ring(
    polygon: usize,
    ring: usize,
    positions: Vec<geojson::Position>,
) -> Result<LineString<f64>, FeatureProblem> {
    if positions.len() < 4 {
        return Err(FeatureProblem::TooFewPoints { polygon, ring, found: positions.len() });
    }
    let mut coords = Vec::with_capacity(positions.len());
    for (position_index, position) in positions.iter().enumerate() {
        let fail = |reason| FeatureProblem::Position { polygon, ring, position: position_index, reason };
        let (lng, lat) = match position.as_slice() {
            [lng, lat] | [lng, lat, _] => (*lng, *lat),
            _ => return Err(fail("a position is [longitude, latitude] or [longitude, latitude, altitude]")),
        };
        if !lng.is_finite() || !lat.is_finite() {
            return Err(fail("not a finite number"));
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(fail(if (-90.0..=90.0).contains(&lng) {
                "latitude out of range; GeoJSON puts the longitude first: [longitude, latitude]"
            } else {
                "latitude out of range -90 to 90"
            }));
        }
        if !(-180.0..=180.0).contains(&lng) {
            return Err(fail("longitude out of range -180 to 180"));
        }
        coords.push(Coord { x: lng, y: lat });
    }
    if coords.first() != coords.last() {
        return Err(FeatureProblem::UnclosedRing { polygon, ring });
    }
    Ok(LineString(coords))
}

/// geo's validation (self-intersections, holes, overlapping parts), and some area.
fn check_polygons(area: &MultiPolygon<f64>) -> Result<(), FeatureProblem> {
    if let Err(error) = area.check_validation() {
        return Err(FeatureProblem::InvalidPolygon { reason: error.to_string() });
    }
    for (polygon, part) in area.0.iter().enumerate() {
        if part.geodesic_area_unsigned() < SLIVER_M2 {
            return Err(FeatureProblem::NoArea { polygon });
        }
    }
    Ok(())
}

/// The GeoJSON geometry of an area: a Polygon for one part, else a MultiPolygon.
fn geometry(area: &MultiPolygon<f64>) -> geojson::GeometryValue {
    let ring =
        |ring: &LineString<f64>| ring.coords().map(|coord| geojson::Position::from([coord.x, coord.y])).collect();
    let polygon = |polygon: &Polygon<f64>| -> Vec<Vec<geojson::Position>> {
        std::iter::once(polygon.exterior()).chain(polygon.interiors()).map(ring).collect()
    };
    match area.0.as_slice() {
        [single] => geojson::GeometryValue::Polygon { coordinates: polygon(single) },
        parts => geojson::GeometryValue::MultiPolygon { coordinates: parts.iter().map(polygon).collect() },
    }
}

/// A JSON value's `type` member as an error names it: the text, shortened, or what it is.
fn type_name(found: Option<&Value>) -> String {
    match found {
        None => "missing".into(),
        Some(Value::String(text)) => {
            let short: String = text.chars().take(40).collect();
            format!("`{short}`")
        }
        Some(other) => json_kind(other),
    }
}

fn json_kind(value: &Value) -> String {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object without a type",
    }
    .into()
}

#[cfg(test)]
pub(crate) mod testdata;

#[cfg(test)]
mod tests;
