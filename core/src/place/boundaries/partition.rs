//! How a set of grids fits together: overlaps between grids, and gaps inside a community.
//!
//! No community outline is given, so a gap can only be found where it is enclosed: a
//! hole in the union of a community's grids. Precisely, a **gap** is an area that
//!
//! - is enclosed by the grids of one community (a hole in their union),
//! - is covered by no grid at all (of that community or another), and
//! - is not a hole that a grid declares and that no grid fills: a grid drawn around a
//!   lake or a site outside grid management leaves it out on purpose. A hole cut for a
//!   dedicated grid that fills only part of it leaves the rest as a gap.
//!
//! Land between communities, or along a community's outer edge, is not seen: that needs
//! the community outlines. An **overlap** is area shared by two grids, of any
//! communities, except a dedicated grid (unit, compound, park, sea) lying wholly inside
//! a basic grid, which is how dedicated grids are drawn (see [`GridKind`]).
//!
//! Areas are geodesic (WGS-84 ellipsoid); anything under [`SLIVER_M2`] is floating-point
//! noise from the polygon operations, or from two files digitised a little apart.
//!
//! [`GridKind`]: crate::model::GridKind

use std::collections::BTreeMap;
use std::fmt;

use geo::orient::Direction;
use geo::{BooleanOps, BoundingRect, Distance, Euclidean, GeodesicArea, MultiPolygon, Orient, Polygon, unary_union};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, RTreeObject};

use super::GridBoundary;
use crate::model::GridCode;

/// Overlaps and gaps smaller than this many square metres are ignored.
pub const SLIVER_M2: f64 = 1.0;

/// Something wrong with how grids fit together, with its size.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionIssue {
    /// Grids `a` and `b` (`a` the smaller code) share `area_m2` square metres.
    Overlap { a: GridCode, b: GridCode, area_m2: f64 },
    /// `area_m2` square metres enclosed by the grids of `community` (its 12-digit code in
    /// the default format) belong to no grid; `bordering` are the grids around it.
    Gap { community: String, bordering: Vec<GridCode>, area_m2: f64 },
}

impl PartitionIssue {
    pub fn area_m2(&self) -> f64 {
        match self {
            PartitionIssue::Overlap { area_m2, .. } | PartitionIssue::Gap { area_m2, .. } => *area_m2,
        }
    }

    /// The grids the issue concerns.
    pub fn grids(&self) -> Vec<&GridCode> {
        match self {
            PartitionIssue::Overlap { a, b, .. } => vec![a, b],
            PartitionIssue::Gap { bordering, .. } => bordering.iter().collect(),
        }
    }
}

impl fmt::Display for PartitionIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionIssue::Overlap { a, b, area_m2 } => write!(f, "grids {a} and {b} overlap by {area_m2:.0} m²"),
            PartitionIssue::Gap { community, bordering, area_m2 } => {
                let codes: Vec<&str> = bordering.iter().map(GridCode::as_str).collect();
                write!(f, "a gap of {area_m2:.0} m² in community {community}, between grids {}", codes.join(", "))
            }
        }
    }
}

/// Within this many degrees (about 0.1 m) a grid borders a gap: the polygon operations
/// move shared edges by far less, but not by nothing.
const TOUCHING_DEGREES: f64 = 1e-6;

/// The geodesic area of the result of a polygon operation, whose rings may wind either
/// way (the ellipsoid's area routines take a clockwise shell for the rest of the Earth).
fn area_m2(area: MultiPolygon<f64>) -> f64 {
    area.orient(Direction::Default).geodesic_area_unsigned()
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

fn rectangle(area: &MultiPolygon<f64>) -> Option<Rectangle<[f64; 2]>> {
    let rect = area.bounding_rect()?;
    Some(Rectangle::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]))
}

/// Overlaps between any two grids and gaps inside each community, overlaps first (by
/// code), then gaps (by community). Empty when the grids tile their communities.
pub fn check_partition(boundaries: &[GridBoundary]) -> Vec<PartitionIssue> {
    let entries: Vec<Entry> = boundaries
        .iter()
        .enumerate()
        .filter_map(|(i, boundary)| Some(GeomWithData::new(rectangle(&boundary.area)?, i)))
        .collect();
    let tree = RTree::bulk_load(entries);
    let mut issues = overlaps(boundaries, &tree);
    issues.extend(gaps(boundaries, &tree));
    issues
}

fn overlaps(boundaries: &[GridBoundary], tree: &RTree<Entry>) -> Vec<PartitionIssue> {
    let mut pairs: Vec<(usize, usize)> = tree
        .intersection_candidates_with_other_tree(tree)
        .filter(|(x, y)| x.data < y.data)
        .map(|(x, y)| (x.data, y.data))
        .collect();
    pairs.sort_unstable();
    let mut issues = Vec::new();
    for (i, j) in pairs {
        let (a, b) = (&boundaries[i], &boundaries[j]);
        let shared = area_m2(a.area.intersection(&b.area));
        if shared < SLIVER_M2 || nested(a, b, shared) || nested(b, a, shared) {
            continue;
        }
        let (a, b) = if a.code <= b.code { (a, b) } else { (b, a) };
        issues.push(PartitionIssue::Overlap { a: a.code.clone(), b: b.code.clone(), area_m2: shared });
    }
    issues.sort_by(|x, y| x.grids().cmp(&y.grids()));
    issues
}

/// Whether `inner` is a dedicated grid lying wholly inside the basic grid `outer`, given
/// the area they share.
fn nested(inner: &GridBoundary, outer: &GridBoundary, shared_m2: f64) -> bool {
    if inner.kind.is_basic() || !outer.kind.is_basic() {
        return false;
    }
    let inner_m2 = inner.area_m2();
    inner_m2 - shared_m2 < SLIVER_M2.max(inner_m2 * 1e-6)
}

fn gaps(boundaries: &[GridBoundary], tree: &RTree<Entry>) -> Vec<PartitionIssue> {
    let mut communities: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, boundary) in boundaries.iter().enumerate() {
        communities.entry(boundary.code.community_code()).or_default().push(i);
    }
    let mut issues = Vec::new();
    for (community, members) in communities {
        let union = unary_union(members.iter().map(|&i| &boundaries[i].area));
        for hole in union.0.iter().flat_map(Polygon::interiors) {
            let enclosed = Polygon::new(hole.clone(), Vec::new());
            let Some(envelope) = rectangle(&MultiPolygon(vec![enclosed.clone()])) else { continue };
            let near: Vec<usize> = tree.locate_in_envelope_intersecting(&envelope.envelope()).map(|e| e.data).collect();
            let mut rest = MultiPolygon(vec![enclosed]);
            for &i in &near {
                let other = &boundaries[i];
                // Any grid may lie inside the hole: an island of this community (a dedicated
                // grid in the hole cut for it) or a grid of another.
                rest = rest.difference(&other.area);
                for declared in other.area.0.iter().flat_map(Polygon::interiors) {
                    let declared = Polygon::new(declared.clone(), Vec::new());
                    if left_empty(boundaries, tree, i, &declared) {
                        rest = rest.difference(&declared);
                    }
                }
            }
            let area_m2 = area_m2(rest.clone());
            if area_m2 < SLIVER_M2 {
                continue;
            }
            let mut bordering: Vec<GridCode> = members
                .iter()
                .map(|&i| &boundaries[i])
                .filter(|boundary| touches(&boundary.area, &rest))
                .map(|boundary| boundary.code.clone())
                .collect();
            bordering.sort();
            issues.push(PartitionIssue::Gap { community: community.to_owned(), bordering, area_m2 });
        }
    }
    issues
}

/// Whether no grid but its owner reaches into the hole `declared` of grid `owner`.
fn left_empty(boundaries: &[GridBoundary], tree: &RTree<Entry>, owner: usize, declared: &Polygon<f64>) -> bool {
    let Some(envelope) = rectangle(&MultiPolygon(vec![declared.clone()])) else { return true };
    tree.locate_in_envelope_intersecting(&envelope.envelope())
        .filter(|entry| entry.data != owner)
        .all(|entry| area_m2(boundaries[entry.data].area.intersection(declared)) < SLIVER_M2)
}

fn touches(a: &MultiPolygon<f64>, b: &MultiPolygon<f64>) -> bool {
    a.0.iter().any(|a| b.0.iter().any(|b| Euclidean.distance(a, b) < TOUCHING_DEGREES))
}
