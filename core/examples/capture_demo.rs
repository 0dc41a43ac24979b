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

    incident_loop(&a, &b, &code, &households[1])?;

    let saved: usize = [DocKind::Register, DocKind::Sensitive]
        .iter()
        .map(|kind| a.document_bytes(&DocId::new(*kind, &code)).map(|bytes| bytes.len()))
        .sum::<Result<usize>>()?;
    println!("the grid's documents save to {} KB; stores are in {}", saved / 1024, dir.display());
    Ok(())
}

/// The closed loop of one incident across the two devices: the worker reports on A, the
/// center on B accepts and dispatches, the department completes, the worker verifies.
fn incident_loop(a: &Store, b: &Store, code: &GridCode, household: &wangge_core::HouseholdSummary) -> Result<()> {
    use wangge_core::incident::roles::{CenterLevel, Role};
    use wangge_core::incident::{ActionKind, Actor, Verdict};
    let worker = Actor { person: "w-0001".into(), role: Role::FullTimeWorker, department: None };
    let center = Actor { person: "c-0001".into(), role: Role::CenterStaff(CenterLevel::Township), department: None };
    let item = a
        .catalog()
        .items()
        .find(|item| item.admitted && item.deadline == wangge_core::incident::catalog::DeadlineSpec::WorkingDays(5))
        .ok_or_else(|| wangge_core::Error::UnknownCatalogItem { code: "a 5-day item".into() })?
        .clone();
    let lead = item.departments[0].clone();
    let handler = Actor { person: "h-0001".into(), role: Role::DepartmentHandler, department: Some(lead.clone()) };
    let id = a.report_incident(
        wangge_core::NewIncident {
            grid: code.clone(),
            catalog_item: item.code.clone(),
            title: format!("{}（{}）", item.name, household.building_name.as_deref().unwrap_or("")),
            description: "巡查发现，已拍照".into(),
            location: None,
            residents: vec![],
            households: vec![household.id],
            organizations: vec![],
            photos: vec![],
            reported_by_resident: None,
        },
        worker.clone(),
    )?;
    let doc = DocId::incident(id);
    let send = |from: &Store, to: &Store| -> Result<usize> {
        let heads = to.heads(&doc).unwrap_or_default();
        let changes = from.changes_since(&doc, &heads)?;
        to.apply_changes(&doc, &changes)?;
        Ok(changes.iter().map(Vec::len).sum())
    };
    let bytes = send(a, b)?;
    b.act(id, center.clone(), ActionKind::Accept)?;
    b.act(id, center, ActionKind::Dispatch { lead: lead.clone(), co_handlers: vec![] })?;
    b.act(id, handler, ActionKind::Complete { feedback: "已处置".into(), evidence: vec![] })?;
    send(b, a)?;
    a.act(id, worker, ActionKind::Verify { verdict: Verdict::Pass, note: "现场核实".into() })?;
    send(a, b)?;
    let now = chrono::Utc::now().with_timezone(&wangge_core::calendar::CHINA_TIME);
    let incident = b.incident(id, now)?;
    println!(
        "incident {} ({}): reported on A ({bytes} bytes to B), handled by {lead}, now {} on both devices",
        item.code,
        item.class.label_zh(),
        incident.phase.label_zh()
    );
    if let Some(deadline) = incident.deadline {
        println!(
            "  deadline {} ({}), overdue: {}",
            deadline.due_at.format("%Y-%m-%d"),
            item.deadline.label_zh(),
            deadline.overdue
        );
    }
    for entry in a.incident_timeline(id)? {
        println!("  {entry}");
    }
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
