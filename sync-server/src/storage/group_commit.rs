//! Group commit: one thread owns a backend's writing connection. The writes that arrive
//! while it is committing wait in a queue and go into its next transaction together, so
//! many requests share one durable commit (one fsync; on PostgreSQL also one turn of the
//! log's lock) and none returns before its write is durable. Each write runs in its own
//! savepoint: one that fails is rolled back alone and the others commit.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use crate::storage::{Result, StorageError};

/// The most writes in one transaction: a bound on how long the first of them waits.
const MAX_GROUP: usize = 64;

/// A writing connection as the group commit drives it: transaction control by SQL text.
pub(super) trait Session: Send + 'static {
    /// Statements that open a group's transaction.
    const BEGIN: &'static [&'static str];
    /// Runs statements of transaction control (`BEGIN`, `SAVEPOINT`, `COMMIT`, …) in order,
    /// stopping at the first that fails. They come together so that a backend across a
    /// network sends them in one round trip.
    fn control(&mut self, statements: &[&'static str]) -> Result<()>;
    /// Called before each group: a backend whose connection broke opens a new one.
    fn reconnect_if_broken(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The handle the storage keeps; dropping it lets the thread finish the queue, close the
/// connection and end.
#[derive(Debug)]
pub(super) struct Writer<C> {
    queue: Option<Sender<Job<C>>>,
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

enum Job<C> {
    /// Run in the group's transaction, within its own savepoint.
    Grouped(Box<dyn Grouped<C>>),
    /// Run alone with the connection to itself, outside any transaction (a restore).
    Alone(Box<dyn FnOnce(&mut C) + Send>),
}

/// A write waiting for its group, type-erased.
trait Grouped<C>: Send {
    /// Runs the write; `true` when it succeeded (its savepoint is kept).
    fn run(&mut self, conn: &mut C) -> bool;
    /// Answers the caller once the group's transaction ended: its own result, or the error
    /// that undid the whole group.
    fn answer(self: Box<Self>, group_failed: Option<&StorageError>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: SyncSender<Result<T>>,
}

impl<C, T: Send, F: FnOnce(&mut C) -> Result<T> + Send> Grouped<C> for Pending<T, F> {
    fn run(&mut self, conn: &mut C) -> bool {
        let Some(work) = self.work.take() else { return false };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StorageError::Conflict("a database write failed unexpectedly".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, group_failed: Option<&StorageError>) {
        let result = match (group_failed, self.result) {
            (Some(error), _) => Err(error.duplicate()),
            (None, Some(result)) => result,
            (None, None) => Err(stopped()),
        };
        // The caller waits for the answer; if it is gone there is no one left to tell.
        let _ = self.reply.send(result);
    }
}

impl<C: Session> Writer<C> {
    pub(super) fn start(conn: C) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let thread = {
            let counts = counts.clone();
            std::thread::Builder::new().name("db-writer".into()).spawn(move || serve(conn, jobs, &counts))?
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
        F: FnOnce(&mut C) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(Job::Grouped(Box::new(Pending { work: Some(work), result: None, reply })))?;
        answer.recv().map_err(|_| stopped())?
    }

    /// Runs `work` alone, after every write queued before it.
    pub(super) fn alone<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut C) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(Job::Alone(Box::new(move |conn: &mut C| {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|_| Err(StorageError::Conflict("a database operation failed unexpectedly".into())));
            let _ = reply.send(result);
        })))?;
        answer.recv().map_err(|_| stopped())?
    }

    fn submit(&self, job: Job<C>) -> Result<()> {
        self.counts.queued.fetch_add(1, Ordering::Relaxed);
        self.queue.as_ref().ok_or_else(stopped)?.send(job).map_err(|_| stopped())
    }
}

impl<C> Drop for Writer<C> {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // The connection is closed (and SQLite's WAL checkpointed) when this returns.
            let _ = thread.join();
        }
    }
}

fn stopped() -> StorageError {
    StorageError::Conflict("the database writer has stopped".into())
}

/// The writer thread: takes what is queued, up to `MAX_GROUP` writes, and commits it.
fn serve<C: Session>(mut conn: C, jobs: Receiver<Job<C>>, counts: &Counts) {
    let mut group: Vec<Box<dyn Grouped<C>>> = Vec::with_capacity(MAX_GROUP);
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

fn commit_group<C: Session>(conn: &mut C, group: &mut Vec<Box<dyn Grouped<C>>>, counts: &Counts) {
    if group.is_empty() {
        return;
    }
    counts.largest_group.fetch_max(group.len(), Ordering::Relaxed);
    let outcome = run_group(conn, group);
    for write in group.drain(..) {
        write.answer(outcome.as_ref().err());
    }
}

fn run_group<C: Session>(conn: &mut C, group: &mut [Box<dyn Grouped<C>>]) -> Result<()> {
    conn.reconnect_if_broken()?;
    let outcome = (|| {
        // Control statements wait for the next write or the end, and go with the others
        // gathered by then: BEGIN with the first savepoint, each release with the next
        // savepoint, the last with COMMIT.
        let mut control: Vec<&'static str> = C::BEGIN.to_vec();
        for write in group.iter_mut() {
            control.push("SAVEPOINT write");
            conn.control(&control)?;
            control.clear();
            if !write.run(conn) {
                control.push("ROLLBACK TO SAVEPOINT write");
            }
            control.push("RELEASE SAVEPOINT write");
        }
        control.push("COMMIT");
        conn.control(&control)
    })();
    if outcome.is_err() {
        // What the failure left of the transaction is undone (if it began: otherwise the
        // rollback fails, and is ignored); the error is the first one.
        let _ = conn.control(&["ROLLBACK"]);
    }
    outcome
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Barrier};

    use rusqlite::Connection;

    use super::*;

    /// SQLite's session (in `sqlite.rs`) drives these tests.
    fn writer(dir: &std::path::Path) -> Writer<Connection> {
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
