//! The durable store: one interface, two backends (SQLite, the embedded default, and
//! PostgreSQL for several nodes), one SQL text through sqlx's `Any` driver.
//!
//! Architecture invariants:
//! - Intake is idempotent by (platform, shop, platform event id): the key is inserted in the
//!   same transaction as the message, so a redelivery can never store twice.
//! - [`Store::intake`] returns only after the transaction committed (SQLite: WAL with
//!   `synchronous=FULL`; PostgreSQL: `synchronous_commit` as configured on the server). The
//!   platform is acknowledged only after it returns.
//! - Concurrent intakes are committed in groups by one writer task: while one commit is being
//!   flushed the next requests queue up and share the next commit, so durability does not cost
//!   one fsync per message.
//! - Every text stored is already masked; the store never sees raw personal data except the
//!   sealed (encrypted) originals and the outbox payload of a reply being sent.

#![deny(unsafe_code)]

mod audit;
pub mod blacklist;
mod bot;
mod cluster;
mod customers;
mod intake;
mod messages;
mod outbox;
mod reader;
mod retention;
mod rights;
mod schema;
mod sessions;
mod tokens;
mod workbench;

pub use bot::{BotCount, BotCountKind, BotFigures, Settled, UNANSWERED_CHARS, UnansweredQuestion};
pub use cluster::{ClusterView, Fence, FencedAssign, LeaseRow, NodeRow};
pub use customers::RoutingInputs;
pub use workbench::{ClosedHandling, ResponseStats};

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

pub use intake::{IntakeBatch, IntakeItem, ItemOutcome, Screen};
pub use outbox::{NewReply, OutboxItem, SYSTEM_AUTHORS};
pub use retention::{Retention, SweepReport};
pub use rights::{BuyerRef, ErasureReport};
pub use tokens::StoredToken;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://…)")]
    BadUrl(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("not found: {0}")]
    NotFound(String),
    #[error(
        "the database schema is at version {database}, newer than this binary knows ({binary}): it was \
         written by a newer Huiliu; run that version (or restore a backup made by this one)"
    )]
    SchemaTooNew { database: i64, binary: i64 },
    #[error("{0}")]
    Unsupported(String),
    /// A routing write under a lease this node no longer holds (cluster): nothing was written.
    #[error("fenced: {0}")]
    Fenced(String),
    /// An assignment that would put an agent above their cap (cluster): nothing was written.
    #[error("agent {agent} already holds {held} sessions (cap {cap})")]
    OverCap { agent: String, held: i64, cap: u32 },
    /// An assignment of a session that is assigned or closed already (cluster): nothing written.
    #[error("not claimed: {0}")]
    Claimed(String),
}

/// Where a database's schema stands against this binary's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Versions applied, in order.
    pub applied: Vec<i64>,
    /// Migrations this binary would apply, as (version, name).
    pub pending: Vec<(i64, &'static str)>,
    /// The newest version this binary knows.
    pub binary: i64,
}

impl SchemaStatus {
    /// The newest applied version above what this binary knows, if any.
    pub fn too_new(&self) -> Option<i64> {
        self.applied.iter().copied().filter(|v| *v > self.binary).max()
    }
}

/// The newest schema version this binary knows.
pub fn schema_version() -> i64 {
    schema::MIGRATIONS.iter().map(|(v, _, _)| *v).max().unwrap_or(0)
}

/// How intake transactions are grouped.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Share one commit among all intakes waiting (default true). Off: one commit per push.
    pub group_commit: bool,
    /// Most events in one group commit.
    pub max_group_events: usize,
    /// Connections in the pool (readers; the intake writer holds one while writing).
    pub max_connections: u32,
    /// Intake writers side by side on PostgreSQL (default 1), each with its own channel and
    /// connection; a buyer's events always go to the same one. PostgreSQL commits them in
    /// parallel, where one writer waits out every statement's round trip in turn: the store
    /// alone takes twice as many messages with 4 (docs/performance.md), but on a small machine
    /// the whole path does not gain, so more is opt-in. SQLite has one writer whatever this says.
    pub pg_writers: usize,
    /// SQLite: WAL frames (pages) after which the checkpointer makes the WAL start over from its
    /// beginning (default 65,536: about 256 MiB). See `intake/thread.rs`, `checkpointer`.
    pub wal_restart_frames: i64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            group_commit: true,
            max_group_events: 512,
            max_connections: 8,
            pg_writers: 1,
            wal_restart_frames: 65_536,
        }
    }
}

/// A handle to the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writer: Writers,
    gate: WriteGate,
    /// Routing's read on an SQLite file (`reader.rs`); `None` elsewhere (the pool reads).
    reader: Option<reader::Reader>,
}

/// The intake writers' channels: one on SQLite; [`StoreOptions::pg_writers`] on PostgreSQL.
/// Every event of a buyer goes to the same writer, so a buyer's messages are stored in the
/// order they arrived and two writers never race to open the same buyer's session.
#[derive(Debug, Clone)]
pub(crate) struct Writers(std::sync::Arc<[mpsc::Sender<intake::Job>]>);

impl Writers {
    /// The writer of a batch: its first event's buyer's.
    fn for_batch(&self, batch: &IntakeBatch) -> &mpsc::Sender<intake::Job> {
        let key = batch.items.first().map(|i| (&i.event.platform, &i.event.shop, &i.event.buyer.open_id));
        self.pick(key)
    }

    /// The writer of a session's assignment.
    pub(crate) fn for_session(&self, session_id: i64) -> &mpsc::Sender<intake::Job> {
        self.pick(session_id)
    }

    fn pick(&self, key: impl std::hash::Hash) -> &mpsc::Sender<intake::Job> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let n = self.0.len();
        let i = if n > 1 { BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize % n } else { 0 };
        &self.0[i]
    }
}

/// Whose turn it is to write, in this process: the intake writer takes it per group, every
/// other write transaction ([`Store::write_tx`]) before its `BEGIN`. SQLite allows one writer
/// at a time; queueing here, first come first served, replaces waiting in SQLite's busy
/// handler (which sleeps and retries, and under flat-out intake could starve the others).
/// PostgreSQL needs no turn: its writers run side by side.
pub(crate) type WriteGate = std::sync::Arc<tokio::sync::Mutex<()>>;

/// A write transaction holding the write turn until it commits or is dropped (rolled back).
/// Derefs to the connection, like a sqlx transaction.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl Store {
    /// Opens (and creates, for SQLite) the database at `url`, applies pending migrations and
    /// starts the intake writer. Must be called inside a tokio runtime.
    pub async fn open(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        let connect = AnyConnectOptions::from_str(&url)?;
        let writer_count = if backend == Backend::Postgres { options.pg_writers.max(1) } else { 1 };
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite {
                options.max_connections.max(2)
            } else {
                // The writers hold one each while they write; the readers keep theirs.
                options.max_connections + writer_count as u32
            })
            .acquire_timeout(Duration::from_secs(30));
        if backend == Backend::Sqlite {
            pool_options = pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    // Deleted content is overwritten, so an erased buyer's text does not
                    // survive in free pages of the file (retention, erasure).
                    conn.execute("PRAGMA secure_delete = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(connect).await?;
        let gate = WriteGate::default();
        migrate(&pool, backend, &gate).await?;
        let mut writers = Vec::with_capacity(writer_count);
        for _ in 0..writer_count {
            let (tx, rx) = mpsc::channel(4096);
            match sqlite_file(&url) {
                Some(path) if backend == Backend::Sqlite => {
                    intake::spawn_thread_writer(std::path::Path::new(path), gate.clone(), rx, options)?
                }
                _ => {
                    tokio::spawn(intake::pooled_writer(pool.clone(), backend, gate.clone(), rx, options));
                }
            }
            writers.push(tx);
        }
        let reader = match sqlite_file(&url) {
            Some(path) if backend == Backend::Sqlite => {
                Some(reader::Reader::spawn(std::path::Path::new(path), customers::ROUTING_INPUTS_ONE)?)
            }
            _ => None,
        };
        Ok(Store { pool, backend, writer: Writers(writers.into()), gate, reader })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for queries.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first cannot upgrade while another
    /// writer commits and fails with "database is locked" instead of waiting.
    pub(crate) async fn write_tx(&self) -> Result<WriteTx, StoreError> {
        begin_write(&self.pool, self.backend, &self.gate).await
    }

    /// The write turn for a single statement that writes outside [`Store::write_tx`] (an
    /// autocommit `INSERT`/`UPDATE`/`DELETE` on the pool): held until the statement is done.
    /// `None` on PostgreSQL.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        if self.backend == Backend::Sqlite { Some(self.gate.clone().lock_owned().await) } else { None }
    }

    /// Stores a batch durably (idempotently) and returns one outcome per item. When this
    /// returns `Ok`, the batch is committed.
    pub async fn intake(&self, batch: IntakeBatch) -> Result<Vec<ItemOutcome>, StoreError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .for_batch(&batch)
            .send(intake::Job::Intake { batch, done })
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// Writes a consistent copy of the whole database to `path` while the daemon keeps taking
    /// traffic (SQLite `VACUUM INTO`: one read transaction, so the copy holds every commit
    /// before it and nothing after). `path` must not exist. PostgreSQL: use `pg_dump`.
    pub async fn backup_to(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            return Err(StoreError::Unsupported(
                "the PostgreSQL store is backed up with pg_dump (docs/operations.md)".into(),
            ));
        }
        if path.exists() {
            return Err(StoreError::Unsupported(format!("{} exists; a backup never overwrites", path.display())));
        }
        let target = path.to_str().ok_or_else(|| StoreError::Unsupported("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1").bind(target.to_owned()).execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// See [`Store::write_tx`].
pub(crate) async fn begin_write(pool: &AnyPool, backend: Backend, gate: &WriteGate) -> Result<WriteTx, StoreError> {
    Ok(match backend {
        Backend::Sqlite => {
            let turn = gate.clone().lock_owned().await;
            WriteTx { tx: pool.begin_with("BEGIN IMMEDIATE").await?, _turn: Some(turn) }
        }
        Backend::Postgres => WriteTx { tx: pool.begin().await?, _turn: None },
    })
}

/// The file behind a normalized SQLite URL (`sqlite://PATH?…`); `None` for an in-memory
/// database, which only the pool's own connections can see.
fn sqlite_file(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite://")?;
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

/// Accepts `sqlite://path`, `sqlite:path`, a bare file path (SQLite) or `postgres://…`.
fn normalize_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    if path.is_empty() || path.contains("://") {
        return Err(StoreError::BadUrl(url.to_owned()));
    }
    if path == ":memory:" {
        return Ok((Backend::Sqlite, "sqlite::memory:".to_owned()));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut out = format!("sqlite://{path}?mode=rwc");
    if !query.is_empty() {
        out.push('&');
        out.push_str(query);
    }
    Ok((Backend::Sqlite, out))
}

/// The schema status of the database at `url`, without changing it (an SQLite file that does
/// not exist is not created: everything is pending).
pub async fn schema_status(url: &str) -> Result<SchemaStatus, StoreError> {
    sqlx::any::install_default_drivers();
    let (backend, url) = normalize_url(url)?;
    let binary = schema_version();
    let all = || schema::MIGRATIONS.iter().map(|(v, n, _)| (*v, *n)).collect::<Vec<_>>();
    let url = match backend {
        Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            let path = path.split_once('?').map_or(path, |(p, _)| p);
            if path != ":memory:" && !std::path::Path::new(path).exists() {
                return Ok(SchemaStatus { applied: Vec::new(), pending: all(), binary });
            }
            url.replace("mode=rwc", "mode=ro")
        }
        Backend::Postgres => url,
    };
    let pool = AnyPoolOptions::new().max_connections(1).connect_with(AnyConnectOptions::from_str(&url)?).await?;
    let applied = applied_versions(&pool).await?;
    pool.close().await;
    let pending = all().into_iter().filter(|(v, _)| !applied.contains(v)).collect();
    Ok(SchemaStatus { applied, pending, binary })
}

/// [`Store::closed_handling`] read from the database at `url` without opening the store (no
/// migration, no writer; SQLite read-only): for `huiliu check`. `Ok(None)` when an SQLite file
/// does not exist. Gives up after 3 s on a database that does not answer.
pub async fn peek_closed_handling(url: &str, since: i64) -> Result<Option<Vec<ClosedHandling>>, StoreError> {
    sqlx::any::install_default_drivers();
    let (backend, url) = normalize_url(url)?;
    let url = match backend {
        Backend::Sqlite => match sqlite_file(&url) {
            Some(path) if !std::path::Path::new(path).exists() => return Ok(None),
            _ => url.replace("mode=rwc", "mode=ro"),
        },
        Backend::Postgres => url,
    };
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(AnyConnectOptions::from_str(&url)?)
        .await?;
    let found = workbench::closed_handling(&pool, since).await;
    pool.close().await;
    found.map(Some)
}

/// The applied versions, oldest first (none when the table does not exist yet).
async fn applied_versions(pool: &AnyPool) -> Result<Vec<i64>, StoreError> {
    match sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version").fetch_all(pool).await {
        Ok(v) => Ok(v),
        Err(sqlx::Error::Database(e)) if e.message().contains("schema_migrations") => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Applies every migration not yet recorded, each in its own transaction; refuses a database
/// whose schema is newer than this binary knows.
async fn migrate(pool: &AnyPool, backend: Backend, gate: &WriteGate) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(pool).await?;
    let binary = schema_version();
    if let Some(database) = applied.iter().copied().filter(|v| *v > binary).max() {
        return Err(StoreError::SchemaTooNew { database, binary });
    }
    for (version, name, sql) in schema::MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let mut tx = begin_write(pool, backend, gate).await?;
        for statement in schema::statements(sql, backend) {
            // Our own constant migration text.
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(*version)
            .bind(*name)
            .bind(huiliu_domain::now_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            normalize_url("data/huiliu.db").unwrap(),
            (Backend::Sqlite, "sqlite://data/huiliu.db?mode=rwc".into())
        );
        assert_eq!(normalize_url("sqlite:///tmp/x.db").unwrap().1, "sqlite:///tmp/x.db?mode=rwc");
        assert_eq!(normalize_url("postgres://u@h/db").unwrap().0, Backend::Postgres);
        assert!(normalize_url("mysql://x").is_err());
    }
}
