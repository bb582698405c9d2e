//! The pooled intake writer (PostgreSQL; in-memory SQLite): a task that runs each group in one
//! sqlx transaction.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Row};
use tokio::sync::mpsc;

use super::{INTS, IntakeTx, Ints, Job, StoreError, Val, group, settle, write_jobs};
use crate::{Backend, StoreOptions, WriteGate};

/// The intake writer task.
pub(crate) async fn writer(
    pool: AnyPool,
    backend: Backend,
    gate: WriteGate,
    mut rx: mpsc::Receiver<Job>,
    options: StoreOptions,
) {
    while let Some(first) = rx.recv().await {
        let jobs = group(first, &mut rx, options.group_commit, options.max_group_events);
        let write = async |jobs: &[Job]| {
            let mut tx = crate::begin_write(&pool, backend, &gate).await?;
            let outcomes = write_jobs(&mut PooledTx(&mut tx), jobs).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(outcomes)
        };
        let result = write(&jobs).await;
        if let Some(jobs) = settle(jobs, result) {
            for job in jobs {
                let mut result = write(std::slice::from_ref(&job)).await;
                // Another writer (of this node or another) met this one in a cycle of row
                // locks, or opened the same buyer's session first: the transaction was rolled
                // back whole, and doing it again sees what the other committed.
                for _ in 0..3 {
                    match &result {
                        Err(e) if transient(e) => result = write(std::slice::from_ref(&job)).await,
                        _ => break,
                    }
                }
                job.answer(result.map(|mut r| r.remove(0)));
            }
        }
    }
    tracing::debug!("pooled intake writer stopped");
}

/// A failure that doing the transaction again can cure (PostgreSQL): a deadlock, a
/// serialization failure, or a unique violation (another writer inserted the same buyer's open
/// session or customer row first).
fn transient(e: &StoreError) -> bool {
    let StoreError::Db(sqlx::Error::Database(db)) = e else { return false };
    matches!(db.code().as_deref(), Some("40P01" | "40001" | "23505"))
}

/// Intake's statements on a sqlx transaction.
struct PooledTx<'t>(&'t mut sqlx::AnyConnection);

fn bind<'q>(sql: &'static str, params: &[Val<'_>]) -> Query<'q, Any, AnyArguments> {
    let mut q = sqlx::query(sql);
    for p in params {
        q = match *p {
            Val::Int(v) => q.bind(v),
            Val::Text(v) => q.bind(v.map(str::to_owned)),
            Val::Blob(v) => q.bind(v.map(<[u8]>::to_vec)),
        };
    }
    q
}

impl IntakeTx for PooledTx<'_> {
    async fn execute(&mut self, sql: &'static str, params: &[Val<'_>]) -> Result<u64, StoreError> {
        Ok(bind(sql, params).execute(&mut *self.0).await?.rows_affected())
    }

    async fn ints(&mut self, sql: &'static str, params: &[Val<'_>]) -> Result<Option<Ints>, StoreError> {
        let Some(row) = bind(sql, params).fetch_optional(&mut *self.0).await? else { return Ok(None) };
        let mut ints = [None; INTS];
        for (i, v) in ints.iter_mut().enumerate().take(row.len()) {
            *v = row.try_get(i)?;
        }
        Ok(Some(ints))
    }
}

/// Closes a session (used by the session service's close).
pub(crate) async fn close_session(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    PooledTx(conn).execute(super::CLOSE_SESSION, &[now.into(), reason.into(), id.into()]).await?;
    Ok(())
}
