//! Group commit: one thread owns the only writing connection. The writes that arrive
//! while it is committing wait in a queue and go into its next transaction together,
//! so many requests share one fsync (`synchronous = FULL`: none of them returns before
//! its write is on disk). Each write runs in its own savepoint: one that fails is rolled
//! back alone and the others commit.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::storage::{Result, StorageError};

/// The most writes in one transaction: a bound on how long the first of them waits.
const MAX_GROUP: usize = 64;

/// The handle the storage keeps; dropping it lets the thread finish the queue, close the
/// connection and end.
#[derive(Debug)]
pub(super) struct Writer {
    queue: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
}

/// What the writer has seen, for tests and diagnostics.
#[derive(Debug, Default)]
pub(super) struct Counts {
    /// Jobs sent and not yet taken by the thread.
    pub queued: AtomicUsize,
    /// The most writes committed in one transaction so far.
    pub largest_group: AtomicUsize,
}

enum Job {
    /// Run in the group's transaction, within its own savepoint.
    Grouped(Box<dyn Grouped>),
    /// Run alone with the connection to itself, outside any transaction (a restore).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// A write waiting for its group, type-erased.
trait Grouped: Send {
    /// Runs the write; `true` when it succeeded (its savepoint is kept).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the group's transaction ended: its own result, or the error
    /// that undid the whole group.
    fn answer(self: Box<Self>, group_failed: Option<&rusqlite::Error>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: SyncSender<Result<T>>,
}

impl<T: Send, F: FnOnce(&Connection) -> Result<T> + Send> Grouped for Pending<T, F> {
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else { return false };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StorageError::Conflict("a database write failed unexpectedly".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, group_failed: Option<&rusqlite::Error>) {
        let result = match (group_failed, self.result) {
            (Some(error), _) => Err(StorageError::Sql(duplicate(error))),
            (None, Some(result)) => result,
            (None, None) => Err(stopped()),
        };
        // The caller waits for the answer; if it is gone there is no one left to tell.
        let _ = self.reply.send(result);
    }
}

impl Writer {
    pub(super) fn start(conn: Connection) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let thread = {
            let counts = counts.clone();
            std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || serve(conn, jobs, &counts))?
        };
        Ok(Self { queue: Some(queue), thread: Some(thread), counts })
    }

    #[cfg(test)]
    pub(super) fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Runs `work` in a transaction shared with the writes queued beside it, and returns
    /// once that transaction is durable (or undone: then nothing of `work` was written).
    pub(super) fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(Job::Grouped(Box::new(Pending { work: Some(work), result: None, reply })))?;
        answer.recv().map_err(|_| stopped())?
    }

    /// Runs `work` alone, after every write queued before it.
    pub(super) fn alone<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(Job::Alone(Box::new(move |conn: &mut Connection| {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|_| Err(StorageError::Conflict("a database operation failed unexpectedly".into())));
            let _ = reply.send(result);
        })))?;
        answer.recv().map_err(|_| stopped())?
    }

    fn submit(&self, job: Job) -> Result<()> {
        self.counts.queued.fetch_add(1, Ordering::Relaxed);
        self.queue.as_ref().ok_or_else(stopped)?.send(job).map_err(|_| stopped())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // The connection is closed (and the WAL checkpointed) when this returns.
            let _ = thread.join();
        }
    }
}

fn stopped() -> StorageError {
    StorageError::Conflict("the database writer has stopped".into())
}

/// The writer thread: takes what is queued, up to `MAX_GROUP` writes, and commits it.
fn serve(mut conn: Connection, jobs: Receiver<Job>, counts: &Counts) {
    let mut group: Vec<Box<dyn Grouped>> = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = jobs.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            counts.queued.fetch_sub(1, Ordering::Relaxed);
            match job {
                Job::Grouped(write) => group.push(write),
                Job::Alone(work) => {
                    commit_group(&mut conn, &mut group, counts);
                    work(&mut conn);
                }
            }
            if group.len() < MAX_GROUP {
                next = jobs.try_recv().ok();
            }
        }
        commit_group(&mut conn, &mut group, counts);
    }
}

fn commit_group(conn: &mut Connection, group: &mut Vec<Box<dyn Grouped>>, counts: &Counts) {
    if group.is_empty() {
        return;
    }
    counts.largest_group.fetch_max(group.len(), Ordering::Relaxed);
    let outcome = run_group(conn, group);
    for write in group.drain(..) {
        write.answer(outcome.as_ref().err());
    }
}

fn run_group(conn: &mut Connection, group: &mut [Box<dyn Grouped>]) -> rusqlite::Result<()> {
    // Cached statements rather than rusqlite's `Transaction` and `Savepoint`, which parse
    // their SQL again each time: a tenth of the server's CPU under load.
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut statement| statement.execute([]));
    run("BEGIN IMMEDIATE")?;
    let outcome = (|| {
        for write in group.iter_mut() {
            run("SAVEPOINT write")?;
            if !write.run(conn) {
                run("ROLLBACK TO write")?;
            }
            run("RELEASE write")?;
        }
        run("COMMIT")
    })();
    if outcome.is_err() && !conn.is_autocommit() {
        // What the failure left of the transaction is undone; the error is the first one.
        let _ = run("ROLLBACK");
    }
    outcome.map(|_| ())
}

/// The same error again, for each write of a group that one failure undid
/// (`rusqlite::Error` is not `Clone`).
fn duplicate(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => rusqlite::Error::SqliteFailure(*code, message.clone()),
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Barrier};

    use super::*;

    fn writer(dir: &std::path::Path) -> Writer {
        let conn = Connection::open(dir.join("db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY);").unwrap();
        Writer::start(conn).unwrap()
    }

    fn stored(dir: &std::path::Path) -> Vec<i64> {
        let conn = Connection::open(dir.join("db")).unwrap();
        let mut statement = conn.prepare("SELECT n FROM t ORDER BY n").unwrap();
        statement.query_map([], |row| row.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    /// Writes queued while the writer is busy share its next transaction; the ones that
    /// fail (an error, a panic) are undone alone and the rest are durable when they return.
    #[test]
    fn a_failing_write_in_a_group_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Arc::new(writer(dir.path()));
        // Hold the writer (busy with this) until every write below is queued.
        let (busy, queued) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let hold = {
            let (writer, busy, queued) = (writer.clone(), busy.clone(), queued.clone());
            std::thread::spawn(move || {
                writer
                    .alone(move |_| {
                        busy.wait();
                        queued.wait();
                        Ok(())
                    })
                    .unwrap()
            })
        };
        busy.wait();
        let writes: Vec<_> = (0..12i64)
            .map(|n| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    writer.write(move |conn| {
                        conn.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                        match n % 4 {
                            1 => Err(StorageError::Conflict("refused".into())),
                            2 if n == 2 => panic!("a bug in one write"),
                            _ => Ok(n),
                        }
                    })
                })
            })
            .collect();
        // Let the writer go once every write is queued behind it.
        while writer.counts().queued.load(Ordering::Relaxed) < 12 {
            std::thread::yield_now();
        }
        queued.wait();
        hold.join().unwrap();
        let results: Vec<Result<i64>> = writes.into_iter().map(|write| write.join().unwrap()).collect();
        let kept: Vec<i64> = results.iter().filter_map(|result| result.as_ref().ok().copied()).collect();
        assert_eq!(kept, vec![0, 3, 4, 6, 7, 8, 10, 11]);
        assert!(matches!(results[1], Err(StorageError::Conflict(_))));
        assert!(matches!(&results[2], Err(StorageError::Conflict(message)) if message.contains("unexpectedly")));
        assert_eq!(writer.counts().largest_group.load(Ordering::Relaxed), 12, "one transaction");
        // Read through another connection: what returned Ok is there, nothing else.
        assert_eq!(stored(dir.path()), kept);
    }

    #[test]
    fn dropping_the_writer_finishes_the_queue_and_closes_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(dir.path());
        writer.write(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (1)", [])?)).unwrap();
        drop(writer);
        // Closed: the last connection's close checkpointed the WAL and removed it.
        assert!(!dir.path().join("db-wal").exists());
        assert_eq!(stored(dir.path()), vec![1]);
    }
}
