//! The domain in plain types: no I/O, no automerge, no SQL.
//!
//! Every type that wraps outside input validates on construction and returns
//! [`InvalidField`] naming the field and the reason.

mod grid;
mod id_number;
mod ids;
mod invalid;
mod phone;
mod register;
mod uscc;

pub use grid::*;
pub use id_number::*;
pub use ids::*;
pub use invalid::{Invalid, InvalidField};
pub use phone::*;
pub use register::*;
pub use uscc::*;
