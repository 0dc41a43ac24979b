//! Grid boundaries: GeoJSON import and export, validation, point → grid, nearby.
