//! What the durability tests share (`crash.rs`, `power_loss.rs`): the residents their
//! workloads capture, and the checks a store must pass after it was cut off — every
//! acknowledged edit there, `PRAGMA integrity_check` ok, every document loads, and the
//! projection equals a rebuild from the documents.

use std::collections::BTreeMap;

use rusqlite::OpenFlags;
use rusqlite::types::ValueRef;
use wangge_core::Store;
use wangge_core::model::*;

pub const GRID: &str = "440703001001001";

pub fn grid() -> GridCode {
    GridCode::parse_default(GRID).unwrap()
}

pub fn resident(name: &str, phone: &str) -> NewResident {
    NewResident {
        household: None,
        name: PersonName::parse(name).unwrap(),
        id_number: None,
        phone: Some(Phone::parse(phone).unwrap()),
        gender: None,
        birth_date: None,
        relation: Relation::Head,
        residence_type: ResidenceType::Registered,
        tags: Default::default(),
    }
}

/// A name for the n-th resident: two to four Chinese characters, unique per n.
pub fn name_of(n: u64) -> String {
    const SURNAMES: [char; 8] = ['陈', '李', '黄', '张', '王', '刘', '林', '何'];
    const GIVEN: [char; 10] = ['伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋'];
    let mut name = String::from(SURNAMES[(n % 8) as usize]);
    let mut rest = n / 8;
    loop {
        name.push(GIVEN[(rest % 10) as usize]);
        rest /= 10;
        if rest == 0 || name.chars().count() == 4 {
            break;
        }
    }
    name
}

/// Every row of every table the projection writes, sorted, for comparison with a rebuild.
pub fn projection(store: &Store) -> Vec<String> {
    store
        .with_reader(|conn| {
            let mut tables = conn.prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 AND name NOT LIKE '%search%' AND sql NOT LIKE '%VIRTUAL%'
                 AND name NOT IN ('documents', 'document_snapshots', 'document_chunks', 'meta',
                                  'pending_captures', 'failed_captures')",
            )?;
            let tables: Vec<String> = tables.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
            let mut rows = Vec::new();
            for table in tables {
                let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
                // A table's `rowid` is a surrogate key (the search index's rowid), numbered
                // in the order rows were written: a rebuild writes them in id order, which
                // differs for records created within the same millisecond.
                let columns: Vec<usize> = (0..statement.column_count())
                    .filter(|&i| statement.column_name(i).is_ok_and(|name| name != "rowid"))
                    .collect();
                let found = statement.query_map([], |row| {
                    columns
                        .iter()
                        .map(|&i| {
                            row.get_ref(i).map(|value| match value {
                                ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
                                other => format!("{other:?}"),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })?;
                for row in found {
                    rows.push(format!("{table}|{}", row?.join("|")));
                }
            }
            rows.sort();
            Ok(rows)
        })
        .unwrap()
}

/// A resident as its acknowledged edits left it.
#[derive(Debug)]
pub struct Acked {
    pub name: String,
    pub phone: String,
    /// The edit number of its last acknowledged phone change.
    pub phone_n: Option<u64>,
}

/// The edit number a changed phone carries (`139` and the number).
pub fn phone_n(phone: &str) -> Option<u64> {
    phone.strip_prefix("139")?.parse().ok()
}

/// What a store must pass after it was cut off; returns how many residents it holds.
pub fn check(store: &Store, acked: &BTreeMap<ResidentId, Acked>) -> usize {
    // On a connection of its own: a long-lived one's FTS5 checks the index structure it
    // cached before other connections wrote, and reports a checksum mismatch (SQLite 3.53.4;
    // its queries do see the writes, and a new connection finds the same file ok).
    let conn = rusqlite::Connection::open_with_flags(store.path(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    for doc in store.documents().unwrap() {
        store.document_bytes(&doc).unwrap_or_else(|error| panic!("{doc} does not load: {error}"));
    }
    for (id, acked) in acked {
        let found = store.resident(*id).unwrap_or_else(|error| panic!("acknowledged resident lost: {error}"));
        assert_eq!(found.name.as_str(), acked.name);
        let held = found.sensitive.and_then(|sensitive| sensitive.phone).map(|phone| phone.as_str().to_owned());
        let held = held.unwrap_or_default();
        // The acknowledged phone, or one from a later capture that was never acknowledged
        // (cut off after it committed).
        let later = phone_n(&held).is_some_and(|n| acked.phone_n.is_none_or(|acked_n| n > acked_n));
        assert!(held == acked.phone || later, "acknowledged phone lost: {held} instead of {}", acked.phone);
    }
    let before = projection(store);
    store.rebuild_projection().unwrap();
    let after = projection(store);
    let only_before: Vec<&String> = before.iter().filter(|row| !after.contains(row)).collect();
    let only_after: Vec<&String> = after.iter().filter(|row| !before.contains(row)).collect();
    assert!(
        only_before.is_empty() && only_after.is_empty(),
        "the projection differs from a rebuild from the documents: {only_before:#?} only before the rebuild, \
         {only_after:#?} only after"
    );
    store.with_reader(|conn| conn.query_row("SELECT count(*) FROM residents", [], |row| row.get::<_, i64>(0))).unwrap()
        as usize
}
