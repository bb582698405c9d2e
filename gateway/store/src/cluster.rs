//! Several nodes on one PostgreSQL database (`[cluster]`): leases with epochs, the nodes seen,
//! and the fenced writes of routing.
//!
//! A lease names one thing only one node may do at a time (the routing queues, a shop's
//! long-lived channel). Its row says who holds it, under which epoch and until when — the
//! database's clock, so nodes with drifting clocks agree. Taking a lapsed lease raises its epoch
//! (the fencing token). Every routing write of the holder is one transaction that first reads the
//! lease row `FOR SHARE` with the holder's epoch: a node that was paused or cut off and wakes
//! after another took over finds a higher epoch and writes nothing ([`StoreError::Fenced`]). A
//! takeover's `UPDATE` of the lease row waits for such a transaction to finish, so a fenced write
//! and a takeover never interleave.

use huiliu_domain::session::SessionState;
use huiliu_sdk::Millis;
use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// The database's clock in milliseconds (PostgreSQL).
const DB_NOW: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// A held lease: what a fenced write presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease's name (`routing`, `channel:taobao:shop-1:tmc`).
    pub lease: String,
    /// The node holding it.
    pub holder: String,
    /// The epoch it was taken under.
    pub epoch: i64,
}

/// A lease row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
    pub expires_at: Millis,
    pub acquired_at: Millis,
}

/// A node as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub node: String,
    /// Where its API listens.
    pub address: String,
    pub started_at: Millis,
    pub seen_at: Millis,
}

/// The cluster as the database sees it, at the database's `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub now: Millis,
    pub leases: Vec<LeaseRow>,
    pub nodes: Vec<NodeRow>,
}

/// A fenced assignment: the session goes to `agent` only under a current lease, while the agent
/// has fewer than `cap` other assigned sessions, and while the session is not assigned.
#[derive(Debug, Clone)]
pub struct FencedAssign<'a> {
    pub session_id: i64,
    pub group: Option<&'a str>,
    pub agent: &'a str,
    pub priority: i64,
    pub decision: Option<&'a serde_json::Value>,
    /// The agent's cap as the routing engine knows it (`None`: no cap checked).
    pub cap: Option<u32>,
    pub now: Millis,
}

impl Store {
    fn require_postgres(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            Ok(())
        } else {
            Err(StoreError::Unsupported("a cluster needs the PostgreSQL store".into()))
        }
    }

    /// Takes the lease `name` for `holder` for `ttl_ms` when nobody holds it or its holder let it
    /// lapse, raising the epoch. `Some(epoch)` when taken; `None` when another node holds it (or
    /// this one does under an earlier epoch that has not lapsed yet: a restarted node waits).
    pub async fn lease_acquire(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<Option<i64>, StoreError> {
        self.require_postgres()?;
        let sql = format!(
            "INSERT INTO cluster_leases (name, holder, epoch, expires_at, acquired_at) \
             VALUES ($1, $2, 1, {DB_NOW} + $3, {DB_NOW}) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = cluster_leases.epoch + 1, \
             expires_at = excluded.expires_at, acquired_at = excluded.acquired_at \
             WHERE cluster_leases.expires_at <= {DB_NOW} RETURNING epoch"
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(holder)
            .bind(ttl_ms)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Extends a held lease by `ttl_ms` from now; false when it is no longer this holder's under
    /// this epoch, or had lapsed (then another node may have taken it: stop acting on it).
    pub async fn lease_renew(&self, fence: &Fence, ttl_ms: i64) -> Result<bool, StoreError> {
        self.require_postgres()?;
        let sql = format!(
            "UPDATE cluster_leases SET expires_at = {DB_NOW} + $4 \
             WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > {DB_NOW}"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&fence.lease)
            .bind(&fence.holder)
            .bind(fence.epoch)
            .bind(ttl_ms)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a held lease up at once (a clean shutdown), so another node need not wait it out.
    pub async fn lease_release(&self, fence: &Fence) -> Result<(), StoreError> {
        self.require_postgres()?;
        sqlx::query("UPDATE cluster_leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND epoch = $3")
            .bind(&fence.lease)
            .bind(&fence.holder)
            .bind(fence.epoch)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records that `node` (API at `address`, started at `started_at`) is alive now.
    pub async fn node_seen(&self, node: &str, address: &str, started_at: Millis) -> Result<(), StoreError> {
        self.require_postgres()?;
        let sql = format!(
            "INSERT INTO cluster_nodes (node, address, started_at, seen_at) VALUES ($1, $2, $3, {DB_NOW}) \
             ON CONFLICT (node) DO UPDATE SET address = excluded.address, started_at = excluded.started_at, \
             seen_at = excluded.seen_at"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(node).bind(address).bind(started_at).execute(self.pool()).await?;
        Ok(())
    }

    /// Every lease and node, with the database's clock.
    pub async fn cluster_view(&self) -> Result<ClusterView, StoreError> {
        self.require_postgres()?;
        let now: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {DB_NOW}"))).fetch_one(self.pool()).await?;
        let leases =
            sqlx::query("SELECT name, holder, epoch, expires_at, acquired_at FROM cluster_leases ORDER BY name")
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| {
                    Ok(LeaseRow {
                        name: r.try_get(0)?,
                        holder: r.try_get(1)?,
                        epoch: r.try_get(2)?,
                        expires_at: r.try_get(3)?,
                        acquired_at: r.try_get(4)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let nodes = sqlx::query("SELECT node, address, started_at, seen_at FROM cluster_nodes ORDER BY node")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(NodeRow {
                    node: r.try_get(0)?,
                    address: r.try_get(1)?,
                    started_at: r.try_get(2)?,
                    seen_at: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(ClusterView { now, leases, nodes })
    }

    /// Records that `agents` have an event stream open on `node` now.
    pub async fn streams_seen(&self, node: &str, agents: &[String]) -> Result<(), StoreError> {
        self.require_postgres()?;
        if agents.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO cluster_streams (agent, node, seen_at) \
             SELECT a, $2, {DB_NOW} FROM unnest(string_to_array($1, E'\\n')) AS a \
             ON CONFLICT (agent, node) DO UPDATE SET seen_at = excluded.seen_at"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(agents.join("\n")).bind(node).execute(self.pool()).await?;
        Ok(())
    }

    /// Agents whose event stream was on a node silent for `node_silent_ms` and who have had no
    /// stream anywhere for `grace_ms`: their node died and they did not come back.
    pub async fn orphaned_agents(&self, grace_ms: i64, node_silent_ms: i64) -> Result<Vec<String>, StoreError> {
        self.require_postgres()?;
        let sql = format!(
            "SELECT DISTINCT s.agent FROM cluster_streams s JOIN cluster_nodes n ON n.node = s.node \
             WHERE n.seen_at < {DB_NOW} - $2 AND NOT EXISTS (SELECT 1 FROM cluster_streams t \
             WHERE t.agent = s.agent AND t.seen_at >= {DB_NOW} - $1) ORDER BY s.agent"
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(grace_ms)
            .bind(node_silent_ms)
            .fetch_all(self.pool())
            .await?)
    }

    /// Forgets an agent's recorded streams (they were set offline).
    pub async fn forget_streams(&self, agent: &str) -> Result<(), StoreError> {
        self.require_postgres()?;
        sqlx::query("DELETE FROM cluster_streams WHERE agent = $1").bind(agent).execute(self.pool()).await?;
        Ok(())
    }

    /// Begins a routing write under `fence`: the lease row is read `FOR SHARE` (a takeover waits
    /// for this transaction) and must still be the holder's, under its epoch, unexpired.
    async fn fenced_tx(&self, fence: &Fence) -> Result<crate::WriteTx, StoreError> {
        self.require_postgres()?;
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "SELECT epoch FROM cluster_leases WHERE name = $1 AND holder = $2 AND epoch = $3 \
             AND expires_at > {DB_NOW} FOR SHARE"
        );
        let current: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(&fence.lease)
            .bind(&fence.holder)
            .bind(fence.epoch)
            .fetch_optional(&mut *tx)
            .await?;
        if current.is_none() {
            let holder: Option<(String, i64)> =
                sqlx::query_as("SELECT holder, epoch FROM cluster_leases WHERE name = $1")
                    .bind(&fence.lease)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Err(StoreError::Fenced(match holder {
                Some((h, e)) if e != fence.epoch || h != fence.holder => {
                    format!(
                        "lease `{}` is held by {h} under epoch {e}, not {} under {}",
                        fence.lease, fence.holder, fence.epoch
                    )
                }
                _ => format!("lease `{}` of {} under epoch {} has lapsed", fence.lease, fence.holder, fence.epoch),
            }));
        }
        Ok(tx)
    }

    /// Records an assignment under `fence`, in one transaction: the lease is current, the
    /// agent's capacity is locked (`pg_advisory_xact_lock` on the agent: concurrent assignments
    /// to one agent queue up here) and below `cap`, and the session is claimed only if it is not
    /// assigned. [`StoreError::Fenced`], [`StoreError::OverCap`] or [`StoreError::Claimed`]
    /// write nothing.
    pub async fn assign_fenced(&self, fence: &Fence, a: &FencedAssign<'_>) -> Result<(), StoreError> {
        let mut tx = self.fenced_tx(fence).await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('huiliu.agent:' || $1)::BIGINT)")
            .bind(a.agent)
            .execute(&mut *tx)
            .await?;
        if let Some(cap) = a.cap {
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sessions WHERE agent = $1 AND state = 'assigned' AND id <> $2",
            )
            .bind(a.agent)
            .bind(a.session_id)
            .fetch_one(&mut *tx)
            .await?;
            if held >= i64::from(cap) {
                return Err(StoreError::OverCap { agent: a.agent.to_owned(), held, cap });
            }
        }
        // The customer row before the session row: the order intake locks them in, so the two
        // never wait on each other in a cycle.
        sqlx::query(
            "UPDATE customers SET last_agent = $1, last_agent_at = $2 \
             WHERE id = (SELECT customer_id FROM sessions WHERE id = $3)",
        )
        .bind(a.agent)
        .bind(a.now)
        .bind(a.session_id)
        .execute(&mut *tx)
        .await?;
        let claimed = sqlx::query(
            "UPDATE sessions SET state = 'assigned', agent = $1, skill_group = COALESCE($2, skill_group), \
             priority = $3, assigned_at = $4 WHERE id = $5 AND state NOT IN ('closed', 'assigned')",
        )
        .bind(a.agent)
        .bind(a.group.map(str::to_owned))
        .bind(a.priority)
        .bind(a.now)
        .bind(a.session_id)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            let state: Option<(String, Option<String>)> =
                sqlx::query_as("SELECT state, agent FROM sessions WHERE id = $1")
                    .bind(a.session_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Err(StoreError::Claimed(match state {
                Some((s, Some(agent))) => format!("session {} is {s} (agent {agent})", a.session_id),
                Some((s, None)) => format!("session {} is {s}", a.session_id),
                None => format!("session {} does not exist", a.session_id),
            }));
        }
        if let Some(decision) = a.decision {
            sqlx::query("INSERT INTO routing_decisions (session_id, at, decision) VALUES ($1, $2, $3)")
                .bind(a.session_id)
                .bind(a.now)
                .bind(decision.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Takes a session from `agent` under `fence` (a reassignment follows): it waits again,
    /// unassigned, so the next [`Store::assign_fenced`] may claim it. False when the session was
    /// not `agent`'s (nothing written).
    pub async fn unassign_fenced(&self, fence: &Fence, session_id: i64, agent: &str) -> Result<bool, StoreError> {
        let mut tx = self.fenced_tx(fence).await?;
        let done = sqlx::query(
            "UPDATE sessions SET state = 'queued', agent = NULL WHERE id = $1 AND agent = $2 AND state = 'assigned'",
        )
        .bind(session_id)
        .bind(agent)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records under `fence` that a session waits in `group`'s queue (or off hours), with the
    /// decision, in one transaction; an assigned session is not moved back (nothing written).
    #[allow(clippy::too_many_arguments)]
    pub async fn queue_fenced(
        &self,
        fence: &Fence,
        session_id: i64,
        state: SessionState,
        group: Option<&str>,
        priority: i64,
        category: Option<&str>,
        decision: &serde_json::Value,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.fenced_tx(fence).await?;
        sqlx::query("INSERT INTO routing_decisions (session_id, at, decision) VALUES ($1, $2, $3)")
            .bind(session_id)
            .bind(now)
            .bind(decision.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sessions SET state = $1, agent = NULL, skill_group = COALESCE($2, skill_group), priority = $3, \
             category = COALESCE($4, category) WHERE id = $5 AND state NOT IN ('closed', 'assigned')",
        )
        .bind(state.as_str())
        .bind(group.map(str::to_owned))
        .bind(priority)
        .bind(category.map(str::to_owned))
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
