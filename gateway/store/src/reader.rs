//! Routing's read of a new conversation on SQLite: a dedicated OS thread with its own
//! connection, answering [`Store::routing_inputs`](crate::Store::routing_inputs).
//!
//! Why not sqlx here, as for the intake writer (`intake/thread.rs`): sqlx's SQLite driver
//! hands every statement and every row to the connection's worker thread. Routing reads once
//! per new conversation, and at a few thousand new conversations a second that worker thread
//! and the wake-ups to reach it were a quarter of the daemon's samples (docs/performance.md,
//! issue 16 seventh round). Here the request goes in and the row comes out: one hand-off each
//! way and a cached prepared statement; requests are answered in turn. The connection only reads (`query_only`); in WAL mode it sees every
//! commit made before each statement starts, as the pool's connections do.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::oneshot;

use crate::StoreError;

/// One row of routing's read (`customers.rs`), as either connection reads it.
#[derive(Debug, Clone)]
pub(crate) struct RoutingRow {
    pub state: String,
    pub platform: String,
    pub shop: String,
    pub customer_id: i64,
    pub buyer_id: String,
    pub vip_level: i64,
    pub fans_level: i64,
    pub tags: String,
    pub last_agent: Option<String>,
    pub last_agent_at: Option<i64>,
    pub first_text: String,
    pub has_refunds: i64,
}

type Request = (i64, oneshot::Sender<Result<Option<RoutingRow>, StoreError>>);

/// The way to the reader thread; the thread ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Reader(std::sync::mpsc::Sender<Request>);

impl Reader {
    /// Opens a connection to the SQLite file at `path` (already migrated) and starts the thread,
    /// which answers each request with `sql` (`$1` the session id; the columns of a
    /// [`RoutingRow`] in order).
    pub(crate) fn spawn(path: &Path, sql: &'static str) -> Result<Reader, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;")?;
        let (tx, rx) = std::sync::mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("huiliu-reader".into())
            .spawn(move || {
                while let Ok((session_id, answer)) = rx.recv() {
                    let _ = answer.send(read(&conn, sql, session_id));
                }
                tracing::debug!("routing reader thread stopped");
            })
            .map_err(|e| StoreError::Unsupported(format!("cannot start the routing reader thread: {e}")))?;
        Ok(Reader(tx))
    }

    /// The routing row of a session; `None` when it is gone.
    pub(crate) async fn routing_row(&self, session_id: i64) -> Result<Option<RoutingRow>, StoreError> {
        let (answer, wait) = oneshot::channel();
        self.0.send((session_id, answer)).map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }
}

fn read(conn: &Connection, sql: &str, session_id: i64) -> Result<Option<RoutingRow>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let row = stmt
        .query_row([session_id], |r| {
            Ok(RoutingRow {
                state: r.get(0)?,
                platform: r.get(1)?,
                shop: r.get(2)?,
                customer_id: r.get(3)?,
                buyer_id: r.get(4)?,
                vip_level: r.get(5)?,
                fans_level: r.get(6)?,
                tags: r.get(7)?,
                last_agent: r.get(8)?,
                last_agent_at: r.get(9)?,
                first_text: r.get(10)?,
                has_refunds: r.get(11)?,
            })
        })
        .optional()?;
    Ok(row)
}
