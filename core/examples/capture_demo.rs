//! The capture demo: a worker's device imports a generated grid, captures offline,
//! searches, and reconciles a concurrent edit with a second device by exchanging
//! automerge changes directly (the sync server replaces that exchange in a later issue).
//!
//! `cargo run --release -p wangge-core --example capture_demo [DIR]` — the stores are
//! written to DIR (default `target/demo`), fresh on every run. The data is generated,
//! and the output masks names and phones as the app does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use wangge_core::crdt::{ChangeHash, DocId, DocKind};
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::model::*;
use wangge_core::{Result, Store};

fn masked_name(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars.next().map(String::from).unwrap_or_default();
    first + &"*".repeat(chars.count())
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target/demo"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;

    let code = GridCode::parse_default("440703001001001")?;
    let grid = Grid::new(code.clone(), "长堤社区第1网格", GridKind::Community)?;
    println!("grid {} {} ({})", code, grid.name, grid.kind.label_zh());

    // Device A: a full-time worker's handheld terminal, with sensitive data.
    let a = Store::open(dir.join("device-a.db"))?;
    a.add_grid(&grid, true)?;
    let records = generate_grid(&code, &DemoOptions::default());
    let start = Instant::now();
    let summary = a.import(&code, &records)?;
    println!(
        "device A imported {} records as {} changes in {:.0} ms",
        summary.n_records,
        summary.n_changes,
        start.elapsed().as_secs_f64() * 1000.0
    );

    let households = a.list_households(&code)?;
    println!("household list: {} households; the first three:", households.len());
    for household in households.iter().take(3) {
        println!(
            "  {} {}  head {}  {} resident(s)  {}",
            household.building_name.as_deref().unwrap_or("-"),
            household.room.as_deref().unwrap_or("-"),
            household.head_name.as_deref().map(masked_name).unwrap_or_default(),
            household.n_residents,
            household.residence_type.label_zh()
        );
    }

    // Offline captures: a newborn joins the first household, a phone changes.
    let household = households[0].id;
    let baby = a.add_resident(
        &code,
        NewResident {
            household: Some(household),
            name: PersonName::parse("陈思远")?,
            id_number: Some(IdNumber::from_parts(
                "440703",
                chrono::NaiveDate::from_ymd_opt(2026, 10, 8).unwrap_or_default(),
                135,
            )?),
            phone: None,
            gender: None,
            birth_date: None,
            relation: Relation::Child,
            residence_type: ResidenceType::Registered,
            tags: Default::default(),
        },
    )?;
    let head = a.residents_of_household(household)?[0].id;
    a.update_resident(head, ResidentPatch { phone: Some(Some(Phone::parse("13712345678")?)), ..Default::default() })?;
    println!(
        "captured: a newborn ({}), a changed phone; pending changes: {}",
        a.resident(baby)?.gender.map(|g| g.label_zh()).unwrap_or("?"),
        a.pending_changes()?
    );

    let start = Instant::now();
    let hits = a.search_residents("5678", 10)?;
    println!(
        "search by phone tail: {} hit(s) in {:.2} ms, e.g. {}",
        hits.len(),
        start.elapsed().as_secs_f64() * 1000.0,
        hits.first().map(|hit| masked_name(&hit.name)).unwrap_or_default()
    );
    let fragment: String = records.residents[40].1.name.as_str().chars().skip(1).take(2).collect();
    let start = Instant::now();
    let hits = a.search_residents(&fragment, 10)?;
    println!(
        "search by a 2-character name fragment: {} hit(s) in {:.2} ms",
        hits.len(),
        start.elapsed().as_secs_f64() * 1000.0
    );

    // Device B: the grid leader's phone, also holding the grid. Both edit the same
    // field while apart, then exchange changes.
    let b = Store::open(dir.join("device-b.db"))?;
    b.add_grid(&grid, true)?;
    let mut common = HashMap::new();
    exchange(&a, &b, &code, &mut common)?;
    a.update_resident(
        head,
        ResidentPatch {
            relation: Some(Relation::Head),
            phone: Some(Some(Phone::parse("13700000001")?)),
            ..Default::default()
        },
    )?;
    b.update_resident(head, ResidentPatch { phone: Some(Some(Phone::parse("13700000002")?)), ..Default::default() })?;
    let bytes = exchange(&a, &b, &code, &mut common)?;
    println!("devices exchanged the two edits in {bytes} bytes of automerge changes");
    for conflict in a.conflicts(RecordRef::Resident(head))? {
        println!(
            "conflict on {}: {} concurrent values, by {}",
            conflict.field,
            conflict.values.len(),
            conflict.values.iter().map(|value| &value.author[..8]).collect::<Vec<_>>().join(" and ")
        );
    }
    a.update_resident(head, ResidentPatch { phone: Some(Some(Phone::parse("13700000002")?)), ..Default::default() })?;
    exchange(&a, &b, &code, &mut common)?;
    println!(
        "resolved on A; conflicts left on B: {}; both agree: {}",
        b.conflicts(RecordRef::Resident(head))?.len(),
        a.resident(head)? == b.resident(head)?
    );

    let saved: usize = [DocKind::Register, DocKind::Sensitive]
        .iter()
        .map(|kind| a.document_bytes(&DocId::new(*kind, &code)).map(|bytes| bytes.len()))
        .sum::<Result<usize>>()?;
    println!("the grid's documents save to {} KB; stores are in {}", saved / 1024, dir.display());
    Ok(())
}

/// Sends each device what the other lacks since the heads they last shared (what the
/// sync server will track per device); returns the bytes sent.
fn exchange(a: &Store, b: &Store, code: &GridCode, common: &mut HashMap<DocId, Vec<ChangeHash>>) -> Result<usize> {
    let mut bytes = 0;
    for kind in [DocKind::Register, DocKind::Sensitive] {
        let doc = DocId::new(kind, code);
        let since = common.get(&doc).cloned().unwrap_or_default();
        let to_b = a.changes_since(&doc, &since)?;
        let to_a = b.changes_since(&doc, &since)?;
        bytes += to_b.iter().chain(&to_a).map(Vec::len).sum::<usize>();
        b.apply_changes(&doc, &to_b)?;
        a.apply_changes(&doc, &to_a)?;
        common.insert(doc.clone(), a.heads(&doc)?);
    }
    Ok(bytes)
}
