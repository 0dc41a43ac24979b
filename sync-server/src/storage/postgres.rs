//! PostgreSQL: one database that several server nodes share.
//!
//! The same tables as SQLite (`sql/postgres.sql`), reached through the synchronous
//! `postgres` client (the service calls storage from blocking threads) and a small r2d2
//! pool. The schema's version is the one row of `schema_version`; connecting creates what
//! is missing, and a database from a newer server is refused untouched.
//!
//! What several nodes need, and how it holds:
//! - **No lost update.** A push reads a document ([`Storage::document`]), merges on its own
//!   and writes the new snapshot; [`Storage::commit`] writes it only if the document's
//!   version is still the one it was read at, else refuses with
//!   [`StorageError::DocumentChanged`] and the service merges again from the new snapshot.
//!   The check runs under the log's lock (below), so no other commit slips in between.
//! - **Cursors never skip a change.** A sequence number is taken when a row is inserted, not
//!   when its transaction commits: without care a reader could see seq 11 committed while
//!   seq 10 is still in flight, move its cursor to 11, and never see 10. So every `commit`
//!   takes one transaction-level advisory lock ([`LOG_LOCK`]) before its first insert into
//!   the log and holds it until it commits: a commit takes its numbers only after the
//!   previous one is visible, so the log becomes visible in sequence order (with gaps
//!   where a commit rolled back, which nobody waits for). This needs the identity's
//!   `CACHE 1` (the default): a session caching numbers would hand out old ones later.
//!   Commits of all nodes are serialized by it; they are short (the automerge work happens
//!   before, outside the lock), and each node's commits that arrive together take one turn
//!   (`group_commit`: one transaction, a savepoint each, one WAL flush).
//! - **Blobs** keep SQLite's one-writer semantics per blob: every transaction that looks at
//!   a blob's uploads and then writes takes an advisory lock on the blob's name.
//! - **Enrollment codes** are redeemed by an `UPDATE … RETURNING` whose row lock makes the
//!   second of two concurrent redemptions find the code used.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use ::r2d2_postgres::postgres::error::SqlState;
use ::r2d2_postgres::postgres::{self as pg, NoTls, Row};
use ::r2d2_postgres::{PostgresConnectionManager, r2d2};

use super::group_commit;
use super::*;

/// The schema version this server writes (`schema_version.version`). 1: the first; 2:
/// devices' last sync report.
pub const SCHEMA_VERSION: i64 = 2;

/// Version 1 → 2: devices' last sync report.
const UPGRADE_FROM_1: &str = r#"
ALTER TABLE "devices" ADD COLUMN "last_sync_ms" bigint;
ALTER TABLE "devices" ADD COLUMN "version" text;
ALTER TABLE "devices" ADD COLUMN "pending" bigint;
"#;

const SCHEMA: &str = include_str!("../sql/postgres.sql");

/// Held by every transaction that appends to the log, until it commits (`pg_advisory_xact_lock`).
pub const LOG_LOCK: i64 = 0x7767_6c6f_6700_0001;
/// Held while the schema is checked and created: nodes starting together take turns.
const SCHEMA_LOCK: i64 = 0x7767_6c6f_6700_0002;
/// The first key of the per-blob advisory locks (the second is `hashtext` of its name;
/// the two-key space is separate from the one-key space above).
const BLOB_LOCKS: i32 = 0x7767_0001;

/// One document's update in one round trip: written only if the document is still at the
/// version it was read at (`$2`, NULL for a new one); answers whether it was. Scopes and
/// blob references are replaced by adding the new and deleting the others (one statement's
/// parts must not touch the same rows); changes are logged in the order given.
const COMMIT_UPDATE: &str = r#"
WITH stored AS (
    SELECT coalesce((SELECT max(seq) FROM changes WHERE doc_id = $1), 0) AS version FROM documents WHERE doc_id = $1
), ok AS (
    SELECT WHERE (SELECT version FROM stored) IS NOT DISTINCT FROM $2::bigint
), document AS (
    INSERT INTO documents (doc_id, snapshot) SELECT $1, $3 FROM ok
    ON CONFLICT (doc_id) DO UPDATE SET snapshot = excluded.snapshot
), old_scopes AS (
    DELETE FROM doc_scopes WHERE doc_id = $1 AND NOT scope = ANY($4::text[]) AND EXISTS (SELECT FROM ok)
), new_scopes AS (
    INSERT INTO doc_scopes (scope, doc_id) SELECT DISTINCT scope, $1 FROM unnest($4::text[]) scope, ok
    ON CONFLICT DO NOTHING
), old_refs AS (
    DELETE FROM blob_refs WHERE doc_id = $1 AND NOT hash = ANY($5::text[]) AND EXISTS (SELECT FROM ok)
), new_refs AS (
    INSERT INTO blob_refs (hash, doc_id) SELECT DISTINCT hash, $1 FROM unnest($5::text[]) hash, ok
    ON CONFLICT DO NOTHING
), logged AS (
    INSERT INTO changes (doc_id, hash, actor, bytes, received_ms)
    SELECT $1, change.hash, change.actor, change.bytes, $9
    FROM unnest($6::bytea[], $7::bytea[], $8::bytea[]) WITH ORDINALITY AS change (hash, actor, bytes, n), ok
    ORDER BY change.n
    ON CONFLICT (hash) DO NOTHING
)
SELECT EXISTS (SELECT FROM ok)
"#;

/// Connections kept open per server node.
const POOL_SIZE: u32 = 8;

/// The pool's connections, each with the statements it has prepared.
#[derive(Debug)]
struct Manager(PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = CachingClient;
    type Error = pg::Error;

    fn connect(&self) -> std::result::Result<CachingClient, pg::Error> {
        Ok(CachingClient::new(self.0.connect()?))
    }

    fn is_valid(&self, conn: &mut CachingClient) -> std::result::Result<(), pg::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut CachingClient) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// A client whose `query`, `query_opt`, `query_one` and `execute` prepare each statement
/// once per connection: the client alone prepares it again on every call, a second round
/// trip per query. Anything else (transactions) is the client's own, through `Deref`.
struct CachingClient {
    client: pg::Client,
    statements: HashMap<String, pg::Statement>,
}

type Params<'a> = &'a [&'a (dyn pg::types::ToSql + Sync)];

impl CachingClient {
    /// At most this many statements per connection (this storage has fewer).
    const MAX_STATEMENTS: usize = 256;

    fn new(client: pg::Client) -> Self {
        Self { client, statements: HashMap::new() }
    }

    fn prepared(&mut self, sql: &str) -> std::result::Result<pg::Statement, pg::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        if self.statements.len() < Self::MAX_STATEMENTS {
            self.statements.insert(sql.to_owned(), statement.clone());
        }
        Ok(statement)
    }

    fn query(&mut self, sql: &str, params: Params<'_>) -> std::result::Result<Vec<Row>, pg::Error> {
        let statement = self.prepared(sql)?;
        self.client.query(&statement, params)
    }

    fn query_opt(&mut self, sql: &str, params: Params<'_>) -> std::result::Result<Option<Row>, pg::Error> {
        let statement = self.prepared(sql)?;
        self.client.query_opt(&statement, params)
    }

    fn query_one(&mut self, sql: &str, params: Params<'_>) -> std::result::Result<Row, pg::Error> {
        let statement = self.prepared(sql)?;
        self.client.query_one(&statement, params)
    }

    fn execute(&mut self, sql: &str, params: Params<'_>) -> std::result::Result<u64, pg::Error> {
        let statement = self.prepared(sql)?;
        self.client.execute(&statement, params)
    }
}

impl std::ops::Deref for CachingClient {
    type Target = pg::Client;

    fn deref(&self) -> &pg::Client {
        &self.client
    }
}

impl std::ops::DerefMut for CachingClient {
    fn deref_mut(&mut self) -> &mut pg::Client {
        &mut self.client
    }
}

/// A PostgreSQL database shared by any number of server nodes.
pub struct PostgresStorage {
    pool: r2d2::Pool<Manager>,
    /// Commits to the log: one connection of its own, whose thread commits the commits
    /// queued while it was busy in one transaction, under one turn of [`LOG_LOCK`].
    log_writer: group_commit::Writer<LogSession>,
}

/// Takes [`LOG_LOCK`] (its value written out: transaction control is plain SQL text).
const TAKE_LOG_LOCK: &str = "SELECT pg_advisory_xact_lock(8603964838839844865)";

/// The log writer's connection (preparing each statement once, like the pool's).
struct LogSession {
    client: CachingClient,
    config: pg::Config,
}

impl LogSession {
    fn connect(config: pg::Config) -> Result<Self> {
        Ok(Self { client: CachingClient::new(config.connect(NoTls)?), config })
    }
}

impl group_commit::Session for LogSession {
    const BEGIN: &'static [&'static str] = &["BEGIN", TAKE_LOG_LOCK];

    fn control(&mut self, statements: &[&'static str]) -> Result<()> {
        // One simple query of several statements: one round trip; PostgreSQL stops at the
        // first that fails.
        Ok(self.client.batch_execute(&statements.join(";\n"))?)
    }

    fn reconnect_if_broken(&mut self) -> Result<()> {
        if self.client.is_closed() {
            self.client = CachingClient::new(self.config.connect(NoTls)?);
        }
        Ok(())
    }
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection settings may hold a password.
        f.debug_struct("PostgresStorage").finish_non_exhaustive()
    }
}

/// A PostgreSQL failure. Shown without the server's `DETAIL`, which can quote the values of
/// a row (a key that already exists): the SQLSTATE and the message say what went wrong.
pub enum PostgresError {
    Client(pg::Error),
    Pool(r2d2::Error),
}

impl PostgresError {
    fn state(&self) -> Option<&SqlState> {
        match self {
            PostgresError::Client(error) => error.code(),
            PostgresError::Pool(_) => None,
        }
    }
}

impl std::fmt::Display for PostgresError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostgresError::Client(error) => match error.as_db_error() {
                Some(db) => write!(f, "{} {}: {}", db.severity(), db.code().code(), db.message()),
                None => write!(f, "{error}"),
            },
            PostgresError::Pool(error) => write!(f, "no connection to the database: {error}"),
        }
    }
}

impl std::fmt::Debug for PostgresError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresError({self})")
    }
}

impl std::error::Error for PostgresError {}

impl From<pg::Error> for StorageError {
    fn from(error: pg::Error) -> Self {
        StorageError::Postgres(PostgresError::Client(error))
    }
}

impl From<r2d2::Error> for StorageError {
    fn from(error: r2d2::Error) -> Self {
        StorageError::Postgres(PostgresError::Pool(error))
    }
}

fn is_unique_violation(error: &StorageError) -> bool {
    matches!(error, StorageError::Postgres(error) if error.state() == Some(&SqlState::UNIQUE_VIOLATION))
}

/// Brings a database to [`SCHEMA_VERSION`] in one transaction; a newer one is refused
/// before anything is written.
fn migrate(client: &mut pg::Client) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    let versioned: bool = tx.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?.try_get(0)?;
    if versioned {
        let found: Option<i64> =
            tx.query_opt("SELECT version FROM schema_version", &[])?.map(|row| row.try_get(0)).transpose()?;
        if let Some(found) = found.filter(|found| *found > SCHEMA_VERSION) {
            return Err(StorageError::NewerSchema { found, supported: SCHEMA_VERSION });
        }
        // Upgrades from older versions, one step per version, before the schema.
        if found == Some(1) {
            tx.batch_execute(UPGRADE_FROM_1)?;
        }
    }
    tx.batch_execute(SCHEMA)?;
    tx.execute(
        "INSERT INTO schema_version (one, version) VALUES (true, $1)
         ON CONFLICT (one) DO UPDATE SET version = excluded.version",
        &[&SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}

fn worker_row(row: &Row) -> Result<(Worker, WorkerContact)> {
    worker_row_at(row, 0)
}

/// A worker's columns (`WORKER_COLUMNS`) after `first` others in a row.
fn worker_row_at(row: &Row, first: usize) -> Result<(Worker, WorkerContact)> {
    let grids: String = row.try_get(first + 3)?;
    let worker = Worker {
        person: row.try_get(first)?,
        role: row.try_get(first + 1)?,
        department: row.try_get(first + 2)?,
        grids: grids.split(',').filter(|code| !code.is_empty()).map(str::to_owned).collect(),
    };
    Ok((worker, WorkerContact { name: row.try_get(first + 4)?, phone: row.try_get(first + 5)? }))
}

fn device_row(row: &Row) -> Result<Device> {
    Ok(Device {
        id: row.try_get(0)?,
        person: row.try_get(1)?,
        actor: row.try_get(2)?,
        revoked: row.try_get(3)?,
        token_expires_ms: row.try_get(4)?,
        last_seen_ms: row.try_get(5)?,
        last_sync: match (row.try_get(6)?, row.try_get(7)?, row.try_get(8)?) {
            (Some(at_ms), Some(version), Some(pending)) => Some(SyncReport { at_ms, version, pending }),
            _ => None,
        },
    })
}

const LOG_COLUMNS: &str = "c.seq, c.doc_id, c.hash, c.actor, c.bytes, c.received_ms";

fn log_entry(row: &Row) -> Result<LogEntry> {
    Ok(LogEntry {
        seq: row.try_get(0)?,
        doc: row.try_get(1)?,
        hash: row.try_get(2)?,
        actor: row.try_get(3)?,
        bytes: row.try_get(4)?,
        received_ms: row.try_get(5)?,
    })
}

fn grid_row(row: &Row) -> Result<GridRecord> {
    Ok(GridRecord { code: row.try_get(0)?, name: row.try_get(1)?, kind: row.try_get(2)? })
}

const BLOB_COLUMNS: &str = "id, hash, size, received, complete";

fn blob_record(row: &Row) -> Result<BlobRecord> {
    Ok(BlobRecord {
        id: row.try_get(0)?,
        hash: row.try_get(1)?,
        size: u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0),
        received: u64::try_from(row.try_get::<_, i64>(3)?).unwrap_or(0),
        complete: row.try_get(4)?,
    })
}

/// Sizes and offsets are at most `MAX_BLOB_BYTES`; PostgreSQL's integers are signed.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn rows<T>(rows: Vec<Row>, map: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(map).collect()
}

fn complete_blob(client: &mut impl pg::GenericClient, hash: &str) -> Result<Option<BlobRecord>> {
    client
        .query_opt(&format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE hash = $1 AND complete"), &[&hash])?
        .as_ref()
        .map(blob_record)
        .transpose()
}

fn blob_upload(client: &mut impl pg::GenericClient, device: &str, hash: &str) -> Result<Option<BlobRecord>> {
    client
        .query_opt(
            &format!("SELECT {BLOB_COLUMNS} FROM blobs WHERE device_id = $1 AND hash = $2 AND NOT complete"),
            &[&device, &hash],
        )?
        .as_ref()
        .map(blob_record)
        .transpose()
}

/// Makes this transaction the only one working on uploads of this blob until it ends.
fn lock_blob(tx: &mut pg::Transaction<'_>, hash: &str) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&BLOB_LOCKS, &hash])?;
    Ok(())
}

impl PostgresStorage {
    /// Connects to a database (`postgres://user[:password]@host[:port]/database`, or the
    /// `key=value` form), creating or checking its schema.
    pub fn connect(url: &str) -> Result<Self> {
        let mut config = pg::Config::from_str(url)?;
        if config.get_application_name().is_none() {
            config.application_name("wangge-server");
        }
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            // Not a round trip of its own before every query: a connection found broken
            // when used is dropped (`has_broken`) and the next request gets a new one.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(Manager(PostgresConnectionManager::new(config.clone(), NoTls)))?;
        migrate(&mut pool.get()?.client)?;
        let log_writer = group_commit::Writer::start(LogSession::connect(config)?)
            .map_err(|error| StorageError::Conflict(format!("the database's writer thread: {error}")))?;
        Ok(Self { pool, log_writer })
    }

    fn client(&self) -> Result<r2d2::PooledConnection<Manager>> {
        Ok(self.pool.get()?)
    }
}

impl Storage for PostgresStorage {
    fn create_grid(&self, grid: &GridRecord) -> Result<()> {
        self.client()?.execute(
            "INSERT INTO grids (code, name, kind) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind",
            &[&grid.code, &grid.name, &grid.kind],
        )?;
        Ok(())
    }

    fn grid(&self, code: &str) -> Result<Option<GridRecord>> {
        self.client()?
            .query_opt("SELECT code, name, kind FROM grids WHERE code = $1", &[&code])?
            .as_ref()
            .map(grid_row)
            .transpose()
    }

    fn grids_within(&self, prefix: &str) -> Result<Vec<GridRecord>> {
        let found = self
            .client()?
            .query("SELECT code, name, kind FROM grids WHERE starts_with(code, $1) ORDER BY code", &[&prefix])?;
        rows(found, grid_row)
    }

    fn create_worker(&self, worker: &Worker) -> Result<()> {
        self.client()?.execute(
            "INSERT INTO workers (person, role, department, grids) VALUES ($1, $2, $3, $4)
             ON CONFLICT (person) DO UPDATE SET
                 role = excluded.role, department = excluded.department, grids = excluded.grids",
            &[&worker.person, &worker.role, &worker.department, &worker.grids.join(",")],
        )?;
        Ok(())
    }

    fn worker(&self, person: &str) -> Result<Option<Worker>> {
        let found =
            self.client()?.query_opt(&format!("SELECT {WORKER_COLUMNS} FROM workers WHERE person = $1"), &[&person])?;
        Ok(found.as_ref().map(worker_row).transpose()?.map(|(worker, _)| worker))
    }

    fn set_worker_contact(&self, person: &str, contact: &WorkerContact) -> Result<bool> {
        let n = self.client()?.execute(
            "UPDATE workers SET name = $2, phone = $3 WHERE person = $1",
            &[&person, &contact.name, &contact.phone],
        )?;
        Ok(n > 0)
    }

    fn worker_contact(&self, person: &str) -> Result<Option<WorkerContact>> {
        let found =
            self.client()?.query_opt(&format!("SELECT {WORKER_COLUMNS} FROM workers WHERE person = $1"), &[&person])?;
        Ok(found.as_ref().map(worker_row).transpose()?.map(|(_, contact)| contact))
    }

    fn grid_staff(&self, grid: &str) -> Result<Vec<(Worker, WorkerContact)>> {
        // Grids are a comma-separated list: match a whole item, so that one code never
        // matches inside another.
        let found = self.client()?.query(
            &format!(
                "SELECT {WORKER_COLUMNS} FROM workers WHERE strpos(',' || grids || ',', ',' || $1 || ',') > 0
                 ORDER BY person"
            ),
            &[&grid],
        )?;
        rows(found, worker_row)
    }

    fn create_enrollment_code(&self, person: &str, code_hash: &str, now_ms: i64) -> Result<()> {
        self.client()?.execute(
            "INSERT INTO enrollment_codes (code_hash, person, created_ms) VALUES ($1, $2, $3)",
            &[&code_hash, &person, &now_ms],
        )?;
        Ok(())
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &str,
        device: &Device,
        token_hash: &str,
        now_ms: i64,
        issued_after_ms: i64,
    ) -> Result<Option<(String, String)>> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // The row lock makes a concurrent redemption of the same code wait, then find it used.
        let person: Option<String> = tx
            .query_opt(
                "UPDATE enrollment_codes SET used_ms = $2
                 WHERE code_hash = $1 AND used_ms IS NULL AND created_ms >= $3 RETURNING person",
                &[&code_hash, &now_ms, &issued_after_ms],
            )?
            .map(|row| row.try_get(0))
            .transpose()?;
        let Some(person) = person else { return Ok(None) };
        let enrolled = tx.query_opt("SELECT id, person, revoked FROM devices WHERE actor = $1", &[&device.actor])?;
        let enrolled: Option<(String, String, bool)> = match enrolled {
            Some(row) => Some((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)),
            None => None,
        };
        let conflict = || StorageError::Conflict("this actor id is already enrolled".into());
        let device_id = match enrolled {
            None => {
                let inserted = tx.execute(
                    "INSERT INTO devices (id, person, actor, token_hash, name, created_ms, token_expires_ms, last_seen_ms)
                     VALUES ($1, $2, $3, $4, 'device', $5, $6, $5)",
                    &[&device.id, &person, &device.actor, &token_hash, &now_ms, &device.token_expires_ms],
                );
                // The same actor enrolling through another node at the same moment.
                match inserted.map_err(StorageError::from) {
                    Err(error) if is_unique_violation(&error) => return Err(conflict()),
                    result => result?,
                };
                device.id.clone()
            }
            Some((id, enrolled_person, false)) if enrolled_person == person => {
                tx.execute(
                    "UPDATE devices SET token_hash = $2, token_expires_ms = $3, last_seen_ms = $4 WHERE id = $1",
                    &[&id, &token_hash, &device.token_expires_ms, &now_ms],
                )?;
                id
            }
            Some(_) => return Err(conflict()),
        };
        tx.commit()?;
        Ok(Some((person, device_id)))
    }

    fn device_by_token(&self, token_hash: &str) -> Result<Option<(Device, Worker)>> {
        static SQL: LazyLock<(String, usize)> = LazyLock::new(|| device_by_token_sql("$1"));
        let (sql, columns) = &*SQL;
        let found = self.client()?.query_opt(sql, &[&token_hash])?;
        found.map(|row| Ok((device_row(&row)?, worker_row_at(&row, *columns)?.0))).transpose()
    }

    fn revoke_device(&self, device_id: &str) -> Result<bool> {
        Ok(self.client()?.execute("UPDATE devices SET revoked = true WHERE id = $1", &[&device_id])? > 0)
    }

    fn record_sync(&self, device_id: &str, report: &SyncReport) -> Result<()> {
        self.client()?.execute(
            "UPDATE devices SET last_sync_ms = $2, version = $3, pending = $4 WHERE id = $1",
            &[&device_id, &report.at_ms, &report.version, &report.pending],
        )?;
        Ok(())
    }

    fn renew_device(&self, device_id: &str, last_seen_ms: i64, token_expires_ms: i64) -> Result<()> {
        self.client()?.execute(
            "UPDATE devices SET last_seen_ms = $2, token_expires_ms = $3 WHERE id = $1",
            &[&device_id, &last_seen_ms, &token_expires_ms],
        )?;
        Ok(())
    }

    fn snapshot(&self, doc: &str) -> Result<Option<Vec<u8>>> {
        self.client()?
            .query_opt("SELECT snapshot FROM documents WHERE doc_id = $1", &[&doc])?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(StorageError::from)
    }

    fn document(&self, doc: &str) -> Result<Option<StoredDocument>> {
        // One statement: one view of the database, so the version is the snapshot's.
        let found = self.client()?.query_opt(
            "SELECT snapshot, coalesce((SELECT max(seq) FROM changes WHERE doc_id = $1), 0)
             FROM documents WHERE doc_id = $1",
            &[&doc],
        )?;
        match found {
            Some(row) => Ok(Some(StoredDocument { snapshot: row.try_get(0)?, version: row.try_get(1)? })),
            None => Ok(None),
        }
    }

    fn documents(&self, docs: &[String]) -> Result<Vec<(String, StoredDocument)>> {
        // One statement: each row's version is its snapshot's.
        let rows = self.client()?.query(
            "SELECT d.doc_id, d.snapshot, coalesce((SELECT max(seq) FROM changes c WHERE c.doc_id = d.doc_id), 0)
             FROM documents d WHERE d.doc_id = ANY($1)",
            &[&docs],
        )?;
        let mut found: HashMap<String, StoredDocument> = HashMap::with_capacity(rows.len());
        for row in rows {
            found.insert(row.try_get(0)?, StoredDocument { snapshot: row.try_get(1)?, version: row.try_get(2)? });
        }
        Ok(docs.iter().filter_map(|doc| Some((doc.clone(), found.remove(doc)?))).collect())
    }

    fn commit(&self, updates: &[DocUpdate], received_ms: i64) -> Result<()> {
        let updates = updates.to_vec();
        // In the log writer's transaction, which took the log's lock before any version is
        // compared or sequence number taken; held until the commit is visible (see the
        // module's documentation).
        self.log_writer.write(move |session| {
            for update in &updates {
                let hashes: Vec<&[u8]> = update.changes.iter().map(|(hash, _, _)| hash.as_slice()).collect();
                let actors: Vec<&[u8]> = update.changes.iter().map(|(_, actor, _)| actor.as_slice()).collect();
                let bytes: Vec<&[u8]> = update.changes.iter().map(|(_, _, bytes)| bytes.as_slice()).collect();
                let written = session.client.query_one(
                    COMMIT_UPDATE,
                    &[
                        &update.doc,
                        &update.base,
                        &update.snapshot,
                        &update.scopes,
                        &update.blob_refs,
                        &hashes,
                        &actors,
                        &bytes,
                        &received_ms,
                    ],
                )?;
                if !written.try_get::<_, bool>(0)? {
                    return Err(StorageError::DocumentChanged { doc: update.doc.clone() });
                }
            }
            Ok(())
        })
    }

    fn visible_documents(&self, scopes: &[String]) -> Result<HashSet<String>> {
        let found = self.client()?.query("SELECT DISTINCT doc_id FROM doc_scopes WHERE scope = ANY($1)", &[&scopes])?;
        found.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    fn pull_view(&self, device: &str, scopes: &[String]) -> Result<PullView> {
        // One statement, so one view of the database: the documents and held states are
        // as new as the horizon, as if read after it.
        let row = self.client()?.query_one(
            "SELECT (SELECT coalesce(max(seq), 0) FROM changes),
                    ARRAY(SELECT DISTINCT doc_id FROM doc_scopes WHERE scope = ANY($1)),
                    held.docs, held.up_to, held.states
             FROM (SELECT array_agg(doc_id) AS docs, array_agg(up_to_seq) AS up_to, array_agg(state) AS states
                   FROM device_docs WHERE device_id = $2) held",
            &[&scopes, &device],
        )?;
        let visible: Vec<String> = row.try_get(1)?;
        let docs: Option<Vec<String>> = row.try_get(2)?;
        let up_to: Option<Vec<i64>> = row.try_get(3)?;
        let states: Option<Vec<String>> = row.try_get(4)?;
        let held = docs
            .unwrap_or_default()
            .into_iter()
            .zip(up_to.unwrap_or_default())
            .zip(states.unwrap_or_default())
            .map(|((doc, up_to), state)| (doc, (up_to, HeldState::from_code(&state))))
            .collect();
        Ok(PullView { horizon: row.try_get(0)?, visible: visible.into_iter().collect(), held })
    }

    fn held_documents(&self, device: &str) -> Result<HashMap<String, (i64, HeldState)>> {
        let found = self
            .client()?
            .query("SELECT doc_id, up_to_seq, state FROM device_docs WHERE device_id = $1", &[&device])?;
        found
            .iter()
            .map(|row| {
                let state: String = row.try_get(2)?;
                Ok((row.try_get(0)?, (row.try_get(1)?, HeldState::from_code(&state))))
            })
            .collect()
    }

    fn set_held_many(&self, device: &str, held: &[(String, i64, HeldState)]) -> Result<()> {
        if held.is_empty() {
            return Ok(());
        }
        // One statement, so all or none; in one order, so two requests of one device never
        // wait for each other's rows; each document once (a statement may not upsert a row
        // twice), the last given winning as if they were written one after another.
        let held: BTreeMap<&str, (i64, HeldState)> =
            held.iter().map(|(doc, up_to, state)| (doc.as_str(), (*up_to, *state))).collect();
        let docs: Vec<&str> = held.keys().copied().collect();
        let up_to: Vec<i64> = held.values().map(|(up_to, _)| *up_to).collect();
        let states: Vec<&str> = held.values().map(|(_, state)| state.code()).collect();
        self.client()?.execute(
            "INSERT INTO device_docs (device_id, doc_id, up_to_seq, state)
             SELECT $1, held.doc, held.up_to, held.state
             FROM unnest($2::text[], $3::bigint[], $4::text[]) AS held (doc, up_to, state)
             ON CONFLICT (device_id, doc_id) DO UPDATE SET up_to_seq = excluded.up_to_seq, state = excluded.state",
            &[&device, &docs, &up_to, &states],
        )?;
        Ok(())
    }

    fn forget_held(&self, device: &str, doc: &str) -> Result<()> {
        self.client()?.execute("DELETE FROM device_docs WHERE device_id = $1 AND doc_id = $2", &[&device, &doc])?;
        Ok(())
    }

    fn log_after(&self, cursor: i64, device: &str, limit: usize) -> Result<Vec<LogEntry>> {
        // A join, not a list of ids: a center holds tens of thousands of documents.
        let found = self.client()?.query(
            &format!(
                "SELECT {LOG_COLUMNS} FROM changes c
                 JOIN device_docs d ON d.doc_id = c.doc_id AND d.device_id = $2 AND d.state = 'held'
                 WHERE c.seq > $1 ORDER BY c.seq LIMIT $3"
            ),
            &[&cursor, &device, &(limit as i64)],
        )?;
        rows(found, log_entry)
    }

    fn log_after_in(&self, cursor: i64, docs: &[String], limit: usize) -> Result<Vec<LogEntry>> {
        let found = self.client()?.query(
            &format!(
                "SELECT {LOG_COLUMNS} FROM changes c WHERE c.doc_id = ANY($1) AND c.seq > $2 ORDER BY c.seq LIMIT $3"
            ),
            &[&docs, &cursor, &(limit as i64)],
        )?;
        rows(found, log_entry)
    }

    fn max_seq(&self) -> Result<i64> {
        Ok(self.client()?.query_one("SELECT coalesce(max(seq), 0) FROM changes", &[])?.try_get(0)?)
    }

    fn changes_after(&self, after_seq: i64, limit: usize) -> Result<Vec<LogEntry>> {
        let found = self.client()?.query(
            &format!("SELECT {LOG_COLUMNS} FROM changes c WHERE c.seq > $1 ORDER BY c.seq LIMIT $2"),
            &[&after_seq, &(limit as i64)],
        )?;
        rows(found, log_entry)
    }

    fn changes_of(&self, doc: &str) -> Result<Vec<LogEntry>> {
        let found = self
            .client()?
            .query(&format!("SELECT {LOG_COLUMNS} FROM changes c WHERE c.doc_id = $1 ORDER BY c.seq"), &[&doc])?;
        rows(found, log_entry)
    }

    fn documents_changed(&self, after_seq: i64, up_to_seq: i64) -> Result<Vec<String>> {
        let found = self.client()?.query(
            "SELECT DISTINCT doc_id FROM changes WHERE seq > $1 AND seq <= $2 ORDER BY doc_id",
            &[&after_seq, &up_to_seq],
        )?;
        rows(found, |row| Ok(row.try_get(0)?))
    }

    fn devices(&self) -> Result<Vec<Device>> {
        let found = self.client()?.query(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id"), &[])?;
        rows(found, device_row)
    }

    fn blob(&self, hash: &str) -> Result<Option<BlobRecord>> {
        complete_blob(&mut self.client()?.client, hash)
    }

    fn blob_upload(&self, device: &str, hash: &str) -> Result<Option<BlobRecord>> {
        blob_upload(&mut self.client()?.client, device, hash)
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
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        lock_blob(&mut tx, hash)?;
        if let Some(complete) = complete_blob(&mut tx, hash)? {
            return Ok(BlobAppend::Complete(complete));
        }
        let id: i64 = match blob_upload(&mut tx, device, hash)? {
            None if offset != 0 => return Ok(BlobAppend::WrongOffset { received: 0 }),
            None => tx
                .query_one(
                    "INSERT INTO blobs (hash, device_id, size, received, updated_ms) VALUES ($1, $2, $3, 0, $4)
                     RETURNING id",
                    &[&hash, &device, &int(size), &now_ms],
                )?
                .try_get(0)?,
            Some(upload) if upload.size != size && offset == 0 => {
                tx.execute("DELETE FROM blob_chunks WHERE blob_id = $1", &[&upload.id])?;
                tx.execute("UPDATE blobs SET size = $2, received = 0 WHERE id = $1", &[&upload.id, &int(size)])?;
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
                "INSERT INTO blob_chunks (blob_id, first, n_bytes, bytes) VALUES ($1, $2, $3, $4)",
                &[&id, &int(offset), &(chunk.len() as i64), &chunk],
            )?;
        }
        let record = blob_record(&tx.query_one(
            &format!(
                "UPDATE blobs SET received = received + $2, updated_ms = $3 WHERE id = $1 RETURNING {BLOB_COLUMNS}"
            ),
            &[&id, &(chunk.len() as i64), &now_ms],
        )?)?;
        tx.commit()?;
        Ok(BlobAppend::Appended(record))
    }

    fn read_blob(&self, id: i64, offset: u64, max: usize) -> Result<Vec<u8>> {
        let end = offset.saturating_add(max as u64);
        let found = self.client()?.query(
            "SELECT first, bytes FROM blob_chunks WHERE blob_id = $1 AND first < $3 AND first + n_bytes > $2
             ORDER BY first",
            &[&id, &int(offset), &int(end)],
        )?;
        let mut bytes = Vec::new();
        for row in found {
            let first = u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0);
            let chunk: &[u8] = row.try_get(1)?;
            let from = offset.saturating_sub(first) as usize;
            let to = (end - first).min(chunk.len() as u64) as usize;
            bytes.extend_from_slice(&chunk[from..to]);
        }
        Ok(bytes)
    }

    fn finish_blob_upload(&self, id: i64) -> Result<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let hash: Option<String> = tx
            .query_opt("SELECT hash FROM blobs WHERE id = $1 AND NOT complete", &[&id])?
            .map(|row| row.try_get(0))
            .transpose()?;
        let Some(hash) = hash else { return Ok(()) };
        lock_blob(&mut tx, &hash)?;
        // Again under the lock: another transaction may have finished or dropped it.
        if tx.query_opt("SELECT 1 FROM blobs WHERE id = $1 AND NOT complete", &[&id])?.is_none() {
            return Ok(());
        }
        if complete_blob(&mut tx, &hash)?.is_some() {
            tx.execute("DELETE FROM blobs WHERE id = $1", &[&id])?;
        } else {
            tx.execute("DELETE FROM blobs WHERE hash = $1 AND NOT complete AND id != $2", &[&hash, &id])?;
            tx.execute("UPDATE blobs SET complete = true WHERE id = $1", &[&id])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn discard_blob_upload(&self, id: i64) -> Result<()> {
        self.client()?.execute("DELETE FROM blobs WHERE id = $1 AND NOT complete", &[&id])?;
        Ok(())
    }

    fn discard_stale_blob_uploads(&self, updated_before_ms: i64) -> Result<usize> {
        let n = self
            .client()?
            .execute("DELETE FROM blobs WHERE NOT complete AND updated_ms < $1", &[&updated_before_ms])?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn blob_referenced(&self, hash: &str, scopes: &[String]) -> Result<bool> {
        Ok(self
            .client()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM blob_refs r JOIN doc_scopes s ON s.doc_id = r.doc_id
                                WHERE r.hash = $1 AND s.scope = ANY($2))",
                &[&hash, &scopes],
            )?
            .try_get(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_writer_takes_the_log_lock() {
        assert_eq!(TAKE_LOG_LOCK, format!("SELECT pg_advisory_xact_lock({LOG_LOCK})"));
    }
}
