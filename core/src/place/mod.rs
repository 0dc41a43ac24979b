//! The core's sense of place: coordinates, grid boundaries and locating.
//!
//! - [`coords`]: WGS-84 (what the core stores), GCJ-02 and BD-09, and whether a point is in
//!   mainland China.
//! - [`boundaries`]: grid boundaries as GeoJSON, validated; point → grid with a spatial
//!   index; what is near a point.

pub mod boundaries;
pub mod coords;
