//! The core's one error type.
//!
//! Messages carry record ids, field names and counts, never personal data (names,
//! ID numbers, phones, coordinates).

use std::path::PathBuf;

use crate::model::{InvalidField, RecordRef};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] InvalidField),

    #[error(transparent)]
    Calendar(#[from] crate::calendar::CalendarError),

    #[error(transparent)]
    Catalog(#[from] crate::incident::catalog::CatalogError),

    #[error(
        "the store was written by a newer version of wangge (schema {found}, this version reads up to {supported}): update the app; the file was left untouched"
    )]
    IncompatibleVersion { found: u32, supported: u32 },

    #[error(
        "the store file is not a readable database: it was moved aside to {moved_to:?}; a new, empty store can be opened"
    )]
    Corrupt { moved_to: PathBuf },

    #[error("the store's key does not open it: the file was left untouched")]
    WrongKey,

    #[error("the store is already open in this process: use that `Store`, or close it first")]
    AlreadyOpen,

    #[error("the store is already encrypted: open it with its key; nothing was changed")]
    AlreadyEncrypted,

    #[error("export {file} cannot be read: {reason}")]
    ExportUnreadable { file: String, reason: &'static str },

    #[error("incident {incident} not found")]
    UnknownIncident { incident: crate::model::IncidentId },

    #[error("catalog item {code} is not in the matter catalog")]
    UnknownCatalogItem { code: String },

    #[error("department {code} is not in the matter catalog's departments")]
    UnknownDepartment { code: String },

    #[error("{record} not found")]
    NotFound { record: RecordRef },

    #[error("{record} already exists")]
    AlreadyExists { record: RecordRef },

    #[error("{record} is still referred to by {n_referrers} other record(s): archive it instead, or erase those first")]
    StillReferenced { record: RecordRef, n_referrers: usize },

    #[error("grid {grid} is not on this device")]
    UnknownGrid { grid: String },

    #[error("this device does not hold the sensitive data of grid {grid}")]
    NoSensitiveAccess { grid: String },

    #[error("{record} has no field {field}")]
    UnknownField { record: RecordRef, field: String },

    #[error("document {doc}: {reason}")]
    Document { doc: String, reason: String },

    #[error("stored value of {field} of {record} cannot be read: {reason}")]
    StoredValue { record: String, field: &'static str, reason: String },

    #[error("this device is not enrolled with a sync server: enroll with a code first")]
    NotEnrolled,

    #[error("this device was revoked by the operator: its data must be exported and wiped")]
    Revoked,

    #[error("the sync server refused the request ({status} {code}): {message}")]
    Refused { status: u16, code: String, message: String, doc: Option<String> },

    #[error("could not reach the sync server: {reason}")]
    Transport { reason: String },

    #[error("the blob is {size} bytes, over the limit of {limit}: make it smaller")]
    BlobTooLarge { size: u64, limit: u64 },

    #[error("blob {hash}: its content does not match its hash")]
    BlobMismatch { hash: String },

    #[error("blob {hash} cannot be decrypted with this store's key (or was damaged)")]
    BlobUnreadable { hash: String },

    #[error("blob {hash} is not on this device")]
    UnknownBlob { hash: String },

    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),

    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn document(doc: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        Error::Document { doc: doc.to_string(), reason: reason.to_string() }
    }
}
