//! End-to-end: a real sync server on 127.0.0.1 and several devices.

#![allow(clippy::unwrap_used)]

mod access;
mod activity;
mod audit;
mod authz;
mod bad_input;
mod blobs;
mod card;
mod center;
mod compaction;
mod grids;
mod incidents;
mod ops;
mod places;
mod reference;
mod retention;

use wangge_core::Store;

/// The register projection (and, separately, the sensitive one), as sorted rows.
pub fn dump(store: &Store, sql: &str) -> Vec<String> {
    let mut rows = store
        .with_reader(|conn| {
            let mut statement = conn.prepare(sql)?;
            let n = statement.column_count();
            let rows = statement
                .query_map([], |row| {
                    (0..n).map(|i| row.get_ref(i).map(|value| format!("{value:?}"))).collect::<Result<Vec<_>, _>>()
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows.into_iter().map(|row| row.join("|")).collect::<Vec<_>>())
        })
        .unwrap();
    rows.sort();
    rows
}

pub const REGISTER: &str = "SELECT 'b', id, name, address, status FROM buildings
    UNION ALL SELECT 'h', id, building, room, status FROM households
    UNION ALL SELECT 'r', id, household, name, status FROM residents";
pub const SENSITIVE: &str = "SELECT resident_id, id_number, phone, birth_date FROM resident_details";
