//! A lightweight simulated device: it speaks the wire protocol directly and keeps only what
//! it needs — its token, cursor, the snapshots and removals to confirm, its unacknowledged
//! changes, and as automerge documents in memory only the documents it writes (a grid
//! worker's register and sensitive documents, the incidents a center or a department acts
//! on). Everything else it is sent is counted and confirmed, not loaded.
//!
//! Its traffic is real: automerge changes authored by its enrolled actor, laid out as the
//! core lays records out (`crdt::fields`: a register record is a map under its container
//! keyed by a new UUIDv7, sensitive fields are flat `<id>/<field>` keys), incident actions
//! appended to the timeline with the enrolled worker's person, role and department, in the
//! order the closed loop allows (the device derives each incident's state with the core's
//! fold and only takes actions that apply when it takes them). The server checks every
//! push as it checks a phone's; a refusal fails the run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};
use chacha20::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use wangge_core::incident::catalog::Catalog;
use wangge_core::incident::doc as incident_doc;
use wangge_core::incident::roles::{CenterLevel, DepartmentCode, Role};
use wangge_core::incident::{Action, ActionKind, Actor, Phase, Verdict, derive};
use wangge_core::model::{GridCode, ResidenceType};
use wangge_core::sync::wire::{DeviceStatus, DocChanges, EnrollRequest, EnrollResponse, SyncRequest, SyncResponse};

use crate::city::{CityWorker, Share, demo_records};
use crate::stats::{Group, SyncKind};

/// What every device of a run shares.
#[derive(Debug)]
pub struct Context {
    pub catalog: Catalog,
    /// Catalog items that workers report (their lead department has handlers).
    pub reportable_items: Vec<String>,
    /// The steady state's mix, in percent of a device's syncs.
    pub mix: Mix,
}

/// How often a device does what when its turn comes (the rest are idle syncs).
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Grid workers: a capture.
    pub capture_pct: u32,
    /// Grid workers: a new incident.
    pub report_pct: u32,
    /// Township staff and department handlers: an action on an incident waiting for them.
    pub act_pct: u32,
    /// County and city staff: urging a department on an incident it handles.
    pub urge_pct: u32,
    /// Incidents a township's staff member or a department's handler acts on in one turn
    /// (one action each): their desks work through a queue.
    pub actions_per_turn: usize,
}

impl Default for Mix {
    fn default() -> Self {
        // A city's center staff (3% of devices) keep up with 2% of grid workers' syncs
        // reporting an incident, each needing five actions from them.
        Mix { capture_pct: 40, report_pct: 2, act_pct: 70, urge_pct: 20, actions_per_turn: 8 }
    }
}

/// Values a device captures: a small demo register of its first grid, so that every
/// value is one the core validates (addresses, names, ID numbers with their check digit).
#[derive(Debug, Default)]
struct Pool {
    households: Vec<HouseholdValues>,
    residents: Vec<ResidentValues>,
}

#[derive(Debug)]
struct HouseholdValues {
    address: String,
    room: Option<String>,
    residence_type: &'static str,
}

#[derive(Debug)]
struct ResidentValues {
    name: String,
    gender: Option<&'static str>,
    relation: &'static str,
    residence_type: &'static str,
    id_number: Option<String>,
    phone: Option<String>,
    birth_date: Option<String>,
}

impl Pool {
    fn of(grid: &GridCode, seed: u64) -> Pool {
        let records = demo_records(grid, 6, seed);
        let addresses: HashMap<String, String> =
            records.buildings.iter().map(|(id, building)| (id.to_string(), building.address.to_string())).collect();
        let households = records
            .households
            .iter()
            .filter_map(|(_, household)| {
                let address = match (&household.address, &household.building) {
                    (Some(address), _) => address.to_string(),
                    (None, Some(building)) => addresses.get(&building.to_string())?.clone(),
                    (None, None) => return None,
                };
                Some(HouseholdValues {
                    address,
                    room: household.room.as_ref().map(ToString::to_string),
                    residence_type: household.residence_type.code(),
                })
            })
            .collect();
        let residents = records
            .residents
            .iter()
            .map(|(_, resident)| {
                let gender = resident.gender.or_else(|| resident.id_number.as_ref().map(|id| id.gender()));
                let birth_date = resident.birth_date.or_else(|| resident.id_number.as_ref().map(|id| id.birth_date()));
                ResidentValues {
                    name: resident.name.to_string(),
                    gender: gender.map(|gender| gender.code()),
                    relation: resident.relation.code(),
                    residence_type: resident.residence_type.code(),
                    id_number: resident.id_number.as_ref().map(ToString::to_string),
                    phone: resident.phone.as_ref().map(ToString::to_string),
                    birth_date: birth_date.map(|date| date.format("%Y-%m-%d").to_string()),
                }
            })
            .collect();
        Pool { households, residents }
    }
}

/// An incident as a center or a department sees it: its derived state, enough to choose
/// the next action.
#[derive(Debug, Clone)]
struct IncidentView {
    phase: Phase,
    grid: Option<String>,
    lead: Option<DepartmentCode>,
    dispatched_before: bool,
    handled: bool,
    evaluated: bool,
    /// The lead department of its catalog item: where the center dispatches it.
    item_lead: Option<DepartmentCode>,
}

/// What applying a response did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Applied {
    pub more: bool,
    pub n_changes_pulled: usize,
    pub n_snapshots: usize,
}

/// A simulated device without a store.
#[derive(Debug)]
pub struct LightDevice {
    pub person: String,
    role: Role,
    department: Option<DepartmentCode>,
    share: Share,
    /// Township staff: the township whose incidents they accept, dispatch and close.
    township: Option<String>,
    actor: ActorId,
    actor_bytes: Vec<u8>,
    token: String,
    /// The grids from enrollment: code, and whether the device holds the sensitive document.
    grids: Vec<(String, bool)>,
    cursor: u64,
    received: Vec<String>,
    docs: HashMap<String, AutoCommit>,
    /// Pulled changes of registers and sensitive documents not applied yet: applied together
    /// when the device next edits the document (`catch_up`), as one batch. One change at a
    /// time into a large document was most of the generator's CPU, which the server under
    /// test shares; incidents are applied as they come (their state decides the next action).
    unapplied: HashMap<String, Vec<Change>>,
    /// Own changes the server has not acknowledged, by document, in causal order.
    pending: BTreeMap<String, Vec<Vec<u8>>>,
    /// Records this device created: (grid, id).
    households: Vec<(String, String)>,
    residents: Vec<(String, String)>,
    incidents: HashMap<String, IncidentView>,
    /// Incidents waiting for this device, oldest first (UUIDv7 ids sort by time).
    actionable: BTreeSet<String>,
    progressed: HashSet<String>,
    urged: HashSet<String>,
    /// Incidents this device is done with (closed, or handed on): not kept in memory.
    done: HashSet<String>,
    /// The timeline marks of those, counted when they were let go: (applied, not applied),
    /// and their phases.
    retired: (usize, usize, BTreeMap<&'static str, usize>),
    pool: Pool,
    n_created: usize,
    rng: ChaCha8Rng,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

fn commit(doc: &mut AutoCommit) -> Option<Vec<u8>> {
    doc.commit_with(CommitOptions::default().with_time(now_ms()))?;
    doc.get_last_local_change().map(|change| change.raw_bytes().to_vec())
}

fn container(doc: &AutoCommit, key: &str) -> Result<ObjId, String> {
    match doc.get(ROOT, key) {
        Ok(Some((Value::Object(_), id))) => Ok(id),
        _ => Err(format!("the document has no {key}")),
    }
}

fn failed(error: impl std::fmt::Display) -> String {
    error.to_string()
}

impl LightDevice {
    /// The device of `worker`, not enrolled yet; `seed` makes its actor and its choices.
    pub fn new(worker: &CityWorker, seed: u64) -> LightDevice {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let actor_bytes: Vec<u8> = (0..16).map(|_| rng.random::<u8>()).collect();
        let pool = match worker.areas.first().and_then(|area| GridCode::parse_default(area).ok()) {
            Some(grid) if worker.role.is_grid_worker() => Pool::of(&grid, seed),
            _ => Pool::default(),
        };
        let township = (worker.role == Role::CenterStaff(CenterLevel::Township)).then(|| worker.areas.concat());
        LightDevice {
            person: worker.person.clone(),
            role: worker.role,
            department: worker.department.clone(),
            share: worker.share,
            township,
            actor: ActorId::from(actor_bytes.as_slice()),
            actor_bytes,
            token: String::new(),
            grids: Vec::new(),
            cursor: 0,
            received: Vec::new(),
            docs: HashMap::new(),
            unapplied: HashMap::new(),
            pending: BTreeMap::new(),
            households: Vec::new(),
            residents: Vec::new(),
            incidents: HashMap::new(),
            actionable: BTreeSet::new(),
            progressed: HashSet::new(),
            urged: HashSet::new(),
            done: HashSet::new(),
            retired: (0, 0, BTreeMap::new()),
            pool,
            n_created: 0,
            rng,
        }
    }

    pub fn enroll_request(&self, code: &str) -> EnrollRequest {
        EnrollRequest {
            code: code.to_owned(),
            actor: self.actor_bytes.clone(),
            device_name: format!("loadgen {}", self.person),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    pub fn enrolled(&mut self, response: EnrollResponse) {
        self.token = response.token;
        self.grids = response.worker.grids.into_iter().map(|grid| (grid.code, grid.sensitive)).collect();
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn n_pending(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }

    /// The documents this device keeps in memory (and writes). Of the incidents, only its
    /// share of its group's (the others' are its colleagues' to act on), until it is done
    /// with them; of the county and city staff, one watches every incident (and urges),
    /// the others only pull, as supervisors reading the city's figures do.
    fn wants(&self, doc: &str) -> bool {
        if let Some(key) = doc.strip_prefix("incident/") {
            let acts = self.township.is_some() || self.role == Role::DepartmentHandler;
            let watches = self.is_upper_center() && self.share.index == 0;
            return !key.is_empty() && !self.done.contains(doc) && ((acts && self.share.takes(doc)) || watches);
        }
        if let Some(grid) = doc.strip_prefix("register/") {
            return self.grids.iter().any(|(code, _)| code == grid);
        }
        if let Some(grid) = doc.strip_prefix("sensitive/") {
            return self.grids.iter().any(|(code, sensitive)| code == grid && *sensitive);
        }
        false
    }

    /// Chooses and makes this turn's change, if any, and says what the sync will carry.
    pub fn prepare(&mut self, context: &Context) -> Result<SyncKind, String> {
        let roll = self.rng.random_range(0..100u32);
        let mix = context.mix;
        if self.role.is_grid_worker() {
            if roll < mix.capture_pct {
                return self.capture();
            }
            if roll < mix.capture_pct + mix.report_pct {
                return self.report(context);
            }
        } else if self.role == Role::DepartmentHandler || self.township.is_some() {
            if roll < mix.act_pct {
                return self.act(mix.actions_per_turn);
            }
        } else if self.role.is_center() && roll < mix.urge_pct {
            return self.act(1);
        }
        Ok(if self.pending.is_empty() { SyncKind::Idle } else { SyncKind::Capture })
    }

    /// A capture in one of the device's grids: a new household, a new resident of one of
    /// its households (with the sensitive fields when it holds the sensitive document), or
    /// an edit of one of its records.
    fn capture(&mut self) -> Result<SyncKind, String> {
        let held: Vec<(String, bool)> = self
            .grids
            .iter()
            .filter(|(grid, _)| self.docs.contains_key(&format!("register/{grid}")))
            .cloned()
            .collect();
        if held.is_empty() || self.pool.households.is_empty() || self.pool.residents.is_empty() {
            return Ok(SyncKind::Idle);
        }
        let (grid, sensitive) = held[self.rng.random_range(0..held.len())].clone();
        let households: Vec<String> =
            self.households.iter().filter(|(of, _)| *of == grid).map(|(_, id)| id.clone()).collect();
        let residents: Vec<String> =
            self.residents.iter().filter(|(of, _)| *of == grid).map(|(_, id)| id.clone()).collect();
        let roll = self.rng.random_range(0..100u32);
        self.n_created += 1;
        // What to write: register fields of a new record or one field of an own record,
        // and for a new resident its sensitive fields (flat keys).
        let mut flat: Vec<(String, String)> = Vec::new();
        let (container_key, id, fields, is_new) = if households.is_empty() || roll < 35 {
            let values = &self.pool.households[self.n_created % self.pool.households.len()];
            let mut fields = vec![
                ("address", values.address.clone()),
                ("residence_type", values.residence_type.to_owned()),
                ("status", "active".to_owned()),
            ];
            if let Some(room) = &values.room {
                fields.push(("room", room.clone()));
            }
            ("households", uuid::Uuid::now_v7().to_string(), fields, true)
        } else if residents.is_empty() || roll < 75 {
            let values = &self.pool.residents[self.n_created % self.pool.residents.len()];
            let id = uuid::Uuid::now_v7().to_string();
            let household = households[self.rng.random_range(0..households.len())].clone();
            let mut fields = vec![
                ("household", household),
                ("name", values.name.clone()),
                ("relation", values.relation.to_owned()),
                ("residence_type", values.residence_type.to_owned()),
                ("status", "active".to_owned()),
            ];
            if let Some(gender) = values.gender {
                fields.push(("gender", gender.to_owned()));
            }
            if sensitive {
                for (field, value) in
                    [("id_number", &values.id_number), ("phone", &values.phone), ("birth_date", &values.birth_date)]
                {
                    if let Some(value) = value {
                        flat.push((format!("{id}/{field}"), value.clone()));
                    }
                }
            }
            ("residents", id, fields, true)
        } else if roll < 90 {
            let household = households[self.rng.random_range(0..households.len())].clone();
            let values = &self.pool.households[self.rng.random_range(0..self.pool.households.len())];
            let room = values.room.clone().unwrap_or_else(|| "1-101".to_owned());
            ("households", household, vec![("room", room)], false)
        } else {
            let resident = residents[self.rng.random_range(0..residents.len())].clone();
            let codes = ResidenceType::ALL;
            let residence_type = codes[self.rng.random_range(0..codes.len())].code();
            ("residents", resident, vec![("residence_type", residence_type.to_owned())], false)
        };
        let register_id = format!("register/{grid}");
        let sensitive_id = format!("sensitive/{grid}");
        self.catch_up(&register_id)?;
        self.catch_up(&sensitive_id)?;
        let register = self.docs.get_mut(&register_id).ok_or("no register")?;
        if is_new {
            put_record(register, container_key, &id, &fields)?;
        } else {
            for (key, value) in &fields {
                put_field(register, container_key, &id, key, value)?;
            }
        }
        let register_change = commit(register);
        let mut sensitive_change = None;
        if !flat.is_empty()
            && let Some(doc) = self.docs.get_mut(&sensitive_id)
        {
            let residents = container(doc, "residents")?;
            for (key, value) in &flat {
                doc.put(&residents, key.as_str(), value.as_str()).map_err(failed)?;
            }
            sensitive_change = commit(doc);
        }
        if is_new {
            let records = if container_key == "households" { &mut self.households } else { &mut self.residents };
            records.push((grid.clone(), id));
        }
        for (doc, change) in [(register_id, register_change), (sensitive_id, sensitive_change)] {
            if let Some(change) = change {
                self.pending.entry(doc).or_default().push(change);
            }
        }
        Ok(SyncKind::Capture)
    }

    fn incident_actor(&self) -> Actor {
        Actor { person: self.person.clone(), role: self.role, department: self.department.clone() }
    }

    /// A new incident in one of the device's grids (发现上报).
    fn report(&mut self, context: &Context) -> Result<SyncKind, String> {
        if self.grids.is_empty() || context.reportable_items.is_empty() {
            return Ok(SyncKind::Idle);
        }
        let grid = self.grids[self.rng.random_range(0..self.grids.len())].0.clone();
        let code = &context.reportable_items[self.rng.random_range(0..context.reportable_items.len())];
        let name = context.catalog.item(code).map_or_else(|| code.clone(), |item| item.name.clone());
        let id = uuid::Uuid::now_v7().to_string();
        let mut doc = incident_doc::genesis(&id).with_actor(self.actor.clone());
        let fields = [
            ("grid", grid),
            ("catalog_item", code.clone()),
            ("title", name.chars().take(40).collect()),
            ("description", format!("巡查发现：{name}，请尽快处理。")),
        ];
        incident_doc::write_report(&mut doc, &fields).map_err(failed)?;
        let action = Action {
            id: uuid::Uuid::now_v7().to_string(),
            actor: self.incident_actor(),
            device_time_ms: now_ms(),
            kind: ActionKind::Report,
        };
        incident_doc::append_action(&mut doc, &action).map_err(failed)?;
        let change = commit(&mut doc).ok_or("an incident report made no change")?;
        self.pending.entry(format!("incident/{id}")).or_default().push(change);
        Ok(SyncKind::Report)
    }

    /// Actions on the oldest incidents waiting for this device, one each, at most `max`
    /// (a center's desk works through its queue, then the app syncs).
    fn act(&mut self, max: usize) -> Result<SyncKind, String> {
        let mut acted = BTreeSet::new();
        while acted.len() < max {
            let Some(doc_id) = self.actionable.iter().find(|id| !acted.contains(*id)).cloned() else { break };
            acted.insert(doc_id.clone());
            let view = self.incidents.get(&doc_id).cloned().ok_or("an actionable incident without a view")?;
            let Some(kind) = self.next_action(&doc_id, &view) else {
                self.actionable.remove(&doc_id);
                continue;
            };
            match &kind {
                ActionKind::Progress { .. } => {
                    self.progressed.insert(doc_id.clone());
                }
                ActionKind::Urge { .. } => {
                    self.urged.insert(doc_id.clone());
                }
                _ => {}
            }
            let action = Action {
                id: uuid::Uuid::now_v7().to_string(),
                actor: self.incident_actor(),
                device_time_ms: now_ms(),
                kind,
            };
            let doc = self.docs.get_mut(&doc_id).ok_or("an actionable incident not held")?;
            incident_doc::append_action(doc, &action).map_err(failed)?;
            let change = commit(doc).ok_or("an incident action made no change")?;
            self.pending.entry(doc_id.clone()).or_default().push(change);
            self.refresh_incident(&doc_id, None);
        }
        Ok(if !acted.is_empty() {
            SyncKind::Act
        } else if self.pending.is_empty() {
            SyncKind::Idle
        } else {
            SyncKind::Capture
        })
    }

    /// What this device does next on an incident, given its state; `None`: nothing.
    fn next_action(&self, doc_id: &str, view: &IncidentView) -> Option<ActionKind> {
        if !self.share.takes(doc_id) {
            return None;
        }
        if self.role == Role::DepartmentHandler {
            let mine = view.phase == Phase::Dispatched && view.lead.is_some() && view.lead == self.department;
            return mine.then(|| {
                if self.progressed.contains(doc_id) {
                    ActionKind::Complete {
                        feedback: "已按要求处置完毕，现场已恢复。".into(), evidence: Vec::new()
                    }
                } else {
                    ActionKind::Progress { note: "已派员到现场处置。".into() }
                }
            });
        }
        if let Some(township) = &self.township {
            if !view.grid.as_deref().is_some_and(|grid| grid.starts_with(township.as_str())) {
                return None;
            }
            return match view.phase {
                Phase::Reported => Some(ActionKind::Accept),
                Phase::Accepted if !view.dispatched_before => {
                    Some(ActionKind::Dispatch { lead: view.item_lead.clone()?, co_handlers: Vec::new() })
                }
                Phase::Completed => {
                    Some(ActionKind::Verify { verdict: Verdict::Pass, note: "现场核查通过。".into() })
                }
                Phase::Verified => Some(ActionKind::Archive),
                Phase::Archived if view.handled && !view.evaluated => {
                    Some(ActionKind::Evaluate { satisfaction: 5, comment: "群众满意。".into() })
                }
                _ => None,
            };
        }
        if self.role.is_center() && view.phase == Phase::Dispatched && !self.urged.contains(doc_id) {
            return Some(ActionKind::Urge { note: "请加快办理进度。".into() });
        }
        None
    }

    /// Derives an incident's state again after it changed, and files it as waiting for
    /// this device or not.
    fn refresh_incident(&mut self, doc_id: &str, catalog: Option<&Catalog>) {
        let Some(doc) = self.docs.get(doc_id) else { return };
        let timeline = incident_doc::read_timeline(doc).unwrap_or_default();
        let state = derive(timeline.iter().map(Option::as_ref));
        let item_lead = match (self.incidents.get(doc_id), catalog) {
            (Some(view), _) if view.item_lead.is_some() => view.item_lead.clone(),
            (_, Some(catalog)) => {
                let report = incident_doc::read_report(doc).unwrap_or_default();
                let item = report.iter().find(|(key, _)| key == "catalog_item").map(|(_, code)| code.as_str());
                item.and_then(|code| catalog.item(code)).and_then(|item| item.lead_department().cloned())
            }
            _ => None,
        };
        let grid = match self.incidents.get(doc_id) {
            Some(view) if view.grid.is_some() => view.grid.clone(),
            _ => incident_doc::report_grid(doc),
        };
        let view = IncidentView {
            phase: state.phase,
            grid,
            lead: state.lead.clone(),
            dispatched_before: !state.clocks.is_empty(),
            handled: state.handled,
            evaluated: state.evaluation.is_some(),
            item_lead,
        };
        if self.next_action(doc_id, &view).is_some() {
            self.actionable.insert(doc_id.to_owned());
        } else {
            self.actionable.remove(doc_id);
        }
        // Done with it (and nothing of it unacknowledged): let it go.
        let finished = match self.role {
            Role::DepartmentHandler => !matches!(view.phase, Phase::Dispatched),
            _ => match view.phase {
                Phase::Archived => view.evaluated || !view.handled,
                Phase::Refused | Phase::Withdrawn => true,
                _ => false,
            },
        };
        if finished && !self.pending.contains_key(doc_id) {
            for mark in &state.marks {
                match mark {
                    wangge_core::incident::Mark::Applied => self.retired.0 += 1,
                    wangge_core::incident::Mark::NotApplied(_) => self.retired.1 += 1,
                }
            }
            *self.retired.2.entry(state.phase.code()).or_default() += 1;
            self.docs.remove(doc_id);
            self.incidents.remove(doc_id);
            self.actionable.remove(doc_id);
            self.done.insert(doc_id.to_owned());
            return;
        }
        self.incidents.insert(doc_id.to_owned(), view);
    }

    /// This round's request: every unacknowledged change, the cursor, the confirmations.
    pub fn request(&self) -> SyncRequest {
        SyncRequest {
            cursor: self.cursor,
            pushes: self
                .pending
                .iter()
                .map(|(doc, changes)| DocChanges {
                    doc: doc.clone(),
                    changes: changes.iter().map(|change| change.clone().into()).collect(),
                })
                .collect(),
            pull_budget: wangge_core::sync::wire::DEFAULT_PULL_BUDGET,
            received: self.received.clone(),
            // As the core's client reports itself (the server keeps it for the operator).
            status: Some(DeviceStatus {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                pending: self.n_pending() as u64,
                all_pushed: true,
            }),
            // It cannot take a compacted generation in place (no run compacts).
            generations: None,
            reset: Vec::new(),
        }
    }

    /// Forgets unacknowledged changes the server refused for good (the run has failed;
    /// this keeps one refusal from repeating at every later turn).
    pub fn drop_pending(&mut self) {
        self.pending.clear();
    }

    /// Takes the server's answer to `request`: acknowledgements, removals, snapshots and
    /// changes of the documents it keeps, the cursor.
    pub fn apply(
        &mut self,
        request: &SyncRequest,
        response: SyncResponse,
        context: &Context,
    ) -> Result<Applied, String> {
        for push in &request.pushes {
            if !response.acks.contains(&push.doc) {
                return Err(format!("{} was pushed and not acknowledged", push.doc));
            }
            // Nothing was changed while the request was out: the device waits for its sync.
            self.pending.remove(&push.doc);
        }
        let mut applied = Applied { more: response.more, ..Applied::default() };
        let mut received = Vec::new();
        for doc in &response.removed {
            self.docs.remove(doc);
            self.unapplied.remove(doc);
            received.push(doc.clone());
        }
        let mut touched = BTreeSet::new();
        for pull in response.pulls {
            if let Some(snapshot) = pull.snapshot {
                applied.n_snapshots += 1;
                received.push(pull.doc.clone());
                if self.wants(&pull.doc) {
                    self.catch_up(&pull.doc)?;
                    match self.docs.get_mut(&pull.doc) {
                        Some(doc) => {
                            doc.load_incremental(&snapshot).map_err(|error| format!("{}: {error}", pull.doc))?;
                        }
                        None => {
                            let doc = AutoCommit::load(&snapshot)
                                .map_err(|error| format!("{}: {error}", pull.doc))?
                                .with_actor(self.actor.clone());
                            self.docs.insert(pull.doc.clone(), doc);
                        }
                    }
                    touched.insert(pull.doc.clone());
                }
            }
            applied.n_changes_pulled += pull.changes.len();
            if pull.changes.is_empty() {
                continue;
            }
            if let Some(doc) = self.docs.get_mut(&pull.doc) {
                let changes = pull
                    .changes
                    .into_iter()
                    .map(|bytes| Change::from_bytes(bytes.into_vec()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|error| format!("{}: a change does not decode: {error}", pull.doc))?;
                // Checked now though applied later: each change's dependencies are in the
                // document or came before it (the server sends a document's changes in
                // causal order, whatever the paging).
                let pending = self.unapplied.entry(pull.doc.clone()).or_default();
                let mut known: HashSet<ChangeHash> = pending.iter().map(Change::hash).collect();
                for change in &changes {
                    if change
                        .deps()
                        .iter()
                        .any(|dep| !known.contains(dep) && doc.get_change_meta_by_hash(dep).is_none())
                    {
                        return Err(format!("{}: changes arrived before their dependencies", pull.doc));
                    }
                    known.insert(change.hash());
                }
                pending.extend(changes);
                if pull.doc.starts_with("incident/") {
                    self.catch_up(&pull.doc)?;
                    touched.insert(pull.doc.clone());
                }
            }
        }
        // Incidents just acknowledged may be done with now.
        touched.extend(request.pushes.iter().map(|push| push.doc.clone()).filter(|doc| doc.starts_with("incident/")));
        for doc_id in &touched {
            if let Some(doc) = self.docs.get(doc_id)
                && !doc.get_missing_deps(&[]).is_empty()
            {
                return Err(format!("{doc_id}: changes arrived before their dependencies"));
            }
            if doc_id.starts_with("incident/") {
                self.refresh_incident(doc_id, Some(&context.catalog));
            }
        }
        self.received = received;
        self.cursor = response.cursor;
        Ok(applied)
    }

    /// Applies the pulled changes of `doc_id` not applied yet; they must leave no dependency
    /// missing (the server sends a document's changes in causal order).
    fn catch_up(&mut self, doc_id: &str) -> Result<(), String> {
        let Some(changes) = self.unapplied.remove(doc_id) else { return Ok(()) };
        let Some(doc) = self.docs.get_mut(doc_id) else { return Ok(()) };
        doc.apply_changes(changes).map_err(|error| format!("{doc_id}: {error}"))?;
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(format!("{doc_id}: changes arrived before their dependencies"));
        }
        Ok(())
    }

    /// Applies every pulled change not applied yet (before the run's checks); the problems
    /// of every document that failed.
    pub fn catch_up_all(&mut self) -> Vec<String> {
        let docs: Vec<String> = self.unapplied.keys().cloned().collect();
        docs.iter().filter_map(|doc| self.catch_up(doc).err()).collect()
    }

    /// The incidents this device has held, with their timelines' marks: (applied, not
    /// applied), and how many are in each phase.
    pub fn incident_marks(&self) -> (usize, usize, BTreeMap<&'static str, usize>) {
        let (mut applied, mut not_applied, mut phases) = self.retired.clone();
        for (doc_id, doc) in &self.docs {
            if !doc_id.starts_with("incident/") {
                continue;
            }
            let timeline = incident_doc::read_timeline(doc).unwrap_or_default();
            let state = derive(timeline.iter().map(Option::as_ref));
            for mark in &state.marks {
                match mark {
                    wangge_core::incident::Mark::Applied => applied += 1,
                    wangge_core::incident::Mark::NotApplied(_) => not_applied += 1,
                }
            }
            *phases.entry(state.phase.code()).or_default() += 1;
        }
        (applied, not_applied, phases)
    }

    pub fn group(&self) -> Group {
        match self.role {
            Role::CenterStaff(CenterLevel::Township) => Group::Township,
            Role::CenterStaff(_) => Group::County,
            Role::DepartmentHandler => Group::Department,
            _ => Group::GridWorker,
        }
    }

    pub fn is_upper_center(&self) -> bool {
        matches!(self.role, Role::CenterStaff(CenterLevel::County | CenterLevel::City))
    }
}

/// Creates a record's map under `container` and fills it (the record is new: its id is a
/// fresh UUIDv7, so only this device creates that map).
fn put_record(doc: &mut AutoCommit, container_key: &str, id: &str, fields: &[(&str, String)]) -> Result<(), String> {
    let records = container(doc, container_key)?;
    let record = doc.put_object(&records, id, ObjType::Map).map_err(failed)?;
    for (key, value) in fields {
        doc.put(&record, *key, value.as_str()).map_err(failed)?;
    }
    Ok(())
}

/// Sets one field of a record this device created.
fn put_field(doc: &mut AutoCommit, container_key: &str, id: &str, key: &str, value: &str) -> Result<(), String> {
    let records = container(doc, container_key)?;
    let record = match doc.get(&records, id) {
        Ok(Some((Value::Object(ObjType::Map), record))) => record,
        _ => return Err(format!("record {id} is not in {container_key}")),
    };
    doc.put(&record, key, value).map_err(failed)
}
