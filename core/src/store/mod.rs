//! The device's local store: one SQLite file holding the grid documents, the sync
//! bookkeeping and the projection that every read uses.
//!
//! ```no_run
//! # use wangge_core::{Store, model::*};
//! # fn main() -> wangge_core::Result<()> {
//! let store = Store::open("/data/wangge.db")?;
//! let code = GridCode::parse_default("440703001001001")?;
//! store.add_grid(&Grid::new(code.clone(), "长堤社区第1网格", GridKind::Community)?, true)?;
//! let building = store.add_building(&code, NewBuilding {
//!     name: Label::parse("2栋")?,
//!     address: Address::parse("江门市蓬江区港口路18号2栋")?,
//!     location: None, floors: Some(7), units: Some(2), usage: BuildingUse::Residential,
//! })?;
//! # Ok(()) }
//! ```
//!
//! A capture is one SQLite transaction: its projection rows and its edits (a pending
//! capture, see `pending.rs`) commit together or not at all; [`Store::flush`], which every
//! read or merge of documents runs first, makes pending captures into automerge changes.
//! The store owns its connections — one writer (with the loaded documents) and one reader
//! — and never hands them out.

mod activity;
mod card;
pub(crate) mod documents;
mod encrypt;
mod exports;
mod generation;
mod incidents;
mod nearby;
mod pending;
mod projection;
mod read;
mod schema;
mod wal;

use pending::{Op, PendingWrite};
use projection::Changed;

pub use exports::RemovedChanges;
pub use incidents::{
    DepartmentDeadline, Due, IncidentFilter, IncidentStats, IncidentSummary, NewIncident, ResidentContact,
    TimelineEntry, check_action, clock_deadline, describe,
};
pub use read::{HouseholdSummary, ResidentHit};
#[doc(hidden)]
pub use schema::AFTER_UPGRADE_STEP;
pub use schema::SCHEMA_VERSION;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ScalarValue};
use chrono::{DateTime, FixedOffset};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::calendar::Calendar;
use crate::clock::{Clock, SystemClock, WallClock};
use crate::crdt::{self, DocId, DocKind, Edit, FieldConflict, FieldKind, RecordWrite};
use crate::incident::catalog::Catalog;
use crate::model::*;
use crate::{Error, Result};

/// Settings for opening a store.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// How grid codes are segmented in this deployment.
    pub code_format: CodeFormat,
    /// The matter catalog; the built-in default when `None` (the server will send its own).
    pub catalog: Option<Catalog>,
    /// The working-day calendar; the built-in one when `None`.
    pub calendar: Option<Calendar>,
    /// The raw 256-bit key of an encrypted store (SQLCipher), kept by the app in Android
    /// Keystore or iOS Keychain; `None`: a plain file. A keyed store's blobs are encrypted
    /// too ([`crate::blobs::BlobStore::beside`]).
    pub key: Option<[u8; 32]>,
    /// The device's wall clock; the system's when `None`. Whatever it says, the store
    /// corrects it by the sync server's time ([`crate::clock`]); a host with a better time
    /// source than the system's may give it here.
    pub clock: Option<Arc<dyn WallClock>>,
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("code_format", &self.code_format)
            .field("catalog", &self.catalog)
            .field("calendar", &self.calendar)
            .field("key", &self.key.map(|_| "<set>"))
            .field("clock", &self.clock.as_ref().map_or("system", |_| "<given>"))
            .finish()
    }
}

/// A keyed store's blob key (random, kept inside the encrypted database: re-keying the
/// store leaves the blobs as they are). Never printed.
#[derive(Clone, Copy)]
pub(crate) struct BlobKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobKey(..)")
    }
}

/// The local store of one device.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    _open: OpenFile,
    writer: Mutex<Writer>,
    reader: Mutex<Connection>,
    actor: ActorId,
    code_format: CodeFormat,
    /// `Some` for a keyed store.
    blob_key: Option<BlobKey>,
    /// Replaced when the server's reference document brings a newer one.
    catalog: std::sync::RwLock<Catalog>,
    calendar: std::sync::RwLock<Calendar>,
    /// The device's clock, corrected by the server's time.
    clock: Clock,
    /// The offset as last written to `meta` (`i64::MIN`: never).
    clock_offset_stored: AtomicI64,
}

/// The writer connection and the documents loaded for writing.
struct Writer {
    conn: Connection,
    docs: HashMap<DocId, AutoCommit>,
    /// The number of chunks of each loaded document, kept beside it.
    n_chunks: HashMap<DocId, i64>,
    /// Whether `pending_captures` may hold rows (true until a flush finds it empty).
    maybe_pending: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("loaded_docs", &self.docs.len()).finish()
    }
}

/// Where sync stands on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    pub enrolled: bool,
    pub pending_changes: u64,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// A capture that could not be made into an automerge change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCapture {
    pub seq: i64,
    pub grid: String,
    pub time_ms: i64,
    pub error: String,
}

/// What a bulk import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    /// Records created.
    pub n_records: usize,
    /// Records left alone because they were already there.
    pub n_skipped: usize,
    /// Automerge changes made.
    pub n_changes: usize,
}

impl Store {
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path, OpenOptions::default())
    }

    /// Opens (or creates) the store at `path`. A store written by a newer version is left
    /// untouched ([`Error::IncompatibleVersion`]); a file that is not a database is moved
    /// aside and reported ([`Error::Corrupt`]), never deleted. With a key (or without one,
    /// for a file that may be encrypted) a file the key does not open is
    /// [`Error::WrongKey`], and left untouched.
    pub fn open_with(path: impl AsRef<Path>, options: OpenOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let open = OpenFile::claim(&path)?;
        let key = options.key.as_ref();
        // A power cut in a checkpoint can leave the file's header damaged while the WAL holds
        // page 1 whole (see `wal.rs`): then SQLite, reading it from there, decides.
        if key.is_some() || !wal::page_one_only_in_wal(&path)? {
            schema::check_existing(&path, key.is_some())?;
        }
        let mut conn = Connection::open(&path)?;
        schema::apply_key(&conn, key)?;
        if key.is_some() {
            schema::check_key(&conn)?;
        }
        if let Err(error) = schema::configure(&conn).and_then(|()| schema::migrate(&mut conn)) {
            if key.is_none() && schema::is_unreadable(&error) {
                drop(conn);
                return Err(Error::Corrupt { moved_to: schema::set_aside(&path)? });
            }
            return Err(error);
        }
        let actor = device_actor(&conn)?;
        let blob_key = match key {
            Some(_) => {
                let blob_key = blob_key(&conn)?;
                encrypt::finish_sealing(&path, &conn, blob_key)?;
                Some(blob_key)
            }
            None => None,
        };
        let reader = open_reader(&path, key)?;
        let clock = Clock::new(options.clock.unwrap_or_else(|| Arc::new(SystemClock)));
        let stored_offset = clock_offset(&conn)?;
        clock.set_offset_ms(stored_offset.unwrap_or(0));
        Ok(Store {
            path,
            _open: open,
            writer: Mutex::new(Writer { conn, docs: HashMap::new(), n_chunks: HashMap::new(), maybe_pending: true }),
            reader: Mutex::new(reader),
            actor,
            code_format: options.code_format,
            blob_key,
            catalog: std::sync::RwLock::new(options.catalog.unwrap_or_else(Catalog::default_catalog)),
            calendar: std::sync::RwLock::new(options.calendar.unwrap_or_else(Calendar::china)),
            clock,
            clock_offset_stored: AtomicI64::new(stored_offset.unwrap_or(i64::MIN)),
        })
    }

    /// Re-encrypts a keyed store with `new_key` (the app then keeps the new key, and the
    /// old one opens it no more: [`Error::WrongKey`]). Blobs are unchanged: their key lives
    /// inside the database. A plain store cannot be keyed this way ([`Error::WrongKey`]);
    /// see [`Store::encrypt_plain`]. Other calls may run meanwhile: they wait until the
    /// database is re-encrypted and the reader has the new key (every page is rewritten, so
    /// this takes as long as writing the whole file).
    pub fn rekey(&self, new_key: [u8; 32]) -> Result<()> {
        if self.blob_key.is_none() {
            return Err(Error::WrongKey);
        }
        // Both locks, writer then reader (the order of every call that takes both; no call
        // takes the writer while holding the reader): a read between the rekey and the
        // swap would run on a connection with the old key.
        let writer = self.writer();
        let mut reader = self.reader();
        let new_reader = open_reader(&self.path, Some(&new_key))?;
        schema::rekey(&writer.conn, &new_key)?;
        *reader = new_reader;
        Ok(())
    }

    /// Whether the store is encrypted (opened with a key).
    pub fn is_encrypted(&self) -> bool {
        self.blob_key.is_some()
    }

    /// The key of a keyed store's blobs (for [`crate::blobs::BlobStore::beside`]).
    pub(crate) fn blob_key(&self) -> Option<BlobKey> {
        self.blob_key
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This device's automerge actor id (hex): the author of every change it makes.
    pub fn device_actor(&self) -> String {
        self.actor.to_hex_string()
    }

    pub fn code_format(&self) -> CodeFormat {
        self.code_format
    }

    /// The device's clock, corrected by the sync server's time ([`crate::clock`]).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Now by the server's time, as this device knows it, in China's time zone: the `now`
    /// to give deadline queries ([`Store::incidents`], [`Store::incident`]).
    pub fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now()
    }

    /// Takes the server's time from one of its answers: `server_ms`, stamped on the answer
    /// to a request sent at device time `sent_ms` and received at `received_ms`
    /// ([`Clock::device_ms`]). From then on the store's clock tells the server's time. The
    /// offset is kept in the store, written again when it moves by more than a second (not
    /// once per request for the noise of round trips).
    pub fn observe_server_time(&self, server_ms: i64, sent_ms: i64, received_ms: i64) -> Result<()> {
        let offset = Clock::offset_from(server_ms, sent_ms, received_ms);
        self.clock.set_offset_ms(offset);
        let stored = self.clock_offset_stored.load(Ordering::Relaxed);
        if stored == i64::MIN || offset.abs_diff(stored) > 1000 {
            self.set_meta(&[("clock_offset_ms", offset.to_string().as_str())])?;
            self.clock_offset_stored.store(offset, Ordering::Relaxed);
        }
        Ok(())
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock leaves the documents possibly ahead of SQLite;
        // they are reloaded, so the poison can be cleared.
        self.writer.lock().unwrap_or_else(|poisoned| {
            self.writer.clear_poison();
            let mut writer = poisoned.into_inner();
            writer.docs.clear();
            writer.n_chunks.clear();
            writer
        })
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts a grid on this device, creating its documents from their shared genesis.
    /// `with_sensitive`: whether this device may hold the grid's sensitive data.
    pub fn add_grid(&self, grid: &Grid, with_sensitive: bool) -> Result<()> {
        let mut writer = self.writer();
        let tx = writer.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (status, successors) = match &grid.status {
            GridStatus::Active => ("active".to_owned(), Vec::new()),
            GridStatus::Retired { on, reason, successors } => {
                let reason = match reason {
                    Succession::Split => "split",
                    Succession::Merged => "merged",
                };
                (format!("{reason}@{}", crdt::encode_date(on)), successors.clone())
            }
        };
        let join = |codes: &[GridCode]| codes.iter().map(GridCode::as_str).collect::<Vec<_>>().join(",");
        tx.execute(
            "INSERT INTO grids (code, name, kind, status, successors, predecessors, has_sensitive)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(code) DO UPDATE SET name = excluded.name, kind = excluded.kind, status = excluded.status,
                successors = excluded.successors, predecessors = excluded.predecessors,
                has_sensitive = excluded.has_sensitive",
            params![
                grid.code.as_str(),
                grid.name,
                grid.kind.code(),
                status,
                join(&successors),
                join(&grid.predecessors),
                with_sensitive
            ],
        )?;
        let mut kinds = vec![DocKind::Register];
        if with_sensitive {
            kinds.push(DocKind::Sensitive);
        }
        for kind in kinds {
            let id = DocId::new(kind, &grid.code);
            if !documents::exists(&tx, &id)? {
                documents::insert(&tx, &id, grid.code.as_str(), &mut crdt::genesis(kind, &grid.code))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The grids on this device.
    pub fn grids(&self) -> Result<Vec<Grid>> {
        read::grids(&self.reader(), self.code_format)
    }

    fn grid_of(&self, record: RecordRef) -> Result<String> {
        read::grid_of(&self.reader(), record)?.ok_or(Error::NotFound { record })
    }

    /// Runs one local capture: everything `f` writes is validated against the projection,
    /// projected, and committed with the capture's edits as one pending capture, in one
    /// SQLite transaction, or nothing at all. [`Store::flush`] makes the automerge changes.
    fn capture<T>(&self, target: Target<'_>, f: impl FnOnce(&mut Capture<'_, '_>) -> Result<T>) -> Result<T> {
        let mut writer = self.writer();
        writer.maybe_pending = true;
        self.run(&mut writer, target, Mode::Deferred(Vec::new()), f)
    }

    /// Runs `f` on the documents themselves (imports, merges): automerge changes, their
    /// chunks and the projection they imply commit in one SQLite transaction. Pending
    /// captures become changes first, so that they keep their place in history.
    fn capture_direct<T>(&self, target: Target<'_>, f: impl FnOnce(&mut Capture<'_, '_>) -> Result<T>) -> Result<T> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        self.run(&mut writer, target, Mode::Direct, f)
    }

    fn run<T>(
        &self,
        writer: &mut Writer,
        target: Target<'_>,
        mode: Mode,
        f: impl FnOnce(&mut Capture<'_, '_>) -> Result<T>,
    ) -> Result<T> {
        let Writer { conn, docs, n_chunks, .. } = writer;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let grid = match target {
            Target::Grid(grid) => grid.to_owned(),
            Target::GridOf(record) => read::grid_of(&tx, record)?.ok_or(Error::NotFound { record })?,
        };
        let mut capture = Capture {
            tx: &tx,
            docs,
            n_chunks,
            actor: &self.actor,
            grid,
            mode,
            time_ms: self.clock.now_ms(),
            touched: BTreeMap::new(),
            dirty: BTreeSet::new(),
            n_changes: 0,
        };
        let result = f(&mut capture).and_then(|value| capture.finish().map(|()| value));
        let dirty = std::mem::take(&mut capture.dirty);
        let result = result.and_then(|value| tx.commit().map(|()| value).map_err(Error::from));
        if result.is_err() {
            // The in-memory documents may be ahead of the database: drop them, reload later.
            for id in dirty {
                docs.remove(&id);
                n_chunks.remove(&id);
            }
        }
        result
    }

    /// Makes the pending captures into automerge changes (one per capture and document,
    /// with the capture's time), in one transaction. Every operation that reads or merges
    /// documents does this first; an app may also call it when idle.
    pub fn flush(&self) -> Result<()> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)
    }

    fn flush_pending(&self, writer: &mut Writer) -> Result<()> {
        if !writer.maybe_pending {
            return Ok(());
        }
        let Writer { conn, docs, n_chunks, maybe_pending } = writer;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut dirty = BTreeSet::new();
        let result = (|| {
            let rows: Vec<(i64, String, i64, String)> = tx
                .prepare_cached("SELECT seq, grid_code, time_ms, writes FROM pending_captures ORDER BY seq")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
                .collect::<Result<_, _>>()?;
            for (seq, grid, time_ms, writes) in rows {
                // Each capture in its own savepoint: one that cannot be replayed is set
                // aside (kept and reported), and the others flush past it.
                tx.execute_batch("SAVEPOINT replay")?;
                let mut replayed_docs = BTreeSet::new();
                let replayed = (|| {
                    let writes: Vec<PendingWrite> =
                        serde_json::from_str(&writes).map_err(|error| Error::document("pending capture", error))?;
                    let mut capture = Capture {
                        tx: &tx,
                        docs: &mut *docs,
                        n_chunks: &mut *n_chunks,
                        actor: &self.actor,
                        grid: grid.clone(),
                        mode: Mode::Replay { time_ms },
                        time_ms,
                        touched: BTreeMap::new(),
                        dirty: BTreeSet::new(),
                        n_changes: 0,
                    };
                    let result =
                        writes.iter().try_for_each(|write| capture.replay(write)).and_then(|()| capture.finish());
                    replayed_docs.append(&mut capture.dirty);
                    result
                })();
                match replayed {
                    Ok(()) => {
                        tx.execute_batch("RELEASE replay")?;
                        dirty.append(&mut replayed_docs);
                    }
                    Err(error) => {
                        tx.execute_batch("ROLLBACK TO replay; RELEASE replay")?;
                        for id in &replayed_docs {
                            docs.remove(id);
                            n_chunks.remove(id);
                        }
                        tx.execute(
                            "INSERT INTO failed_captures (seq, grid_code, time_ms, writes, error) VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![seq, grid, time_ms, writes, error.to_string()],
                        )?;
                    }
                }
                tx.execute("DELETE FROM pending_captures WHERE seq = ?1", [seq])?;
            }
            Ok(())
        })();
        let result = result.and_then(|()| tx.commit().map_err(Error::from));
        match result {
            Ok(()) => *maybe_pending = false,
            Err(_) => {
                for id in dirty {
                    docs.remove(&id);
                    n_chunks.remove(&id);
                }
            }
        }
        result
    }

    /// Captures that could not be made into changes (see `failed_captures` in the schema):
    /// their time, grid and why. Their edits are kept in the store for export.
    pub fn failed_captures(&self) -> Result<Vec<FailedCapture>> {
        let conn = self.reader();
        let mut statement = conn.prepare("SELECT seq, grid_code, time_ms, error FROM failed_captures ORDER BY seq")?;
        let rows = statement
            .query_map([], |row| {
                Ok(FailedCapture { seq: row.get(0)?, grid: row.get(1)?, time_ms: row.get(2)?, error: row.get(3)? })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn add_building(&self, grid: &GridCode, building: NewBuilding) -> Result<BuildingId> {
        let id = BuildingId::from_uuid(self.clock.uuid_v7());
        self.capture(Target::Grid(grid.as_str()), |capture| {
            capture.create(RecordRef::Building(id), &crdt::new_building(&building))
        })?;
        Ok(id)
    }

    pub fn update_building(&self, id: BuildingId, patch: BuildingPatch) -> Result<()> {
        let record = RecordRef::Building(id);
        self.capture(Target::GridOf(record), |capture| capture.update(record, &crdt::building_patch(&patch)))
    }

    pub fn add_household(&self, grid: &GridCode, household: NewHousehold) -> Result<HouseholdId> {
        let id = HouseholdId::from_uuid(self.clock.uuid_v7());
        self.capture(Target::Grid(grid.as_str()), |capture| {
            if let Some(building) = household.building {
                capture.require(RecordRef::Building(building))?;
            }
            capture.create(RecordRef::Household(id), &crdt::new_household(&household))
        })?;
        Ok(id)
    }

    pub fn update_household(&self, id: HouseholdId, patch: HouseholdPatch) -> Result<()> {
        let record = RecordRef::Household(id);
        self.capture(Target::GridOf(record), |capture| {
            if let Some(Some(building)) = patch.building {
                capture.require(RecordRef::Building(building))?;
            }
            capture.update(record, &crdt::household_patch(&patch))
        })
    }

    /// Adds a resident; gender and birth date come from the ID number when there is one.
    pub fn add_resident(&self, grid: &GridCode, resident: NewResident) -> Result<ResidentId> {
        let id = ResidentId::from_uuid(self.clock.uuid_v7());
        let resident = resident.with_derived_fields()?;
        self.capture(Target::Grid(grid.as_str()), |capture| {
            if let Some(household) = resident.household {
                capture.require(RecordRef::Household(household))?;
            }
            capture.create(RecordRef::Resident(id), &crdt::new_resident(&resident))
        })?;
        Ok(id)
    }

    pub fn update_resident(&self, id: ResidentId, patch: ResidentPatch) -> Result<()> {
        let record = RecordRef::Resident(id);
        let write = crdt::resident_patch(&patch)?;
        self.capture(Target::GridOf(record), |capture| {
            if let Some(Some(household)) = patch.household {
                capture.require(RecordRef::Household(household))?;
            }
            capture.update(record, &write)
        })
    }

    pub fn add_organization(&self, grid: &GridCode, organization: NewOrganization) -> Result<OrganizationId> {
        let id = OrganizationId::from_uuid(self.clock.uuid_v7());
        self.capture(Target::Grid(grid.as_str()), |capture| {
            if let Some(building) = organization.building {
                capture.require(RecordRef::Building(building))?;
            }
            capture.create(RecordRef::Organization(id), &crdt::new_organization(&organization))
        })?;
        Ok(id)
    }

    pub fn update_organization(&self, id: OrganizationId, patch: OrganizationPatch) -> Result<()> {
        let record = RecordRef::Organization(id);
        self.capture(Target::GridOf(record), |capture| capture.update(record, &crdt::organization_patch(&patch)))
    }

    pub fn add_component(&self, grid: &GridCode, component: NewComponent) -> Result<ComponentId> {
        let id = ComponentId::from_uuid(self.clock.uuid_v7());
        self.capture(Target::Grid(grid.as_str()), |capture| {
            capture.create(RecordRef::Component(id), &crdt::new_component(&component))
        })?;
        Ok(id)
    }

    pub fn update_component(&self, id: ComponentId, patch: ComponentPatch) -> Result<()> {
        let record = RecordRef::Component(id);
        self.capture(Target::GridOf(record), |capture| capture.update(record, &crdt::component_patch(&patch)))
    }

    /// Marks a record as moved out, deceased, demolished or closed. It stays, with its history.
    pub fn archive(&self, archive: Archive) -> Result<()> {
        let (record, edit) = crdt::archive(&archive);
        self.capture(Target::GridOf(record), |capture| {
            capture.update(record, &RecordWrite { register: vec![edit], sensitive: Vec::new() })
        })
    }

    /// Erases a record entered by mistake: it disappears from every replica (its past
    /// values remain in the document history until the history is compacted). A record
    /// others still refer to must be archived, or those erased first.
    pub fn erase(&self, record: RecordRef) -> Result<()> {
        self.capture(Target::GridOf(record), |capture| {
            let n_referrers = read::count_referrers(capture.tx, record)?;
            if n_referrers > 0 {
                return Err(Error::StillReferenced { record, n_referrers });
            }
            capture.erase(record)
        })
    }

    /// Imports a whole grid as many changes (one per building, per household with its
    /// residents, per organization, per component) in one transaction, so later syncs of
    /// single edits stay small. Records already present are left as they are (counted as
    /// skipped): importing the same file twice changes nothing.
    pub fn import(&self, grid: &GridCode, records: &GridRecords) -> Result<ImportSummary> {
        self.capture_direct(Target::Grid(grid.as_str()), |capture| {
            let mut summary = ImportSummary::default();
            for (id, building) in &records.buildings {
                capture.import_one(RecordRef::Building(*id), &crdt::new_building(building), &mut summary)?;
                capture.end_change()?;
            }
            let mut residents_by_household: HashMap<HouseholdId, Vec<&(ResidentId, NewResident)>> = HashMap::new();
            let mut loose_residents = Vec::new();
            for resident in &records.residents {
                match resident.1.household {
                    Some(household) => residents_by_household.entry(household).or_default().push(resident),
                    None => loose_residents.push(resident),
                }
            }
            for (id, household) in &records.households {
                capture.import_one(RecordRef::Household(*id), &crdt::new_household(household), &mut summary)?;
                for (resident_id, resident) in residents_by_household.remove(id).unwrap_or_default() {
                    let resident = resident.clone().with_derived_fields()?;
                    capture.import_one(
                        RecordRef::Resident(*resident_id),
                        &crdt::new_resident(&resident),
                        &mut summary,
                    )?;
                }
                capture.end_change()?;
            }
            let orphans = residents_by_household.into_values().flatten();
            for (resident_id, resident) in loose_residents.into_iter().chain(orphans) {
                let resident = resident.clone().with_derived_fields()?;
                capture.import_one(RecordRef::Resident(*resident_id), &crdt::new_resident(&resident), &mut summary)?;
                capture.end_change()?;
            }
            for (id, organization) in &records.organizations {
                capture.import_one(
                    RecordRef::Organization(*id),
                    &crdt::new_organization(organization),
                    &mut summary,
                )?;
                capture.end_change()?;
            }
            for (id, component) in &records.components {
                capture.import_one(RecordRef::Component(*id), &crdt::new_component(component), &mut summary)?;
                capture.end_change()?;
            }
            summary.n_changes = capture.n_changes;
            Ok(summary)
        })
    }

    /// Fields of a record that have concurrent values, with who wrote each and when.
    pub fn conflicts(&self, record: RecordRef) -> Result<Vec<FieldConflict>> {
        let grid = self.grid_of(record)?;
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, .. } = &mut *writer;
        let id = record.uuid().hyphenated().to_string();
        let mut found = Vec::new();
        for kind in [DocKind::Register, DocKind::Sensitive] {
            let doc_id = DocId { kind, key: grid.clone() };
            if let Some(doc) = loaded(conn, docs, &doc_id, &self.actor)? {
                found.extend(crdt::conflicts(doc, kind, record.kind(), &id));
            }
        }
        Ok(found)
    }

    /// Resolves a conflict by writing `value` (one of the conflicting values, or a new
    /// one in the same stored form) as this device; the write supersedes all of them. The
    /// value is validated like any capture; an ID number also sets gender and birth date.
    pub fn resolve_conflict(&self, record: RecordRef, field: &str, value: ScalarValue) -> Result<()> {
        let spec = crdt::field_spec(record.kind(), field)
            .filter(|spec| spec.kind != FieldKind::Tags)
            .ok_or_else(|| Error::UnknownField { record, field: field.to_owned() })?;
        crdt::check_stored(record.kind(), spec.key, &value)?;
        if let (RecordRef::Resident(id), "id_number", ScalarValue::Str(text)) = (record, spec.key, &value) {
            let id_number = IdNumber::parse_on(text, self.clock.today())?;
            return self.update_resident(id, ResidentPatch { id_number: Some(Some(id_number)), ..Default::default() });
        }
        let edit = Edit::Put(spec.key, value);
        let write = match spec.doc {
            DocKind::Sensitive => RecordWrite { register: Vec::new(), sensitive: vec![edit] },
            DocKind::Register | DocKind::Incident | DocKind::Reference | DocKind::Activity => {
                RecordWrite { register: vec![edit], sensitive: Vec::new() }
            }
        };
        self.capture(Target::GridOf(record), |capture| capture.update(record, &write))
    }

    /// The current heads of a document on this device.
    pub fn heads(&self, doc: &DocId) -> Result<Vec<ChangeHash>> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, .. } = &mut *writer;
        let loaded = loaded(conn, docs, doc, &self.actor)?.ok_or_else(|| unknown_document(doc))?;
        Ok(loaded.get_heads())
    }

    /// The encoded changes of a document that a peer with `heads` lacks. Heads this
    /// device does not know (the peer's own new changes) are ignored: automerge would
    /// otherwise answer with the whole history.
    pub fn changes_since(&self, doc: &DocId, heads: &[ChangeHash]) -> Result<Vec<Vec<u8>>> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, .. } = &mut *writer;
        let loaded = loaded(conn, docs, doc, &self.actor)?.ok_or_else(|| unknown_document(doc))?;
        let known: Vec<ChangeHash> =
            heads.iter().copied().filter(|hash| loaded.get_change_meta_by_hash(hash).is_some()).collect();
        Ok(loaded.get_changes(&known).into_iter().map(|change| change.raw_bytes().to_vec()).collect())
    }

    /// A document's heads and the number of its last chunk, read together (under the
    /// writer lock, after flushing): acknowledging up to that chunk covers exactly the
    /// changes up to those heads.
    pub(crate) fn sync_point(&self, doc: &DocId) -> Result<(Vec<ChangeHash>, i64)> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, .. } = &mut *writer;
        let loaded = loaded(conn, docs, doc, &self.actor)?.ok_or_else(|| unknown_document(doc))?;
        let heads = loaded.get_heads();
        let last: i64 = conn.query_row(
            "SELECT coalesce(max(seq), 0) FROM document_chunks WHERE doc_id = ?1",
            [doc.to_string()],
            |row| row.get(0),
        )?;
        Ok((heads, last))
    }

    /// This device's own changes of a document after `heads` (what a sync pushes: the server
    /// has everyone else's, it sent them).
    pub(crate) fn own_changes_since(&self, doc: &DocId, heads: &[ChangeHash]) -> Result<Vec<Vec<u8>>> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, .. } = &mut *writer;
        let loaded = loaded(conn, docs, doc, &self.actor)?.ok_or_else(|| unknown_document(doc))?;
        let known: Vec<ChangeHash> =
            heads.iter().copied().filter(|hash| loaded.get_change_meta_by_hash(hash).is_some()).collect();
        Ok(loaded
            .get_changes(&known)
            .into_iter()
            .filter(|change| change.actor_id() == &self.actor)
            .map(|change| change.raw_bytes().to_vec())
            .collect())
    }

    /// Applies changes received from a peer and re-projects every record they touch, in
    /// one transaction. Re-applying known changes is harmless.
    pub fn apply_changes(&self, doc: &DocId, changes: &[Vec<u8>]) -> Result<usize> {
        let mut decoded = Vec::with_capacity(changes.len());
        for bytes in changes {
            decoded.push(crdt::untrusted::change(bytes.clone()).map_err(|error| Error::document(doc, error))?);
        }
        match doc.kind {
            DocKind::Incident => return self.apply_incident_changes(doc, decoded),
            DocKind::Reference => return self.apply_reference_changes(doc, decoded),
            DocKind::Activity => return self.apply_activity_changes(doc, decoded),
            DocKind::Register | DocKind::Sensitive => {}
        }
        self.capture_direct(Target::Grid(&doc.key), |capture| capture.apply(doc, decoded))
    }

    /// Rebuilds the whole projection from the documents.
    pub fn rebuild_projection(&self) -> Result<()> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, .. } = &mut *writer;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let grids: Vec<String> = tx
            .prepare("SELECT DISTINCT grid_code FROM documents ORDER BY grid_code")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        for grid in grids {
            let register_id = DocId { kind: DocKind::Register, key: grid.clone() };
            let sensitive_id = DocId { kind: DocKind::Sensitive, key: grid.clone() };
            for id in [&register_id, &sensitive_id] {
                loaded(&tx, docs, id, &self.actor)?;
            }
            let Some(register) = docs.get(&register_id) else { continue };
            projection::rebuild_grid(&tx, &grid, register, docs.get(&sensitive_id))?;
        }
        let incidents: Vec<DocId> =
            documents::grid_doc_ids(&tx)?.into_iter().filter(|id| id.kind == DocKind::Incident).collect();
        for id in incidents {
            if let Some(doc) = loaded(&tx, docs, &id, &self.actor)? {
                incidents::project_incident(&tx, &id, doc, &self.catalog())?;
            }
        }
        for id in activity::activity_doc_ids(&tx)? {
            if let Some(doc) = loaded(&tx, docs, &id, &self.actor)? {
                activity::project_activity(&tx, &id, doc)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Local edits not yet acknowledged by the sync server: each capture counts once
    /// (whether or not it has been made into changes yet, and however many documents it
    /// wrote); each change of an import counts once.
    pub fn pending_changes(&self) -> Result<u64> {
        documents::n_unacked(&self.reader())
    }

    /// The full saved form of a document (what a first sync would send).
    pub fn document_bytes(&self, doc: &DocId) -> Result<Vec<u8>> {
        let mut writer = self.writer();
        self.flush_pending(&mut writer)?;
        let Writer { conn, docs, .. } = &mut *writer;
        let loaded = loaded(conn, docs, doc, &self.actor)?.ok_or_else(|| unknown_document(doc))?;
        Ok(loaded.save())
    }

    /// The ids of the documents on this device.
    pub fn documents(&self) -> Result<Vec<DocId>> {
        documents::grid_doc_ids(&self.reader())
    }

    /// Sets bookkeeping values (sync cursor, token, times) in one transaction.
    pub(crate) fn set_meta(&self, pairs: &[(&str, &str)]) -> Result<()> {
        let mut writer = self.writer();
        let tx = writer.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (key, value) in pairs {
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The server stores everything of `doc` up to `heads`: those become the acknowledged
    /// heads, and local changes up to chunk `last_chunk` stop counting as pending.
    pub(crate) fn acknowledge(&self, doc: &DocId, heads: &[ChangeHash], last_chunk: i64) -> Result<()> {
        let mut writer = self.writer();
        let tx = writer.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = doc.to_string();
        tx.execute(
            "UPDATE documents SET acked_heads = ?2, n_unacked_folded = 0 WHERE doc_id = ?1",
            params![key, documents::encode_heads(heads)],
        )?;
        tx.execute(
            "UPDATE document_chunks SET n_unacked = 0 WHERE doc_id = ?1 AND seq <= ?2",
            params![key, last_chunk],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Closes the store and deletes every file it wrote: the database with its WAL and
    /// shared memory, the blob directory beside it, and the exports of removed documents.
    /// What the operator's revocation asks of a lost or retired device.
    pub fn wipe(self) -> Result<()> {
        let path = self.path.clone();
        drop(self);
        wipe_files(&path)
    }

    /// Removes a document this device may no longer hold (a reassigned worker's old grid,
    /// an incident archived longer ago than the server keeps incidents on devices): first
    /// its own changes the server has not acknowledged go to a file beside the store
    /// (`<store>.removed-<kind>-<key>-<ms>.changes`, sealed under the blob key in a keyed
    /// store: [`Store::read_removed_changes`] reads it back) — no file when there are none
    /// —, then the document and every row projected from it, then the cached copies of the
    /// photos and tracks it refers to (not those pending upload). Returns the export's
    /// path, if there was anything to export.
    pub fn purge_document(&self, doc: &DocId) -> Result<Option<PathBuf>> {
        let acked: Option<Vec<u8>> = self.with_reader(|conn| {
            conn.query_row("SELECT acked_heads FROM documents WHERE doc_id = ?1", [doc.to_string()], |row| row.get(0))
                .optional()
        })?;
        let Some(acked) = acked else { return Ok(None) };
        let acked = documents::decode_heads(&acked);
        let unsynced = self.own_changes_since(doc, &acked)?;
        let exported = if unsynced.is_empty() {
            None
        } else {
            let cipher = self.blob_key.map(|key| crate::at_rest::FileCipher::new(&key.0));
            Some(exports::write(&self.path, doc, &unsynced.concat(), cipher.as_ref(), self.clock.now_ms())?)
        };
        let mut writer = self.writer();
        let Writer { conn, docs, n_chunks, .. } = &mut *writer;
        let blobs = match doc.kind {
            DocKind::Incident => {
                loaded(conn, docs, doc, &self.actor)?.map(|loaded| crate::incident::doc::blob_refs(loaded))
            }
            DocKind::Activity => {
                loaded(conn, docs, doc, &self.actor)?.map(|loaded| crate::activity::doc::blob_refs(loaded))
            }
            DocKind::Register | DocKind::Sensitive | DocKind::Reference => None,
        }
        .unwrap_or_default();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = doc.to_string();
        tx.execute("DELETE FROM document_chunks WHERE doc_id = ?1", [&key])?;
        tx.execute("DELETE FROM document_snapshots WHERE doc_id = ?1", [&key])?;
        tx.execute("DELETE FROM documents WHERE doc_id = ?1", [&key])?;
        projection::purge(&tx, doc)?;
        tx.commit()?;
        docs.remove(doc);
        n_chunks.remove(doc);
        crate::blobs::BlobStore::forget_cached(&self.path, &blobs)?;
        if matches!(doc.kind, DocKind::Register | DocKind::Sensitive) {
            // No trace on disk: the search indexes rewritten without the deleted entries,
            // and the WAL, which still holds the old pages, checkpointed and emptied
            // (secure_delete has zeroed the freed content in the database).
            for search in ["resident_name_search", "building_place_search", "household_place_search"] {
                conn.execute(&format!("INSERT INTO {search}({search}) VALUES ('optimize')"), [])?;
            }
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(exported)
    }

    /// Where sync stands, for a status line: pending edits, the last success and error.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        Ok(SyncStatus {
            enrolled: self.meta("sync_token")?.is_some(),
            pending_changes: self.pending_changes()?,
            last_success_ms: self.meta("sync_last_success_ms")?.and_then(|ms| ms.parse().ok()),
            last_error: self.meta("sync_last_error")?.filter(|error| !error.is_empty()),
        })
    }

    /// Records why the last sync failed (no personal data: transport and protocol errors);
    /// an empty error clears it.
    pub fn record_sync_error(&self, error: &str) -> Result<()> {
        self.set_meta(&[("sync_last_error", error)])
    }

    /// Runs a read on the reader connection (benchmarks and tests compare against plain SQL).
    #[doc(hidden)]
    pub fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        Ok(f(&self.reader())?)
    }
}

/// The files open as a `Store` in this process. A second `Store` on the same file would
/// write from its own cached documents, and each would overwrite the other's changes.
static OPEN_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// This process's claim on a store file, released when the `Store` is dropped.
#[derive(Debug)]
struct OpenFile(PathBuf);

impl OpenFile {
    fn claim(path: &Path) -> Result<OpenFile> {
        // The directory is canonical (it exists); the file may not exist yet.
        let directory = match path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            Some(parent) => parent.canonicalize()?,
            None => std::env::current_dir()?,
        };
        let canonical = directory.join(path.file_name().unwrap_or(path.as_os_str()));
        let mut open = OPEN_FILES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if open.contains(&canonical) {
            return Err(Error::AlreadyOpen);
        }
        open.push(canonical.clone());
        Ok(OpenFile(canonical))
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        let mut open = OPEN_FILES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.retain(|path| path != &self.0);
    }
}

/// The error for a document this device does not hold.
fn unknown_document(doc: &DocId) -> Error {
    match (doc.kind, IncidentId::parse(&doc.key)) {
        (DocKind::Incident, Ok(incident)) => Error::UnknownIncident { incident },
        _ => Error::UnknownGrid { grid: doc.key.clone() },
    }
}

/// The store's read-only connection, keyed like the writer.
fn open_reader(path: &Path, key: Option<&[u8; 32]>) -> Result<Connection> {
    let reader = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    schema::apply_key(&reader, key)?;
    reader.busy_timeout(std::time::Duration::from_secs(5))?;
    reader.set_prepared_statement_cache_capacity(schema::STATEMENT_CACHE_CAPACITY);
    Ok(reader)
}

/// A keyed store's blob key: random, made once and kept in `meta` (encrypted with the rest).
fn blob_key(conn: &Connection) -> Result<BlobKey> {
    let stored: Option<Vec<u8>> =
        conn.query_row("SELECT value FROM meta WHERE key = 'blob_key'", [], |row| row.get(0)).optional()?;
    if let Some(bytes) = stored
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(BlobKey(key));
    }
    let mut key = [0; 32];
    getrandom::fill(&mut key).map_err(|error| Error::Io(std::io::Error::other(error.to_string())))?;
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('blob_key', ?1)", [key.as_slice()])?;
    Ok(BlobKey(key))
}

/// The device's actor id, created on first open.
fn device_actor(conn: &Connection) -> Result<ActorId> {
    let stored: Option<Vec<u8>> =
        conn.query_row("SELECT value FROM meta WHERE key = 'device_actor'", [], |row| row.get(0)).optional()?;
    if let Some(bytes) = stored {
        return Ok(ActorId::from(bytes));
    }
    let actor = ActorId::random();
    conn.execute("INSERT INTO meta (key, value) VALUES ('device_actor', ?1)", [actor.to_bytes()])?;
    Ok(actor)
}

/// The offset of the device's clock to the server's, as last measured; `None` before the
/// device has heard from a server.
fn clock_offset(conn: &Connection) -> Result<Option<i64>> {
    let stored: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'clock_offset_ms'", [], |row| row.get(0)).optional()?;
    Ok(stored.and_then(|text| text.parse().ok()))
}

/// The document, loaded into the cache if needed; `None` if the device does not hold it.
fn loaded<'d>(
    conn: &Connection,
    docs: &'d mut HashMap<DocId, AutoCommit>,
    id: &DocId,
    actor: &ActorId,
) -> Result<Option<&'d mut AutoCommit>> {
    if !docs.contains_key(id) {
        match documents::load(conn, id, actor)? {
            Some(doc) => {
                docs.insert(id.clone(), doc);
            }
            None => return Ok(None),
        }
    }
    Ok(docs.get_mut(id))
}

/// Which grid's documents a capture writes: named, or the grid of an existing record
/// (looked up inside the capture's transaction).
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Grid(&'a str),
    GridOf(RecordRef),
}

/// The number of chunks of a document, counted once and then kept in memory.
fn n_chunks(tx: &Transaction<'_>, cache: &mut HashMap<DocId, i64>, id: &DocId) -> Result<i64> {
    if let Some(n) = cache.get(id) {
        return Ok(*n);
    }
    let n = documents::n_chunks(tx, id)?;
    cache.insert(id.clone(), n);
    Ok(n)
}

/// How a capture reaches the documents.
#[derive(Debug)]
enum Mode {
    /// A local capture: validated against and projected into the projection, its edits
    /// kept as one pending capture.
    Deferred(Vec<PendingWrite>),
    /// Straight into the documents, the projection following from them (imports, merges).
    Direct,
    /// A pending capture made into changes: the projection already shows it.
    Replay { time_ms: i64 },
}

/// One capture in progress: its writes (pending, or open automerge transactions on the
/// grid's documents), and the records to re-project when it ends.
struct Capture<'c, 'tx> {
    tx: &'c Transaction<'tx>,
    docs: &'c mut HashMap<DocId, AutoCommit>,
    n_chunks: &'c mut HashMap<DocId, i64>,
    actor: &'c ActorId,
    grid: String,
    mode: Mode,
    /// The capture's time ([`Clock::now_ms`]), stamped on its change.
    time_ms: i64,
    touched: BTreeMap<(RecordKind, String), Changed>,
    dirty: BTreeSet<DocId>,
    n_changes: usize,
}

impl Capture<'_, '_> {
    fn doc_id(&self, kind: DocKind) -> DocId {
        DocId { kind, key: self.grid.clone() }
    }

    fn doc(&mut self, kind: DocKind) -> Result<Option<&mut AutoCommit>> {
        let id = self.doc_id(kind);
        loaded(self.tx, self.docs, &id, self.actor)
    }

    fn require(&mut self, record: RecordRef) -> Result<()> {
        let id = record.uuid().hyphenated().to_string();
        if let Mode::Deferred(_) = self.mode {
            return if projection::row_in_grid(self.tx, record.kind(), &id, &self.grid)? {
                Ok(())
            } else {
                Err(Error::NotFound { record })
            };
        }
        let grid = self.grid.clone();
        let doc = self.doc(DocKind::Register)?.ok_or(Error::UnknownGrid { grid })?;
        if crdt::record_exists(doc, DocKind::Register, record.kind(), &id) {
            Ok(())
        } else {
            Err(Error::NotFound { record })
        }
    }

    /// Creates a record unless it is already there.
    fn import_one(&mut self, record: RecordRef, write: &RecordWrite, summary: &mut ImportSummary) -> Result<()> {
        match self.create(record, write) {
            Ok(()) => summary.n_records += 1,
            Err(Error::AlreadyExists { .. }) => summary.n_skipped += 1,
            Err(error) => return Err(error),
        }
        Ok(())
    }

    fn create(&mut self, record: RecordRef, write: &RecordWrite) -> Result<()> {
        self.write(record, write, true)
    }

    fn update(&mut self, record: RecordRef, write: &RecordWrite) -> Result<()> {
        self.write(record, write, false)
    }

    fn write(&mut self, record: RecordRef, write: &RecordWrite, create: bool) -> Result<()> {
        if let Mode::Deferred(_) = self.mode {
            return self.write_deferred(record, write, create);
        }
        let id = record.uuid().hyphenated().to_string();
        let kind = record.kind();
        let grid = self.grid.clone();
        let register = self.doc(DocKind::Register)?.ok_or(Error::UnknownGrid { grid: grid.clone() })?;
        if create || !write.register.is_empty() {
            if !crdt::apply_edits(register, DocKind::Register, kind, &id, create, &write.register)? {
                return Err(if create { Error::AlreadyExists { record } } else { Error::NotFound { record } });
            }
            self.dirty.insert(self.doc_id(DocKind::Register));
            self.mark(kind, &id, Changed::Register);
        }
        // An update that writes only sensitive fields needs no register lookup: the record
        // was found in the projection, which mirrors the register.
        if !DocKind::Sensitive.record_kinds().contains(&kind) || (!create && write.sensitive.is_empty()) {
            return Ok(());
        }
        // On creation, deleting an absent value is no information: a device without the
        // sensitive document may still create residents, as long as it writes nothing
        // sensitive. Any sensitive edit of an existing record needs the document.
        let writes_sensitive = !create || write.sensitive.iter().any(|edit| !matches!(edit, Edit::Delete(_)));
        match self.doc(DocKind::Sensitive)? {
            Some(sensitive) => {
                crdt::apply_edits(sensitive, DocKind::Sensitive, kind, &id, false, &write.sensitive)?;
                self.dirty.insert(self.doc_id(DocKind::Sensitive));
                self.mark(kind, &id, Changed::Sensitive);
            }
            None if writes_sensitive => return Err(Error::NoSensitiveAccess { grid }),
            None => {}
        }
        Ok(())
    }

    /// A local write: checked against the projection, projected from its edits, and kept
    /// as part of the pending capture.
    fn write_deferred(&mut self, record: RecordRef, write: &RecordWrite, create: bool) -> Result<()> {
        let id = record.uuid().hyphenated().to_string();
        let kind = record.kind();
        if !documents::exists(self.tx, &self.doc_id(DocKind::Register))? {
            return Err(Error::UnknownGrid { grid: self.grid.clone() });
        }
        match (projection::row_exists(self.tx, kind, &id)?, create) {
            (true, true) => return Err(Error::AlreadyExists { record }),
            (false, false) => return Err(Error::NotFound { record }),
            _ => {}
        }
        let op = if create { Op::Create } else { Op::Update };
        let mut writes = Vec::new();
        if create || !write.register.is_empty() {
            writes.push(PendingWrite::new(DocKind::Register, kind, &id, op, &write.register)?);
            projection::project_local(self.tx, &self.grid, DocKind::Register, kind, &id, create, &write.register)?;
        }
        if DocKind::Sensitive.record_kinds().contains(&kind) && (create || !write.sensitive.is_empty()) {
            // On creation, deleting an absent value is no information: a device without the
            // sensitive document may still create residents, as long as it writes nothing
            // sensitive. Any sensitive edit of an existing record needs the document.
            let writes_sensitive = !create || write.sensitive.iter().any(|edit| !matches!(edit, Edit::Delete(_)));
            if documents::exists(self.tx, &self.doc_id(DocKind::Sensitive))? {
                writes.push(PendingWrite::new(DocKind::Sensitive, kind, &id, op, &write.sensitive)?);
                projection::project_local(
                    self.tx,
                    &self.grid,
                    DocKind::Sensitive,
                    kind,
                    &id,
                    create,
                    &write.sensitive,
                )?;
            } else if writes_sensitive {
                return Err(Error::NoSensitiveAccess { grid: self.grid.clone() });
            }
        }
        if let Mode::Deferred(pending) = &mut self.mode {
            pending.extend(writes);
        }
        Ok(())
    }

    /// Makes one write of a pending capture into operations on its document. The record is
    /// where the capture found it: nothing merges between a capture and its replay.
    fn replay(&mut self, write: &PendingWrite) -> Result<()> {
        let doc_kind = write.doc_kind()?;
        let kind = write.record_kind()?;
        let edits = write.edits()?;
        let id = self.doc_id(doc_kind);
        // Dirty before touching it: if anything below fails, the document is dropped and
        // reloaded, so no half-made operation reaches a later commit.
        self.dirty.insert(id.clone());
        let grid = self.grid.clone();
        let doc = self.doc(doc_kind)?.ok_or(Error::UnknownGrid { grid })?;
        let applied = match write.op {
            Op::Create => crdt::apply_edits(doc, doc_kind, kind, &write.id, doc_kind == DocKind::Register, &edits)?,
            Op::Update => crdt::apply_edits(doc, doc_kind, kind, &write.id, false, &edits)?,
            Op::Erase => {
                crdt::delete_record(doc, doc_kind, kind, &write.id)?;
                true
            }
        };
        if !applied {
            // The capture saw the record as it is here: nothing merges in between.
            return Err(Error::document(
                &id,
                format!("{} {}: not where the capture found it", kind.plural(), write.id),
            ));
        }
        Ok(())
    }

    fn mark(&mut self, kind: RecordKind, id: &str, changed: Changed) {
        let entry = self.touched.entry((kind, id.to_owned())).or_insert(changed);
        *entry = entry.and(changed);
    }

    fn erase(&mut self, record: RecordRef) -> Result<()> {
        let id = record.uuid().hyphenated().to_string();
        if let Mode::Deferred(_) = self.mode {
            if !projection::row_exists(self.tx, record.kind(), &id)? {
                return Err(Error::NotFound { record });
            }
            let mut writes = vec![PendingWrite::new(DocKind::Register, record.kind(), &id, Op::Erase, &[])?];
            if DocKind::Sensitive.record_kinds().contains(&record.kind())
                && documents::exists(self.tx, &self.doc_id(DocKind::Sensitive))?
            {
                writes.push(PendingWrite::new(DocKind::Sensitive, record.kind(), &id, Op::Erase, &[])?);
            }
            projection::project_erase(self.tx, record.kind(), &id)?;
            if let Mode::Deferred(pending) = &mut self.mode {
                pending.extend(writes);
            }
            return Ok(());
        }
        let grid = self.grid.clone();
        let register = self.doc(DocKind::Register)?.ok_or(Error::UnknownGrid { grid })?;
        if !crdt::delete_record(register, DocKind::Register, record.kind(), &id)? {
            return Err(Error::NotFound { record });
        }
        self.dirty.insert(self.doc_id(DocKind::Register));
        if DocKind::Sensitive.record_kinds().contains(&record.kind())
            && let Some(sensitive) = self.doc(DocKind::Sensitive)?
            && crdt::delete_record(sensitive, DocKind::Sensitive, record.kind(), &id)?
        {
            self.dirty.insert(self.doc_id(DocKind::Sensitive));
        }
        self.mark(record.kind(), &id, Changed::Both);
        Ok(())
    }

    /// Applies a peer's changes to one document and marks the records they touch.
    fn apply(&mut self, doc_id: &DocId, changes: Vec<automerge::Change>) -> Result<usize> {
        let doc = loaded(self.tx, self.docs, doc_id, self.actor)?
            .ok_or_else(|| Error::UnknownGrid { grid: doc_id.key.clone() })?;
        let (chunk, n_new) = documents::new_changes_chunk(doc, &changes);
        if n_new == 0 {
            return Ok(0);
        }
        // A newer generation's first change would apply (it depends on the genesis alone)
        // and create every record's map a second time: a generation comes whole, never as
        // changes ([`Store::replace_generation`]).
        let current = crdt::generation::generation(doc);
        if changes
            .iter()
            .any(|change| crdt::generation::starts_generation(change).is_some_and(|start| start.generation > current))
        {
            return Err(Error::document(
                doc_id,
                "a newer generation of the document arrived as changes: it must come whole",
            ));
        }
        let before = doc.get_heads();
        self.dirty.insert(doc_id.clone());
        crdt::untrusted::apply_changes(doc, changes).map_err(|error| Error::document(doc_id, error))?;
        // A peer on a newer version may have moved the layout on: refuse before projecting.
        crdt::check_layout(doc, doc_id)?;
        let after = doc.get_heads();
        let touched = if before == after { BTreeSet::new() } else { crdt::touched_records(doc, &before, &after) };
        let n = n_chunks(self.tx, self.n_chunks, doc_id)?;
        let doc = self.docs.get_mut(doc_id).ok_or_else(|| Error::document(doc_id, "not loaded"))?;
        let n = documents::append(self.tx, doc_id, doc, &chunk, 0, n)?;
        self.n_chunks.insert(doc_id.clone(), n);
        let n_touched = touched.len();
        for (kind, id) in touched {
            self.mark(kind, &id, Changed::of(doc_id.kind));
        }
        Ok(n_touched)
    }

    /// A record erased from the register by a peer (which may not hold the sensitive
    /// document) leaves its sensitive fields behind; so does a sensitive edit concurrent
    /// with the erase. This device, holding both, deletes them: the deletion is a local
    /// change like any other and reaches every sensitive replica.
    fn purge_orphaned_sensitive_fields(&mut self) -> Result<()> {
        let register_id = self.doc_id(DocKind::Register);
        let sensitive_id = self.doc_id(DocKind::Sensitive);
        let orphans: Vec<(RecordKind, String)> = {
            let (Some(register), Some(sensitive)) = (self.docs.get(&register_id), self.docs.get(&sensitive_id)) else {
                return Ok(());
            };
            self.touched
                .keys()
                .filter(|(kind, id)| {
                    DocKind::Sensitive.record_kinds().contains(kind)
                        && !crdt::record_exists(register, DocKind::Register, *kind, id)
                        && crdt::record_exists(sensitive, DocKind::Sensitive, *kind, id)
                })
                .cloned()
                .collect()
        };
        if orphans.is_empty() {
            return Ok(());
        }
        let Some(sensitive) = self.docs.get_mut(&sensitive_id) else { return Ok(()) };
        for (kind, id) in &orphans {
            crdt::delete_record(sensitive, DocKind::Sensitive, *kind, id)?;
        }
        self.dirty.insert(sensitive_id);
        Ok(())
    }

    /// Closes the open automerge transaction of every document written since the last
    /// call into one change each, and stores those changes.
    fn end_change(&mut self) -> Result<()> {
        self.end_change_counting(|_| 1).map(drop)
    }

    /// A pending capture's changes count as one unacknowledged capture, whatever the
    /// number of documents it wrote; a capture that changed nothing (it wrote values that
    /// were already there) still leaves an empty change: the archive records that the
    /// worker confirmed them, and the pending count never drops without an acknowledgement.
    fn end_replayed_capture(&mut self) -> Result<()> {
        let n_made = self.end_change_counting(|n_before| i64::from(n_before == 0))?;
        if n_made > 0 {
            return Ok(());
        }
        let Mode::Replay { time_ms } = self.mode else { return Ok(()) };
        let id = self.doc_id(DocKind::Register);
        self.dirty.insert(id.clone());
        let n = n_chunks(self.tx, self.n_chunks, &id)?;
        let grid = self.grid.clone();
        self.doc(DocKind::Register)?.ok_or(Error::UnknownGrid { grid })?;
        let Some(doc) = self.docs.get_mut(&id) else { return Ok(()) };
        doc.empty_change(CommitOptions::default().with_time(time_ms));
        let change = doc.get_last_local_change().ok_or_else(|| Error::document(&id, "commit made no change"))?;
        let n = documents::append(self.tx, &id, doc, change.raw_bytes(), 1, n)?;
        self.n_chunks.insert(id, n);
        Ok(())
    }

    /// Commits each document's open operations as one change; `n_unacked(k)` is what the
    /// k-th change made here counts as awaiting acknowledgement. Returns how many were made.
    fn end_change_counting(&mut self, n_unacked: impl Fn(usize) -> i64) -> Result<usize> {
        let time_ms = match self.mode {
            Mode::Replay { time_ms } => time_ms,
            _ => self.time_ms,
        };
        let mut n_made = 0;
        for kind in [DocKind::Register, DocKind::Sensitive] {
            let id = self.doc_id(kind);
            if self.docs.get_mut(&id).is_none_or(|doc| doc.pending_ops() == 0) {
                continue;
            }
            let n = n_chunks(self.tx, self.n_chunks, &id)?;
            let Some(doc) = self.docs.get_mut(&id) else { continue };
            doc.commit_with(CommitOptions::default().with_time(time_ms));
            let change = doc.get_last_local_change().ok_or_else(|| Error::document(&id, "commit made no change"))?;
            let n = documents::append(self.tx, &id, doc, change.raw_bytes(), n_unacked(n_made), n)?;
            self.n_chunks.insert(id, n);
            self.n_changes += 1;
            n_made += 1;
        }
        Ok(n_made)
    }

    fn finish(&mut self) -> Result<()> {
        match &mut self.mode {
            Mode::Deferred(pending) => {
                if pending.is_empty() {
                    return Ok(());
                }
                let writes =
                    serde_json::to_string(pending).map_err(|error| Error::document("pending capture", error))?;
                self.tx
                    .prepare_cached("INSERT INTO pending_captures (grid_code, time_ms, writes) VALUES (?1, ?2, ?3)")?
                    .execute(params![self.grid, self.time_ms, writes])?;
                return Ok(());
            }
            Mode::Replay { .. } => return self.end_replayed_capture(),
            Mode::Direct => {}
        }
        let register_id = self.doc_id(DocKind::Register);
        let sensitive_id = self.doc_id(DocKind::Sensitive);
        // Projecting a resident reads both documents, whichever one changed.
        self.doc(DocKind::Register)?;
        self.doc(DocKind::Sensitive)?;
        self.purge_orphaned_sensitive_fields()?;
        self.end_change()?;
        let Some(register) = self.docs.get(&register_id) else { return Ok(()) };
        let sensitive = self.docs.get(&sensitive_id);
        for ((kind, id), changed) in std::mem::take(&mut self.touched) {
            projection::project_record(self.tx, &self.grid, register, sensitive, kind, &id, changed)?;
        }
        Ok(())
    }
}

/// Deletes the files of the store at `path` (see [`Store::wipe`]); files already gone are
/// fine. Used by `Store::wipe`, and when a store cannot be opened to be wiped.
pub fn wipe_files(path: &Path) -> Result<()> {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let remove = |file: &Path| match std::fs::remove_file(file) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(Error::from(error)),
        _ => Ok(()),
    };
    for suffix in
        ["", "-wal", "-shm", "-journal", encrypt::TEMPORARY_SUFFIX, &format!("{}-journal", encrypt::TEMPORARY_SUFFIX)]
    {
        remove(&directory.join(format!("{name}{suffix}")))?;
    }
    match std::fs::remove_dir_all(crate::blobs::BlobStore::dir_for(path)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
        _ => {}
    }
    for entry in std::fs::read_dir(directory)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&format!("{name}.removed-")) {
            remove(&entry.path())?;
        }
    }
    Ok(())
}
