//! Bad input gets a clear refusal and stores nothing.

use wangge_core::Error;
use wangge_core::model::*;
use wangge_core::sync::wire::{self, DocChanges, SyncRequest};
use wangge_tests::{TestDevice, TestServer};

async fn post(server: &TestServer, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut request =
        reqwest::Client::new().post(format!("{}{path}", server.url)).header(wire::PROTOCOL_HEADER, "1").body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let code = wire::decode::<wire::ErrorBody>(&bytes).map(|error| error.code).unwrap_or_default();
    (status, code)
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_unknown_forbidden_and_revoked_requests_are_refused() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let part_time = TestDevice::enrolled(&server, &server.worker("p1", "part_time_worker", None, &[&grid])).await;
    let token = part_time.store.sync_token().unwrap().unwrap();

    assert_eq!(post(&server, "/v1/sync", Some(&token), b"garbage".to_vec()).await, (400, "malformed".into()));
    let body = wire::encode(&SyncRequest::default());
    assert_eq!(post(&server, "/v1/sync", Some("not-a-token"), body.clone()).await, (401, "unauthorized".into()));
    assert_eq!(post(&server, "/v1/sync", None, body.clone()).await, (401, "unauthorized".into()));
    assert_eq!(
        post(
            &server,
            "/v1/enroll",
            None,
            wire::encode(&wire::EnrollRequest {
                code: "no-such-code".into(),
                actor: vec![0; 16],
                device_name: "x".into(),
                app_version: "0".into(),
            })
        )
        .await,
        (404, "unknown_code".into())
    );
    // A code issued longer ago than its lifetime is refused like an unknown one.
    server
        .service
        .create_worker(&wangge_server::storage::Worker {
            person: "late".into(),
            role: "full_time_worker".into(),
            department: None,
            grids: vec![grid.as_str().to_owned()],
        })
        .unwrap();
    let issued_ms =
        chrono::Utc::now().timestamp_millis() - wangge_server::service::ENROLLMENT_CODE_LIFETIME_MS - 60_000;
    wangge_server::storage::Storage::create_enrollment_code(
        server.service.storage(),
        "late",
        &wangge_server::service::hash_secret("0123456789abcdef0123"),
        issued_ms,
    )
    .unwrap();
    let enroll_late = wire::encode(&wire::EnrollRequest {
        code: "0123456789abcdef0123".into(),
        actor: vec![7; 16],
        device_name: "x".into(),
        app_version: "0".into(),
    });
    assert_eq!(post(&server, "/v1/enroll", None, enroll_late).await, (404, "unknown_code".into()));

    // A part-time worker's device cannot write the sensitive document: 403, nothing stored.
    let other = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let building = other
        .store
        .add_building(
            &grid,
            NewBuilding {
                name: Label::parse("1栋").unwrap(),
                address: Address::parse("港口路1号").unwrap(),
                location: None,
                floors: None,
                units: None,
                usage: BuildingUse::Residential,
            },
        )
        .unwrap();
    let register = wangge_core::crdt::DocId::new(wangge_core::crdt::DocKind::Register, &grid);
    // Changes authored by another device are refused even inside the device's scopes.
    let foreign = other.store.changes_since(&register, &[]).unwrap();
    let push = SyncRequest {
        cursor: 0,
        pushes: vec![DocChanges { doc: register.to_string(), changes: foreign.into_iter().map(Into::into).collect() }],
        pull_budget: 0,
        received: vec![],
        reset: vec![],
        status: None,
        generations: None,
    };
    assert_eq!(post(&server, "/v1/sync", Some(&token), wire::encode(&push)).await, (403, "forbidden".into()));
    part_time.sync().await;
    assert!(part_time.store.building(building).is_err(), "nothing of the refused push was stored");

    // A revoked device is told so on its next contact.
    let device_id = part_time
        .store
        .with_reader(|conn| {
            conn.query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |row| row.get::<_, String>(0))
        })
        .unwrap();
    assert!(server.service.revoke(&device_id).unwrap());
    let error = part_time.client.sync(&part_time.store, None).await.unwrap_err();
    assert!(matches!(error, Error::Revoked), "{error}");
    assert!(part_time.store.sync_status().unwrap().last_error.is_some());
}
