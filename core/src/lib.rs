//! wangge-core: the offline-first core of the wangge grid-work app.
//!
//! - [`model`]: the domain in plain, validated types.
//! - [`activity`]: visits, check-ins and patrols (with their tracks).
//! - [`place`]: coordinates, grid boundaries, locating.
//! - [`crdt`]: the grid's automerge documents and their shared genesis.
//! - [`Store`]: the device's SQLite store — documents, bookkeeping and the projection
//!   that every read uses.
//! - [`demo`]: a deterministic generator of realistic grids.

// First: its `code_enum!` is used by the modules after it.
#[macro_use]
pub mod model;

pub mod activity;
mod at_rest;
pub mod blobs;
pub mod calendar;
pub mod card;
pub mod clock;
pub mod crdt;
pub mod demo;
mod error;
pub mod incident;
pub mod place;
pub mod reference;
pub(crate) mod store;
pub mod sync;

pub use error::{Error, Result};
/// The hook a test uses to stop a store's migration midway (`core/tests/upgrade.rs`).
#[doc(hidden)]
pub use store::AFTER_UPGRADE_STEP;
pub use store::{
    DepartmentDeadline, Due, FailedCapture, HouseholdSummary, ImportSummary, IncidentFilter, IncidentStats,
    IncidentSummary, NewIncident, OpenOptions, RemovedChanges, ResidentContact, ResidentHit, SCHEMA_VERSION, Store,
    SyncStatus, TimelineEntry, check_action, clock_deadline, describe, wipe_files,
};
