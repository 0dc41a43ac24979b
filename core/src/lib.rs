//! wangge-core: the offline-first core of the wangge grid-work app.
//!
//! - [`model`]: the domain in plain, validated types.
//! - [`crdt`]: the grid's automerge documents and their shared genesis.
//! - [`Store`]: the device's SQLite store — documents, bookkeeping and the projection
//!   that every read uses.
//! - [`demo`]: a deterministic generator of realistic grids.

pub mod blobs;
pub mod calendar;
pub mod crdt;
pub mod demo;
mod error;
pub mod incident;
pub mod model;
pub mod place;
pub mod reference;
pub(crate) mod store;
pub mod sync;

pub use error::{Error, Result};
pub use store::{
    DepartmentDeadline, Due, FailedCapture, HouseholdSummary, ImportSummary, IncidentFilter, IncidentStats,
    IncidentSummary, NewIncident, OpenOptions, ResidentContact, ResidentHit, SCHEMA_VERSION, Store, SyncStatus,
    TimelineEntry, describe,
};
