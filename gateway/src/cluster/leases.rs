//! This node's leases: the ones it wants, the ones it holds (with their epochs), renewed every
//! `renew_interval_ms` and given up as soon as a renewal cannot prove them.
//!
//! A lease counts as held here only until `renewed at + ttl − one renew interval` by this
//! process's monotonic clock: a node paused past that (SIGSTOP, a long GC-like stall, a cut
//! network) stops acting on it at its next look, before it could have lapsed in the database.
//! What it might still try in between is refused by the store (the fenced write), counted and
//! logged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use huiliu_store::{Fence, Store};
use tokio::sync::watch;

use super::ClusterConfig;
use crate::metrics::{KindLabels, Metrics};

#[derive(Debug)]
struct Wanted {
    /// The epoch held, `None` while not held.
    tx: watch::Sender<Option<i64>>,
    /// Until when (monotonic) it may be acted on.
    valid_until: Option<Instant>,
    /// Tasks that want it (a shop's channel task and its replacement overlap on a reload).
    wanters: usize,
}

/// The leases of this node. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Leases {
    store: Store,
    node: String,
    address: String,
    ttl: Duration,
    renew: Duration,
    started_at: i64,
    wanted: Mutex<BTreeMap<String, Wanted>>,
    metrics: Arc<Metrics>,
}

fn kind(name: &str) -> KindLabels {
    KindLabels { kind: name.split(':').next().unwrap_or(name).to_owned() }
}

impl Leases {
    pub fn new(store: Store, config: &ClusterConfig, address: String, metrics: Arc<Metrics>) -> Leases {
        Leases {
            store,
            node: config.node_id.clone(),
            address,
            ttl: Duration::from_millis(config.lease_ttl_ms),
            renew: Duration::from_millis(config.renew_interval_ms),
            started_at: huiliu_domain::now_millis(),
            wanted: Mutex::default(),
            metrics,
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Wanted>> {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for the lease `name` (taken at the next tick when free): the receiver says the
    /// epoch while it is held, `None` while not.
    pub fn want(&self, name: &str) -> watch::Receiver<Option<i64>> {
        let mut wanted = self.lock();
        let w = wanted.entry(name.to_owned()).or_insert_with(|| Wanted {
            tx: watch::channel(None).0,
            valid_until: None,
            wanters: 0,
        });
        w.wanters += 1;
        w.tx.subscribe()
    }

    /// One task no longer wants `name` (a retired channel); when none does, it is given up in
    /// the database if held.
    pub async fn unwant(&self, name: &str) {
        let gone = {
            let mut wanted = self.lock();
            match wanted.get_mut(name) {
                Some(w) if w.wanters > 1 => {
                    w.wanters -= 1;
                    None
                }
                _ => wanted.remove(name),
            }
        };
        if let Some(epoch) = gone.and_then(|w| *w.tx.borrow()) {
            self.metrics.cluster_leases_held.get_or_create(&kind(name)).dec();
            let fence = Fence { lease: name.to_owned(), holder: self.node.clone(), epoch };
            if let Err(e) = self.store.lease_release(&fence).await {
                tracing::warn!(lease = name, "lease not released: {e}");
            }
        }
    }

    /// The fence of `name` while this node may act on it.
    pub fn fence(&self, name: &str) -> Option<Fence> {
        let wanted = self.lock();
        let w = wanted.get(name)?;
        let epoch = (*w.tx.borrow())?;
        (w.valid_until? > Instant::now()).then(|| Fence { lease: name.to_owned(), holder: self.node.clone(), epoch })
    }

    /// Every lease held now, with its epoch.
    pub fn held(&self) -> Vec<(String, i64)> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, w)| w.valid_until.is_some_and(|v| v > now))
            .filter_map(|(n, w)| (*w.tx.borrow()).map(|e| (n.clone(), e)))
            .collect()
    }

    /// A write under `fence` was refused, or the holder's state no longer matches the store:
    /// stop acting on it now and give it up, so it is taken again (by any node) under a new
    /// epoch, from the store.
    pub async fn relinquish(&self, fence: &Fence) {
        let was_held = {
            let mut wanted = self.lock();
            match wanted.get_mut(&fence.lease) {
                Some(w) if *w.tx.borrow() == Some(fence.epoch) => {
                    w.valid_until = None;
                    w.tx.send_replace(None);
                    true
                }
                _ => false,
            }
        };
        if was_held {
            self.metrics.cluster_leases_held.get_or_create(&kind(&fence.lease)).dec();
            self.metrics.cluster_leases_lost.get_or_create(&kind(&fence.lease)).inc();
            tracing::warn!(lease = %fence.lease, epoch = fence.epoch, "lease given up");
            let _ = self.store.lease_release(fence).await;
        }
    }

    fn lost(&self, name: &str, epoch: i64, why: &str) {
        let mut wanted = self.lock();
        if let Some(w) = wanted.get_mut(name)
            && *w.tx.borrow() == Some(epoch)
        {
            w.valid_until = None;
            w.tx.send_replace(None);
            self.metrics.cluster_leases_held.get_or_create(&kind(name)).dec();
            self.metrics.cluster_leases_lost.get_or_create(&kind(name)).inc();
            tracing::warn!(lease = name, epoch, "lease lost: {why}");
        }
    }

    /// One round: drop what can no longer be proven, renew what is held, try what is free.
    pub async fn tick(&self) {
        let start = Instant::now();
        let ttl_ms = self.ttl.as_millis() as i64;
        // What a successful renewal or take proves: the lease is ours until at least `start +
        // ttl`; act on it until one renew interval before that.
        let valid_until = start + self.ttl.saturating_sub(self.renew);
        let snapshot: Vec<(String, Option<i64>, Option<Instant>)> =
            self.lock().iter().map(|(n, w)| (n.clone(), *w.tx.borrow(), w.valid_until)).collect();
        for (name, epoch, until) in snapshot {
            match epoch {
                Some(epoch) => {
                    if until.is_none_or(|u| u <= start) {
                        self.lost(&name, epoch, "not renewed in time (this node was paused or cut off)");
                        continue;
                    }
                    let fence = Fence { lease: name.clone(), holder: self.node.clone(), epoch };
                    match self.store.lease_renew(&fence, ttl_ms).await {
                        Ok(true) => {
                            if let Some(w) = self.lock().get_mut(&name)
                                && *w.tx.borrow() == Some(epoch)
                            {
                                w.valid_until = Some(valid_until);
                            }
                        }
                        Ok(false) => self.lost(&name, epoch, "another node holds it now"),
                        // Kept until `valid_until`; the next tick drops it if the store stays away.
                        Err(e) => tracing::warn!(lease = %name, "lease not renewed: {e}"),
                    }
                }
                None => match self.store.lease_acquire(&name, &self.node, ttl_ms).await {
                    Ok(Some(epoch)) => {
                        let taken = {
                            let mut wanted = self.lock();
                            match wanted.get_mut(&name) {
                                Some(w) => {
                                    w.valid_until = Some(valid_until);
                                    w.tx.send_replace(Some(epoch));
                                    true
                                }
                                None => false,
                            }
                        };
                        if !taken {
                            // Unwanted meanwhile.
                            let fence = Fence { lease: name.clone(), holder: self.node.clone(), epoch };
                            let _ = self.store.lease_release(&fence).await;
                            continue;
                        }
                        self.metrics.cluster_leases_held.get_or_create(&kind(&name)).inc();
                        if epoch > 1 {
                            self.metrics.cluster_lease_takeovers.get_or_create(&kind(&name)).inc();
                        }
                        tracing::info!(lease = %name, epoch, node = %self.node, "lease taken");
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(lease = %name, "lease not taken: {e}"),
                },
            }
        }
        if let Err(e) = self.store.node_seen(&self.node, &self.address, self.started_at).await {
            tracing::warn!("node heartbeat not recorded: {e}");
        }
    }

    /// Ticks for the life of the process.
    pub async fn run(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.renew);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.tick().await;
        }
    }

    /// Gives every held lease up (a clean shutdown): the other nodes take over at once.
    pub async fn release_all(&self) {
        let held: Vec<(String, i64)> =
            self.lock().iter().filter_map(|(n, w)| (*w.tx.borrow()).map(|e| (n.clone(), e))).collect();
        for (name, epoch) in held {
            let fence = Fence { lease: name.clone(), holder: self.node.clone(), epoch };
            if let Err(e) = self.store.lease_release(&fence).await {
                tracing::warn!(lease = %name, "lease not released: {e}");
            }
        }
    }
}
