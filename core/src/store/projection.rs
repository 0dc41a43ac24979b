//! The projection: ordinary rows and search indexes derived from the documents.
//!
//! Every write goes through [`project_record`], both for a capture and for a rebuild, so
//! a rebuilt projection equals the incrementally maintained one.

use automerge::{AutoCommit, ReadDoc, ScalarValue};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Transaction, params};

use crate::Result;
use crate::crdt::{self, DocKind, FieldKind, RecordMap, fields_of};
use crate::model::{IdNumber, Phone, RecordKind};

pub(crate) fn table(kind: RecordKind) -> &'static str {
    kind.plural()
}

/// Writes (or deletes) the projection rows of one record from the grid's documents.
/// `sensitive` is `None` on a device that does not hold the sensitive document.
pub(crate) fn project_record(
    tx: &Transaction<'_>,
    grid: &str,
    register: &AutoCommit,
    sensitive: Option<&AutoCommit>,
    kind: RecordKind,
    id: &str,
) -> Result<()> {
    let table = table(kind);
    let previous: Option<(i64, Option<String>)> = tx
        .prepare_cached(&format!("SELECT rowid, {} FROM {table} WHERE id = ?1", search_text_sql(kind)))?
        .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;

    let Some(record) = crdt::read_record(register, DocKind::Register, kind, id) else {
        if let Some((rowid, _)) = previous {
            delete_search(tx, kind, rowid)?;
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE rowid = ?1"))?.execute([rowid])?;
        }
        if kind == RecordKind::Resident {
            delete_details(tx, id)?;
        }
        return Ok(());
    };

    let columns: Vec<&str> = register_columns(kind).collect();
    let sql = format!(
        "INSERT INTO {table} (id, grid_code, {cols}) VALUES (?1, ?2, {params})
         ON CONFLICT(id) DO UPDATE SET grid_code = excluded.grid_code, {updates}
         RETURNING rowid",
        cols = columns.join(", "),
        params = (0..columns.len()).map(|i| format!("?{}", i + 3)).collect::<Vec<_>>().join(", "),
        updates = columns.iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", "),
    );
    let mut values: Vec<SqlValue> = vec![SqlValue::Text(id.to_owned()), SqlValue::Text(grid.to_owned())];
    values.extend(columns.iter().map(|column| sql_value(record.fields.get(column))));
    let rowid: i64 = tx.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(values), |row| row.get(0))?;

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

    if kind == RecordKind::Resident
        && let Some(sensitive) = sensitive
    {
        match crdt::read_record(sensitive, DocKind::Sensitive, kind, id) {
            Some(details) => write_details(tx, grid, id, &details)?,
            None => delete_details(tx, id)?,
        }
    }
    Ok(())
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
    let id_number = details.text("id_number");
    let phone = details.text("phone");
    tx.prepare_cached(
        "INSERT INTO resident_details (resident_id, grid_code, id_number, phone, birth_date, phone_tail, id_tail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(resident_id) DO UPDATE SET grid_code = excluded.grid_code,
            id_number = excluded.id_number, phone = excluded.phone, birth_date = excluded.birth_date,
            phone_tail = excluded.phone_tail, id_tail = excluded.id_tail",
    )?
    .execute(params![
        id,
        grid,
        id_number,
        phone,
        details.text("birth_date"),
        phone.and_then(phone_tail),
        id_number.and_then(id_tail),
    ])?;
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
    let id_number = IdNumber::parse(stored).ok()?;
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
        let grams = text.split('\n').map(bigrams).collect::<Vec<_>>().join(" ");
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
            project_record(tx, grid, register, sensitive, kind, &id)?;
        }
    }
    Ok(())
}
