//! No personal data in any log line: the demo (enrollment, offline capture of six grids of
//! generated residents with ID numbers and phones, sync, an incident through the loop,
//! field work, the public card) runs as its own process, and everything it prints, server
//! and devices together, with the server's request log on, is scanned for ID numbers and
//! mobile numbers.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use wangge_core::model::{id_number_shapes, mobile_shapes};

#[test]
fn the_demo_logs_no_id_number_and_no_phone() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wangge-server"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .env(wangge_server::logging::LEVEL_VAR, "debug")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the demo failed:\n{text}");
    // The demo did what it says: residents captured, synced, an incident archived.
    assert!(text.contains("归档"), "{text}");
    assert!(text.lines().count() > 30, "{text}");
    assert!(text.contains("route=\"/v1/sync\""), "the server's request log is on: {text}");
    assert_eq!(id_number_shapes(&text), Vec::<&str>::new());
    assert_eq!(mobile_shapes(&text), Vec::<&str>::new());
}
