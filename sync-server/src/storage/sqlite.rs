//! The embedded default: one SQLite file.
//!
//! The schema carries its version in `PRAGMA user_version`; opening an older database
//! upgrades it in one transaction (`UPGRADE_FROM_0`: workers' posted contact;
//! `UPGRADE_FROM_1`: token expiry, devices' last request, changes' receive time;
//! `UPGRADE_FROM_2`: devices' last sync report), and a database from a newer server is
//! refused untouched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::*;

use super::group_commit::{self, Session};

/// The embedded default: one SQLite file, in WAL mode: reads on a small pool of
/// connections never wait for the one writer, whose thread commits the writes queued
/// while it was busy together (`group_commit`).
pub struct SqliteStorage {
    readers: r2d2::Pool<Readers>,
    writer: group_commit::Writer<Connection>,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage").field("readers", &self.readers.state()).finish_non_exhaustive()
    }
}

/// The writer's transaction control, as cached statements (rusqlite's `Transaction` and
/// `Savepoint` parse theirs again each time: a tenth of the server's CPU under load).
impl Session for Connection {
    const BEGIN: &'static [&'static str] = &["BEGIN IMMEDIATE"];

    fn control(&mut self, statements: &[&'static str]) -> Result<()> {
        for sql in statements {
            self.prepare_cached(sql)?.execute([])?;
        }
        Ok(())
    }
}

/// Read connections: at most this many reads at a time (more wait for one to be free).
const READERS: u32 = 4;

/// How much of the database file each connection maps (address space, not memory).
const MMAP_BYTES: i64 = 1 << 30;

/// Prepared statements kept per connection: more than this storage has.
const STATEMENT_CACHE: usize = 64;

/// Opens the read connections of the pool.
#[derive(Debug)]
struct Readers {
    path: PathBuf,
}

impl r2d2::ManageConnection for Readers {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", true)?;
        // Pages read from the mapped file, not copied in by a read call each: every commit
        // drops a reader's page cache, and readers run while commits go on all the time.
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _: &mut Connection) -> bool {
        false
    }
}

/// The schema version this server writes (`PRAGMA user_version`). 0: before versions
/// were kept; 1: workers' posted contact (`name`, `phone`); 2: devices' token expiry and
/// last request, changes' receive time; 3: devices' last sync report.
pub const SCHEMA_VERSION: i64 = 3;

/// How far a restore moves the log's numbering past the backup's last change: more
/// changes than the server could have accepted between the backup and the restore.
pub const RESTORE_SEQ_GAP: i64 = 1_000_000;

/// The current schema; `open` creates what is missing after upgrading older tables.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS grids (code TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS workers (
    person TEXT PRIMARY KEY, role TEXT NOT NULL, department TEXT,
    grids TEXT NOT NULL,  -- comma-separated grid codes
    name TEXT,  -- the name posted on the card of the worker's grids; NULL: not posted
    phone TEXT  -- the work phone posted with it, normalized
) STRICT;
CREATE TABLE IF NOT EXISTS enrollment_codes (
    code_hash TEXT PRIMARY KEY, person TEXT NOT NULL REFERENCES workers(person), created_ms INTEGER NOT NULL,
    used_ms INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS enrollment_codes_person ON enrollment_codes(person);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, person TEXT NOT NULL REFERENCES workers(person), actor BLOB NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
    token_expires_ms INTEGER,  -- NULL: enrolled before tokens expired
    last_seen_ms INTEGER,
    last_sync_ms INTEGER, version TEXT, pending INTEGER  -- its last sync's report; NULL: none yet
) STRICT;
CREATE INDEX IF NOT EXISTS devices_person ON devices(person);
CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, snapshot BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS doc_scopes (
    scope TEXT NOT NULL, doc_id TEXT NOT NULL REFERENCES documents(doc_id), PRIMARY KEY (scope, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_scopes_doc ON doc_scopes(doc_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    hash BLOB NOT NULL UNIQUE, actor BLOB NOT NULL, bytes BLOB NOT NULL,
    received_ms INTEGER  -- the server's clock; NULL: stored before it was kept
) STRICT;
CREATE INDEX IF NOT EXISTS changes_doc ON changes(doc_id, seq);
CREATE TABLE IF NOT EXISTS device_docs (
    -- What each device holds. A snapshot sent is 'sent' until the device confirms it
    -- ('held'); a removal is 'removing' until confirmed, then the row goes.
    device_id TEXT NOT NULL REFERENCES devices(id), doc_id TEXT NOT NULL, up_to_seq INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'held',
    PRIMARY KEY (device_id, doc_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (
    -- A blob named by the SHA-256 of its bytes ('sha256:' and 64 lowercase hex digits):
    -- complete once all its bytes arrived and hashed to its name; until then one device's
    -- upload in progress (each device its own, so no device can spoil another's upload).
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices(id),  -- the uploader
    size INTEGER NOT NULL,
    received INTEGER NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS blobs_complete ON blobs(hash) WHERE complete = 1;
CREATE UNIQUE INDEX IF NOT EXISTS blobs_upload ON blobs(device_id, hash) WHERE complete = 0;
CREATE INDEX IF NOT EXISTS blobs_device ON blobs(device_id);
CREATE TABLE IF NOT EXISTS blob_chunks (
    -- A blob's bytes in the chunks they arrived in: [first, first + n_bytes).
    blob_id INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    first INTEGER NOT NULL,
    n_bytes INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (blob_id, first)
) STRICT;
CREATE TABLE IF NOT EXISTS blob_refs (
    -- Which documents refer to which blobs (incidents' photos and evidence): a device may
    -- download a blob that a document it may read refers to.
    hash TEXT NOT NULL, doc_id TEXT NOT NULL REFERENCES documents(doc_id), PRIMARY KEY (hash, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_refs_doc ON blob_refs(doc_id);
";

/// Version 0 → 1: workers get their posted contact.
const UPGRADE_FROM_0: &str = "
ALTER TABLE workers ADD COLUMN name TEXT;
ALTER TABLE workers ADD COLUMN phone TEXT;
";

/// Version 1 → 2: tokens expire; devices' last request; changes' receive time.
const UPGRADE_FROM_1: &str = "
ALTER TABLE devices ADD COLUMN token_expires_ms INTEGER;
ALTER TABLE devices ADD COLUMN last_seen_ms INTEGER;
ALTER TABLE changes ADD COLUMN received_ms INTEGER;
";

/// Version 2 → 3: devices' last sync report.
const UPGRADE_FROM_2: &str = "
ALTER TABLE devices ADD COLUMN last_sync_ms INTEGER;
ALTER TABLE devices ADD COLUMN version TEXT;
ALTER TABLE devices ADD COLUMN pending INTEGER;
";

/// Brings a database to [`SCHEMA_VERSION`] in one transaction: each upgrade step from
/// its version, then whatever tables are missing.
fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StorageError::NewerSchema { found: version, supported: SCHEMA_VERSION });
    }
    let has_workers: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'workers')",
        [],
        |row| row.get(0),
    )?;
    // A database without tables is new: the schema below creates the current tables.
    if has_workers {
        if version < 1 {
            tx.execute_batch(UPGRADE_FROM_0)?;
        }
        if version < 2 {
            tx.execute_batch(UPGRADE_FROM_1)?;
        }
        if version < 3 {
            tx.execute_batch(UPGRADE_FROM_2)?;
        }
    }
    tx.execute_batch(SCHEMA)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// A document's version: the sequence number of its last change, 0 for none.
const DOCUMENT_VERSION: &str =
    "SELECT coalesce((SELECT max(seq) FROM changes WHERE doc_id = ?1), 0) FROM documents WHERE doc_id = ?1";

fn worker_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Worker, WorkerContact)> {
    worker_row_at(row, 0)
}

/// A worker's columns (`WORKER_COLUMNS`) after `first` others in a row.
fn worker_row_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<(Worker, WorkerContact)> {
    let grids: String = row.get(first + 3)?;
    let worker = Worker {
        person: row.get(first)?,
        role: row.get(first + 1)?,
        department: row.get(first + 2)?,
        grids: grids.split(',').filter(|code| !code.is_empty()).map(str::to_owned).collect(),
    };
    Ok((worker, WorkerContact { name: row.get(first + 4)?, phone: row.get(first + 5)? }))
}

const BLOB_COLUMNS: &str = "id, hash, size, received, complete";

fn blob_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<BlobRecord> {
    Ok(BlobRecord {
        id: row.get(0)?,
        hash: row.get(1)?,
        size: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        received: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
        complete: row.get(4)?,
    })
}

/// Sizes and offsets are at most `MAX_BLOB_BYTES`; SQLite integers are signed.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn complete_blob(conn: &Connection, hash: &str) -> rusqlite::Result<Option<BlobRecord>> {
    conn.query_row(&format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE hash = ?1 AND complete = 1"), [hash], blob_record)
        .optional()
}

fn blob_upload(conn: &Connection, device: &str, hash: &str) -> rusqlite::Result<Option<BlobRecord>> {
    conn.query_row(
        &format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE device_id = ?1 AND hash = ?2 AND complete = 0"),
        params![device, hash],
        blob_record,
    )
    .optional()
}

impl SqliteStorage {
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Before WAL mode, which would rewrite the header of a newer server's file.
        migrate(&mut conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .test_on_check_out(false)
            .build(Readers { path: path.to_owned() })
            .map_err(|error| StorageError::Conflict(format!("the database's read connections: {error}")))?;
        let writer = group_commit::Writer::start(conn)
            .map_err(|error| StorageError::Conflict(format!("the database's writer thread: {error}")))?;
        Ok(Self { readers, writer })
    }

    /// Copies the database, consistent, into a new file at `to` while the server may run
    /// (SQLite's online backup, a few hundred pages at a time so writers are not held up).
    pub fn backup_to(&self, to: &Path) -> Result<()> {
        if to.exists() {
            return Err(StorageError::Conflict(format!("{} exists: the backup goes to a new file", to.display())));
        }
        let mut copy = Connection::open(to)?;
        let conn = self.read()?;
        let backup = rusqlite::backup::Backup::new(&conn, &mut copy)?;
        backup.run_to_completion(256, std::time::Duration::from_millis(5), None)?;
        Ok(())
    }

    /// Replaces the whole database by a backup (checked first: a wangge-server database
    /// of this or an older version; the current one is left untouched otherwise), upgrades
    /// it, and moves the log's numbering [`RESTORE_SEQ_GAP`] past the backup's, so that a
    /// device whose cursor is beyond what the backup holds skips none of the next changes.
    pub fn restore_from(&self, from: &Path) -> Result<()> {
        let source = Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let version: i64 = source.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StorageError::NewerSchema { found: version, supported: SCHEMA_VERSION });
        }
        let is_wangge: bool = source.query_row(
            "SELECT count(*) = 2 FROM sqlite_schema WHERE type = 'table' AND name IN ('changes', 'devices')",
            [],
            |row| row.get(0),
        )?;
        if !is_wangge {
            return Err(StorageError::Conflict(format!("{} is not a wangge-server database", from.display())));
        }
        self.writer.alone(move |conn| {
            rusqlite::backup::Backup::new(&source, conn)?.run_to_completion(
                256,
                std::time::Duration::from_millis(5),
                None,
            )?;
            migrate(conn)?;
            // AUTOINCREMENT continues after the greater of this row and the table's largest seq.
            let moved = conn.execute(
                "UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT max(seq) FROM changes), 0)) + ?1
                 WHERE name = 'changes'",
                [RESTORE_SEQ_GAP],
            )?;
            if moved == 0 {
                conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('changes', ?1)", [RESTORE_SEQ_GAP])?;
            }
            Ok(())
        })
    }

    /// The first row of a read, if any (the statement is prepared once per connection).
    fn read_row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        Ok(self.read()?.prepare_cached(sql)?.query_row(params, row).optional()?)
    }

    /// A read connection of the pool (waits while all are busy).
    fn read(&self) -> Result<r2d2::PooledConnection<Readers>> {
        self.readers
            .get()
            .map_err(|error| StorageError::Conflict(format!("no read connection to the database: {error}")))
    }
}

impl Storage for SqliteStorage {
    fn create_grid(&self, grid: &GridRecord) -> Result<()> {
        let grid = grid.clone();
        self.writer.write(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO grids (code, name, kind) VALUES (?1, ?2, ?3)",
                params![grid.code, grid.name, grid.kind],
            )?;
            Ok(())
        })
    }

    fn grid(&self, code: &str) -> Result<Option<GridRecord>> {
        self.read_row("SELECT code, name, kind FROM grids WHERE code = ?1", [code], |row| {
            Ok(GridRecord { code: row.get(0)?, name: row.get(1)?, kind: row.get(2)? })
        })
    }

    fn grids_within(&self, prefix: &str) -> Result<Vec<GridRecord>> {
        let conn = self.read()?;
        let mut statement = conn.prepare_cached(
            "SELECT code, name, kind FROM grids WHERE substr(code, 1, length(?1)) = ?1 ORDER BY code",
        )?;
        let rows = statement
            .query_map([prefix], |row| Ok(GridRecord { code: row.get(0)?, name: row.get(1)?, kind: row.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn create_worker(&self, worker: &Worker) -> Result<()> {
        let worker = worker.clone();
        self.writer.write(move |conn| {
            conn.execute(
                "INSERT INTO workers (person, role, department, grids) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(person) DO UPDATE SET
                     role = excluded.role, department = excluded.department, grids = excluded.grids",
                params![worker.person, worker.role, worker.department, worker.grids.join(",")],
            )?;
            Ok(())
        })
    }

    fn worker(&self, person: &str) -> Result<Option<Worker>> {
        Ok(self
            .read_row(&format!("SELECT {WORKER_COLUMNS} FROM workers WHERE person = ?1"), [person], worker_row)?
            .map(|(worker, _)| worker))
    }

    fn set_worker_contact(&self, person: &str, contact: &WorkerContact) -> Result<bool> {
        let (person, contact) = (person.to_owned(), contact.clone());
        self.writer.write(move |conn| {
            let n = conn.execute(
                "UPDATE workers SET name = ?2, phone = ?3 WHERE person = ?1",
                params![person, contact.name, contact.phone],
            )?;
            Ok(n > 0)
        })
    }

    fn worker_contact(&self, person: &str) -> Result<Option<WorkerContact>> {
        Ok(self
            .read_row(&format!("SELECT {WORKER_COLUMNS} FROM workers WHERE person = ?1"), [person], worker_row)?
            .map(|(_, contact)| contact))
    }

    fn grid_staff(&self, grid: &str) -> Result<Vec<(Worker, WorkerContact)>> {
        let conn = self.read()?;
        // Grids are a comma-separated list: match a whole item, so that one code never
        // matches inside another.
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {WORKER_COLUMNS} FROM workers WHERE instr(',' || grids || ',', ',' || ?1 || ',') > 0
             ORDER BY person"
        ))?;
        let rows = statement.query_map([grid], worker_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn create_enrollment_code(&self, person: &str, code_hash: &str, now_ms: i64) -> Result<()> {
        let (person, code_hash) = (person.to_owned(), code_hash.to_owned());
        self.writer.write(move |conn| {
            conn.execute(
                "INSERT INTO enrollment_codes (code_hash, person, created_ms) VALUES (?1, ?2, ?3)",
                params![code_hash, person, now_ms],
            )?;
            Ok(())
        })
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &str,
        device: &Device,
        token_hash: &str,
        now_ms: i64,
        issued_after_ms: i64,
    ) -> Result<Option<(String, String)>> {
        let (code_hash, device, token_hash) = (code_hash.to_owned(), device.clone(), token_hash.to_owned());
        self.writer.write(move |tx| {
            let person: Option<String> = tx
                .query_row(
                    "UPDATE enrollment_codes SET used_ms = ?2
                     WHERE code_hash = ?1 AND used_ms IS NULL AND created_ms >= ?3 RETURNING person",
                    params![code_hash, now_ms, issued_after_ms],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(person) = person else { return Ok(None) };
            let enrolled: Option<(String, String, bool)> = tx
                .query_row("SELECT id, person, revoked FROM devices WHERE actor = ?1", [&device.actor], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()?;
            let device_id = match enrolled {
                None => {
                    tx.execute(
                        "INSERT INTO devices (id, person, actor, token_hash, name, created_ms, token_expires_ms, last_seen_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
                        params![device.id, person, device.actor, token_hash, "device", now_ms, device.token_expires_ms],
                    )?;
                    device.id.clone()
                }
                Some((id, enrolled_person, false)) if enrolled_person == person => {
                    tx.execute(
                        "UPDATE devices SET token_hash = ?2, token_expires_ms = ?3, last_seen_ms = ?4 WHERE id = ?1",
                        params![id, token_hash, device.token_expires_ms, now_ms],
                    )?;
                    id
                }
                // The code stays unused: the error undoes this write.
                Some(_) => return Err(StorageError::Conflict("this actor id is already enrolled".into())),
            };
            Ok(Some((person, device_id)))
        })
    }

    fn device_by_token(&self, token_hash: &str) -> Result<Option<(Device, Worker)>> {
        static SQL: LazyLock<(String, usize)> = LazyLock::new(|| device_by_token_sql("?1"));
        let (sql, columns) = &*SQL;
        self.read_row(sql, [token_hash], |row| Ok((device_row(row)?, worker_row_at(row, *columns)?.0)))
    }

    fn changes_after(&self, after_seq: i64, limit: usize) -> Result<Vec<LogEntry>> {
        let conn = self.read()?;
        let mut statement = conn.prepare_cached(
            "SELECT seq, doc_id, hash, actor, bytes, received_ms FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = statement.query_map(params![after_seq, limit as i64], log_entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn changes_of(&self, doc: &str) -> Result<Vec<LogEntry>> {
        let conn = self.read()?;
        let mut statement = conn.prepare_cached(
            "SELECT seq, doc_id, hash, actor, bytes, received_ms FROM changes WHERE doc_id = ?1 ORDER BY seq",
        )?;
        let rows = statement.query_map([doc], log_entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn documents_changed(&self, after_seq: i64, up_to_seq: i64) -> Result<Vec<String>> {
        let conn = self.read()?;
        let mut statement =
            conn.prepare_cached("SELECT DISTINCT doc_id FROM changes WHERE seq > ?1 AND seq <= ?2 ORDER BY doc_id")?;
        let rows = statement.query_map(params![after_seq, up_to_seq], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn devices(&self) -> Result<Vec<Device>> {
        let conn = self.read()?;
        let mut statement = conn.prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id"))?;
        let rows = statement.query_map([], device_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoke_device(&self, device_id: &str) -> Result<bool> {
        let device_id = device_id.to_owned();
        self.writer
            .write(move |conn| Ok(conn.execute("UPDATE devices SET revoked = 1 WHERE id = ?1", [device_id])? > 0))
    }

    fn record_sync(&self, device_id: &str, report: &SyncReport) -> Result<()> {
        let (device_id, report) = (device_id.to_owned(), report.clone());
        self.writer.write(move |conn| {
            conn.execute(
                "UPDATE devices SET last_sync_ms = ?2, version = ?3, pending = ?4 WHERE id = ?1",
                params![device_id, report.at_ms, report.version, report.pending],
            )?;
            Ok(())
        })
    }

    fn renew_device(&self, device_id: &str, last_seen_ms: i64, token_expires_ms: i64) -> Result<()> {
        let device_id = device_id.to_owned();
        self.writer.write(move |conn| {
            conn.execute(
                "UPDATE devices SET last_seen_ms = ?2, token_expires_ms = ?3 WHERE id = ?1",
                params![device_id, last_seen_ms, token_expires_ms],
            )?;
            Ok(())
        })
    }

    fn snapshot(&self, doc: &str) -> Result<Option<Vec<u8>>> {
        self.read_row("SELECT snapshot FROM documents WHERE doc_id = ?1", [doc], |row| row.get(0))
    }

    fn document(&self, doc: &str) -> Result<Option<StoredDocument>> {
        // One statement: one read transaction, so the version is the snapshot's.
        self.read_row(
            "SELECT snapshot, coalesce((SELECT max(seq) FROM changes WHERE doc_id = ?1), 0)
             FROM documents WHERE doc_id = ?1",
            [doc],
            |row| Ok(StoredDocument { snapshot: row.get(0)?, version: row.get(1)? }),
        )
    }

    fn commit(&self, updates: &[DocUpdate], received_ms: i64) -> Result<()> {
        let updates = updates.to_vec();
        // The one writer: the versions compared are the ones written over, and sequence
        // numbers become visible in order.
        self.writer.write(move |tx| {
            for update in &updates {
                let version: Option<i64> =
                    tx.query_row(DOCUMENT_VERSION, [&update.doc], |row| row.get(0)).optional()?;
                if version != update.base {
                    return Err(StorageError::DocumentChanged { doc: update.doc.clone() });
                }
                tx.execute(
                    "INSERT INTO documents (doc_id, snapshot) VALUES (?1, ?2)
                     ON CONFLICT(doc_id) DO UPDATE SET snapshot = excluded.snapshot",
                    params![update.doc, update.snapshot],
                )?;
                tx.execute("DELETE FROM doc_scopes WHERE doc_id = ?1", [&update.doc])?;
                for scope in &update.scopes {
                    tx.execute("INSERT INTO doc_scopes (scope, doc_id) VALUES (?1, ?2)", params![scope, update.doc])?;
                }
                for (hash, actor, bytes) in &update.changes {
                    tx.execute(
                        "INSERT OR IGNORE INTO changes (doc_id, hash, actor, bytes, received_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![update.doc, hash, actor, bytes, received_ms],
                    )?;
                }
                tx.execute("DELETE FROM blob_refs WHERE doc_id = ?1", [&update.doc])?;
                for hash in &update.blob_refs {
                    tx.execute(
                        "INSERT OR IGNORE INTO blob_refs (hash, doc_id) VALUES (?1, ?2)",
                        params![hash, update.doc],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn visible_documents(&self, scopes: &[String]) -> Result<HashSet<String>> {
        let conn = self.read()?;
        let mut found = HashSet::new();
        let mut statement = conn.prepare_cached("SELECT doc_id FROM doc_scopes WHERE scope = ?1")?;
        for scope in scopes {
            for doc in statement.query_map([scope], |row| row.get::<_, String>(0))? {
                found.insert(doc?);
            }
        }
        Ok(found)
    }

    fn held_documents(&self, device: &str) -> Result<HashMap<String, (i64, HeldState)>> {
        let conn = self.read()?;
        let mut statement =
            conn.prepare_cached("SELECT doc_id, up_to_seq, state FROM device_docs WHERE device_id = ?1")?;
        let rows = statement.query_map([device], |row| {
            let state: String = row.get(2)?;
            Ok((row.get(0)?, (row.get(1)?, HeldState::from_code(&state))))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_held_many(&self, device: &str, held: &[(String, i64, HeldState)]) -> Result<()> {
        if held.is_empty() {
            return Ok(());
        }
        let (device, held) = (device.to_owned(), held.to_vec());
        self.writer.write(move |conn| {
            let mut statement = conn.prepare_cached(
                "INSERT INTO device_docs (device_id, doc_id, up_to_seq, state) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(device_id, doc_id) DO UPDATE SET up_to_seq = excluded.up_to_seq, state = excluded.state",
            )?;
            for (doc, up_to_seq, state) in &held {
                statement.execute(params![device, doc, up_to_seq, state.code()])?;
            }
            Ok(())
        })
    }

    fn forget_held(&self, device: &str, doc: &str) -> Result<()> {
        let (device, doc) = (device.to_owned(), doc.to_owned());
        self.writer.write(move |conn| {
            conn.execute("DELETE FROM device_docs WHERE device_id = ?1 AND doc_id = ?2", params![device, doc])?;
            Ok(())
        })
    }

    fn log_after(&self, cursor: i64, device: &str, limit: usize) -> Result<Vec<LogEntry>> {
        let conn = self.read()?;
        // A join, not a list of ids: a center holds tens of thousands of documents.
        let mut statement = conn.prepare_cached(
            "SELECT c.seq, c.doc_id, c.hash, c.actor, c.bytes, c.received_ms FROM changes c
             JOIN device_docs d ON d.doc_id = c.doc_id AND d.device_id = ?2 AND d.state = 'held'
             WHERE c.seq > ?1 ORDER BY c.seq LIMIT ?3",
        )?;
        let rows = statement.query_map(params![cursor, device, limit as i64], log_entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn log_after_in(&self, cursor: i64, docs: &[String], limit: usize) -> Result<Vec<LogEntry>> {
        // One statement over the list (as JSON): a statement per document cost more here
        // than the rows it reads.
        let docs = serde_json::to_string(docs).map_err(|error| StorageError::Conflict(error.to_string()))?;
        let conn = self.read()?;
        let mut statement = conn.prepare_cached(
            "SELECT seq, doc_id, hash, actor, bytes, received_ms FROM changes
             WHERE doc_id IN (SELECT value FROM json_each(?1)) AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = statement.query_map(params![docs, cursor, limit as i64], log_entry)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn max_seq(&self) -> Result<i64> {
        Ok(self.read_row("SELECT coalesce(max(seq), 0) FROM changes", [], |row| row.get(0))?.unwrap_or(0))
    }

    fn blob(&self, hash: &str) -> Result<Option<BlobRecord>> {
        Ok(complete_blob(&*self.read()?, hash)?)
    }

    fn blob_upload(&self, device: &str, hash: &str) -> Result<Option<BlobRecord>> {
        Ok(blob_upload(&*self.read()?, device, hash)?)
    }

    fn append_blob_chunk(
        &self,
        device: &str,
        hash: &str,
        size: u64,
        offset: u64,
        chunk: &[u8],
        now_ms: i64,
    ) -> Result<BlobAppend> {
        let (device, hash, chunk) = (device.to_owned(), hash.to_owned(), chunk.to_vec());
        self.writer.write(move |tx| {
            if let Some(complete) = complete_blob(tx, &hash)? {
                return Ok(BlobAppend::Complete(complete));
            }
            let id = match blob_upload(tx, &device, &hash)? {
                None if offset != 0 => return Ok(BlobAppend::WrongOffset { received: 0 }),
                None => tx.query_row(
                    "INSERT INTO blobs (hash, device_id, size, received, updated_ms) VALUES (?1, ?2, ?3, 0, ?4)
                     RETURNING id",
                    params![hash, device, int(size), now_ms],
                    |row| row.get(0),
                )?,
                Some(upload) if upload.size != size && offset == 0 => {
                    tx.execute("DELETE FROM blob_chunks WHERE blob_id = ?1", [upload.id])?;
                    tx.execute(
                        "UPDATE blobs SET size = ?2, received = 0 WHERE id = ?1",
                        params![upload.id, int(size)],
                    )?;
                    upload.id
                }
                Some(upload) if upload.size != size => return Ok(BlobAppend::WrongSize { size: upload.size }),
                Some(upload) if upload.received != offset => {
                    return Ok(BlobAppend::WrongOffset { received: upload.received });
                }
                Some(upload) => upload.id,
            };
            if !chunk.is_empty() {
                tx.execute(
                    "INSERT INTO blob_chunks (blob_id, first, n_bytes, bytes) VALUES (?1, ?2, ?3, ?4)",
                    params![id, int(offset), chunk.len() as i64, chunk],
                )?;
            }
            let record = tx.query_row(
                &format!(
                    "UPDATE blobs SET received = received + ?2, updated_ms = ?3 WHERE id = ?1 RETURNING {BLOB_COLUMNS}"
                ),
                params![id, chunk.len() as i64, now_ms],
                blob_record,
            )?;
            Ok(BlobAppend::Appended(record))
        })
    }

    fn read_blob(&self, id: i64, offset: u64, max: usize) -> Result<Vec<u8>> {
        let conn = self.read()?;
        let end = offset.saturating_add(max as u64);
        let mut statement = conn.prepare_cached(
            "SELECT first, bytes FROM blob_chunks WHERE blob_id = ?1 AND first < ?3 AND first + n_bytes > ?2
             ORDER BY first",
        )?;
        let rows = statement.query_map(params![id, int(offset), int(end)], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        let mut bytes = Vec::new();
        for row in rows {
            let (first, chunk) = row?;
            let first = u64::try_from(first).unwrap_or(0);
            let from = offset.saturating_sub(first) as usize;
            let to = (end - first).min(chunk.len() as u64) as usize;
            bytes.extend_from_slice(&chunk[from..to]);
        }
        Ok(bytes)
    }

    fn finish_blob_upload(&self, id: i64) -> Result<()> {
        self.writer.write(move |tx| {
            let hash: Option<String> = tx
                .query_row("SELECT hash FROM blobs WHERE id = ?1 AND complete = 0", [id], |row| row.get(0))
                .optional()?;
            let Some(hash) = hash else { return Ok(()) };
            if complete_blob(tx, &hash)?.is_some() {
                tx.execute("DELETE FROM blobs WHERE id = ?1", [id])?;
            } else {
                tx.execute("DELETE FROM blobs WHERE hash = ?1 AND complete = 0 AND id != ?2", params![hash, id])?;
                tx.execute("UPDATE blobs SET complete = 1 WHERE id = ?1", [id])?;
            }
            Ok(())
        })
    }

    fn discard_blob_upload(&self, id: i64) -> Result<()> {
        self.writer.write(move |conn| {
            conn.execute("DELETE FROM blobs WHERE id = ?1 AND complete = 0", [id])?;
            Ok(())
        })
    }

    fn discard_stale_blob_uploads(&self, updated_before_ms: i64) -> Result<usize> {
        self.writer.write(move |conn| {
            Ok(conn.execute("DELETE FROM blobs WHERE complete = 0 AND updated_ms < ?1", [updated_before_ms])?)
        })
    }

    fn blob_referenced(&self, hash: &str, scopes: &[String]) -> Result<bool> {
        let conn = self.read()?;
        let mut statement = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM blob_refs r JOIN doc_scopes s ON s.doc_id = r.doc_id
                            WHERE r.hash = ?1 AND s.scope = ?2)",
        )?;
        for scope in scopes {
            if statement.query_row(params![hash, scope], |row| row.get::<_, bool>(0))? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A row of `changes` (seq, doc_id, hash, actor, bytes, received_ms) as a [`LogEntry`].
fn log_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<LogEntry> {
    Ok(LogEntry {
        seq: row.get(0)?,
        doc: row.get(1)?,
        hash: row.get(2)?,
        actor: row.get(3)?,
        bytes: row.get(4)?,
        received_ms: row.get(5)?,
    })
}

fn device_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: row.get(0)?,
        person: row.get(1)?,
        actor: row.get(2)?,
        revoked: row.get(3)?,
        token_expires_ms: row.get(4)?,
        last_seen_ms: row.get(5)?,
        last_sync: match (row.get(6)?, row.get(7)?, row.get(8)?) {
            (Some(at_ms), Some(version), Some(pending)) => Some(SyncReport { at_ms, version, pending }),
            _ => None,
        },
    })
}

/// The SQLite-specific tests: upgrades of the file. What every backend does is tested once
/// for both in `tests/storage` (the conformance suite).
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Every table's and index's columns, and the version: what must be the same after an
    /// upgrade as in a new database (the `CREATE` text differs: SQLite appends added
    /// columns to it).
    fn layout(path: &Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut names = conn.prepare("SELECT type, name FROM sqlite_schema ORDER BY type, name").unwrap();
        let names: Vec<(String, String)> =
            names.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
        let mut layout =
            vec![format!("version {}", conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0)).unwrap())];
        for (kind, name) in names {
            let pragma = if kind == "index" { "index_xinfo" } else { "table_xinfo" };
            let mut columns = conn.prepare(&format!("SELECT * FROM pragma_{pragma}(?1)")).unwrap();
            let n = columns.column_count();
            let rows = columns
                .query_map([&name], |row| {
                    (0..n).map(|i| row.get_ref(i).map(|value| format!("{value:?}"))).collect::<Result<Vec<_>, _>>()
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            layout.push(format!("{kind} {name}: {rows:?}"));
        }
        layout
    }

    fn worker(person: &str, role: &str, grids: &[&str]) -> Worker {
        Worker {
            person: person.into(),
            role: role.into(),
            department: None,
            grids: grids.iter().map(|grid| (*grid).to_owned()).collect(),
        }
    }

    #[test]
    fn a_database_without_worker_contacts_is_upgraded_to_what_a_new_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        {
            let conn = Connection::open(&old).unwrap();
            conn.execute_batch(include_str!("../sql/v0.sql")).unwrap();
            conn.execute_batch(
                "INSERT INTO grids VALUES ('440703001001001', '长堤社区第1网格', 'community');
                 INSERT INTO workers VALUES ('w1', 'full_time_worker', NULL, '440703001001001');
                 INSERT INTO enrollment_codes VALUES ('hash', 'w1', 1, NULL);
                 INSERT INTO devices (id, person, actor, token_hash, name, created_ms)
                     VALUES ('d1', 'w1', x'00', 'token', 'device', 1);",
            )
            .unwrap();
        }
        let storage = SqliteStorage::open(&old).unwrap();
        assert_eq!(storage.worker("w1").unwrap().unwrap(), worker("w1", "full_time_worker", &["440703001001001"]));
        assert_eq!(storage.worker_contact("w1").unwrap().unwrap(), WorkerContact::default());
        let contact = WorkerContact { name: Some("陈专职".into()), phone: Some("13800000002".into()) };
        assert!(storage.set_worker_contact("w1", &contact).unwrap());
        assert_eq!(storage.worker_contact("w1").unwrap().unwrap(), contact);
        assert!(storage.device_by_token("token").unwrap().is_some(), "devices stay enrolled");
        drop(storage);

        let fresh = dir.path().join("fresh.db");
        drop(SqliteStorage::open(&fresh).unwrap());
        assert_eq!(layout(&old), layout(&fresh));
        // Opening again changes nothing.
        drop(SqliteStorage::open(&old).unwrap());
        assert_eq!(layout(&old), layout(&fresh));
        assert_eq!(layout(&fresh)[0], format!("version {SCHEMA_VERSION}"));
    }

    #[test]
    fn a_database_from_a_newer_server_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.db");
        Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let refused = SqliteStorage::open(&path).unwrap_err();
        assert!(
            matches!(refused, StorageError::NewerSchema { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION)
        );
        let conn = Connection::open(&path).unwrap();
        let n_tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0)).unwrap();
        assert_eq!(n_tables, 0);
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(journal, "delete", "not switched to WAL");
    }
}
