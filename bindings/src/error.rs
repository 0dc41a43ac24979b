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
    #[error("{message}")]
    InvalidInput { field: Option<String>, message: String },
    /// The record, incident, grid or blob is not on this device.
    #[error("{message}")]
    NotFound { message: String },
    /// This device or role may not do that (sensitive data of a grid it does not hold).
    #[error("{message}")]
    NotAllowed { message: String },
    /// Sync needs enrollment first: ask the worker for the enrollment code.
    #[error("{message}")]
    NotEnrolled { message: String },
    /// The operator revoked this device: export what is unsynced, then wipe.
    #[error("{message}")]
    Revoked { message: String },
    /// The server could not be reached or timed out: try again later; nothing was lost.
    #[error("{message}")]
    Network { message: String },
    /// The server refused the request (`status` and the protocol's error `code`).
    #[error("{message}")]
    Refused { status: u16, code: String, message: String },
    /// The store cannot be used as it is: written by a newer app version, corrupt (moved
    /// aside), already open, or a file or database error.
    #[error("{message}")]
    Storage { message: String },
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Invalid(invalid) => ApiError::InvalidInput { field: Some(invalid.field.to_owned()), message },
            Error::Calendar(_)
            | Error::Catalog(_)
            | Error::UnknownCatalogItem { .. }
            | Error::UnknownDepartment { .. }
            | Error::UnknownField { .. }
            | Error::StillReferenced { .. }
            | Error::AlreadyExists { .. }
            | Error::BlobTooLarge { .. }
            | Error::BlobMismatch { .. } => ApiError::InvalidInput { field: None, message },
            Error::UnknownIncident { .. }
            | Error::NotFound { .. }
            | Error::UnknownGrid { .. }
            | Error::UnknownBlob { .. } => ApiError::NotFound { message },
            Error::NoSensitiveAccess { .. } => ApiError::NotAllowed { message },
            Error::NotEnrolled => ApiError::NotEnrolled { message },
            Error::Revoked => ApiError::Revoked { message },
            Error::Transport { .. } => ApiError::Network { message },
            Error::Refused { status, code, .. } => ApiError::Refused { status, code, message },
            Error::IncompatibleVersion { .. }
            | Error::Corrupt { .. }
            | Error::AlreadyOpen
            | Error::Document { .. }
            | Error::StoredValue { .. }
            | Error::Sql(_)
            | Error::Io(_) => ApiError::Storage { message },
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
    ApiError::InvalidInput { field: Some(field.to_owned()), message: format!("{field}: {message}") }
}

pub(crate) type Result<T> = std::result::Result<T, ApiError>;
