//! Point → grid: an R-tree over the grids' bounding boxes, then exact point-in-polygon.

use std::fmt;

use geo::coordinate_position::CoordPos;
use geo::{Closest, CoordinatePosition, Distance, Haversine, HaversineClosestPoint, MultiPolygon, Point};
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

use super::GridBoundary;
use crate::model::{GridCode, Wgs84};

/// Metres per degree of latitude on the mean sphere: the R-tree's unit, after longitudes
/// are scaled by the cosine of the grids' mean latitude.
const METRES_PER_DEGREE: f64 = super::nearby::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// How much the R-tree's flat distances may understate true ones: longitudes are scaled
/// at one latitude, and a city spans a degree or two (a 10% margin covers 25° of spread at
/// China's latitudes).
const FLAT_DISTANCE_MARGIN: f64 = 0.9;

/// Where a point lies among the grids.
#[derive(Debug, Clone, PartialEq)]
pub enum Located {
    /// In this grid; `community` and `township` are its codes' prefixes.
    ///
    /// A point in a dedicated grid drawn inside a basic one is in the dedicated grid. A
    /// point exactly on the line between two grids is given to the one with the smaller
    /// code: every device decides the same.
    Grid { grid: GridCode, community: String, township: String },
    /// Inside two or more grids that overlap here (a partition issue the operator
    /// accepted): no grid is picked, the caller decides. Codes in order.
    Ambiguous { grids: Vec<GridCode> },
    /// In no grid: not guessed. The nearest grid and the distance to its edge, in metres.
    Outside { nearest_grid: GridCode, distance_m: f64 },
    /// There are no boundaries to decide with.
    NoBoundaries,
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// The grids' boundaries with an R-tree over their bounding boxes.
pub struct GridIndex {
    grids: Vec<GridBoundary>,
    tree: RTree<Entry>,
    /// cos(mean latitude): longitudes are multiplied by it in the tree, so that the tree's
    /// distances are nearly proportional to metres.
    x_scale: f64,
}

impl fmt::Debug for GridIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GridIndex").field("n_grids", &self.grids.len()).finish()
    }
}

impl GridIndex {
    /// Indexes the boundaries (kept in code order).
    pub fn new(mut grids: Vec<GridBoundary>) -> GridIndex {
        grids.sort_by(|a, b| a.code.cmp(&b.code));
        let rects: Vec<(usize, geo::Rect<f64>)> = grids
            .iter()
            .enumerate()
            .filter_map(|(i, grid)| Some((i, geo::BoundingRect::bounding_rect(&grid.area)?)))
            .collect();
        let mean_lat = if rects.is_empty() {
            0.0
        } else {
            rects.iter().map(|(_, rect)| rect.center().y).sum::<f64>() / rects.len() as f64
        };
        let x_scale = mean_lat.to_radians().cos().max(0.01);
        let entries = rects
            .into_iter()
            .map(|(i, rect)| {
                let min = [rect.min().x * x_scale, rect.min().y];
                let max = [rect.max().x * x_scale, rect.max().y];
                GeomWithData::new(Rectangle::from_corners(min, max), i)
            })
            .collect();
        GridIndex { grids, tree: RTree::bulk_load(entries), x_scale }
    }

    pub fn len(&self) -> usize {
        self.grids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grids.is_empty()
    }

    /// The boundaries, in code order.
    pub fn grids(&self) -> &[GridBoundary] {
        &self.grids
    }

    pub fn grid(&self, code: &GridCode) -> Option<&GridBoundary> {
        self.grids.binary_search_by(|grid| grid.code.cmp(code)).ok().map(|i| &self.grids[i])
    }

    fn key(&self, point: Wgs84) -> [f64; 2] {
        [point.lng() * self.x_scale, point.lat()]
    }

    /// Which grid the point is in; see [`Located`] for how overlaps, dedicated grids and
    /// points on a shared edge are decided.
    pub fn locate(&self, point: Wgs84) -> Located {
        if self.grids.is_empty() {
            return Located::NoBoundaries;
        }
        let coord = point.to_point().0;
        // Grids are kept in code order, so sorting the candidates' positions sorts them by code.
        let mut candidates: Vec<usize> =
            self.tree.locate_all_at_point(&self.key(point)).map(|entry| entry.data).collect();
        candidates.sort_unstable();
        let mut inside = Vec::new();
        let mut on_edge = Vec::new();
        for i in candidates {
            let grid = &self.grids[i];
            match grid.area.coordinate_position(&coord) {
                CoordPos::Inside => inside.push(grid),
                CoordPos::OnBoundary => on_edge.push(grid),
                CoordPos::Outside => {}
            }
        }
        let chosen = if !inside.is_empty() {
            match pick(inside) {
                Ok(grid) => grid,
                Err(grids) => return Located::Ambiguous { grids },
            }
        } else if !on_edge.is_empty() {
            // On a line between grids: a dedicated grid's own edge counts as its own,
            // otherwise the smaller code (the list is in code order).
            pick(on_edge.clone()).unwrap_or(on_edge[0])
        } else {
            return match self.nearest(point) {
                Some((grid, distance_m)) => Located::Outside { nearest_grid: grid.code.clone(), distance_m },
                None => Located::NoBoundaries,
            };
        };
        Located::Grid {
            grid: chosen.code.clone(),
            community: chosen.code.community_code().to_owned(),
            township: chosen.code.township_code().to_owned(),
        }
    }

    /// The grid nearest to the point and the distance to its edge in metres (0 inside it).
    pub fn nearest(&self, point: Wgs84) -> Option<(&GridBoundary, f64)> {
        let from = point.to_point();
        let mut best: Option<(&GridBoundary, f64)> = None;
        for (entry, flat_2) in self.tree.nearest_neighbor_iter_with_distance_2(&self.key(point)) {
            let flat_m = flat_2.sqrt() * METRES_PER_DEGREE;
            if let Some((_, best_m)) = best
                && flat_m * FLAT_DISTANCE_MARGIN > best_m
            {
                break;
            }
            let grid = &self.grids[entry.data];
            let Some(distance) = distance_to(&grid.area, from) else { continue };
            let closer = match best {
                None => true,
                Some((best_grid, best_m)) => distance < best_m || (distance == best_m && grid.code < best_grid.code),
            };
            if closer {
                best = Some((grid, distance));
            }
        }
        best
    }
}

/// The one grid to take among several that hold a point: the only one, or the only
/// dedicated grid among basic ones; otherwise all their codes.
fn pick(grids: Vec<&GridBoundary>) -> Result<&GridBoundary, Vec<GridCode>> {
    if let [grid] = grids.as_slice() {
        return Ok(grid);
    }
    let dedicated: Vec<&GridBoundary> = grids.iter().copied().filter(|grid| !grid.kind.is_basic()).collect();
    if let [grid] = dedicated.as_slice() {
        return Ok(grid);
    }
    let mut codes: Vec<GridCode> = grids.iter().map(|grid| grid.code.clone()).collect();
    codes.sort();
    Err(codes)
}

/// The great-circle distance in metres from a point to an area's nearest edge, 0 inside.
pub(super) fn distance_to(area: &MultiPolygon<f64>, from: Point<f64>) -> Option<f64> {
    area.0
        .iter()
        .filter_map(|polygon| match polygon.haversine_closest_point(&from) {
            Closest::Intersection(_) => Some(0.0),
            Closest::SinglePoint(closest) => Some(Haversine.distance(closest, from)),
            Closest::Indeterminate => None,
        })
        .min_by(f64::total_cmp)
}
