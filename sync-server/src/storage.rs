//! The server's storage, behind a trait: SQLite now (one embedded file), PostgreSQL later.
//!
//! It keeps workers, enrollment codes, devices (tokens hashed), every accepted change once
//! in a log with a sequence number, a snapshot per document, the scopes each document
//! belongs to, and which documents each device holds.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Conflict(String),
}

/// A worker, as an operator created them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub person: String,
    /// A role code (`wangge_core::incident::roles::Role::code`).
    pub role: String,
    pub department: Option<String>,
    pub grids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridRecord {
    pub code: String,
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub person: String,
    pub actor: Vec<u8>,
    pub revoked: bool,
}

/// Where a document stands with a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldState {
    /// A snapshot was sent; not yet confirmed.
    Sent,
    /// Confirmed: the device has it up to `up_to_seq`, and gets later changes.
    Held,
    /// The device was told to remove it; not yet confirmed.
    Removing,
}

impl HeldState {
    fn code(self) -> &'static str {
        match self {
            HeldState::Sent => "sent",
            HeldState::Held => "held",
            HeldState::Removing => "removing",
        }
    }

    fn from_code(code: &str) -> HeldState {
        match code {
            "sent" => HeldState::Sent,
            "removing" => HeldState::Removing,
            _ => HeldState::Held,
        }
    }
}

/// One accepted change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: i64,
    pub doc: String,
    pub actor: Vec<u8>,
    pub bytes: Vec<u8>,
}

/// What a push writes for one document: its new snapshot, its scopes, the new changes.
#[derive(Debug, Clone)]
pub struct DocUpdate {
    pub doc: String,
    pub snapshot: Vec<u8>,
    pub scopes: Vec<String>,
    /// (hash, actor, bytes); a change already stored is skipped.
    pub changes: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
}

pub trait Storage: Send + Sync + 'static {
    fn create_grid(&self, grid: &GridRecord) -> Result<()>;
    fn grid(&self, code: &str) -> Result<Option<GridRecord>>;
    fn create_worker(&self, worker: &Worker) -> Result<()>;
    fn worker(&self, person: &str) -> Result<Option<Worker>>;
    fn create_enrollment_code(&self, person: &str, code_hash: &str, now_ms: i64) -> Result<()>;
    /// Uses a code once: the device is created with its token's hash, or `None` if the code
    /// is unknown or used.
    fn redeem_enrollment_code(
        &self,
        code_hash: &str,
        device: &Device,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>>;
    fn device_by_token(&self, token_hash: &str) -> Result<Option<Device>>;
    fn revoke_device(&self, device_id: &str) -> Result<bool>;
    fn snapshot(&self, doc: &str) -> Result<Option<Vec<u8>>>;
    /// Writes several documents' updates in one transaction.
    fn commit(&self, updates: &[DocUpdate]) -> Result<()>;
    /// Documents in any of these scopes, with the last sequence number of each.
    fn visible_documents(&self, scopes: &[String]) -> Result<HashMap<String, i64>>;
    /// What a device holds or is being sent or told to remove: doc → (up to seq, state).
    fn held_documents(&self, device: &str) -> Result<HashMap<String, (i64, HeldState)>>;
    fn set_held(&self, device: &str, doc: &str, up_to_seq: i64, state: HeldState) -> Result<()>;
    fn forget_held(&self, device: &str, doc: &str) -> Result<()>;
    /// Changes after `cursor` in these documents, in sequence order.
    fn log_after(&self, cursor: i64, docs: &[String], limit: usize) -> Result<Vec<LogEntry>>;
    fn max_seq(&self) -> Result<i64>;
}

/// The embedded default: one SQLite file.
#[derive(Debug)]
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS grids (code TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS workers (
    person TEXT PRIMARY KEY, role TEXT NOT NULL, department TEXT, grids TEXT NOT NULL  -- comma-separated grid codes
) STRICT;
CREATE TABLE IF NOT EXISTS enrollment_codes (
    code_hash TEXT PRIMARY KEY, person TEXT NOT NULL REFERENCES workers(person), created_ms INTEGER NOT NULL,
    used_ms INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS enrollment_codes_person ON enrollment_codes(person);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, person TEXT NOT NULL REFERENCES workers(person), actor BLOB NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS devices_person ON devices(person);
CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, snapshot BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS doc_scopes (
    scope TEXT NOT NULL, doc_id TEXT NOT NULL REFERENCES documents(doc_id), PRIMARY KEY (scope, doc_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_scopes_doc ON doc_scopes(doc_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    hash BLOB NOT NULL UNIQUE, actor BLOB NOT NULL, bytes BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS changes_doc ON changes(doc_id, seq);
CREATE TABLE IF NOT EXISTS device_docs (
    -- What each device holds. A snapshot sent is 'sent' until the device confirms it
    -- ('held'); a removal is 'removing' until confirmed, then the row goes.
    device_id TEXT NOT NULL REFERENCES devices(id), doc_id TEXT NOT NULL, up_to_seq INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'held',
    PRIMARY KEY (device_id, doc_id)
) STRICT, WITHOUT ROWID;
";

impl SqliteStorage {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Storage for SqliteStorage {
    fn create_grid(&self, grid: &GridRecord) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO grids (code, name, kind) VALUES (?1, ?2, ?3)",
            params![grid.code, grid.name, grid.kind],
        )?;
        Ok(())
    }

    fn grid(&self, code: &str) -> Result<Option<GridRecord>> {
        Ok(self
            .conn()
            .query_row("SELECT code, name, kind FROM grids WHERE code = ?1", [code], |row| {
                Ok(GridRecord { code: row.get(0)?, name: row.get(1)?, kind: row.get(2)? })
            })
            .optional()?)
    }

    fn create_worker(&self, worker: &Worker) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO workers (person, role, department, grids) VALUES (?1, ?2, ?3, ?4)",
            params![worker.person, worker.role, worker.department, worker.grids.join(",")],
        )?;
        Ok(())
    }

    fn worker(&self, person: &str) -> Result<Option<Worker>> {
        Ok(self
            .conn()
            .query_row("SELECT person, role, department, grids FROM workers WHERE person = ?1", [person], |row| {
                let grids: String = row.get(3)?;
                Ok(Worker {
                    person: row.get(0)?,
                    role: row.get(1)?,
                    department: row.get(2)?,
                    grids: grids.split(',').filter(|code| !code.is_empty()).map(str::to_owned).collect(),
                })
            })
            .optional()?)
    }

    fn create_enrollment_code(&self, person: &str, code_hash: &str, now_ms: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO enrollment_codes (code_hash, person, created_ms) VALUES (?1, ?2, ?3)",
            params![code_hash, person, now_ms],
        )?;
        Ok(())
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &str,
        device: &Device,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<String>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let person: Option<String> = tx
            .query_row(
                "UPDATE enrollment_codes SET used_ms = ?2 WHERE code_hash = ?1 AND used_ms IS NULL RETURNING person",
                params![code_hash, now_ms],
                |row| row.get(0),
            )
            .optional()?;
        let Some(person) = person else { return Ok(None) };
        let inserted = tx.execute(
            "INSERT INTO devices (id, person, actor, token_hash, name, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![device.id, person, device.actor, token_hash, "device", now_ms],
        );
        if let Err(rusqlite::Error::SqliteFailure(error, _)) = &inserted
            && error.code == rusqlite::ErrorCode::ConstraintViolation
        {
            return Err(StorageError::Conflict("this actor id is already enrolled".into()));
        }
        inserted?;
        tx.commit()?;
        Ok(Some(person))
    }

    fn device_by_token(&self, token_hash: &str) -> Result<Option<Device>> {
        Ok(self
            .conn()
            .query_row("SELECT id, person, actor, revoked FROM devices WHERE token_hash = ?1", [token_hash], |row| {
                Ok(Device { id: row.get(0)?, person: row.get(1)?, actor: row.get(2)?, revoked: row.get(3)? })
            })
            .optional()?)
    }

    fn revoke_device(&self, device_id: &str) -> Result<bool> {
        Ok(self.conn().execute("UPDATE devices SET revoked = 1 WHERE id = ?1", [device_id])? > 0)
    }

    fn snapshot(&self, doc: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row("SELECT snapshot FROM documents WHERE doc_id = ?1", [doc], |row| row.get(0))
            .optional()?)
    }

    fn commit(&self, updates: &[DocUpdate]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for update in updates {
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
                    "INSERT OR IGNORE INTO changes (doc_id, hash, actor, bytes) VALUES (?1, ?2, ?3, ?4)",
                    params![update.doc, hash, actor, bytes],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn visible_documents(&self, scopes: &[String]) -> Result<HashMap<String, i64>> {
        let conn = self.conn();
        let mut found = HashMap::new();
        let mut statement = conn.prepare_cached(
            "SELECT s.doc_id, coalesce((SELECT max(seq) FROM changes c WHERE c.doc_id = s.doc_id), 0)
             FROM doc_scopes s WHERE s.scope = ?1",
        )?;
        for scope in scopes {
            let rows = statement.query_map([scope], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
            for row in rows {
                let (doc, seq) = row?;
                found.insert(doc, seq);
            }
        }
        Ok(found)
    }

    fn held_documents(&self, device: &str) -> Result<HashMap<String, (i64, HeldState)>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached("SELECT doc_id, up_to_seq, state FROM device_docs WHERE device_id = ?1")?;
        let rows = statement.query_map([device], |row| {
            let state: String = row.get(2)?;
            Ok((row.get(0)?, (row.get(1)?, HeldState::from_code(&state))))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_held(&self, device: &str, doc: &str, up_to_seq: i64, state: HeldState) -> Result<()> {
        self.conn().execute(
            "INSERT INTO device_docs (device_id, doc_id, up_to_seq, state) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(device_id, doc_id) DO UPDATE SET up_to_seq = excluded.up_to_seq, state = excluded.state",
            params![device, doc, up_to_seq, state.code()],
        )?;
        Ok(())
    }

    fn forget_held(&self, device: &str, doc: &str) -> Result<()> {
        self.conn().execute("DELETE FROM device_docs WHERE device_id = ?1 AND doc_id = ?2", params![device, doc])?;
        Ok(())
    }

    fn log_after(&self, cursor: i64, docs: &[String], limit: usize) -> Result<Vec<LogEntry>> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn();
        let placeholders = (0..docs.len()).map(|i| format!("?{}", i + 3)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT seq, doc_id, actor, bytes FROM changes WHERE seq > ?1 AND doc_id IN ({placeholders})
             ORDER BY seq LIMIT ?2"
        );
        let mut values: Vec<rusqlite::types::Value> = vec![cursor.into(), (limit as i64).into()];
        values.extend(docs.iter().map(|doc| rusqlite::types::Value::Text(doc.clone())));
        let mut statement = conn.prepare(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
            Ok(LogEntry { seq: row.get(0)?, doc: row.get(1)?, actor: row.get(2)?, bytes: row.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn max_seq(&self) -> Result<i64> {
        Ok(self.conn().query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |row| row.get(0))?)
    }
}
