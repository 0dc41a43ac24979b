//! Opening a store file: refuse newer versions untouched, move unreadable files aside,
//! create fresh stores, and upgrade older ones one step at a time.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction};

use crate::{Error, Result};

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = 4;

const SCHEMA: &str = include_str!("sql/schema.sql");
const UPGRADE_FROM_1: &str = include_str!("sql/upgrade_from_1.sql");
const UPGRADE_FROM_2: &str = include_str!("sql/upgrade_from_2.sql");
const UPGRADE_FROM_3: &str = include_str!("sql/upgrade_from_3.sql");
#[cfg(test)]
pub(crate) const SCHEMA_V1: &str = include_str!("sql/v1.sql");

/// Checks an existing file before anything opens it: the 100-byte SQLite header says
/// whether it is a database and which schema version it holds (`user_version`, bytes
/// 60–63). Reading it with plain file I/O leaves a newer store exactly as it was — even
/// a read-only SQLite connection would create `-wal` and `-shm` files beside it.
///
/// An encrypted store (SQLCipher) has no plaintext header: with a key, its version is
/// checked once the key has opened it. A key for a plain file, or no key for what may be
/// an encrypted one (no header, a whole number of pages), is [`Error::WrongKey`] and the
/// file is left as it is; only a keyless open moves a file aside that cannot be a store.
pub(crate) fn check_existing(path: &Path, keyed: bool) -> Result<()> {
    match (read_header(path)?, keyed) {
        (Header::Missing, _) | (Header::NotPlain { .. }, true) => Ok(()),
        (Header::Plain { .. }, true) => Err(Error::WrongKey),
        // SQLCipher pages are powers of two of at least 512 bytes.
        (Header::NotPlain { len }, false) if len % 512 == 0 => Err(Error::WrongKey),
        (Header::NotPlain { .. }, false) => Err(Error::Corrupt { moved_to: move_aside(path)? }),
        (Header::Plain { version }, false) if version > SCHEMA_VERSION => {
            Err(Error::IncompatibleVersion { found: version, supported: SCHEMA_VERSION })
        }
        (Header::Plain { .. }, false) => Ok(()),
    }
}

/// What a store file's first 100 bytes say, read with plain file I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// No file, or an empty one: no store yet.
    Missing,
    /// A plain SQLite database with this `user_version`.
    Plain { version: u32 },
    /// Not a plain database: an encrypted store, or a damaged file (`len` bytes).
    NotPlain { len: u64 },
}

pub(crate) fn read_header(path: &Path) -> Result<Header> {
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let (header, len) = match std::fs::File::open(path) {
        Ok(file) => {
            let len = file.metadata()?.len();
            let mut header = Vec::with_capacity(100);
            std::io::Read::read_to_end(&mut std::io::Read::take(file, 100), &mut header)?;
            (header, len)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Header::Missing),
        Err(error) => return Err(error.into()),
    };
    if header.is_empty() {
        return Ok(Header::Missing);
    }
    if header.len() == 100 && &header[..16] == MAGIC {
        return Ok(Header::Plain { version: u32::from_be_bytes([header[60], header[61], header[62], header[63]]) });
    }
    Ok(Header::NotPlain { len })
}

/// Gives a connection its key: the first statement on it, before anything reads the file.
pub(crate) fn apply_key(conn: &Connection, key: Option<&[u8; 32]>) -> Result<()> {
    if let Some(key) = key {
        // A wrong key is our `WrongKey` error; SQLCipher would also write its own line to
        // stderr (logcat on Android) for each failed page check.
        conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        conn.execute_batch(&format!("PRAGMA key = \"{}\";", key_literal(key)))?;
    }
    // Sorts and temporary tables stay in memory: no plaintext temporary files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Checks that the key opens the file (SQLCipher reads nothing until asked):
/// [`Error::WrongKey`] otherwise, before anything could write to it.
pub(crate) fn check_key(conn: &Connection) -> Result<()> {
    match conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get::<_, i64>(0)) {
        Ok(_) => Ok(()),
        Err(error) if matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase)) => {
            Err(Error::WrongKey)
        }
        Err(error) => Err(error.into()),
    }
}

/// Re-encrypts the store with a new key (on the writer connection).
pub(crate) fn rekey(conn: &Connection, key: &[u8; 32]) -> Result<()> {
    conn.execute_batch(&format!("PRAGMA rekey = \"{}\";", key_literal(key)))?;
    Ok(())
}

/// A raw key as SQLCipher takes it (`PRAGMA key`, `ATTACH … KEY`): `x'<64 hex digits>'`.
pub(crate) fn key_literal(key: &[u8; 32]) -> String {
    format!("x'{}'", hex(key))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn is_unreadable(error: &Error) -> bool {
    matches!(
        error,
        Error::Sql(error) if matches!(
            error.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        )
    )
}

/// Moves an unreadable store aside (after SQLite found it damaged past its header).
pub(crate) fn set_aside(path: &Path) -> Result<PathBuf> {
    move_aside(path)
}

/// Renames an unreadable store (and its -wal and -shm files) aside: it may hold the only
/// copy of a day's field work, so it is never deleted.
fn move_aside(path: &Path) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let moved_to = PathBuf::from(format!("{}.unreadable-{stamp}", path.display()));
    std::fs::rename(path, &moved_to)?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::rename(&side, format!("{}{suffix}", moved_to.display()))?;
        }
    }
    Ok(moved_to)
}

/// Connection settings for every connection of a store.
pub(crate) fn configure(conn: &Connection) -> Result<()> {
    // WAL: readers never block the writer. synchronous=FULL: a committed capture survives
    // power loss (NORMAL in WAL mode may lose the last transactions).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten, not left in free pages: a purged grid leaves no trace.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // The projection uses a few statements per record kind; the default cache of 16
    // would evict and re-prepare them on every capture.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(())
}

pub(crate) const STATEMENT_CACHE_CAPACITY: usize = 128;

/// A test's way to stop a migration midway: if set, called inside the migration's
/// transaction after each upgrade step with the version that step reached, before the new
/// version is written and committed. `core/tests/upgrade.rs` kills the process there and
/// checks that the store is all old. Never set outside tests.
#[doc(hidden)]
pub static AFTER_UPGRADE_STEP: std::sync::OnceLock<fn(u32)> = std::sync::OnceLock::new();

fn after_upgrade_step(version: u32) {
    if let Some(hook) = AFTER_UPGRADE_STEP.get() {
        hook(version);
    }
}

/// Brings the schema to [`SCHEMA_VERSION`]: creates it, or runs each upgrade step.
/// All steps run in one transaction: a store is either all old or all new.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::IncompatibleVersion { found: version, supported: SCHEMA_VERSION });
    }
    if version == 0 {
        tx.execute_batch(SCHEMA)?;
    } else {
        if version < 2 {
            upgrade_from_1(&tx)?;
            after_upgrade_step(2);
        }
        if version < 3 {
            tx.execute_batch(UPGRADE_FROM_2)?;
            after_upgrade_step(3);
        }
        if version < 4 {
            tx.execute_batch(UPGRADE_FROM_3)?;
            after_upgrade_step(4);
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

fn upgrade_from_1(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(UPGRADE_FROM_1)?;
    super::projection::rebuild_search(tx)
}

/// A comparable description of a database's schema: every table's columns, every
/// index's columns, every virtual table's definition.
#[cfg(test)]
pub(crate) fn describe(conn: &Connection) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut objects = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema
         WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )?;
    let rows: Vec<(String, String, String, Option<String>)> = objects
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (kind, name, table, sql) in rows {
        match kind.as_str() {
            "table" if sql.as_deref().is_some_and(|sql| sql.contains("VIRTUAL")) => {
                out.push(format!("virtual {name}: {}", normalize(sql.as_deref().unwrap_or(""))));
            }
            "table" => {
                let strict = sql.as_deref().is_some_and(|sql| sql.contains("STRICT"));
                out.push(format!("table {name} strict={strict}"));
                let mut columns = conn.prepare(&format!("PRAGMA table_xinfo(\"{name}\")"))?;
                let columns: Vec<String> = columns
                    .query_map([], |row| {
                        Ok(format!(
                            "  {} {} notnull={} default={:?} pk={}",
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, Option<String>>(4)?,
                            row.get::<_, i64>(5)?
                        ))
                    })?
                    .collect::<Result<_, _>>()?;
                out.extend(columns);
            }
            "index" => {
                let mut columns = conn.prepare(&format!("PRAGMA index_info(\"{name}\")"))?;
                let columns: Vec<String> =
                    columns.query_map([], |row| row.get::<_, String>(2))?.collect::<Result<_, _>>()?;
                out.push(format!("index {name} on {table}({})", columns.join(",")));
            }
            _ => out.push(format!("{kind} {name}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Store;

    /// A store as version 1 left it: the schema and projection rows, no search indexes.
    fn version_1_store(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(
            "INSERT INTO buildings (id, grid_code, name, address, usage, status)
                 VALUES ('01900000-0000-7000-8000-000000000001', '440703001001001', '2栋', '江门市蓬江区港口路18号2栋', 'residential', 'active');
             INSERT INTO households (id, grid_code, building, room, residence_type, status)
                 VALUES ('01900000-0000-7000-8000-000000000002', '440703001001001', '01900000-0000-7000-8000-000000000001', '301', 'registered', 'active');
             INSERT INTO residents (id, grid_code, household, name, gender, relation, residence_type, status)
                 VALUES ('01900000-0000-7000-8000-000000000003', '440703001001001', '01900000-0000-7000-8000-000000000002', '陈秀英', 'male', 'head', 'registered', 'active');
             INSERT INTO resident_details (resident_id, grid_code, id_number, phone, birth_date)
                 VALUES ('01900000-0000-7000-8000-000000000003', '440703001001001', '11010519491231002X', '13812345678', '1949-12-31');",
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }

    #[test]
    fn migrated_database_equals_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        version_1_store(&old);
        drop(Store::open(&old).unwrap());
        let fresh = dir.path().join("fresh.db");
        drop(Store::open(&fresh).unwrap());

        let migrated = describe(&Connection::open(&old).unwrap()).unwrap();
        let created = describe(&Connection::open(&fresh).unwrap()).unwrap();
        assert_eq!(migrated, created);
        let version: u32 =
            Connection::open(&old).unwrap().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn migration_fills_the_search_indexes_from_existing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        version_1_store(&path);
        let store = Store::open(&path).unwrap();
        let by_name = store.search_residents("秀英", 10).unwrap();
        let by_phone = store.search_residents("5678", 10).unwrap();
        let by_id = store.search_residents("002X", 10).unwrap();
        let by_address = store.search_residents("港口路", 10).unwrap();
        for hits in [by_name, by_phone, by_id, by_address] {
            assert_eq!(hits.len(), 1);
            assert_eq!(hits[0].name, "陈秀英");
        }
    }

    #[test]
    /// (`document_chunks.doc_id` is left unindexed on purpose: see schema.sql.)
    fn fresh_schema_has_an_index_for_every_reference_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let description = describe(&conn).unwrap();
        for (table, column) in [
            ("households", "building"),
            ("households", "grid_code"),
            ("residents", "household"),
            ("residents", "grid_code"),
            ("organizations", "building"),
            ("buildings", "grid_code"),
            ("components", "grid_code"),
            ("resident_tags", "tag"),
        ] {
            let indexed = description
                .iter()
                .any(|line| line.starts_with("index ") && line.contains(&format!("on {table}({column}")));
            // A WITHOUT ROWID table is stored in its primary key's order: a leading key column is indexed.
            let leads_primary_key: bool = conn
                .query_row(
                    &format!("SELECT pk = 1 FROM pragma_table_info('{table}') WHERE name = ?1"),
                    [column],
                    |row| row.get(0),
                )
                .unwrap_or(false);
            assert!(indexed || leads_primary_key, "no index on {table}({column}) in {description:#?}");
        }
    }

    #[test]
    fn every_register_field_has_a_projection_column() {
        use crate::crdt::{DocKind, FieldKind, fields_of};
        use crate::model::RecordKind;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        for kind in RecordKind::ALL {
            for spec in fields_of(kind) {
                let table = match (spec.doc, spec.kind) {
                    (_, FieldKind::Tags) => continue,
                    (DocKind::Register | DocKind::Incident | DocKind::Reference | DocKind::Activity, _) => {
                        kind.plural()
                    }
                    (DocKind::Sensitive, _) => "resident_details",
                };
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
                        [spec.key],
                        |row| row.get(0),
                    )
                    .unwrap();
                assert_eq!(n, 1, "{table}.{} missing", spec.key);
            }
        }
    }
}
