//! No personal data in any log line of the whole end-to-end suite: the suite's binary runs
//! again as a child process with the server's log on (`WANGGE_LOG=debug`) and nothing
//! captured, and all it printed — the servers' request log, refusals and errors, the
//! devices' side and the tests' own output — is scanned for ID numbers and mobile numbers.
//! The suite itself puts both into the servers (residents with ID numbers and phones).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use wangge_core::model::{id_number_shapes, mobile_shapes};

/// The end-to-end suite's test binary, as this cargo builds it now (built already when the
/// whole package is tested; `--no-run` then only names it).
fn e2e_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["test", "-p", "wangge-tests", "--test", "e2e", "--no-run", "--message-format=json"])
        .output()
        .unwrap();
    assert!(built.status.success(), "building the suite failed:\n{}", String::from_utf8_lossy(&built.stderr));
    String::from_utf8_lossy(&built.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == "e2e")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo named the e2e test binary")
}

#[test]
fn the_end_to_end_suite_logs_no_id_number_and_no_phone() {
    let output = Command::new(e2e_binary())
        .args(["--nocapture", "--test-threads", "2"])
        .env(wangge_server::logging::LEVEL_VAR, "debug")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the suite failed:\n{text}");
    // The log was on, and carried the traffic of the whole suite (refusals included).
    let requests = text.lines().filter(|line| line.contains("route=\"/v1/sync\"")).count();
    assert!(requests > 300, "{requests} sync requests logged:\n{text}");
    assert!(text.contains("rate_limited") && text.contains("token_expired") && text.contains("forbidden"));
    assert_eq!(id_number_shapes(&text), Vec::<&str>::new());
    assert_eq!(mobile_shapes(&text), Vec::<&str>::new());
}
