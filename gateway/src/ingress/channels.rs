//! Long-lived channels the connectors ask for: WebSockets (Taobao TMC), streamed HTTP responses
//! (JD's message stream) and polls. The gateway owns the sockets, timers and reconnects; the
//! connector decides what each byte means.
//!
//! Each batch of events a channel yields goes through the inbound flow (`Flow::inbound`); its `on_durable`
//! frames (e.g. TMC confirms) are sent only after the commit, its `on_failure` frames (TMC
//! "failed", asking for redelivery) if storing failed. Batches are stored concurrently, so a busy
//! channel's commits are grouped too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use huiliu_sdk::{
    AckBatch, ChannelControl, ChannelData, ChannelOpen, ChannelOutcome, ChannelState, ConnectionNeed, Frame,
    HttpResponse, Millis,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::events::GatewayEvent;
use crate::flow::{Ack, Flow};
use crate::metrics::Metrics;
use crate::outbox::http;
use crate::plugins::{Connectors, ShopConnector};
use crate::services::status::{self, ChannelStatus, Status};

/// What the channels need.
#[derive(Debug)]
pub struct Channels {
    pub flow: Arc<Flow>,
    pub connectors: Arc<Connectors>,
    pub metrics: Arc<Metrics>,
    /// The HTTP client every platform call goes through.
    pub http: reqwest::Client,
    pub status: Arc<Status>,
    /// Timeout of one platform API call (polls).
    pub request_timeout_ms: u64,
    /// In a cluster: each channel runs on the node holding its lease only.
    pub leases: Option<Arc<crate::cluster::Leases>>,
}

/// Starts a task for every channel every shop's connector needs.
pub fn spawn_all(gw: &Arc<Channels>) {
    for connector in gw.connectors.all() {
        spawn_for(gw, &connector);
    }
}

/// Starts a task for every channel `connector` needs; each ends when the connector is retired
/// (its shop removed or changed in a reload of shops.toml).
pub fn spawn_for(gw: &Arc<Channels>, connector: &Arc<ShopConnector>) {
    let needs = match connector.connections() {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(shop = %connector.shop, "cannot ask the connector for its connections: {e}");
            return;
        }
    };
    for need in needs {
        let (gw, c) = (gw.clone(), connector.clone());
        let kind = match need {
            ConnectionNeed::PushRoute => continue,
            ConnectionNeed::WebSocket { channel, tick_interval_ms } => {
                (channel, Kind::WebSocket { tick_ms: tick_interval_ms })
            }
            ConnectionNeed::Stream { channel } => (channel, Kind::Stream),
            ConnectionNeed::Poll { channel, interval_ms } => (channel, Kind::Poll { interval_ms }),
        };
        tokio::spawn(async move {
            let (channel, kind) = kind;
            let lease = gw.leases.clone().map(|l| {
                let name = crate::cluster::channel_lease(&c.platform, &c.shop, &channel);
                (l, name)
            });
            tokio::select! {
                () = keep_leased(gw, c.clone(), channel.clone(), kind) => {}
                () = c.until_retired() => {
                    tracing::info!(shop = %c.shop, channel, "channel closed: the shop's configuration changed");
                }
            }
            if let Some((leases, name)) = lease {
                leases.unwant(&name).await;
            }
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    WebSocket { tick_ms: Option<u64> },
    Stream,
    Poll { interval_ms: u64 },
}

/// How a channel session ended.
#[derive(Debug)]
enum End {
    Reconnect { reason: String, min_delay_ms: u64 },
    Fatal(String),
}

fn reconnect(reason: impl Into<String>) -> End {
    End::Reconnect { reason: reason.into(), min_delay_ms: 0 }
}

/// A stream with no data (not even a heartbeat) for this long is considered dead.
const STREAM_IDLE: Duration = Duration::from_secs(90);
/// A session that lasted this long resets the reconnect backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);
/// How often a stopped channel (the platform refused what only an operator can fix, e.g. the
/// credentials) is tried again, so that fixed credentials recover without a restart.
pub const STOPPED_RETRY: Duration = Duration::from_secs(600);

/// Keeps one channel open for the life of the process; in a cluster, only while this node
/// holds the channel's lease (a TMC group or a JD stream is read by one node at a time).
async fn keep_leased(gw: Arc<Channels>, connector: Arc<ShopConnector>, channel: String, kind: Kind) {
    let Some(leases) = gw.leases.clone() else {
        return keep(gw, connector, channel, kind).await;
    };
    let name = crate::cluster::channel_lease(&connector.platform, &connector.shop, &channel);
    let mut held = leases.want(&name);
    loop {
        let epoch = *held.borrow_and_update();
        let Some(epoch) = epoch else {
            set_status(
                &gw,
                &connector,
                &channel,
                state_now(status::ChannelState::Connecting, "held by another node", false, None),
            );
            if held.changed().await.is_err() {
                return;
            }
            continue;
        };
        tracing::info!(shop = %connector.shop, channel, epoch, "this node reads the channel");
        tokio::select! {
            () = keep(gw.clone(), connector.clone(), channel.clone(), kind) => return,
            _ = held.wait_for(|e| *e != Some(epoch)) => {
                let _ = connector.channel_closed(&channel, huiliu_domain::now_millis());
                tracing::warn!(shop = %connector.shop, channel, "channel left: this node lost its lease");
            }
        }
    }
}

/// Keeps one channel open for the life of the process.
async fn keep(gw: Arc<Channels>, connector: Arc<ShopConnector>, channel: String, kind: Kind) {
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        if !matches!(kind, Kind::Poll { .. }) {
            // A poll has no connection to wait for; its connector reports its state itself.
            set_status(
                &gw,
                &connector,
                &channel,
                state_now(status::ChannelState::Connecting, "connecting", false, None),
            );
        }
        let end = match kind {
            Kind::WebSocket { tick_ms } => websocket(&gw, &connector, &channel, tick_ms).await,
            Kind::Stream => stream(&gw, &connector, &channel).await,
            Kind::Poll { interval_ms } => poll(&gw, &connector, &channel, interval_ms).await,
        };
        let _ = connector.channel_closed(&channel, huiliu_domain::now_millis());
        if started.elapsed() >= HEALTHY_SESSION {
            failures = 0;
        }
        let delay = match end {
            End::Fatal(reason) => {
                // Stopped until an operator acts, but tried again slowly: the fix (new credentials,
                // a granted permission) is on the platform's side or in the config, and must not
                // need a restart to take effect.
                let delay = u64::try_from(STOPPED_RETRY.as_millis()).unwrap_or(u64::MAX);
                Metrics::count(&gw.metrics.channel_connects, &connector.platform, "stopped");
                let next = huiliu_domain::now_millis().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
                set_status(
                    &gw,
                    &connector,
                    &channel,
                    state_now(status::ChannelState::Stopped, &reason, true, Some(next)),
                );
                tracing::error!(
                    shop = %connector.shop, channel, retry_in_s = STOPPED_RETRY.as_secs(),
                    "channel stopped, an operator must act; retrying slowly: {reason}"
                );
                delay
            }
            End::Reconnect { reason, min_delay_ms } => {
                failures = failures.saturating_add(1);
                let backoff = crate::outbox::backoff_ms(failures, 500, 60_000, rand::random::<f64>() * 2.0 - 1.0);
                let delay = backoff.max(min_delay_ms);
                let next = huiliu_domain::now_millis().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
                set_status(
                    &gw,
                    &connector,
                    &channel,
                    state_now(status::ChannelState::BackingOff, &reason, false, Some(next)),
                );
                tracing::warn!(shop = %connector.shop, channel, delay_ms = delay, "channel lost, reconnecting: {reason}");
                delay
            }
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
}

/// A channel status that starts now.
fn state_now(
    state: status::ChannelState,
    detail: &str,
    operator_must_act: bool,
    next: Option<Millis>,
) -> ChannelStatus {
    ChannelStatus {
        state,
        detail: detail.to_owned(),
        operator_must_act,
        next_attempt_ms: next,
        since_ms: huiliu_domain::now_millis(),
    }
}

/// The host's view of a state a connector reported.
fn from_reported(reported: &ChannelState, detail: &str) -> ChannelStatus {
    match reported {
        ChannelState::Connected => state_now(status::ChannelState::Connected, detail, false, None),
        ChannelState::Connecting => state_now(status::ChannelState::Connecting, detail, false, None),
        ChannelState::BackingOff { until_ms } => {
            state_now(status::ChannelState::BackingOff, detail, false, Some(*until_ms))
        }
        ChannelState::Stopped { reason, operator_must_act } => {
            let detail = if reason.is_empty() { detail } else { reason.as_str() };
            state_now(status::ChannelState::Stopped, detail, *operator_must_act, None)
        }
    }
}

fn set_status(gw: &Channels, connector: &ShopConnector, channel: &str, status: ChannelStatus) {
    if connector.is_retired() {
        // Its replacement (or nothing, for a removed shop) speaks for the channel now.
        return;
    }
    let key = format!("{}/{}/{}", connector.platform, connector.shop, channel);
    let _ = gw.flow.events.send(GatewayEvent::Channel {
        platform: connector.platform.clone(),
        shop: connector.shop.clone(),
        channel: channel.to_owned(),
        status: status.summary(),
        state: status.state.as_str().to_owned(),
    });
    gw.status.set_channel(key, status);
}

fn frame_message(frame: Frame) -> Message {
    match frame {
        Frame::Binary(b) => Message::Binary(b.into()),
        Frame::Text(t) => Message::Text(t.into()),
    }
}

/// Handles what the connector made of one piece of data. Batches are stored in spawned tasks
/// whose acknowledgement frames go to `replies`; returns the control.
fn handle(
    gw: &Arc<Channels>,
    connector: &Arc<ShopConnector>,
    channel: &str,
    outcome: ChannelOutcome,
    replies: Option<&mpsc::UnboundedSender<Frame>>,
) -> ChannelControl {
    let detail = outcome.status.as_deref().unwrap_or_default();
    // The state is data (`ChannelOutcome::state`); a plugin built before it existed still counts
    // by its status string `connected` (`reported_state`).
    match outcome.reported_state() {
        Some(ChannelState::Connected) => {
            Metrics::count(&gw.metrics.channel_connects, &connector.platform, "connected");
            tracing::info!(shop = %connector.shop, channel, "channel connected: {detail}");
            set_status(gw, connector, channel, from_reported(&ChannelState::Connected, detail));
        }
        Some(state) => {
            tracing::info!(shop = %connector.shop, channel, state = state.as_str(), "channel state: {detail}");
            set_status(gw, connector, channel, from_reported(&state, detail));
        }
        None if !detail.is_empty() => tracing::debug!(shop = %connector.shop, channel, "channel status: {detail}"),
        None => {}
    }
    for (kind, reason) in &outcome.rejected {
        Metrics::count(&gw.metrics.pushes_rejected, &connector.platform, kind.as_str());
        tracing::warn!(shop = %connector.shop, channel, reason = kind.as_str(), "channel data rejected: {reason}");
    }
    if let Some(tx) = replies {
        for f in outcome.send {
            let _ = tx.send(f);
        }
    }
    for batch in outcome.batches {
        let (gw, connector, replies) = (gw.clone(), connector.clone(), replies.cloned());
        tokio::spawn(async move { store_batch(&gw, &connector, batch, replies).await });
    }
    outcome.control
}

async fn store_batch(
    gw: &Arc<Channels>,
    connector: &ShopConnector,
    batch: AckBatch,
    replies: Option<mpsc::UnboundedSender<Frame>>,
) {
    let AckBatch { events, dead_letters, on_durable, on_failure } = batch;
    // The one inbound flow; routing follows the acknowledgement.
    let ack =
        gw.flow.inbound(events, dead_letters, &connector.platform, &connector.shop, huiliu_domain::now_millis()).await;
    let stored = ack == Ack::Durable;
    if let Some(tx) = replies {
        for f in if stored { on_durable } else { on_failure } {
            let _ = tx.send(f);
        }
    }
}

fn control_end(control: ChannelControl) -> Option<End> {
    match control {
        ChannelControl::Continue => None,
        ChannelControl::Reconnect { reason, min_delay_ms } => Some(End::Reconnect { reason, min_delay_ms }),
        ChannelControl::Fatal { reason } => Some(End::Fatal(reason)),
    }
}

fn data(
    gw: &Arc<Channels>,
    c: &Arc<ShopConnector>,
    channel: &str,
    d: &ChannelData,
    replies: Option<&mpsc::UnboundedSender<Frame>>,
) -> Option<End> {
    match c.channel_data(channel, d, huiliu_domain::now_millis()) {
        Ok(outcome) => control_end(handle(gw, c, channel, outcome, replies)),
        // A panic was logged and counted by the wrapper; the data is lost to this connector,
        // so reconnect and let the platform redeliver what was not acknowledged.
        Err(e) => Some(reconnect(format!("connector failed on channel data: {e}"))),
    }
}

async fn websocket(gw: &Arc<Channels>, c: &Arc<ShopConnector>, channel: &str, tick_ms: Option<u64>) -> End {
    let (url, headers, frames) = match c.channel_open(channel, huiliu_domain::now_millis()) {
        Ok(ChannelOpen::WebSocket { url, headers, frames }) => (url, headers, frames),
        Ok(other) => return End::Fatal(format!("connector asked a WebSocket channel to open as {other:?}")),
        Err(e) => return reconnect(format!("connector cannot open the channel: {e}")),
    };
    let mut request = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return End::Fatal(format!("bad WebSocket URL: {e}")),
    };
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (k.parse::<axum::http::HeaderName>(), v.parse::<axum::http::HeaderValue>()) {
            request.headers_mut().insert(k, v);
        }
    }
    let ws = match tokio::time::timeout(Duration::from_secs(15), tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            Metrics::count(&gw.metrics.channel_connects, &c.platform, "failed");
            return reconnect(format!("cannot connect: {e}"));
        }
        Err(_) => return reconnect("connect timed out"),
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    for f in frames {
        let _ = tx.send(f);
    }
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            if sink.send(frame_message(f)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut ticker = tokio::time::interval(Duration::from_millis(tick_ms.unwrap_or(3_600_000).max(100)));
    ticker.tick().await;
    let end = loop {
        tokio::select! {
            message = source.next() => {
                let d = match message {
                    None => break reconnect("connection closed by the platform"),
                    Some(Err(e)) => break reconnect(format!("connection error: {e}")),
                    Some(Ok(Message::Binary(b))) => ChannelData::Frame(Frame::Binary(b.to_vec())),
                    Some(Ok(Message::Text(t))) => ChannelData::Frame(Frame::Text(t.to_string())),
                    Some(Ok(Message::Close(_))) => break reconnect("the platform closed the connection"),
                    Some(Ok(_)) => continue,
                };
                if let Some(end) = data(gw, c, channel, &d, Some(&tx)) {
                    break end;
                }
            }
            _ = ticker.tick(), if tick_ms.is_some() => {
                match c.channel_tick(channel, huiliu_domain::now_millis()) {
                    Ok(frames) => frames.into_iter().for_each(|f| { let _ = tx.send(f); }),
                    Err(e) => break reconnect(format!("connector failed on tick: {e}")),
                }
            }
        }
    };
    drop(tx);
    // Let queued acknowledgements go out before the socket closes.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    end
}

async fn stream(gw: &Arc<Channels>, c: &Arc<ShopConnector>, channel: &str) -> End {
    let request = match c.channel_open(channel, huiliu_domain::now_millis()) {
        Ok(ChannelOpen::Stream { request }) => request,
        Ok(other) => return End::Fatal(format!("connector asked a stream channel to open as {other:?}")),
        Err(e) => return reconnect(format!("connector cannot open the channel: {e}")),
    };
    // No overall timeout: the body never ends. Idle detection below replaces it.
    let builder = match http::build(&gw.http, request, Duration::from_secs(86_400 * 2)) {
        Ok(b) => b,
        Err(e) => return End::Fatal(e),
    };
    let mut response = match tokio::time::timeout(Duration::from_secs(15), builder.send()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            Metrics::count(&gw.metrics.channel_connects, &c.platform, "failed");
            return reconnect(format!("cannot connect: {}", http::describe(e)));
        }
        Err(_) => return reconnect("connect timed out"),
    };
    let status = response.status().as_u16();
    let headers = http::headers_of(response.headers());
    if !response.status().is_success() {
        // A refusal's body says why (bad sign, bad app key): hand it over whole.
        let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        let head = ChannelData::Response(HttpResponse { status, headers, body });
        return data(gw, c, channel, &head, None)
            .unwrap_or_else(|| reconnect(format!("the platform refused the stream with HTTP {status}")));
    }
    let head = ChannelData::Response(HttpResponse { status, headers, body: Vec::new() });
    if let Some(end) = data(gw, c, channel, &head, None) {
        return end;
    }
    loop {
        match tokio::time::timeout(STREAM_IDLE, response.chunk()).await {
            Err(_) => return reconnect(format!("no data for {} s", STREAM_IDLE.as_secs())),
            Ok(Ok(None)) => return reconnect("the platform ended the stream"),
            Ok(Err(e)) => return reconnect(format!("stream error: {}", http::describe(e))),
            Ok(Ok(Some(chunk))) => {
                if let Some(end) = data(gw, c, channel, &ChannelData::Chunk(chunk.to_vec()), None) {
                    return end;
                }
            }
        }
    }
}

async fn poll(gw: &Arc<Channels>, c: &Arc<ShopConnector>, channel: &str, interval_ms: u64) -> End {
    let timeout = Duration::from_millis(gw.request_timeout_ms);
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms.max(200)));
    loop {
        ticker.tick().await;
        let now: Millis = huiliu_domain::now_millis();
        let request = match c.channel_open(channel, now) {
            Ok(ChannelOpen::Poll { request }) => request,
            Ok(other) => return End::Fatal(format!("connector asked a poll channel to open as {other:?}")),
            Err(e) => return reconnect(format!("connector cannot build the poll: {e}")),
        };
        match http::perform(&gw.http, request, timeout).await {
            Ok(response) => {
                if let Some(end) = data(gw, c, channel, &ChannelData::Response(response), None) {
                    return end;
                }
            }
            Err(e) => return reconnect(format!("poll failed: {e}")),
        }
    }
}
