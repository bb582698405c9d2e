//! Operating the store: online backup, restore into a stopped gateway, and schema migrations
//! with a dry run. The CLI (`huiliu backup | restore | migrate`) calls these; each returns what
//! it did in words, or why it refused.

use std::path::{Path, PathBuf};

use huiliu_store::{Store, StoreOptions};

use crate::config::GatewayConfig;

/// The SQLite file behind `url`, or `None` for PostgreSQL.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(PathBuf::from(path.split_once('?').map_or(path, |(p, _)| p)))
}

/// `huiliu backup`: a consistent copy of the running (or stopped) gateway's database at `to`.
/// The sealing key is configuration, not data: it is not in the backup (keep it apart).
pub async fn backup(cfg: &GatewayConfig, to: &Path) -> Result<String, String> {
    let url = cfg.store_url();
    if sqlite_path(&url).is_none() {
        return Err("the PostgreSQL store is backed up with pg_dump (see docs/operations.md)".into());
    }
    let store = Store::open(&url, StoreOptions::default()).await.map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    store.backup_to(to).await.map_err(|e| format!("backup failed: {e}"))?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    let (inbound, outbound, sessions) = check_copy(to).await?;
    Ok(format!(
        "backup written to {} ({bytes} bytes in {} ms): {inbound} buyer messages, {outbound} replies, {sessions} sessions",
        to.display(),
        started.elapsed().as_millis()
    ))
}

/// Opens a copy read-only enough to count what it holds (and so prove it is a Huiliu store).
async fn check_copy(path: &Path) -> Result<(i64, i64, i64), String> {
    let url = format!("sqlite://{}", path.display());
    let status = huiliu_store::schema_status(&url).await.map_err(|e| format!("{}: {e}", path.display()))?;
    if status.applied.is_empty() {
        return Err(format!("{} is not a Huiliu database (no schema_migrations)", path.display()));
    }
    if let Some(v) = status.too_new() {
        return Err(format!(
            "{} was written by a newer Huiliu (schema {v}; this binary knows {})",
            path.display(),
            status.binary
        ));
    }
    let store = Store::open(&url, StoreOptions::default()).await.map_err(|e| e.to_string())?;
    store.counts().await.map_err(|e| e.to_string())
}

/// `huiliu restore`: puts the backup `from` in place of the configured SQLite database. The
/// gateway must be stopped (its listen address must not answer); an existing database is kept
/// beside as `<file>.before-restore-<epoch ms>` unless there is none.
pub async fn restore(cfg: &GatewayConfig, from: &Path) -> Result<String, String> {
    let url = cfg.store_url();
    let Some(target) = sqlite_path(&url) else {
        return Err("the PostgreSQL store is restored with pg_restore / psql (see docs/operations.md)".into());
    };
    let addr = cfg.listen_addr();
    if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).is_ok() {
        return Err(format!("something answers on {addr}: stop the gateway before restoring"));
    }
    // The backup must be a Huiliu store this binary can run; check a copy, never the original.
    let staged = target.with_extension("restoring");
    let _ = std::fs::remove_file(&staged);
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::copy(from, &staged).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    let (inbound, outbound, sessions) = match check_copy(&staged).await {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&staged, side));
    }
    let mut kept = String::new();
    if target.exists() {
        let aside = with_suffix(&target, &format!(".before-restore-{}", huiliu_domain::now_millis()));
        std::fs::rename(&target, &aside).map_err(|e| format!("cannot move the current database aside: {e}"))?;
        kept = format!("; the previous database is kept as {}", aside.display());
    }
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&target, side));
    }
    std::fs::rename(&staged, &target).map_err(|e| format!("cannot put the backup in place: {e}"))?;
    Ok(format!(
        "restored {} into {}: {inbound} buyer messages, {outbound} replies, {sessions} sessions{kept}",
        from.display(),
        target.display()
    ))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `huiliu migrate [--dry-run]`: what would run (or ran) against the configured database.
pub async fn migrate(cfg: &GatewayConfig, dry_run: bool) -> Result<String, String> {
    let url = cfg.store_url();
    let status = huiliu_store::schema_status(&url).await.map_err(|e| e.to_string())?;
    if let Some(v) = status.too_new() {
        return Err(format!(
            "the database schema is at version {v}, newer than this binary knows ({}): it was written by a \
             newer Huiliu; nothing was changed",
            status.binary
        ));
    }
    let current = status.applied.iter().max().copied().unwrap_or(0);
    let mut out = format!(
        "database {}: schema version {current}; this binary knows {}\n",
        crate::redact_url(&url),
        status.binary
    );
    if status.pending.is_empty() {
        out.push_str("nothing to migrate");
        return Ok(out);
    }
    let verb = if dry_run { "would apply" } else { "applied" };
    for (version, name) in &status.pending {
        out.push_str(&format!("{verb} migration {version}: {name}\n"));
    }
    if !dry_run {
        // Opening the store applies them, each in its own transaction.
        Store::open(&url, StoreOptions::default()).await.map_err(|e| e.to_string())?;
    }
    Ok(out.trim_end().to_owned())
}

/// `huiliu buyer export`: everything stored about one buyer, as pretty JSON (audited).
pub async fn export_buyer(
    cfg: &GatewayConfig,
    buyer: &huiliu_store::BuyerRef,
    by: &str,
    reason: &str,
) -> Result<String, String> {
    let store = Store::open(&cfg.store_url(), StoreOptions::default()).await.map_err(|e| e.to_string())?;
    let doc = store.export_buyer(buyer).await.map_err(|e| e.to_string())?;
    let doc = doc.ok_or_else(|| format!("nothing is stored about {}", buyer.subject()))?;
    store
        .audit(by, "export", &buyer.subject(), reason, huiliu_domain::now_millis())
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())
}

/// `huiliu buyer erase`: erases everything stored about one buyer (audited). With the gateway
/// running and the buyer in an open conversation it refuses: the API closes the conversation
/// through routing first, so the agent's seat is freed.
pub async fn erase_buyer(
    cfg: &GatewayConfig,
    buyer: &huiliu_store::BuyerRef,
    by: &str,
    reason: &str,
) -> Result<String, String> {
    let store = Store::open(&cfg.store_url(), StoreOptions::default()).await.map_err(|e| e.to_string())?;
    let open = store.open_sessions_of(buyer).await.map_err(|e| e.to_string())?;
    let addr = cfg.listen_addr();
    if !open.is_empty() && std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).is_ok() {
        return Err(format!(
            "{} is in an open conversation and the gateway runs on {addr}: use POST /api/v1/buyers/erase, which \
             closes it through routing first",
            buyer.subject()
        ));
    }
    let now = huiliu_domain::now_millis();
    for id in open {
        store.close(id, "erased", now).await.map_err(|e| e.to_string())?;
    }
    match store.erase_buyer(buyer, by, reason, now).await.map_err(|e| e.to_string())? {
        Some(r) => Ok(format!(
            "erased {}: {} conversations, {} messages, {} order events, {} outbox rows, {} blacklist entries cleared",
            buyer.subject(),
            r.sessions,
            r.messages,
            r.order_events,
            r.outbox_rows,
            r.blacklist_entries_cleared
        )),
        None => Err(format!("nothing is stored about {}", buyer.subject())),
    }
}

/// `huiliu cluster status`: the nodes and leases as the shared database has them.
pub async fn cluster_status(cfg: &GatewayConfig) -> Result<String, String> {
    let Some(cluster) = &cfg.cluster else {
        return Err("no [cluster] section in huiliu.toml: this daemon runs as one node".into());
    };
    let url = cfg.store_url();
    let store = Store::open(&url, StoreOptions::default()).await.map_err(|e| e.to_string())?;
    let view = store.cluster_view().await.map_err(|e| e.to_string())?;
    let secs = |ms: i64| format!("{:.1}s", ms as f64 / 1000.0);
    let mut out = format!(
        "cluster {} (this config: node {}), database {}\n",
        cluster.name,
        cluster.node_id,
        crate::redact_url(&url)
    );
    out.push_str(&format!("\nnodes ({}):\n", view.nodes.len()));
    for n in &view.nodes {
        let age = view.now - n.seen_at;
        let state = if age <= cluster.lease_ttl_ms as i64 { "alive" } else { "silent" };
        out.push_str(&format!(
            "  {:<16} {:<22} {state:<6} last seen {} ago, up {}\n",
            n.node,
            n.address,
            secs(age),
            secs(view.now - n.started_at)
        ));
    }
    out.push_str(&format!("\nleases ({}):\n", view.leases.len()));
    for l in &view.leases {
        let left = l.expires_at - view.now;
        let state = if left > 0 { format!("expires in {}", secs(left)) } else { "lapsed".to_owned() };
        out.push_str(&format!(
            "  {:<40} holder {:<16} epoch {:<5} held for {}, {state}\n",
            l.name,
            l.holder,
            l.epoch,
            secs(view.now - l.acquired_at)
        ));
    }
    Ok(out.trim_end().to_owned())
}
