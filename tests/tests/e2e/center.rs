//! The centers' API on a real server: the queue, the center's actions reaching devices
//! through sync, deadlines by the center's clock, jurisdiction, refusals with the rules'
//! reasons, statistics and analysis on a known set, and the OpenAPI document.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};
use wangge_core::activity::{NewVisit, VisitPurpose, VisitTarget};
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::incident::roles::{CenterLevel, DepartmentCode, Role};
use wangge_core::incident::{ActionKind, Actor, Mark, Phase};
use wangge_core::model::{GridCode, HouseholdId, Wgs84};
use wangge_core::{IncidentFilter, NewIncident};
use wangge_tests::{TestDevice, TestServer};

const JIANGMEN: &str = include_str!("../../../core/src/place/testdata/jiangmen.geojson");
/// Two grids of township 440703001 (in the boundary fixture) and one of township 440703002.
const G1: &str = "440703001001001";
const G2: &str = "440703001001002";
const G3: &str = "440703002001001";

/// A China time, `YYYY-MM-DD HH:MM`, in ms since 1970.
fn china(text: &str) -> i64 {
    chrono::DateTime::parse_from_str(&format!("{text} +0800"), "%Y-%m-%d %H:%M %z").unwrap().timestamp_millis()
}

/// `x` metres east and `y` north of the boundary fixture's corner.
fn at(x: f64, y: f64) -> Wgs84 {
    let metres_per_degree = 6_371_008.8 * std::f64::consts::PI / 180.0;
    Wgs84::new(22.58 + y / metres_per_degree, 113.08 + x / (metres_per_degree * 22.58_f64.to_radians().cos())).unwrap()
}

fn worker(person: &str) -> Actor {
    Actor { person: person.into(), role: Role::FullTimeWorker, department: None }
}

fn handler(person: &str, department: &str) -> Actor {
    Actor {
        person: person.into(),
        role: Role::DepartmentHandler,
        department: Some(DepartmentCode::parse(department).unwrap()),
    }
}

/// A center staff member's client of the API, with a center token.
struct Console {
    url: String,
    token: String,
    client: reqwest::Client,
}

impl Console {
    fn new(server: &TestServer, token: String) -> Console {
        Console { url: server.url.clone(), token, client: reqwest::Client::new() }
    }

    /// A center staff member of `areas`, with a token issued for them.
    fn staff(server: &TestServer, person: &str, level: &str, areas: &[&str]) -> Console {
        server.worker_of_areas(person, &format!("center_staff_{level}"), None, areas);
        Console::new(server, server.service.issue_center_token(person).unwrap().token)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        answer(self.client.get(format!("{}{path}", self.url)).bearer_auth(&self.token)).await
    }

    async fn act(&self, incident: &str, action: Value) -> (u16, Value) {
        let url = format!("{}/v1/center/incidents/{incident}/actions", self.url);
        answer(with_json(self.client.post(url), &action).bearer_auth(&self.token)).await
    }

    /// The queue's incident ids for a query string.
    async fn queue(&self, query: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/v1/center/incidents?{query}")).await;
        assert_eq!(status, 200, "{body}");
        body["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|incident| incident["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn with_json(request: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
    request.header("content-type", "application/json").body(serde_json::to_vec(body).unwrap())
}

/// The status and the JSON body (every answer of the API is JSON).
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap())
}

/// A settable clock for the center's API.
fn clock(server: &TestServer, start: i64) -> Arc<AtomicI64> {
    let now = Arc::new(AtomicI64::new(start));
    let read = Arc::clone(&now);
    server.service.set_center_clock(move || read.load(Ordering::SeqCst));
    now
}

fn report(grid: &GridCode, item: &str, title: &str) -> NewIncident {
    NewIncident {
        grid: grid.clone(),
        catalog_item: item.into(),
        title: title.into(),
        description: String::new(),
        location: None,
        residents: vec![],
        households: vec![],
        organizations: vec![],
        photos: vec![],
        reported_by_resident: None,
    }
}

fn grids(server: &TestServer) -> (GridCode, GridCode, GridCode) {
    assert!(server.service.import_boundaries(JIANGMEN, false).unwrap().written);
    let g3 = server.grid(G3, "白沙第1网格");
    (GridCode::parse_default(G1).unwrap(), GridCode::parse_default(G2).unwrap(), g3)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_center_accepts_dispatches_verifies_and_archives_through_the_api_and_devices_follow() {
    let server = TestServer::start().await;
    let (g1, _, g3) = grids(&server);
    let now = clock(&server, china("2025-11-03 10:00"));
    let w1 = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&g1])).await;
    let w3 = TestDevice::enrolled(&server, &server.worker("w3", "full_time_worker", None, &[&g3])).await;
    let justice =
        TestDevice::enrolled(&server, &server.worker("h-justice", "department_handler", Some("justice"), &[])).await;
    let town = Console::staff(&server, "c-town", "township", &["440703001"]);
    let other_town = Console::staff(&server, "c-other", "township", &["440703002"]);

    let first = w1
        .store
        .report_incident_at(report(&g1, "MD-001", "邻里噪音纠纷"), worker("w1"), china("2025-11-03 09:00"))
        .unwrap();
    let second = w1
        .store
        .report_incident_at(report(&g1, "SS-001", "井盖缺失"), worker("w1"), china("2025-11-03 09:30"))
        .unwrap();
    let elsewhere =
        w3.store.report_incident_at(report(&g3, "MD-001", "噪音"), worker("w3"), china("2025-11-03 09:10")).unwrap();
    w1.sync().await;
    w3.sync().await;
    let (first, second, elsewhere) = (first.to_string(), second.to_string(), elsewhere.to_string());

    // The queue's new ones, newest first, with what a center needs to see.
    assert_eq!(town.queue("phase=reported").await, [second.as_str(), first.as_str()]);
    let (status, page) = town.get("/v1/center/incidents?phase=reported&limit=1").await;
    assert_eq!((status, page["total"].as_u64()), (200, Some(2)));
    let line = &page["incidents"][0];
    assert_eq!(line["grid"], G1);
    assert_eq!(line["title"], "井盖缺失");
    assert_eq!(line["class"], "public_facility");
    assert_eq!(line["phase"], "reported");
    assert_eq!(line["reported_at"], "2025-11-03T09:30:00+08:00");
    assert_eq!(line["deadline"], Value::Null);
    assert_eq!(other_town.queue("").await, [elsewhere.as_str()]);

    // Another township's staff neither sees nor acts on them, and learns nothing of them.
    for (status, body) in [
        other_town.get(&format!("/v1/center/incidents/{first}")).await,
        other_town.act(&first, json!({"kind": "accept"})).await,
    ] {
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
        assert!(!body.to_string().contains("噪音"), "{body}");
    }
    let (status, body) = other_town.get(&format!("/v1/center/incidents?grid={G1}")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{body}");

    // Accept and dispatch to the catalog's lead department, through the API.
    let (status, body) = town.act(&first, json!({"kind": "accept"})).await;
    assert_eq!((status, body["incident"]["phase"].as_str()), (200, Some("accepted")), "{body}");
    let (status, body) = town.act(&first, json!({"kind": "dispatch", "departments": ["justice"]})).await;
    assert_eq!((status, body["incident"]["phase"].as_str()), (200, Some("dispatched")), "{body}");
    assert_eq!(body["incident"]["lead_department"], "justice");
    // Five working days from Monday 3 November 2025: due at the end of Monday the 10th.
    assert_eq!(body["incident"]["deadline"]["due_at"], "2025-11-10T23:59:59+08:00");
    assert_eq!(body["clocks"][0]["department"], "justice");
    let timeline = body["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 3);
    assert_eq!(timeline[2]["action"]["actor"], json!({"person": "c-town", "role": "center_staff_township"}));
    assert_eq!(timeline[2]["action"]["device_time_ms"], china("2025-11-03 10:00"));

    // Actions the rules do not allow are refused with their reason, and nothing is stored.
    let (status, body) = town.act(&first, json!({"kind": "archive"})).await;
    assert_eq!((status, body["code"].as_str(), body["phase"].as_str()), (409, Some("wrong_phase"), Some("dispatched")));
    assert!(body["message"].as_str().unwrap().starts_with("archive refused: the incident was 处置中"), "{body}");
    let escalate = json!({"kind": "escalate", "leader": "x", "person": "y", "deadline": "2025-11-30"});
    let (status, body) = town.act(&first, escalate).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("role_not_allowed")), "{body}");
    let (status, body) = town.act(&first, json!({"kind": "dispatch", "departments": ["no_such_office"]})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("malformed")), "{body}");
    let (status, body) = town.act(&second, json!({"kind": "complete", "note": "done"})).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("role_not_allowed")), "{body}");
    let (_, body) = town.get(&format!("/v1/center/incidents/{first}")).await;
    assert_eq!(body["timeline"].as_array().unwrap().len(), 3, "refusals leave the timeline as it was");

    // The department's device receives it with its next sync, and handles it.
    justice.sync().await;
    let id = first.parse().unwrap();
    let held = justice.store.incident(id, chrono::Utc::now().fixed_offset()).unwrap();
    assert_eq!(held.phase, Phase::Dispatched);
    let complete = ActionKind::Complete { feedback: "已调解".into(), evidence: vec![] };
    let done = justice.store.act_at(id, handler("h-justice", "justice"), complete, china("2025-11-05 15:00")).unwrap();
    assert_eq!(done, Mark::Applied);
    justice.sync().await;

    // The center verifies and archives.
    now.store(china("2025-11-06 10:00"), Ordering::SeqCst);
    assert_eq!(town.queue("phase=completed").await, [first.as_str()]);
    let (status, body) = town.act(&first, json!({"kind": "verify", "verdict": "pass", "note": "回访满意"})).await;
    assert_eq!((status, body["incident"]["phase"].as_str()), (200, Some("verified")), "{body}");
    let (status, body) = town.act(&first, json!({"kind": "archive"})).await;
    assert_eq!((status, body["incident"]["phase"].as_str()), (200, Some("archived")), "{body}");
    assert_eq!(body["incident"]["deadline"]["overdue"], false);
    assert_eq!(body["clocks"][0]["stop"], "completed");

    // The reporter's device shows the final state, every step with its author.
    w1.sync().await;
    let summary = w1.store.incident(id, chrono::Utc::now().fixed_offset()).unwrap();
    assert_eq!(summary.phase, Phase::Archived);
    let authors: Vec<(String, Role)> = w1
        .store
        .incident_timeline(id)
        .unwrap()
        .into_iter()
        .map(|entry| {
            let action = entry.action.unwrap();
            (action.actor.person, action.actor.role)
        })
        .collect();
    let township = Role::CenterStaff(CenterLevel::Township);
    let expected = [
        ("w1", Role::FullTimeWorker),
        ("c-town", township),
        ("c-town", township),
        ("h-justice", Role::DepartmentHandler),
        ("c-town", township),
        ("c-town", township),
    ];
    assert_eq!(authors, expected.map(|(person, role)| (person.to_owned(), role)));
    assert!(w1.store.incidents(&IncidentFilter::default(), chrono::Utc::now().fixed_offset()).unwrap().len() == 2);

    // The archive knows who: the console and its person; and the log verifies.
    let check = server.service.verify_log().unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    let trail = server
        .service
        .audit_trail(&wangge_server::service::AuditFilter::Record { grid: G1.into(), id: first.clone() })
        .unwrap();
    let consoles: Vec<&str> =
        trail.iter().filter(|line| line.device.starts_with("console-")).map(|line| line.person.as_str()).collect();
    assert_eq!(consoles, ["c-town"; 4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_center_token_is_for_the_api_only_and_a_device_token_is_refused_there() {
    let server = TestServer::start().await;
    let (g1, _, _) = grids(&server);
    let center_device =
        TestDevice::enrolled(&server, &server.worker_of_areas("c1", "center_staff_county", None, &["440703"])).await;
    let device_token = center_device.store.sync_token().unwrap().unwrap();
    let refused = Console::new(&server, device_token);
    let (status, body) = refused.get("/v1/center/incidents").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("center-token"), "{body}");
    let (status, body) = Console::new(&server, "no such token".into()).get("/v1/center/incidents").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{body}");

    let issued = server.service.issue_center_token("c1").unwrap();
    assert!(issued.device.starts_with("console-"));
    let request = wangge_core::sync::wire::SyncRequest::default();
    assert_eq!(server.post_sync(&issued.token, &request).await.status().as_u16(), 403);
    let console = Console::new(&server, issued.token);
    assert_eq!(console.get("/v1/center/incidents").await.0, 200);
    // A worker who is not center staff gets no token; a revoked one stops working.
    server.worker("w1", "full_time_worker", None, &[&g1]);
    assert!(server.service.issue_center_token("w1").is_err());
    assert!(server.service.revoke(&issued.device).unwrap());
    let (status, body) = console.get("/v1/center/incidents").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("revoked")), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn due_soon_and_overdue_follow_the_center_clock_and_the_working_day_calendar() {
    let server = TestServer::start().await;
    let (g1, _, _) = grids(&server);
    let now = clock(&server, china("2025-11-03 10:00"));
    let w1 = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&g1])).await;
    let county = Console::staff(&server, "c-county", "county", &["440703"]);
    let id = w1
        .store
        .report_incident_at(report(&g1, "SS-001", "井盖缺失"), worker("w1"), china("2025-11-03 09:00"))
        .unwrap();
    w1.sync().await;
    let id = id.to_string();
    county.act(&id, json!({"kind": "accept"})).await;
    let (status, _) = county.act(&id, json!({"kind": "dispatch", "departments": ["urban_management"]})).await;
    assert_eq!(status, 200);

    // Due at the end of Monday 10 November: two working days left on Thursday, one on Friday.
    now.store(china("2025-11-06 10:00"), Ordering::SeqCst);
    assert!(county.queue("due=soon").await.is_empty());
    now.store(china("2025-11-07 10:00"), Ordering::SeqCst);
    assert_eq!(county.queue("due=soon").await, [id.as_str()]);
    assert!(county.queue("due=overdue").await.is_empty());
    now.store(china("2025-11-10 10:00"), Ordering::SeqCst);
    let (_, page) = county.get("/v1/center/incidents?due=soon").await;
    assert_eq!(page["incidents"][0]["deadline"]["working_days_left"], 0);
    now.store(china("2025-11-11 10:00"), Ordering::SeqCst);
    assert!(county.queue("due=soon").await.is_empty());
    assert_eq!(county.queue("due=overdue&department=urban_management").await, [id.as_str()]);
    assert!(county.queue("due=overdue&department=justice").await.is_empty());
    let (_, stats) = county.get("/v1/center/stats?by=department").await;
    assert_eq!(stats["groups"][0]["key"], "urban_management");
    assert_eq!(stats["groups"][0]["n_overdue_open"], 1);

    // Urged, as overdue work is.
    let (status, body) = county.act(&id, json!({"kind": "urge", "note": "请加快处置"})).await;
    assert_eq!((status, body["incident"]["n_urged"].as_u64()), (200, Some(1)), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn statistics_and_analysis_count_a_known_set() {
    let server = TestServer::start().await;
    let (g1, g2, g3) = grids(&server);
    let now = clock(&server, china("2025-11-03 10:00"));
    let w1 = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&g1])).await;
    let w2 = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&g2])).await;
    let w3 = TestDevice::enrolled(&server, &server.worker("w3", "full_time_worker", None, &[&g3])).await;
    let justice =
        TestDevice::enrolled(&server, &server.worker("h-justice", "department_handler", Some("justice"), &[])).await;
    let town = Console::staff(&server, "c-town", "township", &["440703001"]);
    let other_town = Console::staff(&server, "c-other", "township", &["440703002"]);
    w1.sync().await;
    let records =
        generate_grid(&g1, &DemoOptions { households: 5, organizations: 1, components: 1, ..Default::default() });
    w1.store.import(&g1, &records).unwrap();
    let household: HouseholdId = records.households[0].0;

    // Five in township 440703001 and one elsewhere:
    // a, b: the same dispute about one household, 10 m and 10 days apart;
    // c, d: a facility at one place, 20 m and 14 days apart (c resolved on the spot);
    // e: a dispute in the other grid, without a location; f: another township's.
    let with = |mut incident: NewIncident, location: Option<Wgs84>, households: Vec<HouseholdId>| {
        incident.location = location;
        incident.households = households;
        incident
    };
    let me = worker("w1");
    let a = w1
        .store
        .report_incident_at(
            with(report(&g1, "MD-001", "噪音"), Some(at(100.0, 500.0)), vec![household]),
            me.clone(),
            china("2025-10-06 09:00"),
        )
        .unwrap();
    let b = w1
        .store
        .report_incident_at(
            with(report(&g1, "MD-001", "噪音"), Some(at(110.0, 500.0)), vec![household]),
            me.clone(),
            china("2025-10-16 09:00"),
        )
        .unwrap();
    let c = w1
        .store
        .report_incident_at(
            with(report(&g1, "SS-001", "井盖"), Some(at(300.0, 1_100.0)), vec![]),
            me.clone(),
            china("2025-10-20 09:00"),
        )
        .unwrap();
    let evidence = vec![format!("sha256:{}", "ab".repeat(32))];
    let resolve = ActionKind::ResolveOnSpot { note: "已盖好".into(), evidence };
    assert_eq!(w1.store.act_at(c, me.clone(), resolve, china("2025-10-20 09:30")).unwrap(), Mark::Applied);
    let d = w1
        .store
        .report_incident_at(
            with(report(&g1, "SS-001", "井盖"), Some(at(300.0, 1_120.0)), vec![]),
            me.clone(),
            china("2025-11-03 09:00"),
        )
        .unwrap();
    let visit = NewVisit {
        target: VisitTarget::Household(household),
        time_ms: china("2025-10-15 10:00"),
        location: Some(at(100.0, 500.0)),
        purpose: VisitPurpose::Mediation,
        findings: "调解邻里纠纷".into(),
        follow_up: None,
    };
    w1.store.record_visit(&g1, visit, &me).unwrap();
    w1.store.check_in(&g1, at(100.0, 500.0), china("2025-10-15 09:00"), &me).unwrap();
    w1.sync().await;
    let e =
        w2.store.report_incident_at(report(&g2, "MD-001", "纠纷"), worker("w2"), china("2025-11-04 09:00")).unwrap();
    w2.sync().await;
    let f =
        w3.store.report_incident_at(report(&g3, "MD-001", "纠纷"), worker("w3"), china("2025-11-04 09:00")).unwrap();
    w3.sync().await;
    let [a, b, c, d, e, f] = [a, b, c, d, e, f].map(|id| id.to_string());

    // a is dispatched on Monday 3 November and completed on time; b is dispatched, open.
    for id in [&a, &b] {
        town.act(id, json!({"kind": "accept"})).await;
        let (status, body) = town.act(id, json!({"kind": "dispatch", "departments": ["justice"]})).await;
        assert_eq!(status, 200, "{body}");
    }
    justice.sync().await;
    let complete = ActionKind::Complete { feedback: "已调解".into(), evidence: vec![] };
    justice
        .store
        .act_at(a.parse().unwrap(), handler("h-justice", "justice"), complete, china("2025-11-05 15:00"))
        .unwrap();
    justice.sync().await;
    now.store(china("2025-11-06 10:00"), Ordering::SeqCst);

    let (status, stats) = town.get("/v1/center/stats?by=class").await;
    assert_eq!(status, 200, "{stats}");
    let groups: Vec<(String, u64)> = stats["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| (group["key"].as_str().unwrap().to_owned(), group["total"].as_u64().unwrap()))
        .collect();
    assert_eq!(groups, [("dispute".to_owned(), 3), ("public_facility".to_owned(), 2)]);
    let total = &stats["total"];
    assert_eq!(total["total"], 5);
    assert_eq!(total["n_resolved_on_spot"], 1);
    assert_eq!(total["on_the_spot_rate"], 0.2);
    assert_eq!((total["n_completed"].as_u64(), total["on_time_rate"].as_f64()), (Some(1), Some(1.0)));
    assert_eq!(total["by_phase"], json!({"completed": 1, "dispatched": 1, "reported": 2, "resolved_on_spot": 1}));
    let keys = |stats: &Value| -> Vec<(String, u64)> {
        stats["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|group| (group["key"].as_str().unwrap().to_owned(), group["total"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(keys(&town.get("/v1/center/stats?by=grid").await.1), [(G1.to_owned(), 4), (G2.to_owned(), 1)]);
    assert_eq!(
        keys(&town.get("/v1/center/stats?by=month").await.1),
        [("2025-10".to_owned(), 3), ("2025-11".to_owned(), 2)]
    );
    assert_eq!(
        keys(&town.get("/v1/center/stats?by=department").await.1),
        [("justice".to_owned(), 2), ("none".to_owned(), 3)]
    );
    let (_, october) = town.get("/v1/center/stats?from=2025-10-01&to=2025-10-31&class=dispute").await;
    assert_eq!(october["total"]["total"], 2);
    let (_, elsewhere) = other_town.get("/v1/center/stats").await;
    assert_eq!(elsewhere["total"]["total"], 1, "another township counts only its own");

    // Hot spots: by grid, and by 200 m cells (d and c's place, a and b's).
    let (_, spots) = town.get("/v1/center/analysis/hotspots").await;
    let by_grid: Vec<(&str, u64)> = spots["hotspots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|spot| (spot["grid"].as_str().unwrap(), spot["n_incidents"].as_u64().unwrap()))
        .collect();
    assert_eq!(by_grid, [(G1, 4), (G2, 1)]);
    let (status, cells) = town.get("/v1/center/analysis/hotspots?by=cell&cell_m=200").await;
    assert_eq!(status, 200, "{cells}");
    let cells: Vec<Vec<String>> = cells["hotspots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|spot| {
            let mut ids: Vec<String> =
                spot["incidents"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned()).collect();
            ids.sort();
            ids
        })
        .collect();
    let pair = |x: &str, y: &str| {
        let mut ids = vec![x.to_owned(), y.to_owned()];
        ids.sort();
        ids
    };
    assert_eq!(cells.len(), 2, "{cells:?}");
    assert!(cells.contains(&pair(&a, &b)) && cells.contains(&pair(&c, &d)), "{cells:?}");

    // Repeats: a and b about the same household and at the same place; c and d at one place.
    let (_, found) = town.get("/v1/center/analysis/repeats?days=30&radius_m=50").await;
    let mut repeats: Vec<(String, Vec<String>)> = found["repeats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|repeat| {
            let ids = repeat["incidents"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned());
            (repeat["link"].as_str().unwrap().to_owned(), ids.collect())
        })
        .collect();
    repeats.sort();
    assert_eq!(
        repeats,
        [
            ("same_household".to_owned(), vec![a.clone(), b.clone()]),
            ("same_place".to_owned(), vec![a.clone(), b.clone()]),
            ("same_place".to_owned(), vec![c.clone(), d.clone()]),
        ]
    );
    let (_, tight) = town.get("/v1/center/analysis/repeats?days=7&radius_m=50").await;
    assert_eq!(tight["repeats"], json!([]));
    assert!(!found.to_string().contains(&e) && !found.to_string().contains(&f));

    // The worker's October: three reported (one on the spot, one completed on time), a
    // visit, a day with a check-in inside the grid.
    let (status, month) = town.get("/v1/center/workers/w1/month/2025-10").await;
    assert_eq!(status, 200, "{month}");
    assert_eq!(month["n_incidents_reported"], 3);
    assert_eq!(month["n_resolved_on_spot"], 1);
    assert_eq!((month["n_completed"].as_u64(), month["n_completed_on_time"].as_u64()), (Some(1), Some(1)));
    assert_eq!(month["n_visits"], 1);
    assert_eq!((month["n_check_in_days"].as_u64(), month["n_check_ins_outside"].as_u64()), (Some(1), Some(0)));
    assert!(month["coverage"].as_f64().unwrap() > 0.0, "{month}");
    let (status, body) = other_town.get("/v1/center/workers/w1/month/2025-10").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, _) = town.get("/v1/center/workers/w1/month/2025-13").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_well_formed_and_every_operation_in_it_answers() {
    let server = TestServer::start().await;
    let (g1, _, _) = grids(&server);
    let w1 = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&g1])).await;
    let county = Console::staff(&server, "c-county", "county", &["440703"]);
    let id = w1
        .store
        .report_incident_at(report(&g1, "SS-001", "井盖缺失"), worker("w1"), china("2025-11-03 09:00"))
        .unwrap();
    w1.sync().await;

    let (status, document) = answer(reqwest::Client::new().get(format!("{}/openapi.json", server.url))).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    check_references(&document, &document);
    let paths = document["paths"].as_object().unwrap();
    let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "/openapi.json",
            "/v1/center/analysis/hotspots",
            "/v1/center/analysis/repeats",
            "/v1/center/incidents",
            "/v1/center/incidents/{id}",
            "/v1/center/incidents/{id}/actions",
            "/v1/center/stats",
            "/v1/center/workers/{person}/month/{month}",
        ],
        "every route of center_http.rs, and nothing else"
    );
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            assert!(operation_ids.insert(operation["operationId"].as_str().unwrap().to_owned()), "{path}");
            assert!(operation["responses"]["200"].is_object(), "{method} {path}");
            // Every path parameter is declared.
            let declared: Vec<String> = operation["parameters"]
                .as_array()
                .map(|parameters| {
                    parameters
                        .iter()
                        .map(|parameter| resolve(&document, parameter)["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            for name in path.split('{').skip(1).map(|rest| rest.split('}').next().unwrap()) {
                assert!(declared.iter().any(|declared| declared == name), "{method} {path}: {name} undeclared");
            }
            let url = format!(
                "{}{}",
                server.url,
                path.replace("{id}", &id.to_string()).replace("{person}", "w1").replace("{month}", "2025-11")
            );
            let request = match method.as_str() {
                "get" => county.client.get(url),
                "post" => with_json(county.client.post(url), &json!({"kind": "accept"})),
                other => panic!("{other} {path}"),
            };
            let (status, body) = answer(request.bearer_auth(&county.token)).await;
            assert_eq!(status, 200, "{method} {path}: {body}");
        }
    }
}

/// A `$ref` resolved within the document (others are returned as they are).
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => document.pointer(reference.trim_start_matches('#')).unwrap_or(&Value::Null),
        None => value,
    }
}

/// Every `$ref` points into the document.
#[track_caller]
fn check_references(document: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("external reference {reference}"));
                assert!(document.pointer(pointer).is_some(), "{reference} does not resolve");
            }
            map.values().for_each(|value| check_references(document, value));
        }
        Value::Array(items) => items.iter().for_each(|value| check_references(document, value)),
        _ => {}
    }
}
