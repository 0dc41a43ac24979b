//! The projection: ordinary rows and search indexes derived from the documents.
//!
//! Merges, imports and rebuilds write through [`project_record`], which reads records from
//! the documents; local captures through [`project_local`], from their own edits (the
//! values a local write puts are the values the document will show). Tests compare both
//! with a rebuild.

use automerge::{AutoCommit, ReadDoc, ScalarValue};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Transaction, params};

use crate::Result;
use crate::crdt::{self, DocKind, FieldKind, RecordMap, fields_of};
use crate::model::{IdNumber, Phone, RecordKind};

pub(crate) fn table(kind: RecordKind) -> &'static str {
    kind.plural()
}

/// Which documents of a record changed, and so which of its rows to rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Changed {
    Register,
    Sensitive,
    Both,
}

impl Changed {
    pub(crate) fn of(kind: DocKind) -> Self {
        match kind {
            DocKind::Sensitive => Changed::Sensitive,
            // Incidents are projected by `incidents.rs`; the register is the default.
            DocKind::Register | DocKind::Incident | DocKind::Reference | DocKind::Activity => Changed::Register,
        }
    }

    pub(crate) fn and(self, other: Changed) -> Changed {
        if self == other { self } else { Changed::Both }
    }
}

/// Writes (or deletes) the projection rows of one record from the grid's documents.
/// `sensitive` is `None` on a device that does not hold the sensitive document. Only the
/// rows of the documents that `changed` are read and rewritten; the result is the same as
/// rewriting everything (which a rebuild does, with `Changed::Both`).
pub(crate) fn project_record(
    tx: &Transaction<'_>,
    grid: &str,
    register: &AutoCommit,
    sensitive: Option<&AutoCommit>,
    kind: RecordKind,
    id: &str,
    changed: Changed,
) -> Result<()> {
    if changed == Changed::Sensitive {
        // The register row decides whether details exist at all.
        let registered = tx
            .prepare_cached(&format!("SELECT 1 FROM {} WHERE id = ?1", table(kind)))?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some();
        return match sensitive {
            Some(sensitive) if registered => project_details(tx, grid, sensitive, kind, id),
            _ => Ok(()),
        };
    }
    let table = table(kind);
    let columns: Vec<&str> = register_columns(kind).collect();
    // The stored row (rowid, then grid_code and the field columns, then the search text),
    // to leave an unchanged row unwritten: a page not written is a page not fsynced.
    let previous: Option<(i64, Vec<SqlValue>, Option<String>)> = tx
        .prepare_cached(&format!(
            "SELECT rowid, {search}, grid_code, {cols} FROM {table} WHERE id = ?1",
            search = search_text_sql(kind),
            cols = columns.join(", ")
        ))?
        .query_row([id], |row| {
            let values = (2..columns.len() + 3).map(|i| row.get::<_, SqlValue>(i)).collect::<Result<_, _>>()?;
            Ok((row.get(0)?, values, row.get(1)?))
        })
        .optional()?;

    let Some(record) = crdt::read_record(register, DocKind::Register, kind, id) else {
        if let Some((rowid, _, _)) = previous {
            delete_search(tx, kind, rowid)?;
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE rowid = ?1"))?.execute([rowid])?;
        }
        if kind == RecordKind::Resident {
            delete_details(tx, id)?;
        }
        return Ok(());
    };

    let mut values: Vec<SqlValue> = vec![SqlValue::Text(grid.to_owned())];
    values.extend(columns.iter().map(|column| sql_value(record.fields.get(column))));
    let rowid = match &previous {
        Some((rowid, stored, _)) => {
            // Only the columns that differ: SQLite rewrites the index entries of every
            // assigned column, changed or not.
            let changed: Vec<usize> = (0..values.len()).filter(|&i| stored[i] != values[i]).collect();
            if !changed.is_empty() {
                let names: Vec<&str> = std::iter::once("grid_code").chain(columns.iter().copied()).collect();
                let set = changed.iter().enumerate().map(|(n, &i)| format!("{} = ?{}", names[i], n + 2));
                let set = set.collect::<Vec<_>>().join(", ");
                let params =
                    std::iter::once(SqlValue::Integer(*rowid)).chain(changed.iter().map(|&i| values[i].clone()));
                tx.prepare_cached(&format!("UPDATE {table} SET {set} WHERE rowid = ?1"))?
                    .execute(rusqlite::params_from_iter(params))?;
            }
            *rowid
        }
        None => {
            let sql = format!(
                "INSERT INTO {table} (id, grid_code, {cols}) VALUES (?1, ?2, {params}) RETURNING rowid",
                cols = columns.join(", "),
                params = (0..columns.len()).map(|i| format!("?{}", i + 3)).collect::<Vec<_>>().join(", "),
            );
            let params = std::iter::once(SqlValue::Text(id.to_owned())).chain(values);
            tx.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(params), |row| row.get(0))?
        }
    };
    let is_new = previous.is_none();
    let previous = previous.map(|(rowid, _, text)| (rowid, text));

    let text = search_text(kind, &record);
    let previous_text = previous.as_ref().and_then(|(_, text)| text.clone()).unwrap_or_default();
    if previous.is_none() || previous_text != text.clone().unwrap_or_default() {
        if previous.is_some() {
            delete_search(tx, kind, rowid)?;
        }
        if let Some(text) = &text {
            insert_search(tx, kind, rowid, text)?;
        }
    }

    // A new row may have had its details arrive first; they are written now.
    if (changed == Changed::Both || is_new)
        && let Some(sensitive) = sensitive
    {
        project_details(tx, grid, sensitive, kind, id)?;
    }
    Ok(())
}

fn project_details(tx: &Transaction<'_>, grid: &str, sensitive: &AutoCommit, kind: RecordKind, id: &str) -> Result<()> {
    if !DocKind::Sensitive.record_kinds().contains(&kind) {
        return Ok(());
    }
    match crdt::read_record(sensitive, DocKind::Sensitive, kind, id) {
        Some(details) => write_details(tx, grid, id, &details),
        None => delete_details(tx, id),
    }
}

/// Whether the projection has a row for the record (in any grid).
pub(crate) fn row_exists(tx: &Transaction<'_>, kind: RecordKind, id: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached(&format!("SELECT 1 FROM {} WHERE id = ?1", table(kind)))?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether the projection has a row for the record in this grid: references between
/// records stay inside their grid's documents.
pub(crate) fn row_in_grid(tx: &rusqlite::Connection, kind: RecordKind, id: &str, grid: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached(&format!("SELECT 1 FROM {} WHERE id = ?1 AND grid_code = ?2", table(kind)))?
        .query_row([id, grid], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Projects a local write from its edits alone, without the document: a local write
/// supersedes every concurrent value, so the values it puts are the values the document
/// will show once the capture becomes a change. The rows are those [`project_record`]
/// would write from the documents (tests compare both after every kind of capture).
pub(crate) fn project_local(
    tx: &Transaction<'_>,
    grid: &str,
    doc_kind: DocKind,
    kind: RecordKind,
    id: &str,
    create: bool,
    edits: &[crdt::Edit],
) -> Result<()> {
    use crdt::Edit;
    let mut columns: Vec<(&'static str, SqlValue)> = Vec::new();
    let mut tags: Vec<(&'static str, bool)> = Vec::new();
    for edit in edits {
        let (key, value) = match edit {
            Edit::Put(key, value) => (*key, sql_value(Some(value))),
            Edit::Delete(key) => (*key, SqlValue::Null),
            Edit::AddTag(tag) => {
                tags.push((tag, true));
                continue;
            }
            Edit::RemoveTag(tag) => {
                tags.push((tag, false));
                continue;
            }
        };
        columns.retain(|(column, _)| *column != key);
        columns.push((key, value));
    }
    match doc_kind {
        DocKind::Register => project_local_row(tx, grid, kind, id, create, columns),
        DocKind::Sensitive => project_local_details(tx, grid, id, columns, tags),
        DocKind::Incident | DocKind::Reference | DocKind::Activity => {
            Err(crate::Error::document(doc_kind.code(), "holds no register records"))
        }
    }
}

fn project_local_row(
    tx: &Transaction<'_>,
    grid: &str,
    kind: RecordKind,
    id: &str,
    create: bool,
    columns: Vec<(&'static str, SqlValue)>,
) -> Result<()> {
    let table = table(kind);
    let text_sql = format!("SELECT {} FROM {table} WHERE rowid = ?1", search_text_sql(kind));
    let (rowid, previous_text) = if create {
        let names: Vec<&str> = columns.iter().map(|(column, _)| *column).collect();
        let placeholders = (0..names.len()).map(|i| format!(", ?{}", i + 3)).collect::<String>();
        let sql = format!(
            "INSERT INTO {table} (id, grid_code{}) VALUES (?1, ?2{placeholders}) RETURNING rowid",
            names.iter().map(|name| format!(", {name}")).collect::<String>()
        );
        let params = [SqlValue::Text(id.to_owned()), SqlValue::Text(grid.to_owned())]
            .into_iter()
            .chain(columns.into_iter().map(|(_, value)| value));
        let rowid: i64 = tx.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(params), |row| row.get(0))?;
        (rowid, None)
    } else {
        let rowid: i64 = tx
            .prepare_cached(&format!("SELECT rowid FROM {table} WHERE id = ?1"))?
            .query_row([id], |row| row.get(0))?;
        let touches_search = columns.iter().any(|(column, _)| search_columns(kind).contains(column));
        let previous_text: Option<Option<String>> = if touches_search {
            Some(tx.prepare_cached(&text_sql)?.query_row([rowid], |row| row.get(0))?)
        } else {
            None
        };
        if !columns.is_empty() {
            let set = columns.iter().enumerate().map(|(n, (column, _))| format!("{column} = ?{}", n + 2));
            let sql = format!("UPDATE {table} SET {} WHERE rowid = ?1", set.collect::<Vec<_>>().join(", "));
            let params = std::iter::once(SqlValue::Integer(rowid)).chain(columns.into_iter().map(|(_, value)| value));
            tx.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(params))?;
        }
        match previous_text {
            Some(previous) => (rowid, Some(previous)),
            None => return Ok(()),
        }
    };
    // New rows, and rows whose searched fields changed, are (re)indexed.
    let text: Option<String> = tx.prepare_cached(&text_sql)?.query_row([rowid], |row| row.get(0))?;
    if let Some(previous) = previous_text {
        if previous == text {
            return Ok(());
        }
        delete_search(tx, kind, rowid)?;
    }
    if let Some(text) = text {
        insert_search(tx, kind, rowid, &text)?;
    }
    Ok(())
}

/// A resident's details row exists exactly when its sensitive record holds a value or a
/// tag (as [`project_record`] writes it from the document).
fn project_local_details(
    tx: &Transaction<'_>,
    grid: &str,
    id: &str,
    mut columns: Vec<(&'static str, SqlValue)>,
    tags: Vec<(&'static str, bool)>,
) -> Result<()> {
    let text = |value: &SqlValue| match value {
        SqlValue::Text(text) => Some(text.clone()),
        _ => None,
    };
    // Derived columns follow their source.
    let derived: Vec<(&'static str, SqlValue)> = columns
        .iter()
        .filter_map(|(column, value)| {
            let tail = match *column {
                "phone" => text(value).as_deref().and_then(phone_tail),
                "id_number" => text(value).as_deref().and_then(id_tail),
                _ => return None,
            };
            let name = if *column == "phone" { "phone_tail" } else { "id_tail" };
            Some((name, tail.map(SqlValue::Text).unwrap_or(SqlValue::Null)))
        })
        .collect();
    columns.extend(derived);
    tx.prepare_cached("INSERT OR IGNORE INTO resident_details (resident_id, grid_code) VALUES (?1, ?2)")?
        .execute(params![id, grid])?;
    if !columns.is_empty() {
        let set = columns.iter().enumerate().map(|(n, (column, _))| format!("{column} = ?{}", n + 2));
        let sql = format!("UPDATE resident_details SET {} WHERE resident_id = ?1", set.collect::<Vec<_>>().join(", "));
        let params = std::iter::once(SqlValue::Text(id.to_owned())).chain(columns.into_iter().map(|(_, value)| value));
        tx.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(params))?;
    }
    for (tag, present) in tags {
        let sql = if present {
            "INSERT OR IGNORE INTO resident_tags (resident_id, tag) VALUES (?1, ?2)"
        } else {
            "DELETE FROM resident_tags WHERE resident_id = ?1 AND tag = ?2"
        };
        tx.prepare_cached(sql)?.execute(params![id, tag])?;
    }
    tx.prepare_cached(
        "DELETE FROM resident_details WHERE resident_id = ?1
            AND id_number IS NULL AND phone IS NULL AND birth_date IS NULL
            AND NOT EXISTS (SELECT 1 FROM resident_tags WHERE resident_id = ?1)",
    )?
    .execute([id])?;
    Ok(())
}

/// Removes every row of an erased record.
pub(crate) fn project_erase(tx: &Transaction<'_>, kind: RecordKind, id: &str) -> Result<()> {
    let table = table(kind);
    let rowid: Option<i64> = tx
        .prepare_cached(&format!("SELECT rowid FROM {table} WHERE id = ?1"))?
        .query_row([id], |row| row.get(0))
        .optional()?;
    if let Some(rowid) = rowid {
        delete_search(tx, kind, rowid)?;
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE rowid = ?1"))?.execute([rowid])?;
    }
    if kind == RecordKind::Resident {
        delete_details(tx, id)?;
    }
    Ok(())
}

/// The fields whose changes must go through the search indexes.
fn search_columns(kind: RecordKind) -> &'static [&'static str] {
    match kind {
        RecordKind::Resident => &["name"],
        RecordKind::Building => &["address", "name"],
        RecordKind::Household => &["address", "room"],
        RecordKind::Organization | RecordKind::Component => &[],
    }
}

fn register_columns(kind: RecordKind) -> impl Iterator<Item = &'static str> {
    fields_of(kind)
        .iter()
        .filter(|spec| spec.doc == DocKind::Register && spec.kind != FieldKind::Tags)
        .map(|spec| spec.key)
}

fn sql_value(value: Option<&ScalarValue>) -> SqlValue {
    match value {
        Some(ScalarValue::Str(s)) => SqlValue::Text(s.to_string()),
        Some(ScalarValue::Int(i)) => SqlValue::Integer(*i),
        Some(ScalarValue::Uint(u)) => i64::try_from(*u).map(SqlValue::Integer).unwrap_or(SqlValue::Null),
        Some(ScalarValue::Boolean(b)) => SqlValue::Integer(i64::from(*b)),
        // Other scalar types are never written by this version; a newer one would bump the schema.
        _ => SqlValue::Null,
    }
}

fn write_details(tx: &Transaction<'_>, grid: &str, id: &str, details: &RecordMap) -> Result<()> {
    const COLUMNS: [&str; 6] = ["grid_code", "id_number", "phone", "birth_date", "phone_tail", "id_tail"];
    let id_number = details.text("id_number");
    let phone = details.text("phone");
    let current: [Option<String>; 6] = [
        Some(grid.to_owned()),
        id_number.map(str::to_owned),
        phone.map(str::to_owned),
        details.text("birth_date").map(str::to_owned),
        phone.and_then(phone_tail),
        id_number.and_then(id_tail),
    ];
    let stored: Option<[Option<String>; 6]> = tx
        .prepare_cached(&format!("SELECT {} FROM resident_details WHERE resident_id = ?1", COLUMNS.join(", ")))?
        .query_row([id], |row| Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?]))
        .optional()?;
    match stored {
        None => {
            tx.prepare_cached(&format!(
                "INSERT INTO resident_details (resident_id, {}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                COLUMNS.join(", ")
            ))?
            .execute(rusqlite::params_from_iter(std::iter::once(Some(id.to_owned())).chain(current)))?;
        }
        Some(stored) => {
            // Only the columns that differ, so that unchanged indexes are not rewritten.
            let changed: Vec<usize> = (0..COLUMNS.len()).filter(|&i| stored[i] != current[i]).collect();
            if !changed.is_empty() {
                let set = changed.iter().enumerate().map(|(n, &i)| format!("{} = ?{}", COLUMNS[i], n + 2));
                let set = set.collect::<Vec<_>>().join(", ");
                let params = std::iter::once(Some(id.to_owned())).chain(changed.iter().map(|&i| current[i].clone()));
                tx.prepare_cached(&format!("UPDATE resident_details SET {set} WHERE resident_id = ?1"))?
                    .execute(rusqlite::params_from_iter(params))?;
            }
        }
    }
    write_tags(tx, id, details)
}

fn write_tags(tx: &Transaction<'_>, id: &str, details: &RecordMap) -> Result<()> {
    let stored: Vec<String> = tx
        .prepare_cached("SELECT tag FROM resident_tags WHERE resident_id = ?1 ORDER BY tag")?
        .query_map([id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if stored.iter().ne(details.tags.iter()) {
        tx.prepare_cached("DELETE FROM resident_tags WHERE resident_id = ?1")?.execute([id])?;
        let mut insert = tx.prepare_cached("INSERT INTO resident_tags (resident_id, tag) VALUES (?1, ?2)")?;
        for tag in &details.tags {
            insert.execute(params![id, tag])?;
        }
    }
    Ok(())
}

fn delete_details(tx: &Transaction<'_>, id: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM resident_details WHERE resident_id = ?1")?.execute([id])?;
    tx.prepare_cached("DELETE FROM resident_tags WHERE resident_id = ?1")?.execute([id])?;
    Ok(())
}

/// The last four digits of a phone's main number (no extension).
pub(crate) fn phone_tail(stored: &str) -> Option<String> {
    let phone = Phone::parse(stored).ok()?;
    Some(phone.tail(4).to_owned())
}

pub(crate) fn id_tail(stored: &str) -> Option<String> {
    let id_number = IdNumber::parse_stored(stored).ok()?;
    Some(id_number.tail(4).to_owned())
}

/// The SQL expression of the text a record is found by, to compare before re-indexing.
fn search_text_sql(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Resident => "name",
        RecordKind::Building => "coalesce(address, '') || '\n' || coalesce(name, '')",
        RecordKind::Household => "coalesce(address, '') || '\n' || coalesce(room, '')",
        RecordKind::Organization | RecordKind::Component => "NULL",
    }
}

/// The same text computed from a record, as [`search_text_sql`] computes it from a row.
fn search_text(kind: RecordKind, record: &RecordMap) -> Option<String> {
    let part = |key| record.text(key).unwrap_or("").to_owned();
    match kind {
        RecordKind::Resident => record.text("name").map(str::to_owned),
        RecordKind::Building => Some(format!("{}\n{}", part("address"), part("name"))),
        RecordKind::Household => Some(format!("{}\n{}", part("address"), part("room"))),
        RecordKind::Organization | RecordKind::Component => None,
    }
}

fn search_table(kind: RecordKind) -> Option<&'static str> {
    match kind {
        RecordKind::Resident => Some("resident_name_search"),
        RecordKind::Building => Some("building_place_search"),
        RecordKind::Household => Some("household_place_search"),
        RecordKind::Organization | RecordKind::Component => None,
    }
}

fn insert_search(tx: &Transaction<'_>, kind: RecordKind, rowid: i64, text: &str) -> Result<()> {
    if let Some(search) = search_table(kind) {
        // A separator token between parts (address, room, name) keeps a phrase from
        // matching across them; no query produces it (it is not alphanumeric).
        let grams = text.split('\n').map(bigrams).collect::<Vec<_>>().join(PART_SEPARATOR);
        tx.prepare_cached(&format!("INSERT INTO {search} (rowid, grams) VALUES (?1, ?2)"))?
            .execute(params![rowid, grams])?;
    }
    Ok(())
}

fn delete_search(tx: &Transaction<'_>, kind: RecordKind, rowid: i64) -> Result<()> {
    if let Some(search) = search_table(kind) {
        tx.prepare_cached(&format!("DELETE FROM {search} WHERE rowid = ?1"))?.execute([rowid])?;
    }
    Ok(())
}

/// Between the pairs of two parts of a record's text: a private-use character as a token.
const PART_SEPARATOR: &str = " \u{E000} ";

fn search_chars(text: &str) -> Vec<char> {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Overlapping character pairs, space-separated: `陈秀英` → `陈秀 秀英`.
pub(crate) fn bigrams(text: &str) -> String {
    let chars = search_chars(text);
    if chars.len() == 1 {
        return chars.iter().collect();
    }
    chars.windows(2).map(|pair| pair.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// The FTS5 phrase that finds `fragment` as a substring; `None` under two characters.
pub(crate) fn fragment_phrase(fragment: &str) -> Option<String> {
    let chars = search_chars(fragment);
    if chars.len() < 2 {
        return None;
    }
    Some(format!("\"{}\"", bigrams(fragment)))
}

/// Refills the search indexes and tail columns from the projection tables.
pub(crate) fn rebuild_search(tx: &Transaction<'_>) -> Result<()> {
    for kind in [RecordKind::Resident, RecordKind::Building, RecordKind::Household] {
        let Some(search) = search_table(kind) else { continue };
        tx.execute(&format!("DELETE FROM {search}"), [])?;
        let rows: Vec<(i64, Option<String>)> = tx
            .prepare(&format!("SELECT rowid, {} FROM {}", search_text_sql(kind), table(kind)))?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (rowid, text) in rows {
            if let Some(text) = text {
                insert_search(tx, kind, rowid, &text)?;
            }
        }
    }
    let details: Vec<(String, Option<String>, Option<String>)> = tx
        .prepare("SELECT resident_id, phone, id_number FROM resident_details")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = tx.prepare("UPDATE resident_details SET phone_tail = ?2, id_tail = ?3 WHERE resident_id = ?1")?;
    for (id, phone, id_number) in details {
        update.execute(params![id, phone.as_deref().and_then(phone_tail), id_number.as_deref().and_then(id_tail)])?;
    }
    Ok(())
}

/// Deletes the projection of one grid and writes it again from its documents.
pub(crate) fn rebuild_grid(
    tx: &Transaction<'_>,
    grid: &str,
    register: &AutoCommit,
    sensitive: Option<&AutoCommit>,
) -> Result<()> {
    for kind in RecordKind::ALL {
        let table = table(kind);
        if let Some(search) = search_table(kind) {
            tx.execute(
                &format!("DELETE FROM {search} WHERE rowid IN (SELECT rowid FROM {table} WHERE grid_code = ?1)"),
                [grid],
            )?;
        }
        tx.execute(&format!("DELETE FROM {table} WHERE grid_code = ?1"), [grid])?;
    }
    tx.execute("DELETE FROM resident_tags WHERE resident_id IN (SELECT resident_id FROM resident_details WHERE grid_code = ?1)", [grid])?;
    tx.execute("DELETE FROM resident_details WHERE grid_code = ?1", [grid])?;
    for kind in RecordKind::ALL {
        let Some(container) = crdt::container(register, kind) else { continue };
        let ids: Vec<String> = register.keys(&container).collect();
        for id in ids {
            project_record(tx, grid, register, sensitive, kind, &id, Changed::Both)?;
        }
    }
    Ok(())
}

/// Deletes every projection row that came from a document being removed from the device.
pub(crate) fn purge(tx: &Transaction<'_>, doc: &crate::crdt::DocId) -> Result<()> {
    let key = doc.key.as_str();
    match doc.kind {
        DocKind::Register => {
            for kind in RecordKind::ALL {
                let table = table(kind);
                if let Some(search) = search_table(kind) {
                    tx.execute(
                        &format!(
                            "DELETE FROM {search} WHERE rowid IN (SELECT rowid FROM {table} WHERE grid_code = ?1)"
                        ),
                        [key],
                    )?;
                }
                tx.execute(&format!("DELETE FROM {table} WHERE grid_code = ?1"), [key])?;
            }
            tx.execute("DELETE FROM grids WHERE code = ?1", [key])?;
        }
        DocKind::Sensitive => {
            tx.execute(
                "DELETE FROM resident_tags WHERE resident_id IN (SELECT resident_id FROM resident_details WHERE grid_code = ?1)",
                [key],
            )?;
            tx.execute("DELETE FROM resident_details WHERE grid_code = ?1", [key])?;
            tx.execute("UPDATE grids SET has_sensitive = 0 WHERE code = ?1", [key])?;
        }
        DocKind::Reference => {}
        DocKind::Activity => {
            tx.execute(
                "DELETE FROM patrol_buildings WHERE patrol_id IN (SELECT id FROM patrols WHERE doc_key = ?1)",
                [key],
            )?;
            for table in ["visits", "checkins", "patrols", "views"] {
                tx.execute(&format!("DELETE FROM {table} WHERE doc_key = ?1"), [key])?;
            }
        }
        DocKind::Incident => {
            for table in ["incident_actions", "incident_departments"] {
                tx.execute(&format!("DELETE FROM {table} WHERE incident_id = ?1"), [key])?;
            }
            tx.execute("DELETE FROM incidents WHERE id = ?1", [key])?;
        }
    }
    Ok(())
}
