//! NATS for several nodes: routing requests to the routing leader (core NATS request/reply on
//! `{name}.routing`) and the cluster's events (one JetStream stream, `{NAME}_EVENTS`, subject
//! `{name}.events`).
//!
//! Events: every node publishes what its hub is given to the stream (in order, up to 256
//! awaiting JetStream's acknowledgement, each with a message id so that one sent again after a
//! lost acknowledgement is stored once; while NATS is away they wait in memory and go out in
//! order when it is back) and feeds its hub from an ordered consumer of the stream — so
//! every node numbers every event alike, by the stream's sequence. A node starting up reads the
//! last [`crate::events::RING`] events first, so a client resuming on it finds them.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::ClusterConfig;
use crate::events::{EventHub, GatewayEvent};
use crate::metrics::Metrics;

/// What goes through the event stream.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// When it was published (ms).
    at: i64,
    /// The node that published it.
    node: String,
    event: GatewayEvent,
}

/// A connection to the cluster's NATS.
#[derive(Debug, Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    config: Arc<ClusterConfig>,
}

impl Bus {
    /// Connects (retrying in the background when NATS is not up yet: the node starts anyway and
    /// its events wait in memory).
    pub async fn connect(config: &ClusterConfig) -> Result<Bus, String> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("huiliu {}", config.node_id))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .request_timeout(Some(Duration::from_millis(config.request_timeout_ms)))
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| format!("NATS at {}: {e}", config.nats_url))?;
        Ok(Bus { client, config: Arc::new(config.clone()) })
    }

    /// The subject of routing requests.
    pub fn routing_subject(&self) -> String {
        format!("{}.routing", self.config.name)
    }

    /// The subject on which a node says the blacklist changed.
    pub fn blacklist_subject(&self) -> String {
        format!("{}.blacklist", self.config.name)
    }

    fn events_subject(&self) -> String {
        format!("{}.events", self.config.name)
    }

    /// Whether NATS is connected now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Routes `hub`'s events through the cluster's stream: from now on [`EventHub::send`] hands
    /// them here and the hub is fed from the stream. Runs for the life of the process.
    pub fn carry_events(&self, hub: &EventHub, metrics: Arc<Metrics>) {
        let (tx, rx) = mpsc::unbounded_channel();
        hub.go_global(tx);
        tokio::spawn(publish(self.clone(), rx, metrics.clone()));
        tokio::spawn(consume(self.clone(), hub.clone(), metrics));
    }

    async fn stream(&self) -> Result<stream::Stream, String> {
        let js = jetstream::new(self.client.clone());
        js.get_or_create_stream(stream::Config {
            name: self.config.stream(),
            subjects: vec![self.events_subject()],
            storage: stream::StorageType::File,
            // A day of events, and no more than a million: resume reaches back that far on any
            // node (the hub keeps the last RING in memory for fast resume).
            max_age: Duration::from_secs(24 * 3600),
            max_messages: 1_000_000,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("event stream {}: {e}", self.config.stream()))
    }
}

/// Events sent to JetStream whose acknowledgement is still awaited, at most: one acknowledged
/// publish at a time (a round trip each) capped the events of a node at what one round trip
/// allows, and flat-out intake on PostgreSQL outran it.
const PUBLISH_WINDOW: usize = 256;

/// An event sent (or to send) and its acknowledgement.
struct InFlight {
    id: String,
    payload: bytes::Bytes,
    /// `None`: not sent yet, or its acknowledgement already taken.
    ack: Option<jetstream::context::PublishAckFuture>,
}

/// Publishes the hub's events in order, up to [`PUBLISH_WINDOW`] awaiting their
/// acknowledgement, taken oldest first. When one fails, every event not yet acknowledged is sent
/// again, in order, after a pause: one the stream did store is a repeat of its message id, which
/// the stream's duplicate window drops. Once a send fails, nothing later is sent until the
/// failed one goes out, so the stream never gets a later event before an earlier one.
async fn publish(bus: Bus, mut rx: mpsc::UnboundedReceiver<GatewayEvent>, metrics: Arc<Metrics>) {
    let js = jetstream::new(bus.client.clone());
    let subject = bus.events_subject();
    // Each event's id for the stream's duplicate window: a publish whose acknowledgement was lost
    // (NATS cut right after it stored the event) is sent again, and must not be stored twice.
    let run = format!("{}-{}", bus.config.node_id, huiliu_domain::now_millis());
    let mut n: u64 = 0;
    let mut inflight: std::collections::VecDeque<InFlight> = std::collections::VecDeque::new();
    // Whether a send failed since the last time everything was sent again.
    let mut stalled = false;
    let mut pause = Duration::from_millis(100);
    let send = async |item: &mut InFlight| {
        let message = jetstream::message::PublishMessage::build().payload(item.payload.clone()).message_id(&item.id);
        item.ack = js.send_publish(subject.clone(), message).await.ok();
        item.ack.is_some()
    };
    loop {
        // Take what the hub gave: wait for an event only when nothing is in flight.
        while inflight.len() < PUBLISH_WINDOW {
            let event = if inflight.is_empty() {
                match rx.recv().await {
                    Some(event) => event,
                    None => return,
                }
            } else {
                match rx.try_recv() {
                    Ok(event) => event,
                    Err(_) => break,
                }
            };
            n += 1;
            let envelope = Envelope { at: huiliu_domain::now_millis(), node: bus.config.node_id.clone(), event };
            let payload: bytes::Bytes = match serde_json::to_vec(&envelope) {
                Ok(p) => p.into(),
                Err(e) => {
                    tracing::error!("event not encoded: {e}");
                    continue;
                }
            };
            let mut item = InFlight { id: format!("{run}-{n}"), payload, ack: None };
            if !stalled {
                stalled = !send(&mut item).await;
            }
            inflight.push_back(item);
        }
        let Some(oldest) = inflight.front_mut() else { continue };
        let acked = match oldest.ack.take() {
            Some(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            None => Err("not sent".to_owned()),
        };
        match acked {
            Ok(()) => {
                inflight.pop_front();
                metrics.cluster_events_published.inc();
                pause = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(in_flight = inflight.len(), waiting = rx.len(), "event not published yet: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                // Everything not acknowledged, again and in order; the rest of the
                // acknowledgements awaited are dropped (their events are sent anew).
                stalled = false;
                for item in inflight.iter_mut() {
                    if stalled {
                        item.ack = None;
                    } else {
                        stalled = !send(item).await;
                    }
                }
            }
        }
    }
}

/// Feeds the hub from the stream, by the stream's sequence, for the life of the process.
async fn consume(bus: Bus, hub: EventHub, metrics: Arc<Metrics>) {
    let mut pause = Duration::from_millis(200);
    loop {
        match consume_once(&bus, &hub, &metrics).await {
            Ok(()) => pause = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!("cluster event stream: {e}; reading it again from event {}", hub.last_seq() + 1);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn consume_once(bus: &Bus, hub: &EventHub, metrics: &Metrics) -> Result<(), String> {
    let stream = bus.stream().await?;
    let start = match hub.last_seq() {
        0 => {
            // A node starting: the last RING events, so a client resuming here finds them.
            let mut s = stream.clone();
            let last = s.info().await.map_err(|e| e.to_string())?.state.last_sequence;
            last.saturating_sub(crate::events::RING as u64).max(1)
        }
        seen => seen + 1,
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: start },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| e.to_string())?;
        let seq = message.info().map_err(|e| e.to_string())?.stream_sequence;
        match serde_json::from_slice::<Envelope>(&message.payload) {
            Ok(envelope) => {
                metrics.cluster_events_received.inc();
                hub.ingest(seq, envelope.at, envelope.event);
            }
            Err(e) => {
                tracing::warn!(seq, "event from the stream not understood (a newer node?): {e}");
                hub.skip(seq);
            }
        }
    }
    Err("the stream's consumer ended".into())
}
