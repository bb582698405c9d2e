//! Routing in a cluster, on the flow's side: while this node holds the routing lease it answers
//! the other nodes' routing requests (`RoutingRequest`, over NATS) and applies what they decide,
//! as it applies its own; when it takes the lease the engine is rebuilt from the store first.

use std::sync::Arc;

use futures_util::StreamExt;

use super::Flow;
use crate::cluster::{Bus, ClusterConfig, Leases, ROUTING_LEASE};
use crate::metrics::KindLabels;
use crate::services::routing::RoutingRequest;

impl Flow {
    /// Leads routing whenever this node holds the routing lease, for the life of the process.
    pub async fn lead_routing(self: Arc<Self>, leases: Arc<Leases>, bus: Bus) {
        let Some(routing) = self.routing.clone() else { return };
        let mut held = leases.want(ROUTING_LEASE);
        loop {
            let epoch = *held.borrow_and_update();
            let Some(epoch) = epoch else {
                routing.step_down();
                if held.changed().await.is_err() {
                    return;
                }
                continue;
            };
            // Listen first, then rebuild: requests sent meanwhile wait in the subscription, and
            // anything stored before the rebuild is in it.
            let mut requests = match bus.client.subscribe(bus.routing_subject()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("cannot listen for routing requests: {e}");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            match routing.take_over(epoch, huiliu_domain::now_millis()).await {
                Ok(actions) => self.apply(actions).await,
                Err(e) => {
                    tracing::error!("routing not rebuilt from the store: {e}");
                    if let Some(fence) = leases.fence(ROUTING_LEASE) {
                        leases.relinquish(&fence).await;
                    }
                    let _ = requests.unsubscribe().await;
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            }
            routing.wake.notify_one();
            loop {
                tokio::select! {
                    changed = held.changed() => {
                        if changed.is_err() || *held.borrow() != Some(epoch) {
                            break;
                        }
                    }
                    message = requests.next() => {
                        let Some(message) = message else { break };
                        let (flow, client) = (self.clone(), bus.client.clone());
                        tokio::spawn(async move { flow.answer_routing(message, client).await });
                    }
                }
            }
            routing.step_down();
            let _ = requests.unsubscribe().await;
        }
    }
}

impl Flow {
    /// Answers one forwarded request: the engine decides, the actions are applied here (the
    /// leader records them under its epoch), then the sender hears the outcome.
    async fn answer_routing(&self, message: async_nats::Message, client: async_nats::Client) {
        let Some(routing) = &self.routing else { return };
        let answer = match serde_json::from_slice::<RoutingRequest>(&message.payload) {
            Ok(request) => {
                let (answer, actions) = routing.serve(request, huiliu_domain::now_millis()).await;
                self.apply(actions).await;
                answer
            }
            Err(e) => Err(format!("routing request not understood (a newer node?): {e}")),
        };
        if let Some(reply) = message.reply {
            let body = serde_json::to_vec(&answer).unwrap_or_default();
            if let Err(e) = client.publish(reply, body.into()).await {
                tracing::warn!("routing answer not sent: {e}");
            }
        }
    }
}

impl Flow {
    /// Presence across nodes, for the life of the process: this node records which agents have
    /// an event stream open on it; the routing leader sets offline the agents whose node died
    /// and who did not reconnect anywhere within `presence_grace_ms`.
    pub async fn keep_presence(self: Arc<Self>, config: ClusterConfig) {
        let Some(routing) = self.routing.clone() else { return };
        let mut every = tokio::time::interval(std::time::Duration::from_millis(config.renew_interval_ms));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = self.store.streams_seen(&config.node_id, &self.events.connected_agents()).await {
                tracing::warn!("agents' streams not recorded: {e}");
            }
            if !routing.leads() {
                continue;
            }
            let gone =
                match self.store.orphaned_agents(config.presence_grace_ms as i64, config.lease_ttl_ms as i64).await {
                    Ok(gone) => gone,
                    Err(e) => {
                        tracing::warn!("agents of dead nodes not read: {e}");
                        continue;
                    }
                };
            for agent in gone {
                let online =
                    routing.agent_state(&agent).await.is_some_and(|s| s.status != huiliu_routing::AgentStatus::Offline);
                if online {
                    tracing::warn!(
                        agent,
                        grace_ms = config.presence_grace_ms,
                        "agent set offline: their node stopped and they did not reconnect to another within the grace period"
                    );
                    if let Err(e) = self.set_status(&agent, huiliu_routing::AgentStatus::Offline).await {
                        tracing::warn!(agent, "agent not set offline: {e}");
                        continue;
                    }
                    self.metrics.cluster_agents_orphaned.get_or_create(&KindLabels { kind: "offline".into() }).inc();
                }
                if let Err(e) = self.store.forget_streams(&agent).await {
                    tracing::warn!(agent, "agent's streams not forgotten: {e}");
                }
            }
        }
    }
}
