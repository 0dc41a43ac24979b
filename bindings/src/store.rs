//! `FieldStore`: the device's store as one object — captures, queries, conflicts,
//! incidents, photos, enrollment and sync — and the listeners screens use to refresh.
//!
//! Every method but `enroll`, `sync` and `download_blob` works on the local SQLite file
//! only and returns in milliseconds; those three are async and the only ones that touch
//! the network.

use std::sync::{Arc, Mutex, Weak};

use wangge_core::Store;
use wangge_core::activity::track;
use wangge_core::blobs::{BlobHash, BlobStore};
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::incident::Actor;
use wangge_core::model::{self as model, GridCode};
use wangge_core::sync::http::{SyncClient, SyncListener};

use crate::activity::*;
use crate::error::{ApiError, Result, count, in_range, invalid, small_count};
use crate::incidents::*;
use crate::register::*;

/// The blob store's default size on the device (photos; tracks later): older blobs already
/// on the server are dropped beyond it, never ones still waiting to upload.
pub const DEFAULT_BLOB_STORE_BYTES: u64 = 512 * 1024 * 1024;

/// The store of one device. Open it once per file and share it; every method is safe to
/// call from any thread.
#[derive(Debug, uniffi::Object)]
pub struct FieldStore {
    /// `None` once wiped (the operator revoked this device): every call then says so.
    inner: std::sync::RwLock<Option<Arc<Store>>>,
    path: String,
    device_actor: String,
    blobs: BlobStore,
    /// The worker given at open; replaced by the server's word once enrolled.
    worker: Mutex<Option<Actor>>,
    listeners: Arc<Listeners>,
}

#[uniffi::export(async_runtime = "tokio")]
impl FieldStore {
    /// Opens (or creates) the store at `path`, a file in the app's private storage; photos
    /// go to a directory beside it. `worker` is who works on this device until enrollment
    /// names them (pass `None` for a device that will enroll before any capture).
    /// `key`: the raw 32-byte key of an encrypted store (SQLCipher; its photos are
    /// encrypted too), kept by the app in Android Keystore or iOS Keychain; `None` for a
    /// plain file. A key that does not open the file raises `Storage`, and the file is
    /// left untouched.
    #[uniffi::constructor(default(worker = None, key = None))]
    pub fn open(path: String, worker: Option<Worker>, key: Option<Vec<u8>>) -> Result<Arc<FieldStore>> {
        wangge_core::sync::http::install_crypto_provider();
        let worker = worker.map(Actor::try_from).transpose()?;
        let key = key.map(store_key).transpose()?;
        let store = Store::open_with(&path, wangge_core::OpenOptions { key, ..Default::default() })?;
        let blobs = BlobStore::beside(&store, DEFAULT_BLOB_STORE_BYTES)?;
        Ok(Arc::new(FieldStore {
            device_actor: store.device_actor(),
            inner: std::sync::RwLock::new(Some(Arc::new(store))),
            path,
            blobs,
            worker: Mutex::new(worker),
            listeners: Arc::new(Listeners::default()),
        }))
    }

    /// Re-encrypts an encrypted store with `new_key` (32 bytes): keep the new key, the old
    /// one no longer opens it. Photos are unchanged. Other calls on the store wait until it
    /// is done (it rewrites the whole file); none fails because of it.
    pub fn rekey(&self, new_key: Vec<u8>) -> Result<()> {
        let key = store_key(new_key)?;
        Ok(self.store()?.rekey(key)?)
    }

    /// The device's automerge actor id (hex): every change it makes carries it.
    pub fn device_actor(&self) -> String {
        self.device_actor.clone()
    }

    /// Who works on this device: the enrolled worker, else the one given at open.
    pub fn worker(&self) -> Result<Option<Worker>> {
        if let Some(worker) = self.store()?.enrolled_worker()? {
            return Ok(Some(worker.into()));
        }
        Ok(self.worker.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone().map(Into::into))
    }

    // ---- grids ----

    /// The grids on this device (enrollment adds them).
    pub fn grids(&self) -> Result<Vec<Grid>> {
        Ok(self.store()?.grids()?.into_iter().map(Into::into).collect())
    }

    /// Adds a grid by hand (a device working without a server; enrollment does this
    /// otherwise). `with_sensitive`: whether this device holds its sensitive data.
    pub fn add_grid(&self, code: String, name: String, kind: GridKind, with_sensitive: bool) -> Result<()> {
        let grid = model::Grid::new(self.grid_code(&code)?, &name, kind)?;
        self.store()?.add_grid(&grid, with_sensitive)?;
        self.changed_locally(vec![code], Vec::new());
        Ok(())
    }

    // ---- captures ----

    pub fn add_building(&self, grid: String, building: NewBuilding) -> Result<String> {
        let id = self.store()?.add_building(&self.grid_code(&grid)?, building.try_into()?)?;
        self.changed_locally(vec![grid], vec![RecordRef::Building { id: id.to_string() }]);
        Ok(id.to_string())
    }

    pub fn update_building(&self, id: String, patch: BuildingPatch) -> Result<()> {
        self.store()?.update_building(model::BuildingId::parse(&id)?, patch.try_into()?)?;
        self.changed_locally(Vec::new(), vec![RecordRef::Building { id }]);
        Ok(())
    }

    pub fn add_household(&self, grid: String, household: NewHousehold) -> Result<String> {
        let id = self.store()?.add_household(&self.grid_code(&grid)?, household.try_into()?)?;
        self.changed_locally(vec![grid], vec![RecordRef::Household { id: id.to_string() }]);
        Ok(id.to_string())
    }

    pub fn update_household(&self, id: String, patch: HouseholdPatch) -> Result<()> {
        self.store()?.update_household(model::HouseholdId::parse(&id)?, patch.try_into()?)?;
        self.changed_locally(Vec::new(), vec![RecordRef::Household { id }]);
        Ok(())
    }

    /// Adds a resident; an ID number is validated and sets gender and birth date.
    pub fn add_resident(&self, grid: String, resident: NewResident) -> Result<String> {
        let id = self.store()?.add_resident(&self.grid_code(&grid)?, resident.try_into()?)?;
        self.changed_locally(vec![grid], vec![RecordRef::Resident { id: id.to_string() }]);
        Ok(id.to_string())
    }

    pub fn update_resident(&self, id: String, patch: ResidentPatch) -> Result<()> {
        self.store()?.update_resident(model::ResidentId::parse(&id)?, patch.try_into()?)?;
        self.changed_locally(Vec::new(), vec![RecordRef::Resident { id }]);
        Ok(())
    }

    pub fn add_organization(&self, grid: String, organization: NewOrganization) -> Result<String> {
        let id = self.store()?.add_organization(&self.grid_code(&grid)?, organization.try_into()?)?;
        self.changed_locally(vec![grid], vec![RecordRef::Organization { id: id.to_string() }]);
        Ok(id.to_string())
    }

    pub fn update_organization(&self, id: String, patch: OrganizationPatch) -> Result<()> {
        self.store()?.update_organization(model::OrganizationId::parse(&id)?, patch.try_into()?)?;
        self.changed_locally(Vec::new(), vec![RecordRef::Organization { id }]);
        Ok(())
    }

    pub fn add_component(&self, grid: String, component: NewComponent) -> Result<String> {
        let id = self.store()?.add_component(&self.grid_code(&grid)?, component.try_into()?)?;
        self.changed_locally(vec![grid], vec![RecordRef::Component { id: id.to_string() }]);
        Ok(id.to_string())
    }

    pub fn update_component(&self, id: String, patch: ComponentPatch) -> Result<()> {
        self.store()?.update_component(model::ComponentId::parse(&id)?, patch.try_into()?)?;
        self.changed_locally(Vec::new(), vec![RecordRef::Component { id }]);
        Ok(())
    }

    /// Archives a record (moved out, deceased, demolished, closed): it leaves the active
    /// register and keeps its history.
    pub fn archive(&self, reason: ArchiveReason) -> Result<()> {
        let archive = model::Archive::try_from(reason)?;
        let record = match archive {
            model::Archive::Resident(id, _) => RecordRef::Resident { id: id.to_string() },
            model::Archive::Household(id, _) => RecordRef::Household { id: id.to_string() },
            model::Archive::Building(id, _) => RecordRef::Building { id: id.to_string() },
            model::Archive::Organization(id, _) => RecordRef::Organization { id: id.to_string() },
        };
        self.store()?.archive(archive)?;
        self.changed_locally(Vec::new(), vec![record]);
        Ok(())
    }

    /// Erases a record entered by mistake, on every replica.
    pub fn erase(&self, record: RecordRef) -> Result<()> {
        self.store()?.erase(record.clone().try_into()?)?;
        self.changed_locally(Vec::new(), vec![record]);
        Ok(())
    }

    // ---- queries ----

    pub fn building(&self, id: String) -> Result<Building> {
        Ok(self.store()?.building(model::BuildingId::parse(&id)?)?.into())
    }

    pub fn household(&self, id: String) -> Result<Household> {
        Ok(self.store()?.household(model::HouseholdId::parse(&id)?)?.into())
    }

    /// A resident, with the ID number and phone masked.
    pub fn resident(&self, id: String) -> Result<Resident> {
        Ok(self.store()?.resident(model::ResidentId::parse(&id)?)?.into())
    }

    /// A resident's full ID number and phone, for a worker whose role may see them, with
    /// the reason (1 to 100 characters). The view is recorded (who, what, when, why) in the
    /// grid's audit document of the month, which syncs to the roles that may see sensitive
    /// data and the center.
    pub fn reveal_resident(&self, id: String, reason: String) -> Result<ResidentSensitive> {
        let id = model::ResidentId::parse(&id)?;
        let store = self.store()?;
        let now_ms = store.clock().now_ms();
        let sensitive = store.reveal_resident(id, &reason, &self.actor()?, now_ms)?;
        let grid = self.store()?.resident(id)?.grid.to_string();
        self.changed_locally(vec![grid], Vec::new());
        Ok(sensitive.into())
    }

    /// The recorded views of full values in a grid between two times (ms), newest first.
    pub fn full_views(&self, grid: String, from_ms: i64, until_ms: i64) -> Result<Vec<FullView>> {
        Ok(self.store()?.full_views(&self.held_grid(&grid)?, from_ms, until_ms)?.into_iter().map(Into::into).collect())
    }

    pub fn organization(&self, id: String) -> Result<Organization> {
        Ok(self.store()?.organization(model::OrganizationId::parse(&id)?)?.into())
    }

    pub fn component(&self, id: String) -> Result<Component> {
        Ok(self.store()?.component(model::ComponentId::parse(&id)?)?.into())
    }

    pub fn list_buildings(&self, grid: String) -> Result<Vec<Building>> {
        Ok(self.store()?.list_buildings(&self.held_grid(&grid)?)?.into_iter().map(Into::into).collect())
    }

    /// The household list of a grid, with each household's head and size.
    pub fn list_households(&self, grid: String) -> Result<Vec<HouseholdSummary>> {
        Ok(self.store()?.list_households(&self.held_grid(&grid)?)?.into_iter().map(Into::into).collect())
    }

    pub fn residents_of_household(&self, household: String) -> Result<Vec<Resident>> {
        let household = model::HouseholdId::parse(&household)?;
        Ok(self.store()?.residents_of_household(household)?.into_iter().map(Into::into).collect())
    }

    pub fn list_organizations(&self, grid: String) -> Result<Vec<Organization>> {
        Ok(self.store()?.list_organizations(&self.held_grid(&grid)?)?.into_iter().map(Into::into).collect())
    }

    pub fn list_components(&self, grid: String) -> Result<Vec<Component>> {
        Ok(self.store()?.list_components(&self.held_grid(&grid)?)?.into_iter().map(Into::into).collect())
    }

    /// Residents by a fragment of their name (2 characters or more), or by the last digits
    /// (4 or more) of their phone or ID number, or by a whole phone or ID number.
    pub fn search_residents(&self, query: String, limit: i32) -> Result<Vec<ResidentHit>> {
        let limit = in_range("limit", limit)?;
        Ok(self.store()?.search_residents(&query, limit)?.into_iter().map(Into::into).collect())
    }

    /// Captures that could not be turned into document changes (set aside, never dropped;
    /// a support case): their grid, time and error, without the captured values.
    pub fn failed_captures(&self) -> Result<Vec<FailedCapture>> {
        Ok(self
            .store()?
            .failed_captures()?
            .into_iter()
            .map(|failed| FailedCapture { grid: failed.grid, time_ms: failed.time_ms, error: failed.error })
            .collect())
    }

    // ---- conflicts ----

    /// Fields of a record that two devices changed concurrently, with every value kept.
    pub fn conflicts(&self, record: RecordRef) -> Result<Vec<FieldConflict>> {
        Ok(self.store()?.conflicts(record.try_into()?)?.into_iter().map(Into::into).collect())
    }

    /// Resolves a conflict with `value` (one of the kept values, or a new one).
    pub fn resolve_conflict(&self, record: RecordRef, field: String, value: FieldValue) -> Result<()> {
        self.store()?.resolve_conflict(record.clone().try_into()?, &field, value.into_scalar())?;
        self.changed_locally(Vec::new(), vec![record]);
        Ok(())
    }

    // ---- incidents ----

    /// The matter catalog's items a worker can pick (refused ones included, marked).
    pub fn catalog_items(&self) -> Result<Vec<CatalogItem>> {
        Ok(self
            .store()?
            .catalog()
            .items()
            .map(|item| CatalogItem {
                code: item.code.clone(),
                matter_class: item.class.code().to_owned(),
                name: item.name.clone(),
                admitted: item.admitted,
                lead_department: item.lead_department().map(|code| code.as_str().to_owned()),
            })
            .collect())
    }

    /// Reports an incident as this device's worker (offline; it syncs later); its id.
    pub fn report_incident(&self, incident: NewIncident) -> Result<String> {
        let grid = self.grid_code(&incident.grid)?;
        let id = self.store()?.report_incident(to_core_incident(incident, grid)?, self.actor()?)?;
        self.changed_incident(id.to_string());
        Ok(id.to_string())
    }

    /// Takes an action on an incident as this device's worker. An action that does not
    /// apply is kept in the timeline with the reason (the outcome says so).
    pub fn act(&self, incident: String, action: IncidentAction) -> Result<ActionOutcome> {
        let id = model::IncidentId::parse(&incident)?;
        let mark = self.store()?.act(id, self.actor()?, action.try_into()?)?;
        self.changed_incident(incident);
        Ok(mark.into())
    }

    pub fn incident(&self, id: String) -> Result<IncidentSummary> {
        let store = self.store()?;
        Ok(store.incident(model::IncidentId::parse(&id)?, store.now())?.into())
    }

    /// The report's fields as (name, value) pairs, in order.
    pub fn incident_report(&self, id: String) -> Result<Vec<ReportField>> {
        let fields = self.store()?.incident_report(model::IncidentId::parse(&id)?)?;
        Ok(fields.into_iter().map(|(name, value)| ReportField { name, value }).collect())
    }

    pub fn incident_timeline(&self, id: String) -> Result<Vec<TimelineEntry>> {
        Ok(self.store()?.incident_timeline(model::IncidentId::parse(&id)?)?.into_iter().map(Into::into).collect())
    }

    /// Incidents a filter selects, newest first, with deadlines as of now.
    pub fn incidents(&self, filter: IncidentFilter) -> Result<Vec<IncidentSummary>> {
        let filter = to_core_filter(filter, |grid| self.grid_code(grid))?;
        let store = self.store()?;
        Ok(store.incidents(&filter, store.now())?.into_iter().map(Into::into).collect())
    }

    pub fn incident_stats(&self, filter: IncidentFilter) -> Result<IncidentStats> {
        let filter = to_core_filter(filter, |grid| self.grid_code(grid))?;
        let store = self.store()?;
        Ok(store.incident_stats(&filter, store.now())?.into())
    }

    // ---- place ----

    /// Which grid a WGS-84 point is in (to assign a new building, component or incident);
    /// a point outside every grid is `Outside`, with the nearest grid, never a guess.
    pub fn locate(&self, point: LatLng) -> Result<Located> {
        Ok(self.store()?.locate(point.try_into()?)?.into())
    }

    /// Standing buildings, components and open incidents within `radius_m` (at most 50 km)
    /// of a WGS-84 point, nearest first.
    pub fn nearby(&self, point: LatLng, radius_m: f64) -> Result<Vec<NearbyItem>> {
        Ok(self.store()?.nearby(point.try_into()?, radius_m)?.into_iter().map(Into::into).collect())
    }

    /// The grid's public card, as the server published it (the same as its public page).
    pub fn grid_card(&self, grid: String) -> Result<GridCard> {
        Ok(self.store()?.grid_card(&self.grid_code(&grid)?)?.into())
    }

    // ---- field work ----

    /// Records a visit (走访) by this device's worker.
    pub fn record_visit(&self, visit: NewVisit) -> Result<String> {
        let grid = self.grid_code(&visit.grid)?;
        let id = self.store()?.record_visit(&grid, to_core_visit(visit)?, &self.actor()?)?;
        self.changed_locally(vec![grid.to_string()], Vec::new());
        Ok(id)
    }

    /// Records a visit and reports the incident found there, in one step.
    pub fn record_visit_with_incident(&self, visit: NewVisit, incident: NewIncident) -> Result<VisitWithIncident> {
        let grid = self.grid_code(&visit.grid)?;
        let incident_grid = self.grid_code(&incident.grid)?;
        let incident = to_core_incident(incident, incident_grid)?;
        let (visit, incident) =
            self.store()?.record_visit_with_incident(&grid, to_core_visit(visit)?, incident, &self.actor()?)?;
        self.changed_locally(vec![grid.to_string()], Vec::new());
        self.changed_incident(incident.to_string());
        Ok(VisitWithIncident { visit, incident: incident.to_string() })
    }

    /// Checks in here and now (定位、定时): `time_ms` is the device's time of the fix.
    pub fn check_in(&self, grid: String, location: LatLng, time_ms: i64) -> Result<String> {
        let code = self.grid_code(&grid)?;
        let id = self.store()?.check_in(&code, location.try_into()?, time_ms, &self.actor()?)?;
        self.changed_locally(vec![grid], Vec::new());
        Ok(id)
    }

    /// Records a patrol from its GPS points: the track is stored as a compact blob (synced
    /// like a photo), its summary and the buildings passed go into the grid's activity.
    pub fn record_patrol(&self, grid: String, points: Vec<TrackPoint>) -> Result<Patrol> {
        let code = self.grid_code(&grid)?;
        let points: Vec<track::TrackPoint> = points.into_iter().map(Into::into).collect();
        let blob = track::encode(&points).map_err(|error| invalid("points", error))?;
        let hash = self.blobs()?.put(&blob)?;
        let patrol = self.store()?.record_patrol(&code, &points, hash.as_str(), &self.actor()?)?;
        self.changed_locally(vec![grid], Vec::new());
        Ok(patrol.into())
    }

    /// The points of a patrol's track (a blob on this device: `download_blob` first if not).
    pub fn track_points(&self, track_hash: String) -> Result<Vec<TrackPoint>> {
        let hash = parse_blob_hash(&track_hash)?;
        let blob = self.blobs()?.get(&hash)?.ok_or(wangge_core::Error::UnknownBlob { hash: track_hash })?;
        let points = track::decode(&blob).map_err(|error| invalid("track", error))?;
        Ok(points.into_iter().map(Into::into).collect())
    }

    /// A grid's visits between two times (ms), newest first.
    pub fn visits(&self, grid: String, from_ms: i64, until_ms: i64) -> Result<Vec<Visit>> {
        Ok(self.store()?.visits(&self.held_grid(&grid)?, from_ms, until_ms)?.into_iter().map(Into::into).collect())
    }

    /// A grid's check-ins between two times (ms), newest first, each judged inside or not.
    pub fn check_ins(&self, grid: String, from_ms: i64, until_ms: i64) -> Result<Vec<CheckIn>> {
        Ok(self.store()?.check_ins(&self.held_grid(&grid)?, from_ms, until_ms)?.into_iter().map(Into::into).collect())
    }

    /// A grid's patrols that started between two times (ms), newest first.
    pub fn patrols(&self, grid: String, from_ms: i64, until_ms: i64) -> Result<Vec<Patrol>> {
        Ok(self.store()?.patrols(&self.held_grid(&grid)?, from_ms, until_ms)?.into_iter().map(Into::into).collect())
    }

    /// The share of a grid's buildings visited or passed between two times, by everyone
    /// or by one worker (`person`).
    #[uniffi::method(default(person = None))]
    pub fn coverage(&self, grid: String, from_ms: i64, until_ms: i64, person: Option<String>) -> Result<Coverage> {
        Ok(self.store()?.coverage(&self.held_grid(&grid)?, from_ms, until_ms, person.as_deref())?.into())
    }

    /// A worker's month (`YYYY-MM`) in figures: visits, check-in days, patrols, coverage,
    /// incidents reported, resolved on the spot, completed on time.
    pub fn worker_month(&self, person: String, month: String) -> Result<WorkerMonth> {
        Ok(self.store()?.worker_month(&person, &month)?.into())
    }

    // ---- photos ----

    /// Stores a photo (or any attachment) on the device; its hash (`sha256:…`) goes into a
    /// report or an action's evidence, and the next sync uploads it.
    pub fn put_blob(&self, bytes: Vec<u8>) -> Result<String> {
        Ok(self.blobs()?.put(&bytes)?.as_str().to_owned())
    }

    /// A blob on this device, or `None` (then `download_blob` fetches it).
    pub fn get_blob(&self, hash: String) -> Result<Option<Vec<u8>>> {
        Ok(self.blobs()?.get(&parse_blob_hash(&hash)?)?)
    }

    /// Fetches a blob from the server (resumable; verified against its hash).
    pub async fn download_blob(&self, hash: String) -> Result<Vec<u8>> {
        let hash = parse_blob_hash(&hash)?;
        let store = self.store()?;
        Ok(self.client()?.download_blob(&store, &self.blobs, &hash).await?)
    }

    // ---- enrollment and sync ----

    /// Enrolls this device with the code the operator issued (the QR payload): the server
    /// names the worker and the grids, which are added. Remembers the server's address.
    pub async fn enroll(&self, server_url: String, code: String, device_name: String) -> Result<Worker> {
        let client = SyncClient::new(&server_url)?;
        client.enroll(&*self.store()?, &code, &device_name).await?;
        self.store()?.set_sync_server(&server_url)?;
        let worker = self.store()?.enrolled_worker()?.ok_or_else(|| ApiError::Refused {
            status: 200,
            code: "unknown_role".into(),
            reason: "the server named a role this version does not know: update the app".into(),
        })?;
        *self.worker.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        self.listeners.notify(&StoreChange { source: ChangeSource::Sync, ..self.everything_changed()? });
        Ok(worker.into())
    }

    /// Syncs with the server: pushes what it has not acknowledged, pulls what this device
    /// may see (page by page), then uploads photos waiting. Progress goes to `listener`;
    /// change listeners hear of every document that changed.
    #[uniffi::method(default(listener = None))]
    pub async fn sync(&self, listener: Option<Arc<dyn SyncProgressListener>>) -> Result<SyncReport> {
        let client = self.client()?;
        let bridge = SyncBridge { progress: listener, listeners: Arc::clone(&self.listeners) };
        let store = self.store()?;
        let result = match client.sync(&store, Some(&bridge)).await {
            Ok(progress) => client.upload_pending_blobs(&store, &self.blobs).await.map(|uploads| (progress, uploads)),
            Err(error) => Err(error),
        };
        drop(store);
        if let Err(wangge_core::Error::Revoked) = &result {
            // The operator revoked this device (lost, retired): nothing of the grid may stay.
            self.wipe()?;
        }
        let (progress, uploads) = result?;
        Ok(SyncReport {
            pages: small_count(progress.pages),
            bytes_sent: count(progress.bytes_sent + uploads.bytes_sent),
            bytes_received: count(progress.bytes_received),
            docs_pulled: count(progress.docs_pulled),
            changes_pushed: count(progress.changes_pushed),
            blobs_uploaded: count(uploads.n_blobs),
        })
    }

    /// Closes the store and deletes everything it wrote: the database, the photos and
    /// tracks, the exports of removed grids. `sync` does it by itself when the server says
    /// the device was revoked; every later call answers `Revoked`.
    pub fn wipe(&self) -> Result<()> {
        let taken = self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        match taken.map(Arc::try_unwrap) {
            Some(Ok(store)) => store.wipe()?,
            // Another call still holds the store: its file is deleted under it (it is
            // closed when that call ends) and nothing reopens it.
            Some(Err(shared)) => {
                drop(shared);
                wangge_core::wipe_files(std::path::Path::new(&self.path))?;
            }
            None => wangge_core::wipe_files(std::path::Path::new(&self.path))?,
        }
        Ok(())
    }

    /// Where sync stands (a status line): pending changes, last success, last error.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let status = self.store()?.sync_status()?;
        Ok(SyncStatus {
            enrolled: status.enrolled,
            device_id: self.store()?.device_id()?,
            server_url: self.store()?.sync_server()?,
            pending_changes: count(status.pending_changes),
            pending_blobs: count(self.blobs()?.pending_uploads()?.len()),
            last_success_ms: status.last_success_ms,
            last_error: status.last_error,
        })
    }

    /// Registers a listener for changes of the store (captures here, and what a sync
    /// brought). It is called until the returned subscription is cancelled or dropped: keep
    /// it for as long as the screen lives (in Kotlin and Swift a dropped one is collected
    /// at some later time, and the listener stops then).
    pub fn subscribe(&self, listener: Arc<dyn ChangeListener>) -> Arc<Subscription> {
        let id = self.listeners.add(listener);
        Arc::new(Subscription { listeners: Arc::downgrade(&self.listeners), id })
    }
}

impl FieldStore {
    /// The open store, or `Revoked` once it was wiped.
    fn store(&self) -> Result<Arc<Store>> {
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone().ok_or_else(|| ApiError::Revoked {
            reason: "this device was revoked by the operator and its store wiped: enroll again".into(),
        })
    }

    /// The blob store, or `Revoked` once wiped.
    fn blobs(&self) -> Result<&BlobStore> {
        self.store()?;
        Ok(&self.blobs)
    }

    fn grid_code(&self, code: &str) -> Result<GridCode> {
        Ok(GridCode::parse(code, self.store()?.code_format())?)
    }

    /// A grid this device holds (a list of an unknown grid is `NotFound`, not empty).
    fn held_grid(&self, code: &str) -> Result<GridCode> {
        let code = self.grid_code(code)?;
        if !self.store()?.grids()?.iter().any(|grid| grid.code == code) {
            return Err(wangge_core::Error::UnknownGrid { grid: code.to_string() }.into());
        }
        Ok(code)
    }

    fn actor(&self) -> Result<Actor> {
        if let Some(worker) = self.store()?.enrolled_worker()? {
            return Ok(worker);
        }
        self.worker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| invalid("worker", "no worker on this device: enroll it, or open the store with a worker"))
    }

    fn client(&self) -> Result<SyncClient> {
        let url = self.store()?.sync_server()?.ok_or(wangge_core::Error::NotEnrolled)?;
        Ok(SyncClient::new(&url)?)
    }

    fn changed_locally(&self, grids: Vec<String>, records: Vec<RecordRef>) {
        self.listeners.notify(&StoreChange {
            source: ChangeSource::Local,
            grids,
            incidents: Vec::new(),
            records,
            reference: false,
        });
    }

    fn changed_incident(&self, incident: String) {
        self.listeners.notify(&StoreChange {
            source: ChangeSource::Local,
            grids: Vec::new(),
            incidents: vec![incident],
            records: Vec::new(),
            reference: false,
        });
    }

    fn everything_changed(&self) -> Result<StoreChange> {
        Ok(StoreChange {
            source: ChangeSource::Local,
            grids: self.store()?.grids()?.into_iter().map(|grid| grid.code.to_string()).collect(),
            incidents: Vec::new(),
            records: Vec::new(),
            reference: true,
        })
    }
}

fn parse_blob_hash(hash: &str) -> Result<BlobHash> {
    BlobHash::parse(hash).map_err(|error| invalid("hash", error))
}

/// A capture set aside because it could not be replayed into its document.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FailedCapture {
    pub grid: String,
    pub time_ms: i64,
    pub error: String,
}

/// A field of an incident's report.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReportField {
    pub name: String,
    pub value: String,
}

/// Progress of a sync, after each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    pub pages: i32,
    pub bytes_sent: i64,
    pub bytes_received: i64,
    pub docs_pulled: i64,
    pub changes_pushed: i64,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    pub pages: i32,
    pub bytes_sent: i64,
    pub bytes_received: i64,
    pub docs_pulled: i64,
    pub changes_pushed: i64,
    pub blobs_uploaded: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncStatus {
    pub enrolled: bool,
    /// The id the server gave this device (what an operator names to revoke it).
    pub device_id: Option<String>,
    pub server_url: Option<String>,
    /// Changes made here that the server has not acknowledged.
    pub pending_changes: i64,
    /// Photos waiting to upload.
    pub pending_blobs: i64,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// Receives progress while a sync runs (a progress bar).
#[uniffi::export(with_foreign)]
pub trait SyncProgressListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeSource {
    /// A capture or action on this device.
    Local,
    /// A sync (or enrollment) brought it.
    Sync,
}

/// What changed: a screen refreshes when it shows one of these grids, incidents or records.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StoreChange {
    pub source: ChangeSource,
    /// Grids whose register, sensitive data or field work changed.
    pub grids: Vec<String>,
    pub incidents: Vec<String>,
    /// The records a local change touched (empty after a sync: see `grids`).
    pub records: Vec<RecordRef>,
    /// The reference data (catalog, calendar, grid metadata) changed.
    pub reference: bool,
}

/// Hears of changes to the store; called on the thread that made them (the caller's for
/// local changes, the sync's for pulled ones): hop to the UI thread before touching views.
#[uniffi::export(with_foreign)]
pub trait ChangeListener: Send + Sync {
    fn on_change(&self, change: StoreChange);
}

/// A change listener's registration: it ends when this is dropped (or `cancel`led).
#[derive(Debug, uniffi::Object)]
pub struct Subscription {
    listeners: Weak<Listeners>,
    id: u64,
}

#[uniffi::export]
impl Subscription {
    /// Stops the listener now (dropping the subscription does the same).
    pub fn cancel(&self) {
        if let Some(listeners) = self.listeners.upgrade() {
            listeners.remove(self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[derive(Default)]
struct Listeners {
    next_id: Mutex<u64>,
    registered: Mutex<Vec<(u64, Arc<dyn ChangeListener>)>>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Listeners({})", self.registered.lock().map(|r| r.len()).unwrap_or_default())
    }
}

impl Listeners {
    fn add(&self, listener: Arc<dyn ChangeListener>) -> u64 {
        let mut next = self.next_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *next += 1;
        self.registered.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((*next, listener));
        *next
    }

    fn remove(&self, id: u64) {
        self.registered.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|(each, _)| *each != id);
    }

    /// Calls every listener, outside the lock (a listener may subscribe or cancel).
    fn notify(&self, change: &StoreChange) {
        let listeners: Vec<_> = self
            .registered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(_, listener)| Arc::clone(listener))
            .collect();
        for listener in listeners {
            listener.on_change(change.clone());
        }
    }
}

/// The core's sync listener, forwarding to the app's progress listener and change listeners.
struct SyncBridge {
    progress: Option<Arc<dyn SyncProgressListener>>,
    listeners: Arc<Listeners>,
}

impl SyncListener for SyncBridge {
    fn on_progress(&self, progress: wangge_core::sync::http::SyncProgress) {
        if let Some(listener) = &self.progress {
            listener.on_progress(SyncProgress {
                pages: small_count(progress.pages),
                bytes_sent: count(progress.bytes_sent),
                bytes_received: count(progress.bytes_received),
                docs_pulled: count(progress.docs_pulled),
                changes_pushed: count(progress.changes_pushed),
            });
        }
    }

    fn on_documents_changed(&self, docs: &[String]) {
        let mut change = StoreChange {
            source: ChangeSource::Sync,
            grids: Vec::new(),
            incidents: Vec::new(),
            records: Vec::new(),
            reference: false,
        };
        for doc in docs.iter().filter_map(|doc| DocId::parse(doc)) {
            match doc.kind {
                DocKind::Register | DocKind::Sensitive => {
                    if !change.grids.contains(&doc.key) {
                        change.grids.push(doc.key);
                    }
                }
                DocKind::Activity => {
                    let grid = doc.key.split(':').next().unwrap_or_default().to_owned();
                    if !change.grids.contains(&grid) {
                        change.grids.push(grid);
                    }
                }
                DocKind::Incident => change.incidents.push(doc.key),
                DocKind::Reference => change.reference = true,
            }
        }
        self.listeners.notify(&change);
    }
}

/// A store key from the app: exactly 32 bytes.
pub(crate) fn store_key(key: Vec<u8>) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(key.as_slice()).map_err(|_| crate::error::invalid("key", "a store key is 32 bytes"))
}
