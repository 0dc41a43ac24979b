//! Tokens expire and a device enrolls again without losing its edits; a device that
//! sends too many requests is slowed down, others are not, and its client waits and retries.

use std::num::NonZeroU32;
use std::time::Duration;

use wangge_core::Error;
use wangge_core::model::*;
use wangge_core::sync::http::SyncClient;
use wangge_core::sync::wire::{self, SyncRequest};
use wangge_server::service::AccessPolicy;
use wangge_tests::{TestDevice, TestServer};

fn resident(name: &str) -> NewResident {
    NewResident {
        household: None,
        name: PersonName::parse(name).unwrap(),
        id_number: None,
        phone: None,
        gender: None,
        birth_date: None,
        relation: Relation::Head,
        residence_type: ResidenceType::Registered,
        tags: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refused_and_the_device_enrolls_again_with_its_edits() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let device = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let colleague = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&grid])).await;
    device.sync().await;
    let device_id = device.store.device_id().unwrap().unwrap();
    let old_token = device.store.sync_token().unwrap().unwrap();

    // Half a year without a sync: the server's clock passes the token's expiry.
    let db = rusqlite::Connection::open(server.database_path()).unwrap();
    let seen: i64 =
        db.query_row("SELECT token_expires_ms FROM devices WHERE id = ?1", [&device_id], |row| row.get(0)).unwrap();
    assert!(seen > chrono::Utc::now().timestamp_millis() + 179 * 86_400_000, "half a year ahead: {seen}");
    db.execute("UPDATE devices SET token_expires_ms = 1 WHERE id = ?1", [&device_id]).unwrap();

    let added = device.store.add_resident(&grid, resident("甲乙")).unwrap();
    let refused = device.client.sync(&device.store, None).await.unwrap_err();
    assert!(matches!(&refused, Error::Refused { status: 401, code, .. } if code == "token_expired"), "{refused:?}");
    assert!(refused.to_string().contains("enroll it again"), "{refused}");
    assert_eq!(device.store.pending_changes().unwrap(), 1, "the edit waits on the device");
    assert!(device.store.resident(added).is_ok());

    // A new code from the operator: the same device, a new token, and the edit goes up.
    let code = server.service.issue_enrollment_code("w1").unwrap();
    let enrolled = device.client.enroll(&device.store, &code, "test device").await.unwrap();
    assert_eq!(enrolled.device_id, device_id, "the same device, so its history stays its own");
    assert_ne!(device.store.sync_token().unwrap().unwrap(), old_token);
    device.sync().await;
    assert_eq!(device.store.pending_changes().unwrap(), 0);
    colleague.sync().await;
    assert!(colleague.store.resident(added).is_ok(), "the edit reached a colleague");

    // The old token stays dead.
    let response = server.post_sync(&old_token, &SyncRequest::default()).await;
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_past_its_rate_gets_429_others_do_not_and_its_client_retries() {
    let policy = AccessPolicy {
        requests_per_second: NonZeroU32::new(2).unwrap(),
        burst: NonZeroU32::new(3).unwrap(),
        ..AccessPolicy::default()
    };
    let server = TestServer::start_with(policy).await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let busy = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let calm = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&grid])).await;
    let token = busy.store.sync_token().unwrap().unwrap();

    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let response = server.post_sync(&token, &SyncRequest::default()).await;
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
            let body = response.bytes().await.unwrap();
            assert_eq!(wire::decode::<wire::ErrorBody>(&body).unwrap().code, "rate_limited");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(retry_after.as_deref(), Some("1"));
    calm.sync().await;

    // The device's own client takes 429 as "later" and backs off until it is let through.
    let patient = SyncClient::new(&server.url).unwrap().with_retries(6, Duration::from_millis(100));
    busy.store.add_resident(&grid, resident("丙丁")).unwrap();
    patient.sync(&busy.store, None).await.unwrap();
    assert_eq!(busy.store.pending_changes().unwrap(), 0);
}
