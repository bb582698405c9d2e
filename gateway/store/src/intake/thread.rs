//! The SQLite intake writer: a dedicated OS thread that owns its own connection and runs whole
//! groups on it.
//!
//! Why not sqlx here: sqlx's SQLite driver runs each statement on the connection's worker thread
//! and hands every statement and every row across threads; at five statements per message the
//! hand-offs (futex wake-ups) were most of intake's cost. Here a group is one `BEGIN IMMEDIATE …
//! COMMIT` on this thread with cached prepared statements; the only hand-offs are the job in and
//! its answer out. The other writers (routing, outbox, admin) keep sqlx and take the same
//! in-process [`WriteGate`](crate::WriteGate) first, so nobody waits in SQLite's busy handler.

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, TransactionBehavior};
use tokio::sync::mpsc;

use super::{Done, INTS, IntakeTx, Ints, Job, StoreError, Val, group, settle, write_jobs};
use crate::{StoreOptions, WriteGate};

/// Opens the writer's connection to the SQLite file at `path` (already migrated) and starts the
/// thread. Fails when the file cannot be opened for writing.
pub(crate) fn spawn(
    path: &Path,
    gate: WriteGate,
    rx: mpsc::Receiver<Job>,
    options: StoreOptions,
) -> Result<(), StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // The same settings as the pool's connections: durability first (ack after a synced commit),
    // and deleted content overwritten. Its own: a larger page cache (the pages intake touches stay
    // in memory), and no checkpoints on this thread — they run on the checkpointer's.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA secure_delete = ON; \
         PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 0;",
    )?;
    conn.set_prepared_statement_cache_capacity(32);
    let checkpoints = Connection::open_with_flags(path, flags)?;
    checkpoints.execute_batch("PRAGMA busy_timeout = 10000;")?;
    let (alive, writer_gone) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("huiliu-checkpoint".into())
        .spawn({
            let (gate, restart_after) = (gate.clone(), options.wal_restart_frames);
            move || checkpointer(checkpoints, gate, restart_after, writer_gone)
        })
        .map_err(|e| StoreError::Unsupported(format!("cannot start the checkpoint thread: {e}")))?;
    std::thread::Builder::new()
        .name("huiliu-intake".into())
        .spawn(move || {
            run(conn, gate, rx, options);
            drop(alive);
        })
        .map_err(|e| StoreError::Unsupported(format!("cannot start the intake writer thread: {e}")))?;
    Ok(())
}

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Copies the WAL into the database file beside the writer (`PASSIVE`: never blocks a writer or a
/// reader), so the intake thread's commits do not pay for checkpoints (about an eighth of its
/// time when it did them itself). Ends with the writer.
///
/// SQLite writes the WAL from its beginning again only when a write transaction starts with
/// every frame checkpointed. Under steady intake that never happened by itself: the writer
/// commits every few milliseconds, so each checkpoint ended behind the last commit, and the WAL
/// grew by every page written (1.1–1.8 GB in a one-minute load run). Every commit then extended
/// the file, and syncing a file whose size changed waits for the filesystem's journal: on this
/// machine's ext4, 30–50 ms every 5 s. So once the WAL holds `restart_after` frames
/// ([`StoreOptions::wal_restart_frames`](crate::StoreOptions::wal_restart_frames)), the
/// checkpointer catches up once more while holding the write turn, between two intake groups
/// (2–12 ms measured: the frames of the last moments and a sync), and the next write starts the
/// WAL over, overwriting its frames in place.
fn checkpointer(conn: Connection, gate: WriteGate, restart_after: i64, writer_gone: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    // Answers (busy, frames in the WAL, frames checkpointed): the frames in the WAL.
    let passive = |conn: &Connection| conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
    while let Err(RecvTimeoutError::Timeout) = writer_gone.recv_timeout(CHECKPOINT_EVERY) {
        match passive(&conn) {
            Ok(frames) if frames >= restart_after => {
                let _turn = gate.blocking_lock();
                if let Err(e) = passive(&conn) {
                    tracing::warn!("WAL checkpoint to start the WAL over failed (retried): {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("WAL checkpoint failed (retried): {e}"),
        }
    }
    // A last one, so a clean stop leaves little WAL behind.
    let _ = passive(&conn);
}

fn run(mut conn: Connection, gate: WriteGate, mut rx: mpsc::Receiver<Job>, options: StoreOptions) {
    while let Some(first) = rx.blocking_recv() {
        let jobs = group(first, &mut rx, options.group_commit, options.max_group_events);
        let result = write(&mut conn, &gate, &jobs);
        if let Some(jobs) = settle(jobs, result) {
            for job in jobs {
                let result = write(&mut conn, &gate, std::slice::from_ref(&job)).map(|mut r| r.remove(0));
                job.answer(result);
            }
        }
    }
    tracing::debug!("intake writer thread stopped");
}

/// One group in one transaction, committed (synced) before it returns.
fn write(conn: &mut Connection, gate: &WriteGate, jobs: &[Job]) -> Result<Vec<Done>, StoreError> {
    let _turn = gate.blocking_lock();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let outcomes = ready(write_jobs(&mut ThreadTx(&tx), jobs))?;
    tx.commit()?;
    Ok(outcomes)
}

/// Runs a future that never waits: intake's logic is written once as `async` for both writers,
/// and on this thread every statement completes where it is called.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the SQLite intake statements are synchronous"),
    }
}

/// Intake's statements on this thread's transaction.
struct ThreadTx<'t>(&'t rusqlite::Transaction<'t>);

impl ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Val::Int(Some(v)) => ValueRef::Integer(v),
            Val::Text(Some(v)) => ValueRef::Text(v.as_bytes()),
            Val::Blob(Some(v)) => ValueRef::Blob(v),
            Val::Int(None) | Val::Text(None) | Val::Blob(None) => ValueRef::Null,
        }))
    }
}

impl IntakeTx for ThreadTx<'_> {
    async fn execute(&mut self, sql: &'static str, params: &[Val<'_>]) -> Result<u64, StoreError> {
        let mut statement = self.0.prepare_cached(sql)?;
        Ok(statement.execute(rusqlite::params_from_iter(params))? as u64)
    }

    async fn ints(&mut self, sql: &'static str, params: &[Val<'_>]) -> Result<Option<Ints>, StoreError> {
        let mut statement = self.0.prepare_cached(sql)?;
        let columns = statement.column_count().min(INTS);
        let row = statement
            .query_row(rusqlite::params_from_iter(params), |r| {
                let mut ints = [None; INTS];
                for (i, v) in ints.iter_mut().enumerate().take(columns) {
                    *v = r.get(i)?;
                }
                Ok(ints)
            })
            .optional()?;
        Ok(row)
    }
}
