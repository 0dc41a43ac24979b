//! The domain in plain types: no I/O, no automerge, no SQL.
//!
//! Every type that wraps outside input validates on construction and returns
//! [`InvalidField`] naming the field and the reason.

/// `Display`, `FromStr`, `TryFrom<String>` and `Into<String>` for a newtype around its
/// normalized `String` whose constructor is `parse(&str) -> Result<Self, InvalidField>`.
macro_rules! string_conversions {
    ($name:ident) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::model::InvalidField;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::model::InvalidField;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// Defines a closed set of codes with a stable text code (stored) and a Chinese label (shown).
macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal, $zh:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stable code stored in documents and tables.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code,)+ }
            }

            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh,)+ }
            }
        }
    };
}

mod grid;
mod id_number;
mod ids;
mod invalid;
mod leak_scan;
mod phone;
mod register;
mod uscc;

pub use grid::*;
pub use id_number::*;
pub use ids::*;
pub use invalid::{Invalid, InvalidField};
pub use leak_scan::{id_number_shapes, mobile_shapes};
pub use phone::*;
pub use register::*;
pub use uscc::*;
