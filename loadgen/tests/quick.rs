//! The load generator's quick mode, so that CI sees it still works: a small city (50
//! devices of every role, a demo grid with a full core store) for two seconds of steady
//! state against the server on SQLite and on PostgreSQL, and the baseline. It asserts that
//! every push was accepted and every change acknowledged, not any speed.

use std::process::Command;

#[track_caller]
fn run_quick(database: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wangge-loadgen"))
        .args(["--devices", "50", "--duration", "2", "--rate", "40", "--demo-households", "40"])
        // This binary's own `serve` (the library call `wangge-server serve` makes): a debug
        // `wangge-server` beside it may be stale or missing when only this crate is tested.
        .args(["--server", "self", "--database", database])
        .output()
        .expect("the load generator runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

#[track_caller]
fn check(stdout: &str) {
    assert!(stdout.contains("PASSED: no unexpected refusal or error"), "{stdout}");
    assert!(stdout.contains("final sync: every change acknowledged, no capture failed"), "{stdout}");
    // Every phase answered without a refusal (the quick city is too small for conflicts).
    let refusals: Vec<&str> = stdout.lines().filter(|line| line.trim_start().starts_with("refusals")).collect();
    assert_eq!(refusals.len(), 2, "a server phase and a baseline phase: {stdout}");
    assert!(refusals.iter().all(|line| line.trim_end().ends_with("none")), "{stdout}");
    // And every request was answered.
    assert!(!stdout.contains("got no answer"), "{stdout}");
    let unanswered: Vec<&str> = stdout.lines().filter(|line| line.trim_start().starts_with("no answer")).collect();
    assert!(unanswered.len() == 2 && unanswered.iter().all(|line| line.trim_end().ends_with("none")), "{stdout}");
    // The steady state carried captures, not only idle syncs (its incidents are too few
    // in two seconds to count on).
    let steady = stdout.lines().find(|line| line.trim_start().starts_with("syncs ")).expect("the steady state's line");
    assert!(steady.contains(" captures"), "{steady}");
    assert!(stdout.contains("| postgres | 50 |") || stdout.contains("| sqlite | 50 |"), "{stdout}");
}

#[test]
fn a_small_city_on_sqlite_syncs_with_no_refusal() {
    check(&run_quick("sqlite"));
}

#[test]
fn a_small_city_on_postgres_syncs_with_no_refusal() {
    check(&run_quick("postgres"));
}
