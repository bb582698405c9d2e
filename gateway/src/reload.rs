//! Live configuration reload: on SIGHUP, when a watched file changes, or on
//! `POST /api/v1/config/reload`. The new configuration is validated whole (every error
//! reported) and swapped in atomically; a bad file keeps the running configuration and the
//! reason is logged, counted and returned. Messages in flight finish with the stages they
//! started with.
//!
//! Reloadable: `filters.toml` (privacy mask, compliance, restrict auto-reply) and
//! `routing.toml` (groups, agents, rules; sessions in flight keep working: see
//! `Engine::reload`). Shops, plugins, the store and the listener need a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::FILTERS_FILE;
use crate::flow::Flow;
use crate::metrics::Metrics;
use crate::plugins::Shop;
use huiliu_domain::ConfigError;
use huiliu_privacy::Filters;

/// What reloading needs: where the files are, the shops they are checked against, and what
/// takes the new configuration.
#[derive(Debug)]
pub struct Reload {
    pub dir: PathBuf,
    pub shops: Vec<Shop>,
    pub flow: Arc<Flow>,
    pub metrics: Arc<Metrics>,
}

impl crate::api::Reloader for Reload {
    fn reload_all(&self) -> crate::api::ReloadFuture<'_> {
        Box::pin(async move {
            reload_all(self)
                .await
                .map(|r| r.reloaded)
                .map_err(|errors| errors.iter().map(ToString::to_string).collect())
        })
    }
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub reloaded: Vec<String>,
}

/// Reloads every reloadable file (filters, then routing); a bad file keeps the running
/// configuration of its part, and every error is returned.
pub async fn reload_all(gw: &Reload) -> Result<ReloadReport, Vec<ConfigError>> {
    let mut report = reload(gw)?;
    if gw.flow.routing.is_some() {
        let mut errors = Vec::new();
        let routing = crate::config::load_routing(&gw.dir, &gw.shops, &mut errors);
        let file = gw.dir.join(huiliu_routing::ROUTING_FILE).display().to_string();
        match routing {
            Some(r) if errors.is_empty() => match gw.flow.reload_routing(r).await {
                Ok(()) => {
                    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "routing", "ok");
                    tracing::info!("configuration reloaded: {file}");
                    report.reloaded.push(file);
                }
                Err(messages) => {
                    errors.extend(messages.into_iter().map(|message| ConfigError {
                        file: file.clone(),
                        key: String::new(),
                        message,
                    }));
                }
            },
            None if errors.is_empty() => errors.push(ConfigError {
                file: file.clone(),
                key: String::new(),
                message: "routing.toml is gone; routing keeps its running configuration".into(),
            }),
            _ => {}
        }
        if !errors.is_empty() {
            crate::metrics::Metrics::count(&gw.metrics.config_reloads, "routing", "rejected");
            for e in &errors {
                tracing::error!("reload rejected, the running configuration stays: {e}");
            }
            return Err(errors);
        }
    }
    Ok(report)
}

/// Reloads the filters; on any error nothing changes and every error is returned.
pub fn reload(gw: &Reload) -> Result<ReloadReport, Vec<ConfigError>> {
    let file = gw.dir.join(FILTERS_FILE).display().to_string();
    let mut errors = Vec::new();
    let config = crate::config::load_filters(&gw.dir, &mut errors);
    if !errors.is_empty() {
        return Err(fail(gw, errors));
    }
    let filters = Filters::new(&config).map_err(|errs| {
        fail(gw, errs.into_iter().map(|(key, message)| ConfigError { file: file.clone(), key, message }).collect())
    })?;
    gw.flow.swap_filters(
        Arc::new(filters.masker),
        Arc::new(filters.compliance),
        config.blacklist.restrict_reply.clone(),
    );
    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "filters", "ok");
    tracing::info!("configuration reloaded: {file}");
    Ok(ReloadReport { reloaded: vec![file] })
}

fn fail(gw: &Reload, errors: Vec<ConfigError>) -> Vec<ConfigError> {
    crate::metrics::Metrics::count(&gw.metrics.config_reloads, "filters", "rejected");
    for e in &errors {
        tracing::error!("reload rejected, the running configuration stays: {e}");
    }
    errors
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads on SIGHUP and when a watched file's modification time changes (checked every 2 s).
pub async fn watch(gw: Arc<Reload>) {
    let watched = [gw.dir.join(FILTERS_FILE), gw.dir.join(huiliu_routing::ROUTING_FILE)];
    let mut last: Vec<_> = watched.iter().map(modified).collect();
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        #[cfg(unix)]
        let by_signal = async {
            match hangup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let by_signal = std::future::pending::<()>();
        tokio::select! {
            _ = by_signal => {
                tracing::info!("SIGHUP: reloading configuration");
                let _ = reload_all(&gw).await;
            }
            _ = tick.tick() => {
                let now: Vec<_> = watched.iter().map(modified).collect();
                if now != last {
                    last = now;
                    tracing::info!("configuration files changed: reloading");
                    let _ = reload_all(&gw).await;
                }
            }
        }
    }
}
