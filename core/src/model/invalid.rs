//! The one error every validated type returns: which field, and why.
//!
//! Messages never echo the rejected value: it may be an ID number or a phone.

use std::fmt;

/// A value rejected by a validated type's constructor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidField {
    /// The field, as a caller names it: `id_number`, `phone`, `uscc`, `grid_code`, …
    pub field: &'static str,
    pub reason: Invalid,
}

impl InvalidField {
    pub fn new(field: &'static str, reason: Invalid) -> Self {
        Self { field, reason }
    }
}

/// Why a value was rejected. Callers match on this; it never carries the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    Empty,
    /// `expected` describes the allowed lengths, e.g. "18" or "2 to 50".
    Length {
        expected: &'static str,
        found: usize,
    },
    /// A character not allowed at this 1-based position.
    Character {
        position: usize,
    },
    /// The region (province, county) code is not a real one.
    UnknownRegion,
    /// The embedded date is not a real calendar date.
    Date,
    /// The embedded date lies in the future.
    DateInFuture,
    CheckCharacter {
        expected: char,
        found: char,
    },
    /// Any other rule, stated in words.
    Rule(&'static str),
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Empty => f.write_str("must not be empty"),
            Invalid::Length { expected, found } => {
                write!(f, "must be {expected} characters long, found {found}")
            }
            Invalid::Character { position } => write!(f, "character {position} is not allowed"),
            Invalid::UnknownRegion => f.write_str("the region code is not a real one"),
            Invalid::Date => f.write_str("the date is not a real calendar date"),
            Invalid::DateInFuture => f.write_str("the date lies in the future"),
            Invalid::CheckCharacter { expected, found } => {
                write!(f, "check character is {found}, expected {expected}")
            }
            Invalid::Rule(rule) => f.write_str(rule),
        }
    }
}
