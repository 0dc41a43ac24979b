//! The server's side of sync protocol v1, over a [`Storage`]: enrollment, push checks,
//! scopes, paged pulls, and blobs (attachments: chunked uploads checked against their
//! name, downloads for whoever may read a document referring to them). No HTTP here
//! (`http.rs` carries it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use automerge::AutoCommit;
use sha2::{Digest, Sha256};
use wangge_core::activity::doc as activity_doc;
use wangge_core::blobs::BlobHash;
use wangge_core::crdt::{DocId, DocKind, check_layout, genesis};
use wangge_core::incident::catalog::Catalog;
use wangge_core::incident::doc as incident_doc;
use wangge_core::incident::roles::{DepartmentCode, Role};
use wangge_core::incident::{Action, ActionKind, derive};
use wangge_core::model::{GridCode, IncidentId};
use wangge_core::reference;
use wangge_core::sync::wire::{
    BlobChunk, BlobDownloadRequest, BlobStatus, BlobStatusRequest, BlobUploadRequest, DocPull, EnrollRequest,
    EnrollResponse, GridInfo, MAX_BLOB_BYTES, MAX_BLOB_CHUNK_BYTES, SyncRequest, SyncResponse, WorkerInfo,
};

use crate::storage::{
    BlobAppend, Device, DocUpdate, GridRecord, HeldState, LogEntry, PullView, Storage, StorageError, SyncReport, Worker,
};

mod access;
mod audit;
mod center;
mod compaction;
mod public_card;
mod retention;

pub use access::AccessPolicy;
pub use audit::{AuditFilter, AuditLine, LogCheck};
pub use center::{
    CONSOLE_PREFIX, CenterError, CenterToken, IncidentDetail, IncidentsDue, MAX_PAGE, Queue, QueueEntry, QueueQuery,
    Selection, Staff, Stats, StatsBy,
};
pub use compaction::CompactedDoc;
pub use retention::DEFAULT_INCIDENT_RETENTION_MS;

/// Why a request was refused; each maps to an HTTP status and a protocol error code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Malformed(String),
    #[error("this server speaks sync protocol 1")]
    UnsupportedVersion,
    #[error("unknown or missing token")]
    Unauthorized,
    #[error("this device was revoked")]
    Revoked,
    #[error(
        "this device's token expired after {lifetime_days} days without a sync: enroll it again with a new code (its unsynced edits stay on the device)"
    )]
    TokenExpired { lifetime_days: u64 },
    #[error("too many requests from this device: try again in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("{0}")]
    Forbidden(String),
    #[error("unknown, already used or expired enrollment code")]
    UnknownCode,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("internal error")]
    Internal(#[from] StorageError),
    /// The handler failed unexpectedly (it panicked); other requests are not affected.
    #[error("internal error")]
    Failed,
    /// A push refused for one document: the refusal, and which document it was.
    #[error("{error}")]
    Push { doc: String, error: Box<ServiceError> },
}

impl ServiceError {
    /// The document a push was refused for, if that is what happened.
    pub fn doc(&self) -> Option<&str> {
        match self {
            ServiceError::Push { doc, .. } => Some(doc),
            _ => None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ServiceError::Push { error, .. } => error.status(),
            ServiceError::Malformed(_) | ServiceError::UnsupportedVersion => 400,
            ServiceError::Unauthorized | ServiceError::Revoked | ServiceError::TokenExpired { .. } => 401,
            ServiceError::Forbidden(_) => 403,
            ServiceError::UnknownCode | ServiceError::NotFound(_) => 404,
            ServiceError::Conflict(_) => 409,
            ServiceError::TooLarge(_) => 413,
            ServiceError::RateLimited { .. } => 429,
            ServiceError::Internal(_) | ServiceError::Failed => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Push { error, .. } => error.code(),
            ServiceError::Malformed(_) => "malformed",
            ServiceError::UnsupportedVersion => "unsupported_version",
            ServiceError::Unauthorized => "unauthorized",
            ServiceError::Revoked => "revoked",
            ServiceError::TokenExpired { .. } => "token_expired",
            ServiceError::RateLimited { .. } => "rate_limited",
            ServiceError::Forbidden(_) => "forbidden",
            ServiceError::UnknownCode => "unknown_code",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::TooLarge(_) => "too_large",
            ServiceError::Internal(_) | ServiceError::Failed => "internal",
        }
    }
}

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// SHA-256 in hex: tokens and enrollment codes are stored only this way.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

fn random_secret() -> String {
    let bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()].iter().flat_map(|id| *id.as_bytes()).collect();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The server's time: the one clock deadlines, retention and tokens are counted by. Every
/// answer carries it to the devices (`wire::SERVER_TIME_HEADER`).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The sync service over a storage.
#[derive(Debug)]
pub struct Service<S> {
    /// Pushes load, check and store a document's new snapshot, here or on another node
    /// sharing the database: each update names the version it was made from and the storage
    /// refuses it if another write came first ([`Service::commit_fresh`] makes it again).
    storage: Arc<S>,
    access: Arc<access::Access>,
    /// The center API's incident index and clock (`service/center.rs`).
    center: Arc<center::Center>,
    /// How long archived incidents stay on devices (`service/retention.rs`).
    incident_retention_ms: i64,
}

impl<S> Clone for Service<S> {
    fn clone(&self) -> Self {
        Self {
            storage: Arc::clone(&self.storage),
            access: Arc::clone(&self.access),
            center: Arc::clone(&self.center),
            incident_retention_ms: self.incident_retention_ms,
        }
    }
}

/// The scopes a worker reads (and writes). Scope names: `grid:<code>:register`,
/// `grid:<code>:sensitive`, `grid:<code>:incidents`, `grid:<code>:activity`,
/// `dept:<code>:incidents`.
pub fn readable_scopes(worker: &Worker) -> Vec<String> {
    let role = Role::from_code(&worker.role);
    // Everyone reads the reference data; nobody but the server writes it.
    let mut scopes = vec![REFERENCE_SCOPE.to_owned()];
    if role == Some(Role::DepartmentHandler) {
        if let Some(department) = &worker.department {
            scopes.push(department_scope(department));
        }
        return scopes;
    }
    let sensitive = role.is_some_and(Role::may_see_sensitive_data);
    for grid in &worker.grids {
        scopes.push(grid_scope(grid, DocKind::Register));
        scopes.push(grid_scope(grid, DocKind::Incident));
        // Field work: the grid's workers and the center (DESIGN §3), not departments.
        scopes.push(grid_scope(grid, DocKind::Activity));
        if sensitive {
            scopes.push(grid_scope(grid, DocKind::Sensitive));
        }
    }
    scopes
}

/// How long an enrollment code stays valid: long enough to hand QR codes out at a
/// training session and enroll over the following days, short enough that a lost one
/// does not stay a way in.
pub const ENROLLMENT_CODE_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// The bytes of documents a page may carry: the device's budget, its default when it asks
/// for none, and never more than `MAX_PULL_BUDGET`.
fn page_budget(requested: u32) -> usize {
    use wangge_core::sync::wire::{DEFAULT_PULL_BUDGET, MAX_PULL_BUDGET};
    (if requested == 0 { DEFAULT_PULL_BUDGET } else { requested.min(MAX_PULL_BUDGET) }) as usize
}

/// How many times a push (or a server write) is checked and merged again from newer
/// documents when other writes keep getting there first, before it is refused.
const WRITE_ATTEMPTS: usize = 16;

/// How long an unfinished blob upload waits for its next chunk before it is dropped.
pub const UPLOAD_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// The scope of the server's reference document.
pub const REFERENCE_SCOPE: &str = "reference";

/// A grid's scope for one kind of document: `grid:<code>:register`, `…:sensitive`,
/// `…:incidents`.
fn grid_scope(grid: &str, kind: DocKind) -> String {
    let part = match kind {
        DocKind::Incident => "incidents",
        DocKind::Register | DocKind::Sensitive | DocKind::Reference | DocKind::Activity => kind.code(),
    };
    format!("grid:{grid}:{part}")
}

/// The scope of a department's incidents: `dept:<code>:incidents`.
fn department_scope(department: &str) -> String {
    format!("dept:{department}:incidents")
}

/// The scopes a document belongs to, from its id and (for incidents) its content.
fn scopes_of(doc_id: &DocId, doc: &AutoCommit) -> Vec<String> {
    match doc_id.kind {
        DocKind::Reference => vec![REFERENCE_SCOPE.to_owned()],
        DocKind::Register | DocKind::Sensitive => vec![grid_scope(&doc_id.key, doc_id.kind)],
        // The audit trail (views of full values) goes to those who may see those values.
        DocKind::Activity => {
            let kind = if activity_doc::is_audit(&doc_id.key) { DocKind::Sensitive } else { DocKind::Activity };
            activity_doc::parse_key(&doc_id.key).map(|(grid, _)| grid_scope(grid, kind)).into_iter().collect()
        }
        DocKind::Incident => {
            let mut scopes: Vec<String> =
                incident_doc::report_grid(doc).map(|grid| grid_scope(&grid, DocKind::Incident)).into_iter().collect();
            let timeline = incident_doc::read_timeline(doc).unwrap_or_default();
            let state = derive(timeline.iter().map(Option::as_ref));
            let departments: BTreeSet<String> = state.clocks.iter().map(|clock| clock.department.to_string()).collect();
            scopes.extend(departments.iter().map(|department| department_scope(department)));
            scopes
        }
    }
}

/// What [`Service::import_boundaries`] found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// The file's grids, in file order.
    pub grids: Vec<ImportedGrid>,
    /// Overlaps involving the file's grids and gaps in their communities, found with the
    /// boundaries the server already had for other grids.
    pub issues: Vec<wangge_core::place::boundaries::PartitionIssue>,
    /// Whether the grids were written: not when there were issues and they were not accepted.
    pub written: bool,
}

/// One grid of an imported boundary file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedGrid {
    pub code: GridCode,
    pub name: String,
    pub kind: wangge_core::model::GridKind,
    /// Its area on the WGS-84 ellipsoid.
    pub area_m2: f64,
    /// Whether the server did not have the grid before.
    pub new: bool,
}

impl<S: Storage> Service<S> {
    /// The service over a storage; the reference document is created on first use, with
    /// the built-in catalog and calendar.
    pub fn new(storage: S) -> Self {
        Self::with_access(storage, AccessPolicy::default())
    }

    /// The service with its own token lifetime and request rates.
    pub fn with_access(storage: S, policy: AccessPolicy) -> Self {
        let service = Self {
            storage: Arc::new(storage),
            access: Arc::new(access::Access::new(policy)),
            center: Arc::default(),
            incident_retention_ms: DEFAULT_INCIDENT_RETENTION_MS,
        };
        // A storage that cannot be written fails again on the first request, with its error.
        let _ = service.ensure_reference();
        service
    }

    fn ensure_reference(&self) -> Result<()> {
        let id = reference::doc_id().to_string();
        if self.storage.snapshot(&id)?.is_some() {
            return Ok(());
        }
        let mut doc = reference::genesis();
        let created = self.storage.commit(
            &[DocUpdate {
                doc: id,
                base: None,
                snapshot: wire_snapshot(&mut doc),
                scopes: vec![REFERENCE_SCOPE.to_owned()],
                changes: Vec::new(),
                blob_refs: Vec::new(),
            }],
            now_ms(),
        );
        match created {
            // Another node sharing the database created it first, and publishes the rest.
            Err(StorageError::DocumentChanged { .. }) => return Ok(()),
            created => created?,
        }
        self.update_reference(|doc| {
            reference::set_catalog(doc, &Catalog::default_catalog())?;
            reference::set_calendar(doc, wangge_core::calendar::CHINA_JSON)
        })
    }

    /// Changes the reference document as the server: one change in the log, which every
    /// device receives with its next sync. The edit runs again on the newer document when
    /// another write (another node, an admin command) came first.
    pub fn update_reference(&self, mut edit: impl FnMut(&mut AutoCommit) -> wangge_core::Result<()>) -> Result<()> {
        let id = reference::doc_id().to_string();
        self.commit_fresh(|| {
            let stored =
                self.storage.document(&id)?.ok_or_else(|| ServiceError::Malformed("no reference document".into()))?;
            let mut doc = AutoCommit::load(&stored.snapshot)
                .map_err(|_| ServiceError::Malformed("stored reference document".into()))?
                .with_actor(automerge::ActorId::from(reference::SERVER_ACTOR));
            edit(&mut doc).map_err(|error| ServiceError::Malformed(error.to_string()))?;
            if doc.commit_with(automerge::transaction::CommitOptions::default().with_time(now_ms())).is_none() {
                // The edit changed nothing: no change for every device to download.
                return Ok((Vec::new(), ()));
            }
            let Some(change) = doc.get_last_local_change() else { return Ok((Vec::new(), ())) };
            let change = (change.hash().0.to_vec(), reference::SERVER_ACTOR.to_vec(), change.raw_bytes().to_vec());
            let update = DocUpdate {
                doc: id.clone(),
                base: Some(stored.version),
                snapshot: wire_snapshot(&mut doc),
                scopes: vec![REFERENCE_SCOPE.to_owned()],
                changes: vec![change],
                blob_refs: Vec::new(),
            };
            Ok((vec![update], ()))
        })
    }

    /// Commits the updates `make` builds from stored documents, and when another write got
    /// to one of those documents first (on this node or another: `DocumentChanged`), builds
    /// them again from the newer documents, at most [`WRITE_ATTEMPTS`] times; then refuses
    /// (`Conflict`: the device syncs again). Returns what `make` returned with the updates
    /// that were committed.
    fn commit_fresh<T>(&self, mut make: impl FnMut() -> Result<(Vec<DocUpdate>, T)>) -> Result<T> {
        let mut attempt = 1;
        loop {
            let (updates, made) = make()?;
            if updates.is_empty() {
                return Ok(made);
            }
            match self.storage.commit(&updates, now_ms()) {
                Ok(()) => return Ok(made),
                Err(StorageError::DocumentChanged { .. }) if attempt < WRITE_ATTEMPTS => attempt += 1,
                Err(StorageError::DocumentChanged { doc }) => {
                    return Err(ServiceError::Conflict(format!(
                        "{doc} was written by other devices {WRITE_ATTEMPTS} times while this push was checked: sync again"
                    )));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Publishes a new matter catalog to every device.
    pub fn set_catalog(&self, catalog: &Catalog) -> Result<()> {
        self.update_reference(|doc| reference::set_catalog(doc, catalog))
    }

    /// Publishes a new working-day calendar (its JSON, e.g. with a newly published year).
    pub fn set_calendar(&self, json: &str) -> Result<()> {
        self.update_reference(|doc| reference::set_calendar(doc, json))
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// A grid's register and sensitive documents from their genesis, those not stored yet.
    fn missing_grid_documents(&self, code: &GridCode) -> Result<Vec<DocUpdate>> {
        let mut updates = Vec::new();
        for doc_kind in [DocKind::Register, DocKind::Sensitive] {
            let id = DocId::new(doc_kind, code);
            if self.storage.snapshot(&id.to_string())?.is_none() {
                let mut doc = genesis(doc_kind, code);
                updates.push(DocUpdate {
                    doc: id.to_string(),
                    base: None,
                    snapshot: wire_snapshot(&mut doc),
                    scopes: scopes_of(&id, &doc),
                    changes: Vec::new(),
                    blob_refs: Vec::new(),
                });
            }
        }
        Ok(updates)
    }

    /// Creates a grid, with its register and sensitive documents from their genesis.
    pub fn create_grid(&self, code: &GridCode, name: &str, kind: &str) -> Result<()> {
        self.storage.create_grid(&GridRecord {
            code: code.as_str().to_owned(),
            name: name.to_owned(),
            kind: kind.to_owned(),
        })?;
        self.commit_fresh(|| Ok((self.missing_grid_documents(code)?, ())))?;
        // Updating a grid keeps what else its metadata holds (boundary, staff, supervision phone).
        self.update_reference(|doc| {
            let mut meta = reference::grid(doc, code.as_str())?.unwrap_or_default();
            meta.name = name.to_owned();
            meta.kind = kind.to_owned();
            reference::set_grid(doc, code.as_str(), &meta)
        })
    }

    /// Imports grid boundaries from a GeoJSON FeatureCollection (properties `code`, `name`,
    /// `kind`; Polygon or MultiPolygon geometry in WGS-84; see
    /// `wangge_core::place::boundaries::import_geojson`). Each grid of the file is created or
    /// updated with its documents, as [`Service::create_grid`] does, and its metadata in the
    /// reference document gets the file's name, kind and boundary, keeping what else it
    /// holds (supervision phone, staff); all of it in one reference change, which every
    /// device receives with its next sync. Grids not in the file are left as they are.
    ///
    /// First the file's grids are checked together with the boundaries the server already
    /// has for other grids: overlaps involving them and gaps in their communities come back
    /// in the report with their areas, and then nothing is written unless `accept_issues`.
    /// A file that does not read is refused (`Malformed`), naming every bad feature.
    pub fn import_boundaries(&self, geojson: &str, accept_issues: bool) -> Result<ImportReport> {
        use std::collections::HashSet;
        use wangge_core::model::CodeFormat;
        use wangge_core::place::boundaries::{self, PartitionIssue};

        let file = boundaries::import_geojson(geojson)
            .map_err(|error| ServiceError::Malformed(format!("grid boundaries refused: {error}")))?;
        let reference_id = reference::doc_id().to_string();
        let snapshot = self
            .storage
            .snapshot(&reference_id)?
            .ok_or_else(|| ServiceError::Malformed("no reference document".into()))?;
        let published = AutoCommit::load(&snapshot)
            .map_err(|_| ServiceError::Malformed("stored reference document".into()))
            .and_then(|doc| reference::read(&doc).map_err(|error| ServiceError::Malformed(error.to_string())))?
            .grids;

        let in_file: HashSet<&str> = file.iter().map(|grid| grid.code.as_str()).collect();
        let communities: HashSet<&str> = file.iter().map(|grid| grid.code.community_code()).collect();
        let others: Vec<(String, reference::GridMeta)> =
            published.iter().filter(|(code, _)| !in_file.contains(code.as_str())).cloned().collect();
        let (mut together, _unreadable) = boundaries::from_reference(&others, CodeFormat::default());
        together.extend(file.iter().cloned());
        let issues: Vec<PartitionIssue> = boundaries::check_partition(&together)
            .into_iter()
            .filter(|issue| match issue {
                PartitionIssue::Overlap { a, b, .. } => in_file.contains(a.as_str()) || in_file.contains(b.as_str()),
                PartitionIssue::Gap { community, .. } => communities.contains(community.as_str()),
            })
            .collect();
        let mut grids = Vec::with_capacity(file.len());
        for grid in &file {
            grids.push(ImportedGrid {
                code: grid.code.clone(),
                name: grid.name.clone(),
                kind: grid.kind,
                area_m2: grid.area_m2(),
                new: self.storage.grid(grid.code.as_str())?.is_none(),
            });
        }
        let written = issues.is_empty() || accept_issues;
        if !written {
            return Ok(ImportReport { grids, issues, written });
        }

        for grid in &file {
            self.storage.create_grid(&GridRecord {
                code: grid.code.as_str().to_owned(),
                name: grid.name.clone(),
                kind: grid.kind.code().to_owned(),
            })?;
        }
        self.commit_fresh(|| {
            let mut updates = Vec::new();
            for grid in &file {
                updates.extend(self.missing_grid_documents(&grid.code)?);
            }
            Ok((updates, ()))
        })?;
        let updated = |current: Option<&reference::GridMeta>, grid: &boundaries::GridBoundary| {
            let mut meta = current.cloned().unwrap_or_default();
            meta.name = grid.name.clone();
            meta.kind = grid.kind.code().to_owned();
            meta.boundary = Some(grid.geometry_json());
            meta
        };
        let find = |grids: &[(String, reference::GridMeta)], code: &str| {
            grids.iter().find(|(published, _)| published == code).map(|(_, meta)| meta.clone())
        };
        // A re-import that changes nothing makes no change for every device to download.
        let changed: Vec<&boundaries::GridBoundary> = file
            .iter()
            .filter(|grid| {
                let current = find(&published, grid.code.as_str());
                current.as_ref() != Some(&updated(current.as_ref(), grid))
            })
            .collect();
        if !changed.is_empty() {
            self.update_reference(|doc| {
                let current = reference::read(doc)?.grids;
                for grid in &changed {
                    let meta = updated(find(&current, grid.code.as_str()).as_ref(), grid);
                    reference::set_grid(doc, grid.code.as_str(), &meta)?;
                }
                Ok(())
            })?;
        }
        Ok(ImportReport { grids, issues, written })
    }

    /// A worker with the grids it is responsible for: center staff's area codes stand for
    /// every grid within them (一台受理: a center sees its whole jurisdiction).
    fn with_jurisdiction(&self, mut worker: Worker) -> Result<Worker> {
        if !Role::from_code(&worker.role).is_some_and(Role::is_center) {
            return Ok(worker);
        }
        let mut grids = BTreeSet::new();
        for area in &worker.grids {
            grids.extend(self.storage.grids_within(area)?.into_iter().map(|grid| grid.code));
        }
        worker.grids = grids.into_iter().collect();
        Ok(worker)
    }

    pub fn create_worker(&self, worker: &Worker) -> Result<()> {
        let refuse = |message: String| Err(ServiceError::Malformed(message));
        let person = &worker.person;
        if person.is_empty()
            || person.chars().count() > 64
            || person.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return refuse("a person id is 1 to 64 characters without spaces (an id, not a name)".into());
        }
        let Some(role) = Role::from_code(&worker.role) else {
            return refuse(format!("unknown role {}", worker.role));
        };
        match (&worker.department, role.belongs_to_department()) {
            (None, true) => return refuse(format!("a {} needs a department", role.code())),
            (Some(_), false) => return refuse(format!("a {} has no department", role.code())),
            (Some(code), true) => {
                let code = DepartmentCode::parse(code).map_err(|error| ServiceError::Malformed(error.to_string()))?;
                if self.published_catalog()?.department(code.as_str()).is_none() {
                    return refuse(format!("unknown department {code}: not in the published catalog"));
                }
            }
            (None, false) => {}
        }
        if role == Role::DepartmentHandler && !worker.grids.is_empty() {
            return refuse("a department handler is given no grids: it reads its department's incidents".into());
        }
        if role.is_grid_worker() && worker.grids.is_empty() {
            return refuse(format!("a {} needs a grid", role.code()));
        }
        if role.is_grid_worker() && !role.may_cover_several_grids() && worker.grids.len() > 1 {
            return refuse(format!(
                "a {} works in one grid; only grid leaders and professional workers cover several",
                role.code()
            ));
        }
        for grid in &worker.grids {
            let known = if role.is_center() {
                // An area: a county's 6 digits, a township's 9, a community's 12, or a grid.
                grid.len() >= 6
                    && grid.bytes().all(|b| b.is_ascii_digit())
                    && !self.storage.grids_within(grid)?.is_empty()
            } else {
                self.storage.grid(grid)?.is_some()
            };
            if !known {
                return refuse(format!("unknown grid or area {grid}: create its grids first"));
            }
        }
        let before = self.storage.worker(person)?;
        self.storage.create_worker(worker)?;
        // The cards of the grids it leaves and of those it joins.
        let mut grids: BTreeSet<String> = worker.grids.iter().cloned().collect();
        grids.extend(before.into_iter().flat_map(|before| before.grids));
        self.publish_staff(&grids.into_iter().collect::<Vec<_>>())
    }

    /// The matter catalog devices have now (the built-in one until an operator publishes one).
    fn published_catalog(&self) -> Result<Catalog> {
        let id = reference::doc_id().to_string();
        let catalog = match self.storage.snapshot(&id)? {
            Some(snapshot) => AutoCommit::load(&snapshot)
                .ok()
                .and_then(|doc| reference::read(&doc).ok())
                .and_then(|reference| reference.catalog),
            None => None,
        };
        Ok(catalog.unwrap_or_else(Catalog::default_catalog))
    }

    /// A one-time enrollment code for a worker's new device (the QR payload).
    pub fn issue_enrollment_code(&self, person: &str) -> Result<String> {
        if self.storage.worker(person)?.is_none() {
            return Err(ServiceError::Malformed(format!("unknown worker {person}")));
        }
        let code = random_secret()[..20].to_owned();
        self.storage.create_enrollment_code(person, &hash_secret(&code), now_ms())?;
        Ok(code)
    }

    pub fn revoke(&self, device_id: &str) -> Result<bool> {
        Ok(self.storage.revoke_device(device_id)?)
    }

    pub fn enroll(&self, request: EnrollRequest) -> Result<EnrollResponse> {
        if request.actor.len() != 16 {
            return Err(ServiceError::Malformed("an actor id is 16 bytes".into()));
        }
        let token = random_secret();
        let device = Device {
            id: uuid::Uuid::now_v7().to_string(),
            person: String::new(),
            actor: request.actor,
            revoked: false,
            token_expires_ms: Some(self.access.expiry_from(now_ms())),
            last_seen_ms: None,
            last_sync: None,
        };
        let (person, device_id) = match self.storage.redeem_enrollment_code(
            &hash_secret(&request.code),
            &device,
            &hash_secret(&token),
            now_ms(),
            now_ms() - ENROLLMENT_CODE_LIFETIME_MS,
        ) {
            Ok(Some(enrolled)) => enrolled,
            Ok(None) => return Err(ServiceError::UnknownCode),
            Err(StorageError::Conflict(message)) => return Err(ServiceError::Conflict(message)),
            Err(error) => return Err(error.into()),
        };
        let worker = self.storage.worker(&person)?.ok_or(ServiceError::UnknownCode)?;
        let worker = self.with_jurisdiction(worker)?;
        // The grids the device holds, and which with sensitive data: as its scopes say.
        let scopes = readable_scopes(&worker);
        let mut grids = Vec::new();
        for code in &worker.grids {
            if !scopes.contains(&grid_scope(code, DocKind::Register)) {
                continue;
            }
            if let Some(grid) = self.storage.grid(code)? {
                let sensitive = scopes.contains(&grid_scope(code, DocKind::Sensitive));
                grids.push(GridInfo { code: grid.code, name: grid.name, kind: grid.kind, sensitive });
            }
        }
        Ok(EnrollResponse {
            token,
            device_id,
            worker: WorkerInfo { person: worker.person, role: worker.role, department: worker.department, grids },
        })
    }

    /// One round: checks and stores the pushes (all or nothing), then pages the pull.
    pub fn sync(&self, token: &str, request: SyncRequest) -> Result<SyncResponse> {
        let (device, worker) = self.authenticate(token)?;
        center::refuse_console(&device)?;
        let readable = readable_scopes(&worker);
        self.confirm(&device, &request.received)?;
        for doc in &request.reset {
            // The device set its copy aside: send it anew, whole.
            self.storage.forget_held(&device.id, doc)?;
        }
        let acks = self.push(&device, &worker, &readable, &request)?;
        let replaces_generations = request.generations == Some(true);
        let mut response = self.pull(&device, &readable, request.cursor, request.pull_budget, replaces_generations)?;
        response.acks = acks;
        if let Some(status) = &request.status {
            self.record_sync(&device, status)?;
        }
        Ok(response)
    }

    /// Keeps what a device reported with a sync that succeeded: written when it changed,
    /// else at most once a minute.
    fn record_sync(&self, device: &Device, status: &wangge_core::sync::wire::DeviceStatus) -> Result<()> {
        let now = now_ms();
        let pending = if status.all_pushed { 0 } else { i64::try_from(status.pending).unwrap_or(i64::MAX) };
        let report = SyncReport { at_ms: now, version: status.version.chars().take(32).collect(), pending };
        let unchanged = device.last_sync.as_ref().is_some_and(|last| {
            last.version == report.version && last.pending == report.pending && now - last.at_ms < 60_000
        });
        if !unchanged {
            self.storage.record_sync(&device.id, &report)?;
        }
        Ok(())
    }

    fn push(
        &self,
        device: &Device,
        worker: &Worker,
        readable: &[String],
        request: &SyncRequest,
    ) -> Result<Vec<String>> {
        if request.pushes.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = BTreeSet::new();
        if let Some(twice) = request.pushes.iter().find(|push| !seen.insert(push.doc.as_str())) {
            return Err(ServiceError::Malformed(format!("{} is pushed twice in one request", twice.doc)));
        }
        // Checked and merged from the stored documents, and again from newer ones if another
        // push (on any node) stored one of them in between.
        self.commit_fresh(|| {
            let mut updates = Vec::new();
            let mut acks = Vec::new();
            for push in &request.pushes {
                match self.check_push(device, worker, readable, push) {
                    Ok(Some(update)) => {
                        updates.push(update);
                        acks.push(push.doc.clone());
                    }
                    Ok(None) => {}
                    Err(error @ ServiceError::Internal(_)) => return Err(error),
                    Err(error) => return Err(ServiceError::Push { doc: push.doc.clone(), error: Box::new(error) }),
                }
            }
            Ok((updates, acks))
        })
    }

    /// The device behind a token, not revoked, and its worker.
    fn authenticate(&self, token: &str) -> Result<(Device, Worker)> {
        let (device, worker) = self.storage.device_by_token(&hash_secret(token))?.ok_or(ServiceError::Unauthorized)?;
        if device.revoked {
            return Err(ServiceError::Revoked);
        }
        if let access::Renewal::Renew { last_seen_ms, token_expires_ms } = self.access.admit(&device, now_ms())? {
            self.storage.renew_device(&device.id, last_seen_ms, token_expires_ms)?;
        }
        // Center staff's areas stand for every grid within them, as of now.
        let worker = self.with_jurisdiction(worker)?;
        Ok((device, worker))
    }

    /// Forgets the request counters of devices that have been quiet (the server runs it
    /// every hour).
    pub fn forget_idle_devices(&self) {
        self.access.forget_idle();
    }

    /// Drops blob uploads that received nothing for `UPLOAD_LIFETIME_MS` (a device that
    /// never came back); returns how many. The server runs it at start and every hour.
    pub fn discard_stale_uploads(&self) -> Result<usize> {
        Ok(self.storage.discard_stale_blob_uploads(now_ms() - UPLOAD_LIFETIME_MS)?)
    }

    /// Stores the next chunk of a blob. Any device may upload any blob (it is named by its
    /// content); each device's upload is its own until complete. The last chunk completes
    /// it only if all the bytes hash to the name; otherwise the upload is discarded.
    pub fn upload_blob(&self, token: &str, request: BlobUploadRequest) -> Result<BlobStatus> {
        let (device, _) = self.authenticate(token)?;
        let hash = parse_hash(&request.hash)?;
        if request.size > MAX_BLOB_BYTES {
            return Err(ServiceError::TooLarge(format!(
                "a blob is at most {MAX_BLOB_BYTES} bytes; this one is {}",
                request.size
            )));
        }
        if request.chunk.len() > MAX_BLOB_CHUNK_BYTES {
            return Err(ServiceError::TooLarge(format!("a chunk is at most {MAX_BLOB_CHUNK_BYTES} bytes")));
        }
        if request.offset.saturating_add(request.chunk.len() as u64) > request.size {
            return Err(ServiceError::Malformed("the chunk goes past the blob's size".into()));
        }
        let appended = self.storage.append_blob_chunk(
            &device.id,
            hash.as_str(),
            request.size,
            request.offset,
            &request.chunk,
            now_ms(),
        )?;
        let upload = match appended {
            BlobAppend::Complete(blob) => return Ok(BlobStatus { received: blob.size, complete: true }),
            BlobAppend::WrongOffset { received } => {
                return Err(ServiceError::Conflict(format!(
                    "the upload stands at byte {received}: ask for its status and continue from there"
                )));
            }
            BlobAppend::WrongSize { size } => {
                return Err(ServiceError::Malformed(format!(
                    "this device's upload of the blob has size {size}: continue it, or start again at offset 0"
                )));
            }
            BlobAppend::Appended(upload) => upload,
        };
        if upload.received < upload.size {
            return Ok(BlobStatus { received: upload.received, complete: false });
        }
        let bytes = self.storage.read_blob(upload.id, 0, usize::try_from(upload.size).unwrap_or(usize::MAX))?;
        if BlobHash::of(&bytes) != hash {
            self.storage.discard_blob_upload(upload.id)?;
            return Err(ServiceError::Malformed(
                "the content does not match its hash: the upload was discarded, start again at offset 0".into(),
            ));
        }
        self.storage.finish_blob_upload(upload.id)?;
        Ok(BlobStatus { received: upload.size, complete: true })
    }

    /// Where this device's upload of a blob stands (or that the server has it whole). Says
    /// nothing about the blob's content, only what a device that names it already knows.
    pub fn blob_status(&self, token: &str, request: BlobStatusRequest) -> Result<BlobStatus> {
        let (device, _) = self.authenticate(token)?;
        let hash = parse_hash(&request.hash)?;
        if let Some(blob) = self.storage.blob(hash.as_str())? {
            return Ok(BlobStatus { received: blob.size, complete: true });
        }
        let received = self.storage.blob_upload(&device.id, hash.as_str())?.map_or(0, |upload| upload.received);
        Ok(BlobStatus { received, complete: false })
    }

    /// A chunk of a blob, for a device that may read a document referring to it (403
    /// otherwise, whether the blob exists or not).
    pub fn download_blob(&self, token: &str, request: BlobDownloadRequest) -> Result<BlobChunk> {
        let (_, worker) = self.authenticate(token)?;
        let hash = parse_hash(&request.hash)?;
        if !self.storage.blob_referenced(hash.as_str(), &readable_scopes(&worker))? {
            return Err(ServiceError::Forbidden("no document this device may read refers to this blob".into()));
        }
        let blob = self
            .storage
            .blob(hash.as_str())?
            .ok_or_else(|| ServiceError::NotFound("this blob has not been uploaded yet: try again later".into()))?;
        if request.offset > blob.size {
            return Err(ServiceError::Malformed(format!("the offset is past the blob's size, {}", blob.size)));
        }
        let max = match request.max as usize {
            0 => MAX_BLOB_CHUNK_BYTES,
            max => max.min(MAX_BLOB_CHUNK_BYTES),
        };
        let chunk = self.storage.read_blob(blob.id, request.offset, max)?;
        Ok(BlobChunk { chunk: chunk.into(), total: blob.size })
    }

    /// The device confirms snapshots it received and removals it carried out.
    fn confirm(&self, device: &Device, received: &[String]) -> Result<()> {
        if received.is_empty() {
            return Ok(());
        }
        let held = self.storage.held_documents(&device.id)?;
        let mut confirmed = Vec::new();
        for doc in received {
            match held.get(doc) {
                Some((up_to, HeldState::Sent)) => confirmed.push((doc.clone(), *up_to, HeldState::Held)),
                // A removal carried out (of an older generation, by a client that cannot
                // replace it: the current one is sent next as a new document).
                Some((_, HeldState::Removing | HeldState::Stale)) => self.storage.forget_held(&device.id, doc)?,
                _ => {}
            }
        }
        self.storage.set_held_many(&device.id, &confirmed).map_err(Into::into)
    }

    /// Checks one document's push and makes its update; `None` when it is skipped (a
    /// reassigned worker's edits to a document it held). What the device holds is read
    /// only on the paths that need it, which a push rarely takes.
    fn check_push(
        &self,
        device: &Device,
        worker: &Worker,
        readable: &[String],
        push: &wangge_core::sync::wire::DocChanges,
    ) -> Result<Option<DocUpdate>> {
        let doc_id = DocId::parse(&push.doc)
            .ok_or_else(|| ServiceError::Malformed(format!("unknown document id {}", push.doc)))?;
        if doc_id.kind == DocKind::Reference {
            return Err(ServiceError::Forbidden(format!("{}: written by the server only", push.doc)));
        }
        let mut changes = Vec::with_capacity(push.changes.len());
        for bytes in &push.changes {
            let change = wangge_core::crdt::untrusted::change(bytes.to_vec())
                .map_err(|_| ServiceError::Malformed(format!("{}: a change does not decode", push.doc)))?;
            if change.actor_id().to_bytes() != device.actor.as_slice() {
                return Err(ServiceError::Forbidden(format!("{}: a change is authored by another device", push.doc)));
            }
            changes.push(change);
        }
        let stored = self.storage.document(&push.doc)?;
        let existed = stored.is_some();
        let base = stored.as_ref().map(|stored| stored.version);
        let mut doc = match stored {
            Some(stored) => {
                AutoCommit::load(&stored.snapshot).map_err(|_| ServiceError::Malformed("stored document".into()))?
            }
            None => match doc_id.kind {
                DocKind::Incident => {
                    IncidentId::parse(&doc_id.key)
                        .map_err(|_| ServiceError::Malformed("an incident id is a UUID".into()))?;
                    incident_doc::genesis(&doc_id.key)
                }
                DocKind::Activity => {
                    let (grid, _) = activity_doc::parse_key(&doc_id.key).ok_or_else(|| {
                        ServiceError::Malformed("an activity document is activity/<grid>:<YYYY-MM>".into())
                    })?;
                    if self.storage.grid(grid)?.is_none() {
                        return Err(ServiceError::Forbidden(format!("{}: unknown grid", push.doc)));
                    }
                    activity_doc::genesis(&doc_id.key)
                }
                // Grid documents exist from the grid's creation.
                _ => return Err(ServiceError::Forbidden(format!("{}: unknown grid", push.doc))),
            },
        };
        let before = incident_doc::read_timeline(&doc).unwrap_or_default();
        let entries_before = activity_entries(&doc_id, &doc);
        let grid_before = incident_doc::report_grid(&doc);
        let scopes_before = scopes_of(&doc_id, &doc);
        let new: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = changes
            .iter()
            .filter(|change| doc.get_change_meta_by_hash(&change.hash()).is_none())
            .map(|change| {
                (change.hash().0.to_vec(), change.actor_id().to_bytes().to_vec(), change.raw_bytes().to_vec())
            })
            .collect();
        // A device's bytes: a decoder panic in automerge is refused like any bad change.
        wangge_core::crdt::untrusted::apply_changes(&mut doc, changes)
            .map_err(|_| ServiceError::Malformed(format!("{}: changes do not apply", push.doc)))?;
        if !doc.get_missing_deps(&[]).is_empty() {
            if let Some((up_to, _)) = self.storage.held_documents(&device.id)?.get(&push.doc)
                && self.built_on_older_generation(&doc_id, &mut doc)?
            {
                // Made on the generation a compaction replaced: not taken, not acknowledged;
                // the device gets the current generation whole, replays these edits onto it
                // and pushes them again (protocol §4.7).
                self.storage.set_held(&device.id, &push.doc, *up_to, HeldState::Stale)?;
                return Ok(None);
            }
            return Err(ServiceError::Malformed(format!(
                "{}: changes depend on changes the server does not have: push from the last acknowledged heads",
                push.doc
            )));
        }
        check_layout(&doc, &doc_id).map_err(|error| ServiceError::Malformed(error.to_string()))?;
        let scopes_after = scopes_of(&doc_id, &doc);
        // An existing document is written within the scopes it has; a new one (an incident
        // being reported) within the scopes it will have.
        let governing = if existed { &scopes_before } else { &scopes_after };
        let may_write = governing.iter().any(|scope| readable.contains(scope));
        if !may_write {
            if self.storage.held_documents(&device.id)?.contains_key(&push.doc) {
                // The worker was reassigned: these edits are not taken (nor acknowledged);
                // the response tells the device to remove the document, and it exports them.
                return Ok(None);
            }
            return Err(ServiceError::Forbidden(format!("{}: outside this device's scopes", push.doc)));
        }
        if doc_id.kind == DocKind::Incident {
            if grid_before.is_some() && incident_doc::report_grid(&doc) != grid_before {
                return Err(ServiceError::Forbidden(format!("{}: an incident stays in its grid", push.doc)));
            }
            check_actions(&doc, &before, worker)?;
        }
        if doc_id.kind == DocKind::Activity {
            check_entries(&push.doc, &entries_before, &activity_entries(&doc_id, &doc), worker)?;
        }
        let blob_refs = blob_refs_of(&doc_id, &doc);
        Ok(Some(DocUpdate {
            doc: push.doc.clone(),
            base,
            snapshot: wire_snapshot(&mut doc),
            // An archived incident leaves devices after the retention (`service/retention.rs`).
            scopes: self.incident_scopes(&doc_id, &doc, scopes_after, &hashes_of(&new), now_ms())?,
            changes: new,
            blob_refs,
        }))
    }

    /// `replaces_generations`: the device takes a newer generation of a grid document whole
    /// (protocol §4.7); an older client is told to remove its copy instead.
    fn pull(
        &self,
        device: &Device,
        readable: &[String],
        cursor: u64,
        budget: u32,
        replaces_generations: bool,
    ) -> Result<SyncResponse> {
        let budget = page_budget(budget);
        let mut response = SyncResponse { cursor, ..SyncResponse::default() };
        // The horizon first, then documents and snapshots: a snapshot read after the
        // horizon covers every change of its document up to it, so the cursor never
        // passes a change the device did not get.
        let PullView { horizon, visible, mut held } = self.storage.pull_view(&device.id, readable)?;
        // Removals, until confirmed: told again in every response.
        let mut removing = Vec::new();
        for (doc, (up_to, state)) in held.iter_mut() {
            if !visible.contains(doc) {
                if *state != HeldState::Removing {
                    removing.push((doc.clone(), *up_to, HeldState::Removing));
                    *state = HeldState::Removing;
                }
                response.removed.push(doc.clone());
            } else if *state == HeldState::Stale && !replaces_generations {
                // An older generation on a client that cannot replace it: removed first
                // (its unsynced edits exported), then sent as a new document.
                response.removed.push(doc.clone());
            }
        }
        response.removed.sort();
        // Before the log is read: it no longer brings changes of these documents.
        self.storage.set_held_many(&device.id, &removing)?;
        // What the device is sent below: recorded in one write before the response leaves.
        let mut marks = Vec::new();
        let mut used = 0usize;
        // Snapshots of documents new to the device, or sent but never confirmed (the
        // response carrying them may have been lost): sent (again) whole, each with the
        // version it was read at.
        let mut to_send: Vec<&String> = visible
            .iter()
            .filter(|doc| match held.get(*doc) {
                Some((_, HeldState::Held)) => false,
                Some((_, HeldState::Stale)) => replaces_generations,
                _ => true,
            })
            .collect();
        to_send.sort();
        // Read a few at a time: a center is sent every new incident of its area.
        const SNAPSHOTS_PER_READ: usize = 16;
        for names in to_send.chunks(SNAPSHOTS_PER_READ) {
            let names: Vec<String> = names.iter().map(|doc| (*doc).clone()).collect();
            for (doc, stored) in self.storage.documents(&names)? {
                if used >= budget && !response.pulls.is_empty() {
                    response.more = true;
                    self.storage.set_held_many(&device.id, &marks)?;
                    return Ok(response);
                }
                used += stored.snapshot.len();
                marks.push((doc.clone(), stored.version, HeldState::Sent));
                held.insert(doc.clone(), (stored.version, HeldState::Sent));
                response.pulls.push(DocPull { doc, snapshot: Some(stored.snapshot.into()), changes: Vec::new() });
            }
        }
        // Log changes only for documents the device holds (a snapshot in flight covers its own).
        let cursor = i64::try_from(cursor).unwrap_or(i64::MAX);
        const ROWS: usize = 2000;
        let entries = self.log_after(cursor, horizon, &device.id, &held, ROWS)?;
        let mut last = cursor;
        let mut by_doc: HashMap<String, usize> = HashMap::new();
        // Documents found to be of an older generation on the device in this page.
        let mut stale: BTreeSet<String> = BTreeSet::new();
        for entry in &entries {
            if entry.seq > horizon {
                break;
            }
            if used >= budget && !response.pulls.is_empty() {
                response.more = true;
                break;
            }
            last = entry.seq;
            let skip =
                entry.actor == device.actor || held.get(&entry.doc).is_some_and(|(up_to, _)| entry.seq <= *up_to);
            if skip {
                continue;
            }
            if stale.contains(&entry.doc) || compaction::starts_generation(entry) {
                // A new generation, never sent as changes: the next round sends it whole
                // (or, to an older client, has it removed first); later changes are in it.
                if stale.insert(entry.doc.clone()) {
                    let up_to = held.get(&entry.doc).map_or(0, |(up_to, _)| *up_to);
                    marks.push((entry.doc.clone(), up_to, HeldState::Stale));
                    response.more = true;
                }
                continue;
            }
            used += entry.bytes.len();
            let index = *by_doc.entry(entry.doc.clone()).or_insert_with(|| {
                response.pulls.push(DocPull { doc: entry.doc.clone(), snapshot: None, changes: Vec::new() });
                response.pulls.len() - 1
            });
            response.pulls[index].changes.push(entry.bytes.clone().into());
        }
        if !response.more {
            if entries.len() >= ROWS {
                response.more = true;
            } else {
                // Everything up to the horizon in the device's documents is with it now.
                last = last.max(horizon);
            }
        }
        response.cursor = u64::try_from(last).unwrap_or(0);
        self.storage.set_held_many(&device.id, &marks)?;
        Ok(response)
    }

    /// Changes after `cursor` in the documents a device holds (confirmed), found the
    /// cheaper way: through each held document's changes when it holds fewer documents
    /// than the log has changes since its cursor (grid workers, departments), else by
    /// reading the log since the cursor (centers, which hold thousands).
    fn log_after(
        &self,
        cursor: i64,
        horizon: i64,
        device: &str,
        held: &HashMap<String, (i64, HeldState)>,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        let confirmed = || held.iter().filter(|(_, (_, state))| *state == HeldState::Held).map(|(doc, _)| doc);
        let changes_since = usize::try_from(horizon.saturating_sub(cursor)).unwrap_or(usize::MAX);
        if confirmed().count() < changes_since {
            let docs: Vec<String> = confirmed().cloned().collect();
            Ok(self.storage.log_after_in(cursor, &docs, limit)?)
        } else {
            Ok(self.storage.log_after(cursor, device, limit)?)
        }
    }
}

/// The hashes of changes about to be committed.
fn hashes_of(changes: &[(Vec<u8>, Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    changes.iter().map(|(hash, _, _)| hash.clone()).collect()
}

/// A document as the server keeps and sends it: automerge's save without its per-column
/// DEFLATE. A page's zstd then finds what documents share (actor ids, keys, the near-identical
/// geneses of a grid's incidents), which per-document DEFLATE hides: a first sync's page is
/// a third smaller. It costs disk (about 3× the compressed save), not bytes on the wire.
fn wire_snapshot(doc: &mut AutoCommit) -> Vec<u8> {
    doc.save_nocompress()
}

fn parse_hash(text: &str) -> Result<BlobHash> {
    BlobHash::parse(text).map_err(|error| ServiceError::Malformed(error.to_string()))
}

/// The blobs a document refers to: an incident's report photos and its actions' evidence.
fn blob_refs_of(doc_id: &DocId, doc: &AutoCommit) -> Vec<String> {
    if doc_id.kind == DocKind::Activity {
        return activity_doc::blob_refs(doc);
    }
    if doc_id.kind != DocKind::Incident {
        return Vec::new();
    }
    let mut refs = BTreeSet::new();
    let report = incident_doc::read_report(doc).unwrap_or_default();
    for (_, photos) in report.iter().filter(|(key, _)| key == "photos") {
        refs.extend(photos.split(',').filter_map(|photo| BlobHash::parse(photo.trim()).ok()));
    }
    for action in incident_doc::read_timeline(doc).unwrap_or_default().into_iter().flatten() {
        if let ActionKind::ResolveOnSpot { evidence, .. } | ActionKind::Complete { evidence, .. } = &action.kind {
            refs.extend(evidence.iter().filter_map(|photo| BlobHash::parse(photo).ok()));
        }
    }
    refs.into_iter().map(|hash| hash.to_string()).collect()
}

/// An activity document's entries as `(map, id) → json`; empty for other documents.
fn activity_entries(doc_id: &DocId, doc: &AutoCommit) -> BTreeMap<(String, String), String> {
    if doc_id.kind != DocKind::Activity {
        return BTreeMap::new();
    }
    activity_doc::CONTAINERS
        .iter()
        .flat_map(|container| {
            activity_doc::entries(doc, container)
                .unwrap_or_default()
                .into_iter()
                .map(move |(id, json)| (((*container).to_owned(), id), json))
        })
        .collect()
}

/// Activity entries are written once, by their own worker: every entry there before a push
/// is there after it, unchanged, and every new one names the pushing worker.
fn check_entries(
    doc: &str,
    before: &BTreeMap<(String, String), String>,
    after: &BTreeMap<(String, String), String>,
    worker: &Worker,
) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Author {
        worker: String,
    }
    for (key, json) in before {
        if after.get(key) != Some(json) {
            return Err(ServiceError::Forbidden(format!("{doc}: entry {} was changed or removed", key.1)));
        }
    }
    for (key, json) in after.iter().filter(|(key, _)| !before.contains_key(*key)) {
        let author = serde_json::from_str::<Author>(json).map(|author| author.worker).unwrap_or_default();
        if author != worker.person {
            return Err(ServiceError::Forbidden(format!("{doc}: entry {} is not the worker's own", key.1)));
        }
    }
    Ok(())
}

/// A timeline is append-only: every entry there before a push is still there after it,
/// unchanged and in the same order (others' entries may be interleaved). And the actions a
/// push adds must be the worker's own: their person, role and department as enrolled, not
/// whatever the device claims.
fn check_actions(doc: &AutoCommit, before: &[Option<Action>], worker: &Worker) -> Result<()> {
    let timeline = incident_doc::read_timeline(doc).map_err(|error| ServiceError::Malformed(error.to_string()))?;
    let mut remaining = timeline.iter();
    for old in before {
        if !remaining.any(|entry| entry == old) {
            return Err(ServiceError::Forbidden(
                "a timeline entry was changed or removed: the timeline is append-only".into(),
            ));
        }
    }
    let before_ids: BTreeSet<&str> = before.iter().flatten().map(|action| action.id.as_str()).collect();
    for action in timeline.iter().flatten().filter(|action: &&Action| !before_ids.contains(action.id.as_str())) {
        let department = action.actor.department.as_ref().map(ToString::to_string);
        if action.actor.person != worker.person
            || action.actor.role.code() != worker.role
            || department != worker.department
        {
            return Err(ServiceError::Forbidden(
                "an action claims another person, role or department than the device's worker".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use wangge_core::sync::wire::{DEFAULT_PULL_BUDGET, MAX_BODY_BYTES, MAX_PULL_BUDGET};

    #[test]
    fn workers_are_refused_with_the_reason_when_role_department_or_grids_do_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::new(crate::SqliteStorage::open(&dir.path().join("server.db")).unwrap());
        let one = GridCode::parse_default("440703001001001").unwrap();
        let two = GridCode::parse_default("440703001001002").unwrap();
        service.create_grid(&one, "第1网格", "community").unwrap();
        service.create_grid(&two, "第2网格", "community").unwrap();
        let worker = |person: &str, role: &str, department: Option<&str>, grids: &[&str]| Worker {
            person: person.into(),
            role: role.into(),
            department: department.map(str::to_owned),
            grids: grids.iter().map(|grid| (*grid).to_owned()).collect(),
        };
        let refused = |worker: Worker| match service.create_worker(&worker) {
            Err(ServiceError::Malformed(message)) => message,
            other => panic!("{} was not refused: {other:?}", worker.person),
        };
        let (g1, g2) = (one.as_str(), two.as_str());
        assert!(refused(worker("", "full_time_worker", None, &[g1])).contains("person id"));
        assert!(refused(worker("张 三", "full_time_worker", None, &[g1])).contains("person id"));
        assert!(refused(worker("w1", "mayor", None, &[g1])).contains("unknown role"));
        assert!(refused(worker("h1", "department_handler", None, &[])).contains("needs a department"));
        assert!(refused(worker("h1", "department_handler", Some("no such"), &[])).contains("department"));
        assert!(
            refused(worker("h1", "department_handler", Some("tourism_board"), &[])).contains("not in the published")
        );
        assert!(refused(worker("h1", "department_handler", Some("urban_management"), &[g1])).contains("no grids"));
        assert!(
            refused(worker("w1", "full_time_worker", Some("urban_management"), &[g1])).contains("has no department")
        );
        assert!(refused(worker("w1", "full_time_worker", None, &[])).contains("needs a grid"));
        assert!(refused(worker("w1", "full_time_worker", None, &[g1, g2])).contains("one grid"));
        assert!(refused(worker("c1", "center_staff_county", None, &["44"])).contains("unknown grid or area"));
        assert!(refused(worker("w1", "full_time_worker", None, &["440703001001009"])).contains("unknown grid"));

        // What fits is taken.
        service.create_worker(&worker("h1", "department_handler", Some("urban_management"), &[])).unwrap();
        service.create_worker(&worker("l1", "grid_leader", None, &[g1, g2])).unwrap();
        service.create_worker(&worker("z1", "professional_worker", Some("urban_management"), &[g1, g2])).unwrap();
        service.create_worker(&worker("c1", "center_staff_county", None, &["440703"])).unwrap();
        assert!(service.storage().worker("l1").unwrap().is_some());
    }

    #[test]
    fn a_page_budget_is_the_default_when_unset_and_capped_below_the_body_limit() {
        assert_eq!(page_budget(0), DEFAULT_PULL_BUDGET as usize);
        assert_eq!(page_budget(1000), 1000);
        assert_eq!(page_budget(u32::MAX), MAX_PULL_BUDGET as usize);
        assert!((MAX_PULL_BUDGET as usize) < MAX_BODY_BYTES);
    }
}
