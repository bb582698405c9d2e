//! Several nodes on existing engines (`[cluster]`): PostgreSQL decides, NATS carries.
//!
//! - **Leases** ([`leases`]): what only one node may do at a time — the routing queues
//!   ([`ROUTING_LEASE`]), each shop's long-lived channel — is held through a lease row with an
//!   epoch (a fencing token) and an expiry on the database's clock. The holder renews it; when it
//!   lapses another node takes it with a higher epoch. Every routing write presents the epoch
//!   (`huiliu_store::Fence`), so a node that wakes after losing its lease writes nothing.
//! - **The bus** ([`bus`]): routing requests from any node to the routing leader over core NATS
//!   (arrivals, status changes, transfers…; the store stays the truth the leader restores from
//!   when it takes over), and every event the hub numbers through one JetStream stream, whose
//!   sequence is the event number on every node — so a workbench that reconnects to another node
//!   with `since` misses nothing and sees nothing twice.
//!
//! Without `[cluster]` none of this runs: one node, SQLite by default, no NATS.

pub mod bus;
pub mod leases;

use serde::Deserialize;

pub use bus::Bus;
pub use leases::Leases;

/// The lease of the routing engine: its holder routes every skill group.
pub const ROUTING_LEASE: &str = "routing";

/// The lease of one shop's access-token refresh: refresh tokens are often single-use, so only
/// one node may refresh; the others adopt the stored result.
pub fn token_lease(platform: &str, shop: &str) -> String {
    format!("token:{platform}:{shop}")
}

/// The lease of one shop's long-lived channel (TMC WebSocket, JD stream, poll).
pub fn channel_lease(platform: &str, shop: &str, channel: &str) -> String {
    format!("channel:{platform}:{shop}:{channel}")
}

/// `[cluster]` in `huiliu.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id, unique in the cluster (`[A-Za-z0-9_-]`, at most 64).
    pub node_id: String,
    /// The NATS server (with JetStream).
    pub nats_url: String,
    /// The cluster's name: the prefix of its NATS subjects and of its event stream, so several
    /// clusters (or test runs) can share one NATS server.
    pub name: String,
    /// How long a lease lasts without renewal (ms). A dead node's work is taken over within
    /// about this plus `renew_interval_ms`.
    pub lease_ttl_ms: u64,
    /// How often held leases are renewed and free ones tried (ms); at most a third of the TTL.
    pub renew_interval_ms: u64,
    /// Where the other nodes and operators reach this node's API (default: `server.listen`).
    pub advertise: String,
    /// How long a routing request to the leader may take (ms).
    pub request_timeout_ms: u64,
    /// An agent whose event stream was on a node that died, and who has not reconnected to
    /// another node within this (ms), is set offline (their conversations follow routing.toml's
    /// `on_offline`). Agents on a living node are never set offline for a closed stream.
    pub presence_grace_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: String::new(),
            nats_url: "nats://127.0.0.1:4222".into(),
            name: "huiliu".into(),
            lease_ttl_ms: 5_000,
            renew_interval_ms: 1_000,
            advertise: String::new(),
            request_timeout_ms: 3_000,
            presence_grace_ms: 60_000,
        }
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl ClusterConfig {
    /// Every problem of the section, as (key, message); `store_url` must be PostgreSQL.
    pub fn validate(&self, store_url: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut err = |k: &str, m: String| out.push((format!("cluster.{k}"), m));
        if !is_id(&self.node_id) {
            err("node_id", format!("`{}` must be 1–64 of A-Z a-z 0-9 _ -", self.node_id));
        }
        if !is_id(&self.name) {
            err("name", format!("`{}` must be 1–64 of A-Z a-z 0-9 _ -", self.name));
        }
        if !self.nats_url.starts_with("nats://") {
            err("nats_url", format!("`{}` is not nats://HOST:PORT", self.nats_url));
        }
        if self.lease_ttl_ms < 1_000 {
            err("lease_ttl_ms", "must be at least 1000".into());
        }
        if self.renew_interval_ms == 0 || self.renew_interval_ms * 3 > self.lease_ttl_ms {
            err("renew_interval_ms", "must be above 0 and at most a third of lease_ttl_ms".into());
        }
        if self.request_timeout_ms == 0 {
            err("request_timeout_ms", "must be above 0".into());
        }
        if self.presence_grace_ms < 1_000 {
            err("presence_grace_ms", "must be at least 1000".into());
        }
        if !(store_url.starts_with("postgres://") || store_url.starts_with("postgresql://")) {
            out.push((
                "cluster".into(),
                "a cluster needs the PostgreSQL store (store.url = \"postgres://…\"): several nodes cannot share \
                 an SQLite file"
                    .into(),
            ));
        }
        out
    }

    /// The JetStream stream of the cluster's events.
    pub fn stream(&self) -> String {
        format!("{}_EVENTS", self.name.to_ascii_uppercase().replace('-', "_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_on_sqlite_is_refused_and_every_bad_key_is_named() {
        let cfg = ClusterConfig { node_id: "a b".into(), renew_interval_ms: 4_000, ..ClusterConfig::default() };
        let keys: Vec<String> = cfg.validate("sqlite://huiliu.db").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["cluster.node_id", "cluster.renew_interval_ms", "cluster"]);
        let good = ClusterConfig { node_id: "n1".into(), ..ClusterConfig::default() };
        assert!(good.validate("postgres://db/huiliu").is_empty());
        assert_eq!(ClusterConfig { name: "t-1".into(), ..good }.stream(), "T_1_EVENTS");
    }
}
