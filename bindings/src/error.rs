//! The one error of the bindings, with the variants a caller acts on differently, mapped
//! from the core's errors in one place.
//!
//! Messages are the core's: they name fields, record ids and counts, never personal data.

use wangge_core::Error;

/// What went wrong, by what the app should do about it.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ApiError {
    /// The input is not valid (a field, a code, an ID number, a date): show the message
    /// next to the field and let the worker correct it.
    #[error("{reason}")]
    InvalidInput { field: Option<String>, reason: String },
    /// The record, incident, grid or blob is not on this device.
    #[error("{reason}")]
    NotFound { reason: String },
    /// This device or role may not do that (sensitive data of a grid it does not hold).
    #[error("{reason}")]
    NotAllowed { reason: String },
    /// Sync needs enrollment first: ask the worker for the enrollment code.
    #[error("{reason}")]
    NotEnrolled { reason: String },
    /// The operator revoked this device: export what is unsynced, then wipe.
    #[error("{reason}")]
    Revoked { reason: String },
    /// The server could not be reached or timed out: try again later; nothing was lost.
    #[error("{reason}")]
    Network { reason: String },
    /// The server refused the request (`status` and the protocol's error `code`).
    #[error("{reason}")]
    Refused { status: i32, code: String, reason: String },
    /// The store cannot be used as it is: written by a newer app version, corrupt (moved
    /// aside), a key that does not open it (left untouched), already open, already
    /// encrypted (when converting), an export that does not decrypt, or a file or database
    /// error.
    #[error("{reason}")]
    Storage { reason: String },
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let reason = error.to_string();
        match error {
            Error::Invalid(invalid) => ApiError::InvalidInput { field: Some(invalid.field.to_owned()), reason },
            Error::Calendar(_)
            | Error::Catalog(_)
            | Error::UnknownCatalogItem { .. }
            | Error::UnknownDepartment { .. }
            | Error::UnknownField { .. }
            | Error::StillReferenced { .. }
            | Error::AlreadyExists { .. }
            | Error::BlobTooLarge { .. }
            | Error::BlobMismatch { .. } => ApiError::InvalidInput { field: None, reason },
            Error::UnknownIncident { .. }
            | Error::NotFound { .. }
            | Error::UnknownGrid { .. }
            | Error::UnknownBlob { .. } => ApiError::NotFound { reason },
            Error::NoSensitiveAccess { .. } => ApiError::NotAllowed { reason },
            Error::NotEnrolled => ApiError::NotEnrolled { reason },
            Error::Revoked => ApiError::Revoked { reason },
            Error::Transport { .. } => ApiError::Network { reason },
            Error::Refused { status, code, .. } => ApiError::Refused { status: i32::from(status), code, reason },
            Error::IncompatibleVersion { .. }
            | Error::Corrupt { .. }
            | Error::WrongKey
            | Error::AlreadyEncrypted
            | Error::ExportUnreadable { .. }
            | Error::BlobUnreadable { .. }
            | Error::AlreadyOpen
            | Error::Document { .. }
            | Error::StoredValue { .. }
            | Error::Sql(_)
            | Error::Io(_) => ApiError::Storage { reason },
        }
    }
}

impl From<wangge_core::model::InvalidField> for ApiError {
    fn from(invalid: wangge_core::model::InvalidField) -> Self {
        Error::from(invalid).into()
    }
}

/// An input the bindings parse themselves (a date, a code) was not valid.
pub(crate) fn invalid(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidInput { field: Some(field.to_owned()), reason: format!("{field}: {message}") }
}

pub(crate) type Result<T> = std::result::Result<T, ApiError>;

/// A count for the apps: Kotlin and Java have no unsigned integers, so counts cross as
/// signed (saturating; nothing the device counts comes near).
pub(crate) fn count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// A small count (pages, residents, positions) as `i32`.
pub(crate) fn small_count(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

/// A number from the app that must fit the core's unsigned type.
pub(crate) fn in_range<T: TryFrom<i32>>(field: &str, n: i32) -> Result<T> {
    T::try_from(n).map_err(|_| invalid(field, "out of range"))
}
