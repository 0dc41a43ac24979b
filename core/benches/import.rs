//! Bulk import of a 500-household grid, and the saved size of its documents.
//!
//! Time: `Store::import` (many automerge changes, projection, one transaction) against
//! plain INSERTs of the same projection rows into an empty store file.
//! Size: the register and sensitive documents as saved, against gzip'd JSON of the same
//! records (DESIGN §5 holds a first sync to at most 1.2x of that).

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::time::Instant;

use rusqlite::Connection;
use wangge_core::Store;
use wangge_core::crdt::{DocId, DocKind};
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::model::*;

const TABLES: [&str; 7] =
    ["buildings", "households", "residents", "resident_details", "resident_tags", "organizations", "components"];

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let code = GridCode::parse_default("440703001001001").unwrap();
    let grid = Grid::new(code.clone(), "长堤社区第1网格", GridKind::Community).unwrap();
    let records = generate_grid(&code, &DemoOptions::default());
    println!(
        "grid: {} buildings, {} households, {} residents, {} organizations, {} components",
        records.buildings.len(),
        records.households.len(),
        records.residents.len(),
        records.organizations.len(),
        records.components.len()
    );

    // Several fresh stores, alternating with the baseline, as in the other benchmarks.
    let mut subject_times = Vec::new();
    let mut baseline_times = Vec::new();
    let mut last_store = None;
    for round in 0..5 {
        let path = dir.path().join(format!("device-{round}.db"));
        let store = Store::open(&path).unwrap();
        store.add_grid(&grid, true).unwrap();
        let start = Instant::now();
        let summary = store.import(&code, &records).unwrap();
        subject_times.push(start.elapsed());
        if round == 0 {
            println!("import: {} records as {} changes", summary.n_records, summary.n_changes);
        }

        let baseline_path = dir.path().join(format!("baseline-{round}.db"));
        drop(Store::open(&baseline_path).unwrap());
        let rows = store.with_reader(projection_rows).unwrap();
        let mut baseline = Connection::open(&baseline_path).unwrap();
        baseline.pragma_update(None, "synchronous", "FULL").unwrap();
        let start = Instant::now();
        let tx = baseline.transaction().unwrap();
        for (table, table_rows) in &rows {
            for row in table_rows {
                let placeholders = (1..=row.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
                tx.prepare_cached(&format!("INSERT INTO {table} VALUES ({placeholders})"))
                    .unwrap()
                    .execute(rusqlite::params_from_iter(row))
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        baseline_times.push(start.elapsed());
        last_store = Some(store);
    }
    subject_times.sort();
    baseline_times.sort();
    let comparison = support::Comparison { baseline: baseline_times[2], subject: subject_times[2] };
    support::report("import: 500-household grid", "plain INSERTs", &comparison, "no target; for reference");

    let store = last_store.unwrap();
    let saved: usize = [DocKind::Register, DocKind::Sensitive]
        .iter()
        .map(|kind| store.document_bytes(&DocId::new(*kind, &code)).unwrap().len())
        .sum();
    let json = store.with_reader(records_json).unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(json.as_bytes()).unwrap();
    let gzipped = gzip.finish().unwrap().len();
    println!(
        "{:<34} {:>8} B vs gzip'd JSON {:>8} B  ratio {:>6.2}x  (target <= 1.2x; JSON {} B raw)",
        "saved documents (register+sens.)",
        saved,
        gzipped,
        saved as f64 / gzipped as f64,
        json.len()
    );
}

type Rows = Vec<(&'static str, Vec<Vec<rusqlite::types::Value>>)>;

fn projection_rows(conn: &Connection) -> rusqlite::Result<Rows> {
    let mut out = Vec::new();
    for table in TABLES {
        let mut statement = conn.prepare(&format!("SELECT * FROM {table}"))?;
        let n = statement.column_count();
        let rows = statement
            .query_map([], |row| (0..n).map(|i| row.get::<_, rusqlite::types::Value>(i)).collect())?
            .collect::<Result<Vec<_>, _>>()?;
        out.push((table, rows));
    }
    Ok(out)
}

/// The grid's records as JSON, one object per row with its column names: what a plain
/// JSON export of the same data would hold.
fn records_json(conn: &Connection) -> rusqlite::Result<String> {
    let mut parts = Vec::new();
    for table in TABLES {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}') WHERE name <> 'rowid' AND name <> 'phone_tail' AND name <> 'id_tail'"))?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let object = columns.iter().map(|column| format!("'{column}', \"{column}\"")).collect::<Vec<_>>().join(", ");
        let json: String =
            conn.query_row(&format!("SELECT json_group_array(json_object({object})) FROM {table}"), [], |row| {
                row.get(0)
            })?;
        parts.push(format!("\"{table}\": {json}"));
    }
    Ok(format!("{{{}}}", parts.join(", ")))
}
