//! The server's storage, behind a trait: SQLite (one embedded file) or PostgreSQL (one
//! database that several server nodes share).
//!
//! It keeps workers, enrollment codes, devices (tokens hashed), every accepted change once
//! in a log with a sequence number, a snapshot per document, the scopes each document
//! belongs to, which documents each device holds, and blobs (attachments) in chunks with
//! the documents that refer to them.
//!
//! [`SqliteStorage`] (`storage/sqlite.rs`) is the embedded default; [`PostgresStorage`]
//! (`storage/postgres.rs`) serves several nodes. `tests/storage` holds one conformance suite
//! that runs against both. [`open`] picks one from the `--database` value.
//!
//! Two guarantees hold on both, whatever number of processes share the database:
//! - a document's snapshot is never overwritten by one made from an older version
//!   ([`Storage::document`] reads the version, [`Storage::commit`] compares it);
//! - the log becomes visible in sequence order: once a change with sequence number `n` can
//!   be read, every change below `n` that will ever exist can be read too. So a reader that
//!   takes [`Storage::max_seq`] and then reads the log up to it never skips a change. (SQLite
//!   has one writer at a time; PostgreSQL serializes the log's appends with a lock.)

use std::collections::{HashMap, HashSet};

mod boxed;
mod group_commit;
mod postgres;
mod sqlite;

pub use postgres::{
    LOG_LOCK as POSTGRES_LOG_LOCK, PostgresError, PostgresStorage, SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION,
};
pub use sqlite::{RESTORE_SEQ_GAP, SCHEMA_VERSION, SqliteStorage};

/// Opens the database named by `--database`: a `postgres://` or `postgresql://` URL is a
/// PostgreSQL database, anything else the path of a SQLite file.
pub fn open(database: &str) -> Result<Box<dyn Storage>> {
    if is_postgres_url(database) {
        Ok(Box::new(PostgresStorage::connect(database)?))
    } else {
        Ok(Box::new(SqliteStorage::open(std::path::Path::new(database))?))
    }
}

/// Whether `--database` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("postgresql error: {0}")]
    Postgres(PostgresError),
    /// A [`DocUpdate`] was made from a version of the document that is no longer the
    /// stored one (another request, perhaps on another node, wrote it first): nothing was
    /// written; make the update again from the stored document.
    #[error("{doc} changed since it was read")]
    DocumentChanged { doc: String },
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the database was written by a newer wangge-server (schema {found}, this version reads up to {supported}): update the server; the database was left untouched"
    )]
    NewerSchema { found: i64, supported: i64 },
}

impl StorageError {
    /// The same error again, for each write of a group that one failure undid (the
    /// clients' errors are not `Clone`: theirs is kept as text).
    pub(crate) fn duplicate(&self) -> StorageError {
        match self {
            StorageError::Sql(rusqlite::Error::SqliteFailure(code, message)) => {
                StorageError::Sql(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            StorageError::DocumentChanged { doc } => StorageError::DocumentChanged { doc: doc.clone() },
            StorageError::NewerSchema { found, supported } => {
                StorageError::NewerSchema { found: *found, supported: *supported }
            }
            other => StorageError::Conflict(other.to_string()),
        }
    }
}

/// A worker, as an operator created them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub person: String,
    /// A role code (`wangge_core::incident::roles::Role::code`).
    pub role: String,
    pub department: Option<String>,
    /// Grid codes; for center staff also area codes (a county's 6 digits, a township's
    /// 9, a community's 12), which stand for every grid within the area.
    pub grids: Vec<String>,
}

/// A worker's public contact: the name and work phone posted on the card of their grids
/// (grid staff's names and contacts are public by regulation; residents' are not). Both
/// validated and normalized by the service. `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WorkerContact {
    pub name: Option<String>,
    pub phone: Option<String>,
}

impl std::fmt::Debug for WorkerContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContact")
            .field("name", &self.name.as_ref().map(|_| "…"))
            .field("phone", &self.phone.as_ref().map(|_| "…"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridRecord {
    pub code: String,
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub person: String,
    pub actor: Vec<u8>,
    pub revoked: bool,
    /// When its token stops working (ms since 1970); use pushes it further out. `None`:
    /// enrolled before tokens expired (its next use sets it).
    pub token_expires_ms: Option<i64>,
    /// Its last authenticated request (ms since 1970), to the minute.
    pub last_seen_ms: Option<i64>,
    /// What it reported with its last sync, to the minute.
    pub last_sync: Option<SyncReport>,
}

/// What a device reported with a sync (for the operator's list of devices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// When the sync was answered (ms since 1970, the server's clock).
    pub at_ms: i64,
    /// The wangge-core version the device runs.
    pub version: String,
    /// Its edits waiting to be pushed once the sync was answered.
    pub pending: i64,
}

/// Where a document stands with a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldState {
    /// A snapshot was sent; not yet confirmed.
    Sent,
    /// Confirmed: the device has it up to `up_to_seq`, and gets later changes.
    Held,
    /// The device was told to remove it; not yet confirmed.
    Removing,
    /// The device holds an older generation of it (the server compacted it): it gets the
    /// current one whole, or, a client that cannot take it so, is told to remove it first.
    Stale,
}

impl HeldState {
    fn code(self) -> &'static str {
        match self {
            HeldState::Sent => "sent",
            HeldState::Held => "held",
            HeldState::Removing => "removing",
            HeldState::Stale => "stale",
        }
    }

    fn from_code(code: &str) -> HeldState {
        match code {
            "sent" => HeldState::Sent,
            "removing" => HeldState::Removing,
            "stale" => HeldState::Stale,
            _ => HeldState::Held,
        }
    }
}

/// One accepted change, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: i64,
    pub doc: String,
    pub hash: Vec<u8>,
    pub actor: Vec<u8>,
    pub bytes: Vec<u8>,
    /// When the server stored it (ms since 1970, the server's clock); `None` for changes
    /// stored before the server kept it.
    pub received_ms: Option<i64>,
}

/// What a pull starts from (`Storage::pull_view`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullView {
    /// The highest sequence number visible when the rest was read.
    pub horizon: i64,
    /// The documents the device may read.
    pub visible: HashSet<String>,
    /// What the device holds or is being sent or told to remove: doc → (up to seq, state).
    pub held: HashMap<String, (i64, HeldState)>,
}

/// A document as stored: its snapshot and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub snapshot: Vec<u8>,
    /// The sequence number of the document's last change in the log, 0 while it has none.
    /// Every commit that changes a stored snapshot logs a change of it (a push of nothing
    /// new writes the same snapshot again), so one version is one snapshot.
    pub version: i64,
}

/// What a push writes for one document: its new snapshot, its scopes, the new changes.
#[derive(Debug, Clone)]
pub struct DocUpdate {
    pub doc: String,
    /// The version of the document this update was made from ([`StoredDocument::version`]);
    /// `None`: the update creates the document. [`Storage::commit`] refuses the update
    /// (`DocumentChanged`) when the stored document is no longer at this version.
    pub base: Option<i64>,
    pub snapshot: Vec<u8>,
    pub scopes: Vec<String>,
    /// (hash, actor, bytes); a change already stored is skipped.
    pub changes: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// The blobs (`sha256:…`) the document refers to now; replaces what it referred to.
    pub blob_refs: Vec<String>,
}

/// A blob on the server: complete (checked against its name), or one device's upload in
/// progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub id: i64,
    /// `sha256:` and 64 lowercase hex digits.
    pub hash: String,
    pub size: u64,
    /// Bytes stored so far (in order, from 0).
    pub received: u64,
    pub complete: bool,
}

/// What became of a chunk offered for a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobAppend {
    /// Stored; the upload now stands at `received` (complete or not: checking is the
    /// caller's business).
    Appended(BlobRecord),
    /// The server has the blob whole already; nothing was stored.
    Complete(BlobRecord),
    /// The chunk does not start where the device's upload stands.
    WrongOffset { received: u64 },
    /// The size differs from the device's upload in progress (which restarts only from offset 0).
    WrongSize { size: u64 },
}

pub trait Storage: Send + Sync + 'static {
    fn create_grid(&self, grid: &GridRecord) -> Result<()>;
    fn grid(&self, code: &str) -> Result<Option<GridRecord>>;
    /// Every grid whose code starts with `prefix` (an area: county, township, community).
    fn grids_within(&self, prefix: &str) -> Result<Vec<GridRecord>>;
    /// Creates a worker, or updates its role, department and grids (its contact stays).
    fn create_worker(&self, worker: &Worker) -> Result<()>;
    fn worker(&self, person: &str) -> Result<Option<Worker>>;
    /// Sets a worker's posted contact; `false` if there is no such worker.
    fn set_worker_contact(&self, person: &str, contact: &WorkerContact) -> Result<bool>;
    fn worker_contact(&self, person: &str) -> Result<Option<WorkerContact>>;
    /// The workers assigned to a grid (by its code, not by an area containing it), with
    /// their contact, by person id.
    fn grid_staff(&self, grid: &str) -> Result<Vec<(Worker, WorkerContact)>>;
    fn create_enrollment_code(&self, person: &str, code_hash: &str, now_ms: i64) -> Result<()>;
    /// Uses a code once: the device is created with its token's hash and returned as
    /// (person, device id), or `None` if the code is unknown, used, or was created before
    /// `issued_after_ms` (expired). A device of the same worker that enrolls again (its
    /// token expired) keeps its id and gets the new token; an actor enrolled for another
    /// worker, or revoked, is a conflict.
    fn redeem_enrollment_code(
        &self,
        code_hash: &str,
        device: &Device,
        token_hash: &str,
        now_ms: i64,
        issued_after_ms: i64,
    ) -> Result<Option<(String, String)>>;
    /// The device holding a token, with its worker (one read: every request starts here).
    /// None when no device holds it, or its worker is gone.
    fn device_by_token(&self, token_hash: &str) -> Result<Option<(Device, Worker)>>;
    fn revoke_device(&self, device_id: &str) -> Result<bool>;
    /// Records a device's request: when it was seen, and its token's new expiry.
    fn renew_device(&self, device_id: &str, last_seen_ms: i64, token_expires_ms: i64) -> Result<()>;
    /// Records what a device reported with a sync.
    fn record_sync(&self, device_id: &str, report: &SyncReport) -> Result<()>;
    fn snapshot(&self, doc: &str) -> Result<Option<Vec<u8>>>;
    /// A document's snapshot and version, read together.
    fn document(&self, doc: &str) -> Result<Option<StoredDocument>>;
    /// Several documents' snapshots and versions (each read together), in the order asked,
    /// those that exist: a storage that reads them in one request overrides this.
    fn documents(&self, docs: &[String]) -> Result<Vec<(String, StoredDocument)>> {
        let mut found = Vec::with_capacity(docs.len());
        for doc in docs {
            if let Some(stored) = self.document(doc)? {
                found.push((doc.clone(), stored));
            }
        }
        Ok(found)
    }
    /// Writes several documents' updates in one transaction; their new changes are
    /// logged as received at `received_ms`. All or nothing: an update whose `base` is not
    /// the document's stored version refuses the whole commit with `DocumentChanged`.
    /// Sequence numbers become visible in order (see the module's documentation).
    fn commit(&self, updates: &[DocUpdate], received_ms: i64) -> Result<()>;
    /// Documents in any of these scopes.
    fn visible_documents(&self, scopes: &[String]) -> Result<HashSet<String>>;
    /// What a pull starts from: the horizon (`max_seq`), then the documents in these scopes
    /// and what the device holds, none of them older than the horizon. A storage that reads
    /// them in one request overrides this.
    fn pull_view(&self, device: &str, scopes: &[String]) -> Result<PullView> {
        let horizon = self.max_seq()?;
        Ok(PullView { horizon, visible: self.visible_documents(scopes)?, held: self.held_documents(device)? })
    }
    /// What a device holds or is being sent or told to remove: doc → (up to seq, state).
    fn held_documents(&self, device: &str) -> Result<HashMap<String, (i64, HeldState)>>;
    /// Records what a device holds of each document (doc, up to seq, state), all or none.
    fn set_held_many(&self, device: &str, held: &[(String, i64, HeldState)]) -> Result<()>;
    fn set_held(&self, device: &str, doc: &str, up_to_seq: i64, state: HeldState) -> Result<()> {
        self.set_held_many(device, &[(doc.to_owned(), up_to_seq, state)])
    }
    fn forget_held(&self, device: &str, doc: &str) -> Result<()>;
    /// Changes after `cursor` in the documents a device holds (confirmed), in sequence order.
    fn log_after(&self, cursor: i64, device: &str, limit: usize) -> Result<Vec<LogEntry>>;
    /// Changes after `cursor` in these documents, in sequence order: what `log_after` gives
    /// a device holding just these, found through each document's own changes instead of
    /// the whole log since the cursor (cheaper when the documents are fewer than the
    /// changes since the cursor, as a grid worker's are).
    fn log_after_in(&self, cursor: i64, docs: &[String], limit: usize) -> Result<Vec<LogEntry>>;
    /// The highest sequence number visible now (0 for an empty log): every change up to
    /// it that will ever be visible is visible already.
    fn max_seq(&self) -> Result<i64>;
    /// Up to `limit` changes of the log after `after_seq`, in sequence order.
    fn changes_after(&self, after_seq: i64, limit: usize) -> Result<Vec<LogEntry>>;
    /// Every change of one document, in sequence order.
    fn changes_of(&self, doc: &str) -> Result<Vec<LogEntry>>;
    /// The documents with a change in the log after `after_seq`, up to `up_to_seq`
    /// included, each once, in id order: what a reader that follows the log (the center's
    /// incident index) reads again.
    fn documents_changed(&self, after_seq: i64, up_to_seq: i64) -> Result<Vec<String>>;
    /// Every device, revoked ones included (the authors of the log).
    fn devices(&self) -> Result<Vec<Device>>;
    /// The complete blob of this name.
    fn blob(&self, hash: &str) -> Result<Option<BlobRecord>>;
    /// A device's upload in progress of this blob.
    fn blob_upload(&self, device: &str, hash: &str) -> Result<Option<BlobRecord>>;
    /// Stores the next chunk of a device's upload, starting the upload at offset 0, in one
    /// transaction with the checks.
    fn append_blob_chunk(
        &self,
        device: &str,
        hash: &str,
        size: u64,
        offset: u64,
        chunk: &[u8],
        now_ms: i64,
    ) -> Result<BlobAppend>;
    /// Up to `max` bytes of a blob (complete or not) from `offset`.
    fn read_blob(&self, id: i64, offset: u64, max: usize) -> Result<Vec<u8>>;
    /// The upload was checked: it becomes the blob, and other devices' uploads of the same
    /// blob go (they find it complete). If another upload completed first, this one goes.
    fn finish_blob_upload(&self, id: i64) -> Result<()>;
    /// Deletes an upload and its chunks.
    fn discard_blob_upload(&self, id: i64) -> Result<()>;
    /// Drops uploads in progress that received nothing since `updated_before_ms`; returns
    /// how many.
    fn discard_stale_blob_uploads(&self, updated_before_ms: i64) -> Result<usize>;
    /// Whether a document in one of these scopes refers to the blob.
    fn blob_referenced(&self, hash: &str, scopes: &[String]) -> Result<bool>;
}

/// A worker's columns, in the order both backends' row readers take them.
pub(crate) const WORKER_COLUMNS: &str = "person, role, department, grids, name, phone";

/// A device's columns, in the order both backends' row readers take them.
pub(crate) const DEVICE_COLUMNS: &str =
    "id, person, actor, revoked, token_expires_ms, last_seen_ms, last_sync_ms, version, pending";

/// The statement of `Storage::device_by_token`, with the backend's first parameter
/// (`?1`, `$1`), and where the worker's columns start in its rows: the device's columns,
/// then its worker's.
pub(crate) fn device_by_token_sql(parameter: &str) -> (String, usize) {
    let qualified = |table: &str, columns: &str| {
        columns.split(", ").map(|column| format!("{table}.{column}")).collect::<Vec<_>>().join(", ")
    };
    let sql = format!(
        "SELECT {}, {} FROM devices d JOIN workers w ON w.person = d.person WHERE d.token_hash = {parameter}",
        qualified("d", DEVICE_COLUMNS),
        qualified("w", WORKER_COLUMNS)
    );
    (sql, DEVICE_COLUMNS.split(", ").count())
}
