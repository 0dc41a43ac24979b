//! The authorization matrix (issue 7): every endpoint × every role × own grid / other grid
//! / other county / other department, each cell asserting exact allow or deny, and that a
//! denial carries nothing but the error. The expected cells are the protocol's scope table
//! (docs/sync-protocol.md §5) written out per role in `ROLES`; every wrong cell is collected
//! and reported at once.
//!
//! Setup: grid A (440703001001001, township 440703001), grid B (440703002001001, another
//! township of county 440703), grid C (440704001001001, another county). In each grid a
//! full-time worker captures register and sensitive data, reports incidents with a photo
//! and records a visit and a check-in; a city center accepts every incident and dispatches
//! A's first one, B's and C's to department X (urban_management) and A's second one to
//! department Y (public_security). The devices of the matrix have never synced: their
//! first pull (cursor 0) holds a snapshot of exactly the documents they may read.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ReadDoc};
use wangge_core::activity::doc as activity_doc;
use wangge_core::activity::{NewVisit, VisitPurpose, VisitTarget};
use wangge_core::blobs::{BlobHash, BlobStore};
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::incident::doc as incident_doc;
use wangge_core::incident::roles::{DepartmentCode, Role};
use wangge_core::incident::{Action, ActionKind, Actor, Mark};
use wangge_core::model::{GridCode, IncidentId, Wgs84};
use wangge_core::sync::wire::{self, ErrorBody};
use wangge_server::Storage;
use wangge_tests::{TestDevice, TestServer, photo, report_naming};

const A: &str = "440703001001001";
const B: &str = "440703002001001";
const C: &str = "440704001001001";
const X: &str = "urban_management";
const Y: &str = "public_security";
const NOV_3: i64 = 1_793_671_200_000; // 2026-11-03 10:00 China time

/// The documents on the server, by label (the incident labels name grid → department).
const DOCS: [&str; 14] = [
    "reference",
    "register/A",
    "sensitive/A",
    "incident/A→X",
    "incident/A→Y",
    "activity/A",
    "register/B",
    "sensitive/B",
    "incident/B→X",
    "activity/B",
    "register/C",
    "sensitive/C",
    "incident/C→X",
    "activity/C",
];

/// The photos, each referred to by one incident (by its label).
const PHOTOS: [&str; 4] = ["incident/A→X", "incident/A→Y", "incident/B→X", "incident/C→X"];

/// A role of the matrix: who, and what it reads (= may write) — the §5 table, written out.
struct RoleDef {
    label: &'static str,
    person: &'static str,
    role: &'static str,
    department: Option<&'static str>,
    areas: &'static [&'static str],
    visible: &'static [&'static str],
}

const GRID_A_FULL: &[&str] = &["reference", "register/A", "sensitive/A", "incident/A→X", "incident/A→Y", "activity/A"];

const ROLES: &[RoleDef] = &[
    RoleDef {
        label: "part_time_worker(A)",
        person: "pt-a",
        role: "part_time_worker",
        department: None,
        areas: &[A],
        // Never `sensitive/…`.
        visible: &["reference", "register/A", "incident/A→X", "incident/A→Y", "activity/A"],
    },
    RoleDef {
        label: "full_time_worker(A)",
        person: "ft-a",
        role: "full_time_worker",
        department: None,
        areas: &[A],
        visible: GRID_A_FULL,
    },
    RoleDef {
        label: "grid_leader(A)",
        person: "gl-a",
        role: "grid_leader",
        department: None,
        areas: &[A],
        visible: GRID_A_FULL,
    },
    RoleDef {
        label: "professional_worker(A, dept X)",
        person: "pro-a",
        role: "professional_worker",
        department: Some(X),
        areas: &[A],
        // Its grid as full-time; not its department's incidents elsewhere.
        visible: GRID_A_FULL,
    },
    RoleDef {
        label: "center_staff_township(440703001)",
        person: "ctr-town",
        role: "center_staff_township",
        department: None,
        areas: &["440703001"],
        visible: GRID_A_FULL,
    },
    RoleDef {
        label: "center_staff_county(440703)",
        person: "ctr-county",
        role: "center_staff_county",
        department: None,
        areas: &["440703"],
        visible: &[
            "reference",
            "register/A",
            "sensitive/A",
            "incident/A→X",
            "incident/A→Y",
            "activity/A",
            "register/B",
            "sensitive/B",
            "incident/B→X",
            "activity/B",
        ],
    },
    RoleDef {
        label: "center_staff_city(440703+440704)",
        person: "ctr-city",
        role: "center_staff_city",
        department: None,
        areas: &["440703", "440704"],
        visible: &DOCS,
    },
    RoleDef {
        label: "department_handler(X)",
        person: "h-x",
        role: "department_handler",
        department: Some(X),
        areas: &[],
        // Only incidents dispatched to X: never register, sensitive or activity.
        visible: &["reference", "incident/A→X", "incident/B→X", "incident/C→X"],
    },
    RoleDef {
        label: "department_handler(Y)",
        person: "h-y",
        role: "department_handler",
        department: Some(Y),
        areas: &[],
        visible: &["reference", "incident/A→Y"],
    },
];

const GRIDS: [(&str, &str); 3] = [("A", A), ("B", B), ("C", C)];

impl RoleDef {
    fn sees(&self, doc: &str) -> bool {
        self.visible.contains(&doc)
    }

    /// The grids (labels) it works in: those whose register it reads.
    fn grids(&self) -> Vec<&'static str> {
        GRIDS.iter().filter(|(label, _)| self.sees(&format!("register/{label}"))).map(|(label, _)| *label).collect()
    }

    fn actor(&self) -> Actor {
        Actor {
            person: self.person.into(),
            role: Role::from_code(self.role).unwrap(),
            department: self.department.map(|code| DepartmentCode::parse(code).unwrap()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Endpoint {
    Enroll,
    Pull,
    Push,
    BlobStatus,
    BlobUpload,
    BlobDownload,
    PublicCard,
    Healthz,
}

/// What a cell must show.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// 200 with the data (for a pull: the document is in it).
    Allow,
    /// Refused with this status and error code, an `ErrorBody` and nothing else.
    Deny(u16, &'static str),
    /// Pull: the document is not in it.
    Absent,
}

/// What a cell showed.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Allowed,
    Denied(u16, String),
    Absent,
    /// Something else: what was wrong.
    Wrong(String),
}

impl Outcome {
    fn matches(&self, expected: &Verdict) -> bool {
        match (self, expected) {
            (Outcome::Allowed, Verdict::Allow) | (Outcome::Absent, Verdict::Absent) => true,
            (Outcome::Denied(status, code), Verdict::Deny(want_status, want_code)) => {
                status == want_status && code == want_code
            }
            _ => false,
        }
    }
}

/// Who sends a request: a role of the matrix, or a token that must not get in.
#[derive(Debug, Clone, Copy)]
enum Who {
    Role(usize),
    UnknownToken,
    RevokedDevice,
    NoToken,
}

struct Case {
    who: Who,
    endpoint: Endpoint,
    target: String,
    expected: Verdict,
}

/// Everything a case needs to run.
struct World {
    server: TestServer,
    devices: Vec<TestDevice>,
    /// Label → document id.
    docs: BTreeMap<String, String>,
    /// Incident label → (photo name, bytes).
    photos: BTreeMap<&'static str, (BlobHash, Vec<u8>)>,
    /// Each role's first pull (cursor 0), in `ROLES` order.
    pulls: Vec<Result<wire::SyncResponse, String>>,
    revoked_token: String,
    revoked_actor: Vec<u8>,
    catalog_item: String,
    /// Sensitive values of grid A (phones, ID numbers): never on a public page.
    sensitive_values: Vec<String>,
}

fn token(device: &TestDevice) -> String {
    device.store.sync_token().unwrap().unwrap()
}

fn actor_bytes(device: &TestDevice) -> Vec<u8> {
    let hex = device.store.device_actor();
    (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// Posts a protocol body to `path`, with a bearer token if given: status and body.
async fn post(server: &TestServer, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut request =
        reqwest::Client::new().post(format!("{}{path}", server.url)).header(wire::PROTOCOL_HEADER, "1").body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

/// A refusal: its status and code, or what is wrong with it when the body holds anything
/// but the error (`code`, `message`, `doc`: no pulls, no chunk, no token).
fn refusal(status: u16, body: &[u8]) -> Outcome {
    let keys = match wire::decode::<BTreeMap<String, serde_json::Value>>(body) {
        Ok(map) => map.into_keys().collect::<Vec<_>>(),
        Err(error) => return Outcome::Wrong(format!("{status} with a body that is not a plain error: {error}")),
    };
    if let Some(extra) = keys.iter().find(|key| !["code", "message", "doc"].contains(&key.as_str())) {
        return Outcome::Wrong(format!("{status} with `{extra}` beside the error"));
    }
    match wire::decode::<ErrorBody>(body) {
        Ok(error) => Outcome::Denied(status, error.code),
        Err(error) => Outcome::Wrong(format!("{status} without an ErrorBody: {error}")),
    }
}

/// Builds changes by `actor` on the document as the server has it now (or from its genesis
/// when it does not exist yet) — the worker's own, valid edits, so that only the scope
/// decides.
fn changes_for(world: &World, doc_id: &str, actor: &[u8], role: &RoleDef) -> Vec<serde_bytes::ByteBuf> {
    let stored = world.server.service.storage().snapshot(doc_id).unwrap();
    let (kind, key) = doc_id.split_once('/').unwrap();
    let mut doc = match &stored {
        Some(snapshot) => AutoCommit::load(snapshot).unwrap(),
        None if kind == "incident" => incident_doc::genesis(key),
        None if kind == "activity" => activity_doc::genesis(key),
        None => panic!("{doc_id} does not exist"),
    }
    .with_actor(automerge::ActorId::from(actor.to_vec()));
    let heads = doc.get_heads();
    let me = role.actor();
    match kind {
        "register" | "sensitive" => {
            // The first text field of the first resident, rewritten.
            let (_, residents) = doc.get(automerge::ROOT, "residents").unwrap().unwrap();
            let mut target = None;
            for key in doc.keys(&residents).collect::<Vec<_>>() {
                match doc.get(&residents, &key).unwrap().unwrap() {
                    (automerge::Value::Object(_), record) => {
                        for field in doc.keys(&record).collect::<Vec<_>>() {
                            if let Some((automerge::Value::Scalar(value), _)) = doc.get(&record, &field).unwrap()
                                && let automerge::ScalarValue::Str(text) = value.as_ref()
                            {
                                target = Some((record.clone(), field, text.to_string()));
                                break;
                            }
                        }
                    }
                    (automerge::Value::Scalar(value), _) => {
                        if let automerge::ScalarValue::Str(text) = value.as_ref() {
                            target = Some((residents.clone(), key, text.to_string()));
                        }
                    }
                }
                if target.is_some() {
                    break;
                }
            }
            let (obj, field, value) = target.unwrap_or_else(|| panic!("{doc_id} has no resident text field"));
            doc.put(&obj, field, format!("{value}（核）")).unwrap();
        }
        "incident" => {
            if stored.is_none() {
                let grid = key_grid(world, key);
                incident_doc::write_report(
                    &mut doc,
                    &[
                        ("grid", grid),
                        ("catalog_item", world.catalog_item.clone()),
                        ("title", "路灯不亮".into()),
                        ("description", String::new()),
                    ],
                )
                .unwrap();
                let report = Action {
                    id: IncidentId::new().to_string(),
                    actor: me,
                    device_time_ms: NOV_3,
                    kind: ActionKind::Report,
                };
                incident_doc::append_action(&mut doc, &report).unwrap();
            } else {
                let note = ActionKind::Progress { note: "已到现场".into() };
                let action = Action { id: IncidentId::new().to_string(), actor: me, device_time_ms: NOV_3, kind: note };
                incident_doc::append_action(&mut doc, &action).unwrap();
            }
        }
        "activity" => {
            let (_, checkins) = doc.get(automerge::ROOT, activity_doc::CHECKINS).unwrap().unwrap();
            let entry = serde_json::json!({"worker": role.person, "time_ms": NOV_3, "location": [22.59, 113.08]});
            doc.put(&checkins, IncidentId::new().to_string(), entry.to_string()).unwrap();
        }
        "reference" => {
            let (_, grids) = doc.get(automerge::ROOT, "grids").unwrap().unwrap();
            doc.put(&grids, A, "{\"name\":\"改名\",\"kind\":\"community\"}").unwrap();
        }
        other => panic!("unknown kind {other}"),
    }
    doc.commit();
    doc.get_changes(&heads).into_iter().map(|change| change.raw_bytes().to_vec().into()).collect()
}

/// The grid code a new incident is reported in: its label is `new incident:<grid label>:<role>`.
fn key_grid(world: &World, key: &str) -> String {
    let (label, _) = world.docs.iter().find(|(_, id)| id.ends_with(key)).unwrap();
    let grid = label.split(':').nth(1).unwrap();
    GRIDS.iter().find(|(l, _)| *l == grid).unwrap().1.to_owned()
}

async fn run(world: &World, case: &Case) -> Outcome {
    let server = &world.server;
    let (token, role) = match case.who {
        Who::Role(i) => (Some(token(&world.devices[i])), Some(&ROLES[i])),
        Who::UnknownToken => (Some("0".repeat(64)), None),
        Who::RevokedDevice => (Some(world.revoked_token.clone()), None),
        Who::NoToken => (None, None),
    };
    let token = token.as_deref();
    let photo_of = |target: &str| world.photos.get(target).cloned();
    match case.endpoint {
        Endpoint::Enroll => {
            let (Who::Role(i), Some(role)) = (case.who, role) else { unreachable!() };
            let code = server.service.issue_enrollment_code(role.person).unwrap();
            let request = wire::EnrollRequest {
                code: code.clone(),
                // A fresh actor id per enrollment (the devices' own are random).
                actor: vec![0x80 + 2 * u8::try_from(i).unwrap() + u8::from(case.target == "a used code"); 16],
                device_name: "matrix".into(),
                app_version: "test".into(),
            };
            let (status, body) = post(server, "/v1/enroll", None, wire::encode(&request)).await;
            if case.target == "a used code" {
                if status != 200 {
                    return Outcome::Wrong(format!("the first use of the code got {status}"));
                }
                let again = wire::EnrollRequest { actor: vec![7; 16], ..request };
                let (status, body) = post(server, "/v1/enroll", None, wire::encode(&again)).await;
                return if status == 200 {
                    Outcome::Wrong("a used code enrolled again".into())
                } else {
                    refusal(status, &body)
                };
            }
            if status != 200 {
                return refusal(status, &body);
            }
            let response: wire::EnrollResponse = match wire::decode(&body) {
                Ok(response) => response,
                Err(error) => return Outcome::Wrong(format!("200 without an EnrollResponse: {error}")),
            };
            let got: Vec<(String, bool)> =
                response.worker.grids.iter().map(|grid| (grid.code.clone(), grid.sensitive)).collect();
            let want: Vec<(String, bool)> = role
                .grids()
                .iter()
                .map(|label| {
                    let code = GRIDS.iter().find(|(l, _)| l == label).unwrap().1.to_owned();
                    (code, role.sees(&format!("sensitive/{label}")))
                })
                .collect();
            if got != want || response.worker.role != role.role || response.worker.person != role.person {
                return Outcome::Wrong(format!("enrolled with grids {got:?}, expected {want:?}"));
            }
            Outcome::Allowed
        }
        Endpoint::Pull => {
            let Who::Role(i) = case.who else { unreachable!() };
            let response = match &world.pulls[i] {
                Ok(response) => response,
                Err(error) => return Outcome::Wrong(error.clone()),
            };
            if case.target == "(any document not listed)" {
                let known: BTreeSet<&String> = world.docs.values().collect();
                let unknown: Vec<&String> =
                    response.pulls.iter().map(|pull| &pull.doc).filter(|doc| !known.contains(doc)).collect();
                if !unknown.is_empty() || !response.removed.is_empty() || response.more {
                    return Outcome::Wrong(format!(
                        "unexpected documents {unknown:?}, removed {:?}, more {}",
                        response.removed, response.more
                    ));
                }
                return Outcome::Absent;
            }
            let doc = &world.docs[case.target.as_str()];
            match response.pulls.iter().filter(|pull| &pull.doc == doc).collect::<Vec<_>>().as_slice() {
                [] => Outcome::Absent,
                [pull] if pull.snapshot.is_some() => Outcome::Allowed,
                other => Outcome::Wrong(format!("{} pulls of it, or one without a snapshot", other.len())),
            }
        }
        Endpoint::Push => {
            let Who::Role(i) = case.who else { unreachable!() };
            let role = role.unwrap();
            let doc = world.docs[case.target.as_str()].clone();
            let storage = server.service.storage();
            let (seq_before, snapshot_before) = (storage.max_seq().unwrap(), storage.snapshot(&doc).unwrap());
            let changes = changes_for(world, &doc, &actor_bytes(&world.devices[i]), role);
            let request = wire::SyncRequest {
                cursor: u64::try_from(seq_before).unwrap(),
                pushes: vec![wire::DocChanges { doc: doc.clone(), changes }],
                pull_budget: 0,
                received: vec![],
                reset: vec![],
                status: None,
                generations: None,
            };
            let (status, body) = post(server, "/v1/sync", token, wire::encode(&request)).await;
            let (seq_after, snapshot_after) = (storage.max_seq().unwrap(), storage.snapshot(&doc).unwrap());
            if status == 200 {
                let response: wire::SyncResponse = match wire::decode(&body) {
                    Ok(response) => response,
                    Err(error) => return Outcome::Wrong(format!("200 without a SyncResponse: {error}")),
                };
                if response.acks != vec![doc.clone()] {
                    return Outcome::Wrong(format!("200 with acks {:?}", response.acks));
                }
                if seq_after <= seq_before || snapshot_after == snapshot_before {
                    return Outcome::Wrong("acknowledged but not stored".into());
                }
                return Outcome::Allowed;
            }
            if seq_after != seq_before || snapshot_after != snapshot_before {
                return Outcome::Wrong(format!("refused with {status} but something was stored"));
            }
            let outcome = refusal(status, &body);
            if let Outcome::Denied(..) = outcome
                && wire::decode::<ErrorBody>(&body).unwrap().doc.as_deref() != Some(doc.as_str())
            {
                return Outcome::Wrong(format!("{status} without the refused document in `doc`"));
            }
            outcome
        }
        Endpoint::BlobStatus => {
            let (hash, bytes) = photo_of(&case.target).unwrap();
            let request = wire::BlobStatusRequest { hash: hash.to_string() };
            let (status, body) = post(server, "/v1/blobs/status", token, wire::encode(&request)).await;
            if status != 200 {
                return refusal(status, &body);
            }
            match wire::decode::<wire::BlobStatus>(&body) {
                Ok(got) if got == wire::BlobStatus { received: bytes.len() as u64, complete: true } => Outcome::Allowed,
                other => Outcome::Wrong(format!("200 with {other:?}")),
            }
        }
        Endpoint::BlobUpload => {
            let (hash, bytes) = photo_of(&case.target).unwrap();
            let request = wire::BlobUploadRequest {
                hash: hash.to_string(),
                size: bytes.len() as u64,
                offset: 0,
                chunk: bytes.clone().into(),
            };
            let (status, body) = post(server, "/v1/blobs/upload", token, wire::encode(&request)).await;
            if status != 200 {
                return refusal(status, &body);
            }
            match wire::decode::<wire::BlobStatus>(&body) {
                Ok(got) if got == wire::BlobStatus { received: bytes.len() as u64, complete: true } => Outcome::Allowed,
                other => Outcome::Wrong(format!("200 with {other:?}")),
            }
        }
        Endpoint::BlobDownload => {
            let (hash, bytes) = photo_of(&case.target).unwrap();
            let request = wire::BlobDownloadRequest { hash: hash.to_string(), offset: 0, max: 0 };
            let (status, body) = post(server, "/v1/blobs/download", token, wire::encode(&request)).await;
            if status != 200 {
                return refusal(status, &body);
            }
            match wire::decode::<wire::BlobChunk>(&body) {
                Ok(chunk) if chunk.chunk.as_slice() == bytes.as_slice() && chunk.total == bytes.len() as u64 => {
                    Outcome::Allowed
                }
                Ok(chunk) => Outcome::Wrong(format!("200 with {} bytes of {}", chunk.chunk.len(), chunk.total)),
                Err(error) => Outcome::Wrong(format!("200 without a BlobChunk: {error}")),
            }
        }
        Endpoint::PublicCard => {
            let code = match case.target.as_str() {
                "grid A" => A,
                "grid B" => B,
                "grid C" => C,
                _ => "440703001001099",
            };
            let mut request = reqwest::Client::new().get(format!("{}/public/grids/{code}", server.url));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let page = response.text().await.unwrap();
            if let Some(value) = world.sensitive_values.iter().find(|value| page.contains(value.as_str())) {
                return Outcome::Wrong(format!("the public page shows sensitive data ({} characters)", value.len()));
            }
            match status {
                200 => Outcome::Allowed,
                404 => Outcome::Denied(404, "not_found".into()),
                other => Outcome::Wrong(format!("status {other}")),
            }
        }
        Endpoint::Healthz => {
            let mut request = reqwest::Client::new().get(format!("{}/healthz", server.url));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            match (status, response.text().await.unwrap().as_str()) {
                (200, "ok") => Outcome::Allowed,
                (status, body) => Outcome::Wrong(format!("{status} {body:?}")),
            }
        }
    }
}

/// The matrix: every role × endpoint × target, expected from `ROLES` (§5).
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let case = |who, endpoint, target: &str, expected| Case { who, endpoint, target: target.to_owned(), expected };
    for (i, role) in ROLES.iter().enumerate() {
        let who = Who::Role(i);
        cases.push(case(who, Endpoint::Enroll, "a new code", Verdict::Allow));
        cases.push(case(who, Endpoint::Enroll, "a used code", Verdict::Deny(404, "unknown_code")));
        for doc in DOCS {
            cases.push(case(who, Endpoint::Pull, doc, if role.sees(doc) { Verdict::Allow } else { Verdict::Absent }));
        }
        cases.push(case(who, Endpoint::Pull, "(any document not listed)", Verdict::Absent));
        for doc in DOCS {
            // Everyone reads the reference document; only the server writes it.
            let allowed = role.sees(doc) && doc != "reference";
            cases.push(case(
                who,
                Endpoint::Push,
                doc,
                if allowed { Verdict::Allow } else { Verdict::Deny(403, "forbidden") },
            ));
        }
        for (label, _) in GRIDS {
            // Reporting an incident, or starting a month of field work, in a grid: only in its own.
            let allowed = role.grids().contains(&label);
            let verdict = if allowed { Verdict::Allow } else { Verdict::Deny(403, "forbidden") };
            cases.push(case(who, Endpoint::Push, &format!("new incident:{label}:{i}"), verdict.clone()));
            cases.push(case(who, Endpoint::Push, &format!("new activity:{label}:{i}"), verdict));
        }
        for incident in PHOTOS {
            // Any enrolled device may ask about or upload any blob (named by its content) …
            cases.push(case(who, Endpoint::BlobStatus, incident, Verdict::Allow));
            cases.push(case(who, Endpoint::BlobUpload, incident, Verdict::Allow));
            // … but downloads only what a document it reads refers to.
            let download = if role.sees(incident) { Verdict::Allow } else { Verdict::Deny(403, "forbidden") };
            cases.push(case(who, Endpoint::BlobDownload, incident, download));
        }
        for grid in ["grid A", "grid B", "grid C"] {
            cases.push(case(who, Endpoint::PublicCard, grid, Verdict::Allow));
        }
        cases.push(case(who, Endpoint::PublicCard, "an unknown grid", Verdict::Deny(404, "not_found")));
        cases.push(case(who, Endpoint::Healthz, "-", Verdict::Allow));
    }
    for (who, code) in
        [(Who::UnknownToken, "unauthorized"), (Who::NoToken, "unauthorized"), (Who::RevokedDevice, "revoked")]
    {
        cases.push(case(who, Endpoint::Pull, "a first pull", Verdict::Deny(401, code)));
        cases.push(case(who, Endpoint::Push, "register/A", Verdict::Deny(401, code)));
        for endpoint in [Endpoint::BlobStatus, Endpoint::BlobUpload, Endpoint::BlobDownload] {
            cases.push(case(who, endpoint, "incident/A→X", Verdict::Deny(401, code)));
        }
        cases.push(case(who, Endpoint::PublicCard, "grid A", Verdict::Allow));
        cases.push(case(who, Endpoint::Healthz, "-", Verdict::Allow));
    }
    cases
}

/// The cases of tokens that must not get in: run by hand (they have no device).
async fn run_outsider(world: &World, case: &Case) -> Outcome {
    let token = match case.who {
        Who::UnknownToken => Some("0".repeat(64)),
        Who::RevokedDevice => Some(world.revoked_token.clone()),
        Who::NoToken => None,
        Who::Role(_) => unreachable!(),
    };
    let server = &world.server;
    let storage = server.service.storage();
    let seq_before = storage.max_seq().unwrap();
    let register = world.docs["register/A"].clone();
    let snapshot_before = storage.snapshot(&register).unwrap();
    let (path, body) = match case.endpoint {
        Endpoint::Pull => ("/v1/sync", wire::encode(&wire::SyncRequest::default())),
        Endpoint::Push => {
            // Changes as the revoked device's actor would make them (valid, in scope for it).
            let actor = world.revoked_actor.clone();
            let changes = changes_for(world, &register, &actor, &ROLES[1]);
            let request = wire::SyncRequest {
                pushes: vec![wire::DocChanges { doc: register.clone(), changes }],
                ..Default::default()
            };
            ("/v1/sync", wire::encode(&request))
        }
        Endpoint::BlobStatus => {
            let hash = world.photos["incident/A→X"].0.to_string();
            ("/v1/blobs/status", wire::encode(&wire::BlobStatusRequest { hash }))
        }
        Endpoint::BlobUpload => {
            let bytes = photo(99, 1000);
            let request = wire::BlobUploadRequest {
                hash: BlobHash::of(&bytes).to_string(),
                size: bytes.len() as u64,
                offset: 0,
                chunk: bytes.into(),
            };
            ("/v1/blobs/upload", wire::encode(&request))
        }
        Endpoint::BlobDownload => {
            let hash = world.photos["incident/A→X"].0.to_string();
            ("/v1/blobs/download", wire::encode(&wire::BlobDownloadRequest { hash, offset: 0, max: 0 }))
        }
        Endpoint::PublicCard | Endpoint::Healthz => return run(world, case).await,
        Endpoint::Enroll => unreachable!(),
    };
    let (status, body) = post(server, path, token.as_deref(), body).await;
    if storage.max_seq().unwrap() != seq_before || storage.snapshot(&register).unwrap() != snapshot_before {
        return Outcome::Wrong(format!("{status}, and something was stored"));
    }
    if case.endpoint == Endpoint::BlobUpload {
        let bytes = photo(99, 1000);
        if storage.blob(BlobHash::of(&bytes).as_str()).unwrap().is_some() {
            return Outcome::Wrong(format!("{status}, and the blob was stored"));
        }
    }
    if status == 200 {
        return Outcome::Wrong("200".into());
    }
    refusal(status, &body)
}

fn describe(world: &World, case: &Case) -> String {
    let who = match case.who {
        Who::Role(i) => ROLES[i].label.to_owned(),
        Who::UnknownToken => "an unknown token".into(),
        Who::RevokedDevice => "a revoked device".into(),
        Who::NoToken => "no token".into(),
    };
    let target = match world.docs.get(case.target.as_str()) {
        Some(id) if id != &case.target => format!("{} ({id})", case.target),
        _ => case.target.clone(),
    };
    format!("{who} × {:?} × {target}", case.endpoint)
}

/// Reports an incident in `grid` with one photo, as the capturing worker.
fn report(device: &TestDevice, grid: &GridCode, person: &str, item: &str, photo: &BlobHash) -> IncidentId {
    let me = Actor { person: person.into(), role: Role::FullTimeWorker, department: None };
    device.store.report_incident(report_naming(grid, item, photo), me).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_role_and_scope_is_exactly_allowed_or_denied_and_denials_carry_no_data() {
    let started = std::time::Instant::now();
    let server = TestServer::start().await;
    let grids: BTreeMap<&str, GridCode> = [
        ("A", server.grid(A, "长堤社区第1网格")),
        ("B", server.grid(B, "白沙社区第1网格")),
        ("C", server.grid(C, "外县社区第1网格")),
    ]
    .into_iter()
    .collect();

    // Each grid's data, captured by its full-time worker; incidents dispatched by a city center.
    let dispatcher = TestDevice::enrolled(
        &server,
        &server.worker_of_areas("dispatch", "center_staff_city", None, &["440703", "440704"]),
    )
    .await;
    let item = dispatcher.store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    let mut docs: BTreeMap<String, String> = BTreeMap::new();
    let mut photos = BTreeMap::new();
    let mut dispatches = Vec::new();
    let mut seed = 0;
    for (label, code) in GRIDS {
        let grid = &grids[label];
        let person = format!("cap-{label}");
        let capturer = TestDevice::enrolled(&server, &server.worker(&person, "full_time_worker", None, &[grid])).await;
        capturer.sync().await;
        let records = generate_grid(
            grid,
            &DemoOptions { households: 3, organizations: 1, components: 1, seed: seed + 1, ..Default::default() },
        );
        capturer.store.import(grid, &records).unwrap();
        let me = Actor { person: person.clone(), role: Role::FullTimeWorker, department: None };
        let visit = NewVisit {
            target: VisitTarget::Household(records.households[0].0),
            time_ms: NOV_3,
            location: None,
            purpose: VisitPurpose::Routine,
            findings: "家中无异常".into(),
            follow_up: None,
        };
        capturer.store.record_visit(grid, visit, &me).unwrap();
        capturer.store.check_in(grid, Wgs84::new(22.59, 113.08).unwrap(), NOV_3, &me).unwrap();
        let blobs = BlobStore::beside(&capturer.store, 64 << 20).unwrap();
        let labels: &[(&'static str, &str)] = match label {
            "A" => &[("incident/A→X", X), ("incident/A→Y", Y)],
            "B" => &[("incident/B→X", X)],
            _ => &[("incident/C→X", X)],
        };
        for (incident, department) in labels {
            seed += 1;
            let bytes = photo(seed, 5_000 + seed as usize);
            let hash = blobs.put(&bytes).unwrap();
            let id = report(&capturer, grid, &person, &item, &hash);
            docs.insert((*incident).to_owned(), format!("incident/{id}"));
            photos.insert(*incident, (hash, bytes));
            dispatches.push((id, *department));
        }
        capturer.sync().await;
        capturer.client.upload_pending_blobs(&capturer.store, &blobs).await.unwrap();
        assert_eq!(capturer.store.pending_changes().unwrap(), 0);
        docs.insert(format!("register/{label}"), format!("register/{code}"));
        docs.insert(format!("sensitive/{label}"), format!("sensitive/{code}"));
        docs.insert(
            format!("activity/{label}"),
            activity_doc::doc_id(grid, &activity_doc::month_of(NOV_3)).to_string(),
        );
    }
    docs.insert("reference".into(), "reference/city".into());
    dispatcher.sync().await;
    let staff =
        Actor { person: "dispatch".into(), role: Role::from_code("center_staff_city").unwrap(), department: None };
    for (id, department) in &dispatches {
        assert_eq!(dispatcher.store.act(*id, staff.clone(), ActionKind::Accept).unwrap(), Mark::Applied);
        let dispatch = ActionKind::Dispatch { lead: DepartmentCode::parse(department).unwrap(), co_handlers: vec![] };
        assert_eq!(dispatcher.store.act(*id, staff.clone(), dispatch).unwrap(), Mark::Applied);
    }
    dispatcher.sync().await;
    assert_eq!(dispatcher.store.pending_changes().unwrap(), 0);
    let storage = server.service.storage();
    for (label, id) in &docs {
        assert!(storage.snapshot(id).unwrap().is_some(), "{label} ({id}) is on the server");
    }
    // Sensitive values of every grid (the texts of the sensitive documents): never on a public page.
    let mut sensitive_values = Vec::new();
    for (_, code) in GRIDS {
        let doc = AutoCommit::load(&storage.snapshot(&format!("sensitive/{code}")).unwrap().unwrap()).unwrap();
        let (_, residents) = doc.get(automerge::ROOT, "residents").unwrap().unwrap();
        for key in doc.keys(&residents).collect::<Vec<_>>() {
            if let Some((automerge::Value::Scalar(value), _)) = doc.get(&residents, &key).unwrap()
                && let automerge::ScalarValue::Str(text) = value.as_ref()
                && text.chars().count() >= 8
            {
                sensitive_values.push(text.to_string());
            }
        }
    }
    assert!(!sensitive_values.is_empty(), "the sensitive documents hold data");

    // The matrix's devices, one per role; none has synced.
    let mut devices = Vec::new();
    for role in ROLES {
        let code = server.worker_of_areas(role.person, role.role, role.department, role.areas);
        devices.push(TestDevice::enrolled(&server, &code).await);
    }
    // A revoked device of grid A.
    let revoked =
        TestDevice::enrolled(&server, &server.worker("revoked-a", "full_time_worker", None, &[&grids["A"]])).await;
    let revoked_id = revoked
        .store
        .with_reader(|conn| {
            conn.query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |row| row.get::<_, String>(0))
        })
        .unwrap();
    assert!(server.service.revoke(&revoked_id).unwrap());

    // Every role's first pull, before any push of the matrix changes anything.
    let mut pulls = Vec::new();
    for device in &devices {
        let request = wire::SyncRequest { pull_budget: wire::MAX_PULL_BUDGET, ..Default::default() };
        let (status, body) = post(&server, "/v1/sync", Some(&token(device)), wire::encode(&request)).await;
        pulls.push(if status == 200 {
            wire::decode::<wire::SyncResponse>(&body).map_err(|error| error.to_string())
        } else {
            Err(format!("the first pull got {status}"))
        });
    }

    let cases = cases();
    // New documents: a fresh id per (grid, role) cell.
    for case in &cases {
        if case.target.starts_with("new incident:") {
            docs.insert(case.target.clone(), format!("incident/{}", IncidentId::new()));
        } else if let Some(rest) = case.target.strip_prefix("new activity:") {
            let code = GRIDS.iter().find(|(l, _)| *l == &rest[..1]).unwrap().1;
            let Who::Role(i) = case.who else { unreachable!() };
            docs.insert(case.target.clone(), format!("activity/{code}:{}-12", 2030 + i));
        }
    }
    let world = World {
        server,
        devices,
        docs,
        photos,
        pulls,
        revoked_token: token(&revoked),
        revoked_actor: actor_bytes(&revoked),
        catalog_item: item,
        sensitive_values,
    };

    let mut wrong = Vec::new();
    let mut counts: BTreeMap<Endpoint, usize> = BTreeMap::new();
    for case in &cases {
        *counts.entry(case.endpoint).or_default() += 1;
        let outcome = match case.who {
            Who::Role(_) => run(&world, case).await,
            _ => run_outsider(&world, case).await,
        };
        if !outcome.matches(&case.expected) {
            wrong.push(format!("{}: expected {:?}, got {:?}", describe(&world, case), case.expected, outcome));
        }
    }
    println!(
        "authorization matrix: {} roles (+3 outsider tokens) × {} endpoints: {} cases {counts:?}, {} wrong, in {:.1?}",
        ROLES.len(),
        counts.len(),
        cases.len(),
        wrong.len(),
        started.elapsed()
    );
    assert!(wrong.is_empty(), "{} of {} cells are wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}
