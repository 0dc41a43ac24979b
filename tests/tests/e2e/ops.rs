//! What an operator's monitoring sees: `/readyz` once the storage answers, and `/metrics`
//! (on the admin listener only) counting requests, refusals, bytes and devices as they
//! happen.

use wangge_core::sync::wire::SyncRequest;
use wangge_tests::{TestDevice, TestServer};

async fn get(url: &str, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{url}{path}")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The value of one sample line (`name{labels} value`), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_and_metrics_follow_the_traffic() {
    let server = TestServer::start().await;
    assert_eq!(get(&server.url, "/readyz").await, (200, "ready".into()));
    assert_eq!(get(&server.admin_url, "/readyz").await, (200, "ready".into()));
    assert_eq!(get(&server.url, "/metrics").await.0, 404, "not on the public side");
    assert_eq!(get(&server.url, "/status").await.0, 404);
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let w1 = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let _w2 = TestDevice::enrolled(&server, &server.worker("w2", "part_time_worker", None, &[&grid])).await;
    let (_, before) = get(&server.admin_url, "/metrics").await;
    w1.sync().await;
    w1.sync().await;
    assert_eq!(server.post_sync("not-a-token", &SyncRequest::default()).await.status().as_u16(), 401);
    let revoked = server.service.revoke(&w1.store.device_id().unwrap().unwrap()).unwrap();
    assert!(revoked);

    let (status, text) = get(&server.admin_url, "/metrics").await;
    assert_eq!(status, 200);
    let grew = |series: &str| sample(&text, series) - sample(&before, series);
    assert_eq!(grew(r#"wangge_requests_total{route="/v1/sync",status="200"}"#), 2.0, "{text}");
    assert_eq!(grew(r#"wangge_requests_total{route="/v1/sync",status="401"}"#), 1.0);
    assert_eq!(grew(r#"wangge_refusals_total{code="unauthorized"}"#), 1.0);
    assert_eq!(sample(&text, r#"wangge_requests_total{route="/v1/enroll",status="200"}"#), 2.0);
    assert!(grew(r#"wangge_http_bytes_total{route="/v1/sync",direction="out"}"#) > 1000.0, "the grid went down");
    assert_eq!(grew(r#"wangge_request_duration_seconds_count{route="/v1/sync"}"#), 3.0);
    assert_eq!(sample(&text, r#"wangge_devices{state="enrolled"}"#), 1.0, "one left after the revocation");
    assert_eq!(sample(&text, r#"wangge_devices{state="active_24h"}"#), 1.0, "w2 enrolled today; w1 is revoked");
    assert_eq!(sample(&text, r#"wangge_devices{state="revoked"}"#), 1.0);
    assert!(sample(&text, "wangge_logged_changes") >= 1.0);
    assert!(text.contains("wangge_incidents{due=\"overdue\"} 0") && text.contains("wangge_incidents{due=\"soon\"} 0"));
}
