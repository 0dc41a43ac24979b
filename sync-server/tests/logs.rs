//! No personal data in any log line: the demo (enrollment, offline capture of six grids of
//! generated residents with ID numbers and phones, sync, an incident through the loop,
//! field work, the public card) runs as its own process, and everything it prints, server
//! and devices together, is scanned for ID numbers and mobile numbers.

#![allow(clippy::unwrap_used)]

use std::process::Command;

/// 18 characters: 17 digits and a digit or X, not inside a longer run of digits.
fn id_numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    for start in 0..chars.len().saturating_sub(17) {
        let window = &chars[start..start + 18];
        let before = start.checked_sub(1).map(|i| chars[i]);
        let after = chars.get(start + 18);
        let digits = window[..17].iter().all(char::is_ascii_digit);
        let last = window[17].is_ascii_digit() || window[17] == 'X' || window[17] == 'x';
        let bounded = !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(char::is_ascii_digit);
        if digits && last && bounded {
            found.push(window.iter().collect());
        }
    }
    found
}

/// 11 digits starting 13–19, not inside a longer run of digits.
fn mobiles(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    for start in 0..chars.len().saturating_sub(10) {
        let window = &chars[start..start + 11];
        let before = start.checked_sub(1).map(|i| chars[i]);
        let after = chars.get(start + 11);
        let shaped = window[0] == '1' && ('3'..='9').contains(&window[1]) && window.iter().all(char::is_ascii_digit);
        let bounded = !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(char::is_ascii_digit);
        if shaped && bounded {
            found.push(window.iter().collect());
        }
    }
    found
}

#[test]
fn the_scanners_find_what_they_look_for() {
    assert_eq!(id_numbers("id 11010519491231002X here"), vec!["11010519491231002X"]);
    assert_eq!(mobiles("call 13800138000."), vec!["13800138000"]);
    assert!(id_numbers("seq 1234567890123456789").is_empty() && mobiles("440703001001001").is_empty());
}

#[test]
fn the_demo_logs_no_id_number_and_no_phone() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_wangge-server")).args(["demo", "--dir"]).arg(dir.path()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the demo failed:\n{text}");
    // The demo did what it says: residents captured, synced, an incident archived.
    assert!(text.contains("归档"), "{text}");
    assert!(text.lines().count() > 30, "{text}");
    assert_eq!(id_numbers(&text), Vec::<String>::new());
    assert_eq!(mobiles(&text), Vec::<String>::new());
}
