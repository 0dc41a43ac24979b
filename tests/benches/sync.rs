//! Sync figures (DESIGN §5), each against a baseline measured in the same run, on loopback
//! with a real server:
//! - first sync of a grid (500 households, ~1,500 residents, ~200 buildings, 50
//!   organizations, 300 incidents): bytes against gzip'd JSON of the same records
//!   (target ≤ 1.2x), and time including the projection (target < 1 s);
//! - one edit synced after 20,000 changes of history: bytes both ways (target < 1 KB);
//! - catch-up after 2,000 edits by another device: bytes against automerge's saved size
//!   of those changes (target ≤ 1.5x).
//!
//! `cargo bench -p wangge-tests`

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Instant;

use wangge_core::NewIncident;
use wangge_core::Store;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::incident::roles::Role;
use wangge_core::incident::{ActionKind, Actor};
use wangge_core::model::*;
use wangge_tests::{TestDevice, TestServer};

fn gzip(bytes: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap().len()
}

/// The device's records as JSON (one object per row, with column names): what a plain
/// export of the same data would send.
fn records_json(store: &Store) -> String {
    let tables = [
        "buildings",
        "households",
        "residents",
        "resident_details",
        "resident_tags",
        "organizations",
        "components",
        "incidents",
        "incident_actions",
    ];
    store
        .with_reader(|conn| {
            let mut parts = Vec::new();
            for table in tables {
                let columns: Vec<String> = conn
                    .prepare(&format!(
                        "SELECT name FROM pragma_table_info('{table}') WHERE name NOT IN ('rowid', 'phone_tail', 'id_tail')"
                    ))?
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                let object = columns.iter().map(|c| format!("'{c}', \"{c}\"")).collect::<Vec<_>>().join(", ");
                let json: String = conn.query_row(
                    &format!("SELECT json_group_array(json_object({object})) FROM {table}"),
                    [],
                    |row| row.get(0),
                )?;
                parts.push(format!("\"{table}\": {json}"));
            }
            Ok(format!("{{{}}}", parts.join(", ")))
        })
        .unwrap()
}

fn line(name: &str, subject: f64, unit: &str, baseline_name: &str, baseline: f64, target: &str) {
    println!(
        "{name:<40} {subject:>10.0} {unit} vs {baseline_name} {baseline:>10.0} {unit}  ratio {:>5.2}x  ({target})",
        subject / baseline
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let me = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };

    // The grid, and 300 incidents (a third resolved on the spot), recorded offline.
    let records = generate_grid(&grid, &DemoOptions::default());
    worker.store.import(&grid, &records).unwrap();
    let item = worker.store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    for i in 0..300 {
        let id = worker
            .store
            .report_incident(
                NewIncident {
                    grid: grid.clone(),
                    catalog_item: item.clone(),
                    title: format!("巡查发现问题{i}"),
                    description: "现场拍照记录".into(),
                    location: None,
                    residents: vec![],
                    households: vec![records.households[i % records.households.len()].0],
                    organizations: vec![],
                    photos: vec![],
                    reported_by_resident: None,
                },
                me.clone(),
            )
            .unwrap();
        if i % 3 == 0 {
            let evidence = vec![format!("sha256:{:064x}", i)];
            worker.store.act(id, me.clone(), ActionKind::ResolveOnSpot { note: "已调解".into(), evidence }).unwrap();
        }
    }
    worker.sync().await;
    println!(
        "grid: {} buildings, {} households, {} residents, {} organizations, 300 incidents",
        records.buildings.len(),
        records.households.len(),
        records.residents.len(),
        records.organizations.len()
    );

    // First sync of a second device (grid leader: sees everything, sensitive data included).
    let leader = TestDevice::enrolled(&server, &server.worker("l1", "grid_leader", None, &[&grid])).await;
    let started = Instant::now();
    let first = leader.sync().await;
    let elapsed = started.elapsed();
    let json = gzip(records_json(&leader.store).as_bytes());
    // Where the bytes go: each kind of document, saved (automerge's compressed form), and as
    // the server sends it (uncompressed, for the page's zstd to compress across documents).
    let mut by_kind: std::collections::BTreeMap<String, (usize, usize, usize)> = Default::default();
    for doc in leader.store.documents().unwrap() {
        let saved = leader.store.document_bytes(&doc).unwrap();
        let sent = automerge::AutoCommit::load(&saved).unwrap().save_nocompress();
        let entry = by_kind.entry(doc.kind.code().to_owned()).or_default();
        entry.0 += 1;
        entry.1 += saved.len();
        entry.2 += sent.len();
    }
    for (kind, (n_docs, saved, sent)) in by_kind {
        println!("  {kind:<12} {n_docs:>4} documents, saved {saved:>7} B, sent uncompressed {sent:>7} B");
    }
    let wire = (first.bytes_received + first.bytes_sent) as f64;
    line("first sync: bytes on the wire", wire, "B", "gzip'd JSON", json as f64, "target <= 1.2x");
    println!(
        "{:<40} {:>10.0} ms ({} pages, target < 1000 ms, projection included)",
        "first sync: time on loopback",
        elapsed.as_secs_f64() * 1000.0,
        first.pages
    );

    // 20,000 changes of history, then one edit.
    let residents: Vec<ResidentId> = records.residents.iter().map(|(id, _)| *id).collect();
    for i in 0..20_000usize {
        let phone = Phone::parse(&format!("139{:08}", i)).unwrap();
        worker
            .store
            .update_resident(
                residents[i % residents.len()],
                ResidentPatch { phone: Some(Some(phone)), ..Default::default() },
            )
            .unwrap();
        if i % 2_000 == 1_999 {
            worker.sync().await;
        }
    }
    leader.sync().await;
    worker
        .store
        .update_resident(residents[7], ResidentPatch { relation: Some(Relation::Other), ..Default::default() })
        .unwrap();
    let push = worker.sync().await;
    let pull = leader.sync().await;
    let one_edit = (push.bytes_sent + push.bytes_received + pull.bytes_sent + pull.bytes_received) as f64;
    line("one edit at 20,000 changes of history", one_edit, "B", "1 KB budget", 1024.0, "target < 1.0x");
    println!("{:<40} {:>10} round trip(s) each way", "", push.pages.max(pull.pages));

    // Catch-up: 2,000 edits by the worker while the leader is offline.
    let sensitive = DocId::new(DocKind::Sensitive, &grid);
    let register = DocId::new(DocKind::Register, &grid);
    let before: Vec<_> = [&register, &sensitive].iter().map(|doc| worker.store.heads(doc).unwrap()).collect();
    for i in 0..2_000usize {
        let phone = Phone::parse(&format!("137{:08}", i)).unwrap();
        worker
            .store
            .update_resident(
                residents[(i * 7) % residents.len()],
                ResidentPatch { phone: Some(Some(phone)), ..Default::default() },
            )
            .unwrap();
    }
    worker.sync().await;
    let saved: usize = [&register, &sensitive]
        .iter()
        .zip(&before)
        .map(|(doc, heads)| {
            let mut loaded = automerge::AutoCommit::load(&worker.store.document_bytes(doc).unwrap()).unwrap();
            loaded.save_after(heads).len()
        })
        .sum();
    let catch_up = leader.sync().await;
    line(
        "catch-up after 2,000 edits: bytes",
        (catch_up.bytes_received + catch_up.bytes_sent) as f64,
        "B",
        "saved size of those changes",
        saved as f64,
        "target <= 1.5x",
    );
}
