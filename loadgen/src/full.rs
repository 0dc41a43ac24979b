//! A full simulated device: the core's own `Store` (a SQLite file), as the app runs it.
//!
//! The full-time worker of each demo grid runs one. It imports the grid's demo register
//! (a first collection, as many changes) and pushes it, so the city's realistic content
//! reaches the server the way a real grid's does; in the steady state it captures through
//! the store's API (a household's room, a resident's phone), reports incidents, and pulls
//! and projects what everyone else wrote, lightweight devices included: a change the core
//! cannot take shows up as a sync error here and fails the run.
//!
//! Rounds are `Store::begin_sync` / `Store::finish_sync` (the core's sync engine) around
//! this crate's timed transport, so that a latency is the HTTP round trip only, as for
//! every other device; the store's work runs on blocking threads.

use std::path::Path;
use std::sync::Arc;

use chacha20::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use wangge_core::incident::Actor;
use wangge_core::incident::roles::Role;
use wangge_core::model::{GridCode, GridRecords, HouseholdId, HouseholdPatch, Phone, ResidentId, ResidentPatch, Room};
use wangge_core::sync::engine::SyncRound;
use wangge_core::sync::wire::{DEFAULT_PULL_BUDGET, EnrollRequest, EnrollResponse, SyncResponse};
use wangge_core::{ImportSummary, NewIncident, Store};

use crate::device::Context;
use crate::stats::SyncKind;

/// A device with a full core store.
#[derive(Debug)]
pub struct FullDevice {
    pub person: String,
    store: Arc<Store>,
    token: String,
    grid: GridCode,
    actor: Actor,
    households: Vec<HouseholdId>,
    residents: Vec<ResidentId>,
    rooms: Vec<Room>,
    phones: Vec<Phone>,
    /// The demo register it imports before its first sync.
    to_import: Option<GridRecords>,
    rng: ChaCha8Rng,
}

fn blocking_failed(error: tokio::task::JoinError) -> String {
    format!("a store task failed: {error}")
}

impl FullDevice {
    /// A new store in `dir` for the full-time worker `person` of `grid`, who will import
    /// `records`.
    pub fn open(
        dir: &Path,
        person: &str,
        grid: GridCode,
        records: GridRecords,
        seed: u64,
    ) -> Result<FullDevice, String> {
        let store =
            Store::open(dir.join(format!("{person}.db"))).map_err(|error| format!("{person}'s store: {error}"))?;
        Ok(FullDevice {
            person: person.to_owned(),
            store: Arc::new(store),
            token: String::new(),
            grid,
            actor: Actor { person: person.to_owned(), role: Role::FullTimeWorker, department: None },
            households: Vec::new(),
            residents: Vec::new(),
            rooms: Vec::new(),
            phones: Vec::new(),
            to_import: Some(records),
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    pub fn enroll_request(&self, code: &str) -> EnrollRequest {
        let hex = self.store.device_actor();
        let actor =
            (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
        EnrollRequest {
            code: code.to_owned(),
            actor,
            device_name: format!("loadgen {}", self.person),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// Records the enrollment in the store, as the core's client does.
    pub fn enrolled(&mut self, response: EnrollResponse) -> Result<(), String> {
        self.store.apply_enrollment(&response).map_err(|error| format!("{}: {error}", self.person))?;
        self.token = response.token;
        Ok(())
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Imports the grid's demo register (a first collection) and remembers its records,
    /// which the steady state edits.
    pub async fn import(&mut self) -> Result<ImportSummary, String> {
        let records = self.to_import.take().ok_or("the demo register was imported already")?;
        self.households = records.households.iter().map(|(id, _)| *id).collect();
        self.residents = records.residents.iter().map(|(id, _)| *id).collect();
        self.rooms = records.households.iter().filter_map(|(_, household)| household.room.clone()).collect();
        self.phones = records.residents.iter().filter_map(|(_, resident)| resident.phone.clone()).collect();
        let (store, grid) = (Arc::clone(&self.store), self.grid.clone());
        tokio::task::spawn_blocking(move || store.import(&grid, &records))
            .await
            .map_err(blocking_failed)?
            .map_err(|error| format!("import: {error}"))
    }

    /// This turn's work through the store's API: a capture, a report, or nothing.
    pub async fn prepare(&mut self, context: &Context) -> Result<SyncKind, String> {
        let roll = self.rng.random_range(0..100u32);
        let store = Arc::clone(&self.store);
        if roll < context.mix.capture_pct && !self.households.is_empty() && !self.residents.is_empty() {
            let edit_household = self.rng.random_bool(0.5) || self.phones.is_empty();
            if edit_household && !self.rooms.is_empty() {
                let id = self.households[self.rng.random_range(0..self.households.len())];
                let room = self.rooms[self.rng.random_range(0..self.rooms.len())].clone();
                let patch = HouseholdPatch { room: Some(Some(room)), ..HouseholdPatch::default() };
                tokio::task::spawn_blocking(move || store.update_household(id, patch))
                    .await
                    .map_err(blocking_failed)?
                    .map_err(|error| format!("a capture: {error}"))?;
            } else {
                let id = self.residents[self.rng.random_range(0..self.residents.len())];
                let phone = self.phones[self.rng.random_range(0..self.phones.len())].clone();
                let patch = ResidentPatch { phone: Some(Some(phone)), ..ResidentPatch::default() };
                tokio::task::spawn_blocking(move || store.update_resident(id, patch))
                    .await
                    .map_err(blocking_failed)?
                    .map_err(|error| format!("a capture: {error}"))?;
            }
            return Ok(SyncKind::Capture);
        }
        if roll < context.mix.capture_pct + context.mix.report_pct && !context.reportable_items.is_empty() {
            let code = context.reportable_items[self.rng.random_range(0..context.reportable_items.len())].clone();
            let name = context.catalog.item(&code).map_or_else(|| code.clone(), |item| item.name.clone());
            let incident = NewIncident {
                grid: self.grid.clone(),
                catalog_item: code,
                title: name.chars().take(40).collect(),
                description: format!("巡查发现：{name}，请尽快处理。"),
                location: None,
                residents: Vec::new(),
                households: Vec::new(),
                organizations: Vec::new(),
                photos: Vec::new(),
                reported_by_resident: None,
            };
            let actor = self.actor.clone();
            tokio::task::spawn_blocking(move || store.report_incident(incident, actor))
                .await
                .map_err(blocking_failed)?
                .map_err(|error| format!("a report: {error}"))?;
            return Ok(SyncKind::Report);
        }
        Ok(SyncKind::Idle)
    }

    /// Starts a round (flushes captures into changes, gathers what to push).
    pub async fn begin(&self) -> Result<SyncRound, String> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.begin_sync(DEFAULT_PULL_BUDGET))
            .await
            .map_err(blocking_failed)?
            .map_err(|error| format!("{}: begin_sync: {error}", self.person))
    }

    /// Ends a round with the server's response; an error recorded in the store's sync
    /// status (a document it could not take) is a failure. Returns (more, pulled docs).
    pub async fn finish(&self, round: SyncRound, response: SyncResponse) -> Result<(bool, usize), String> {
        let store = Arc::clone(&self.store);
        let person = self.person.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = store.finish_sync(round, response).map_err(|error| format!("{person}: {error}"))?;
            let status = store.sync_status().map_err(|error| format!("{person}: {error}"))?;
            match status.last_error {
                Some(error) => Err(format!("{person}: {error}")),
                None => Ok((outcome.more, outcome.n_pulled_docs)),
            }
        })
        .await
        .map_err(blocking_failed)?
    }

    /// Changes not acknowledged yet, and captures the store could not replay.
    pub async fn leftovers(&self) -> Result<(u64, usize), String> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let pending = store.pending_changes().map_err(|error| error.to_string())?;
            let failed = store.failed_captures().map_err(|error| error.to_string())?;
            Ok((pending, failed.len()))
        })
        .await
        .map_err(blocking_failed)?
    }
}
