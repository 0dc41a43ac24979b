//! Incidents 事件 and their closed loop: the matter catalog, roles and departments, the
//! actions of an incident's timeline, and the state every replica derives from them.

pub mod action;
pub mod analysis;
pub mod catalog;
pub mod doc;
pub mod roles;
pub mod state;

pub use action::{Action, ActionKind, Actor, Verdict};
pub use state::{IncidentState, Mark, NotApplied, Phase, derive};
