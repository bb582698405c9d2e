//! The I/O shapes the host and a connector exchange. The host owns every socket; these are the
//! bytes it read or will write, handed across in plain data.

use serde::{Deserialize, Serialize};

use crate::model::{DeadLetter, InboundEvent, Millis, OutgoingMessage, SendOutcome};

/// A header list in arrival order. Names compare case-insensitively ([`header`]).
pub type Headers = Vec<(String, String)>;

/// The first value of header `name` (ASCII case-insensitive).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// An HTTP request the host should perform (outbound API call, stream connect, poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The full URL, query string included.
    pub url: String,
    pub headers: Headers,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// An HTTP response, either one the host received (to classify) or one it must send (push ack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Headers,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a JSON body and `Content-Type: application/json`.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.into(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".to_owned(), "text/plain; charset=utf-8".to_owned())],
            body: body.into(),
        }
    }
}

/// An HTTP push the platform made to the shop's hook (`/hooks/{platform}/{shop_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpPush {
    pub method: String,
    /// The path as received, without the query string.
    pub path: String,
    /// The raw query string (without `?`), possibly empty.
    #[serde(default)]
    pub query: String,
    pub headers: Headers,
    /// The raw body, exactly as received (signatures are over these bytes).
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// Why a push or frame was refused before any parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// The signature does not verify.
    BadSignature,
    /// The app key / app id is not this shop's.
    WrongApp,
    /// The signed timestamp is outside the platform's tolerance.
    Stale,
    /// Not the shape of a push at all (wrong method, missing headers, not the envelope).
    Malformed,
    /// Larger than the connector accepts.
    TooLarge,
}

impl RejectKind {
    /// The label used in metrics (`huiliu_ingress_rejected_total{reason=…}`).
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectKind::BadSignature => "bad_signature",
            RejectKind::WrongApp => "wrong_app",
            RejectKind::Stale => "stale",
            RejectKind::Malformed => "malformed",
            RejectKind::TooLarge => "too_large",
        }
    }
}

/// What a connector made of one HTTP push.
///
/// A push carries one or more **units**: a unit is the smallest thing the platform sends that
/// has its own meaning and (usually) its own id: one element of a Douyin batch array, one
/// WeChat event, one TMC message. Every authentic unit ends in exactly one of `events`,
/// `dead_letters` or `ignored`; none is dropped silently.
///
/// HTTP statuses: `ack` is the platform's documented success answer (usually 200 with its
/// success body). `nack` MUST be an answer the platform treats as a failure and retries; use a
/// 5xx status (503) unless the platform reads only the body, in which case send its failure
/// body. A `Rejected` response uses a 4xx status (400 malformed, 401 bad signature or wrong
/// app, 413 too large) and never the success body, so a forged push is never acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PushOutcome {
    /// Authentic. The host stores `events` and `dead_letters` durably, then answers `ack`;
    /// if storing fails it answers `nack`, and the platform redelivers.
    Accepted {
        events: Vec<InboundEvent>,
        #[serde(default)]
        dead_letters: Vec<DeadLetter>,
        ack: HttpResponse,
        nack: HttpResponse,
        /// Authentic units the connector deliberately does not turn into events: types the
        /// platform documents and this connector has no use for (a shop-info change, an
        /// address check). The host counts and logs them; it stores nothing.
        #[serde(default)]
        ignored: Vec<IgnoredUnit>,
        /// Units that need one more platform call before they are events (e.g. an order push
        /// that names no buyer): the host performs each request (with retries), hands the
        /// answer to [`Connector::complete_lookup`](crate::Connector::complete_lookup), and
        /// stores the completed events with `events` before answering `ack`. A lookup that
        /// fails for good becomes a dead letter with its reason; one that cannot complete yet
        /// makes the host answer `nack`, so the platform pushes again.
        #[serde(default)]
        lookups: Vec<Lookup>,
    },
    /// Refused before parsing; the host answers `response`, counts it and stores nothing.
    Rejected { kind: RejectKind, reason: String, response: HttpResponse },
}

/// An authentic unit a connector chose not to turn into an event (see [`PushOutcome`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredUnit {
    /// The platform's type of the unit (`channels_ec_product_update`, tag `0`, …).
    pub unit_type: String,
    /// The platform's id of the unit, when it has one.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Why it is ignored, for the log.
    pub reason: String,
}

impl PushOutcome {
    /// An authentic push that carries no unit and only needs an answer: a platform's URL
    /// verification (WeChat's `echostr` GET) or address check. The host answers `response`
    /// whatever happens (there is nothing to store, so nothing can fail).
    pub fn answer(response: HttpResponse) -> Self {
        PushOutcome::Accepted {
            events: Vec::new(),
            dead_letters: Vec::new(),
            ack: response.clone(),
            nack: response,
            ignored: Vec::new(),
            lookups: Vec::new(),
        }
    }
}

/// What a reply needs before [`Connector::encode_send`](crate::Connector::encode_send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "prep", rename_all = "snake_case")]
pub enum SendPrep {
    /// Nothing: encode it.
    Ready,
    /// The platform takes media only from its own storage (WeChat Shop's `cos_url`): the host
    /// fetches `url` (a plain GET, at most 10 MiB), hands the bytes to `encode_upload` for
    /// element `element`, performs that request and gives the answer to `uploaded`, then asks
    /// again.
    Upload { element: u32, url: String },
}

/// What the answer to an upload made of the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "upload", rename_all = "snake_case")]
pub enum UploadOutcome {
    /// The reply to send now, its element pointing at the platform's copy.
    Ready { message: OutgoingMessage },
    /// The upload failed: this outcome ends the attempt (retried like a send that failed so).
    Failed { outcome: SendOutcome },
}

/// A platform call a unit needs before it is an event (order enrichment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    /// The call to make (signed, complete).
    pub request: HttpRequest,
    /// Opaque to the host: what the connector needs to finish the unit, handed back with the
    /// answer (e.g. the unit's raw JSON).
    #[serde(with = "serde_bytes")]
    pub context: Vec<u8>,
    /// The unit's platform id, for the dead letter if the lookup fails for good.
    #[serde(default)]
    pub event_id: Option<String>,
    /// The unit's raw bytes, kept as the dead letter if the lookup fails for good.
    #[serde(with = "serde_bytes")]
    pub raw: Vec<u8>,
}

/// What the connector made of a lookup's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LookupOutcome {
    /// The unit, completed (none: it turned out to be a unit to ignore).
    Complete { events: Vec<InboundEvent> },
    /// Not now (the platform is busy, rate-limited, the token expired): the host may try the
    /// same request again, and otherwise answers the push with `nack`.
    Retry { reason: String },
    /// Never (the order does not exist, no permission): the unit is kept as a dead letter with
    /// this reason.
    Failed { reason: String },
}

/// A frame on a connection the host keeps open for the connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "frame", content = "data", rename_all = "snake_case")]
pub enum Frame {
    /// A WebSocket binary frame.
    Binary(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A WebSocket text frame.
    Text(String),
}

/// Data arriving on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "data", content = "value", rename_all = "snake_case")]
pub enum ChannelData {
    /// A WebSocket frame.
    Frame(Frame),
    /// A chunk of a streamed HTTP response body (arbitrary boundaries).
    Chunk(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The status and headers of a streamed response, or a whole poll response.
    Response(HttpResponse),
}

/// How the host should start a channel (or one round of a poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "open", rename_all = "snake_case")]
pub enum ChannelOpen {
    /// Open a WebSocket to `url` and send `frames` once connected.
    WebSocket { url: String, headers: Headers, frames: Vec<Frame> },
    /// Perform `request` and feed the response head as [`ChannelData::Response`], then every
    /// body chunk as [`ChannelData::Chunk`].
    Stream { request: HttpRequest },
    /// Perform `request` and feed the whole response as [`ChannelData::Response`].
    Poll { request: HttpRequest },
}

/// Events that are acknowledged together, with the frames that acknowledge them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckBatch {
    pub events: Vec<InboundEvent>,
    #[serde(default)]
    pub dead_letters: Vec<DeadLetter>,
    /// Send after `events` and `dead_letters` are durably stored (TMC confirm).
    #[serde(default)]
    pub on_durable: Vec<Frame>,
    /// Send if storing failed, to get a redelivery (TMC SENDACK failed).
    #[serde(default)]
    pub on_failure: Vec<Frame>,
}

/// What the host should do with the channel after this data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "control", rename_all = "snake_case")]
pub enum ChannelControl {
    /// Keep reading.
    #[default]
    Continue,
    /// Close and reconnect after at least `min_delay_ms` (the host adds its backoff).
    Reconnect { reason: String, min_delay_ms: u64 },
    /// Close: the platform refused what only an operator can fix (credentials, permissions).
    /// The host shows the channel stopped with operator action needed, and retries it only
    /// slowly (the host's interval) and when the configuration changes.
    Fatal { reason: String },
}

/// What a connector made of data on a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelOutcome {
    /// Frames to send at once (e.g. a pull request after CONNECTACK).
    #[serde(default)]
    pub send: Vec<Frame>,
    /// Events to store, each batch with its acknowledgement frames.
    #[serde(default)]
    pub batches: Vec<AckBatch>,
    /// Units refused before parsing (bad signature, …), for the host to count and log.
    #[serde(default)]
    pub rejected: Vec<(RejectKind, String)>,
    #[serde(default)]
    pub control: ChannelControl,
    /// A human-readable status change worth logging (`connected to TMC as group …`,
    /// `heartbeat`, …): the detail. The host reads connected-ness from `state`, not from this text;
    /// only when `state` is absent (a plugin built before it existed) does a status of exactly
    /// `connected` still count as [`ChannelState::Connected`].
    #[serde(default)]
    pub status: Option<String>,
    /// The channel's state as data, when this data changed it (e.g. `Connected` on the platform's
    /// connect acknowledgement). `None` leaves the state as it was. Stopping or backing off is
    /// said through `control`; a connector may also state it here.
    #[serde(default)]
    pub state: Option<ChannelState>,
}

impl ChannelOutcome {
    /// The state this outcome reports: `state`, else the legacy status string `connected`.
    pub fn reported_state(&self) -> Option<ChannelState> {
        match (&self.state, self.status.as_deref()) {
            (Some(state), _) => Some(state.clone()),
            (None, Some("connected")) => Some(ChannelState::Connected),
            (None, _) => None,
        }
    }
}

/// Where a long-lived channel stands, as data the host, its readiness check, its status API and
/// its metrics read (never parsed from prose).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChannelState {
    /// The platform accepted the session; data flows.
    Connected,
    /// A connection is being opened (or was opened and not yet acknowledged).
    Connecting,
    /// The session ended; the next attempt is at `until_ms` (epoch milliseconds).
    BackingOff {
        #[serde(default)]
        until_ms: Millis,
    },
    /// The channel does not run on its own accord: `reason` says why, and `operator_must_act`
    /// whether a person has to change something (credentials, permissions) for it to recover.
    Stopped {
        #[serde(default)]
        reason: String,
        #[serde(default)]
        operator_must_act: bool,
    },
}

impl ChannelState {
    /// The state's word: `connected`, `connecting`, `backing_off` or `stopped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelState::Connected => "connected",
            ChannelState::Connecting => "connecting",
            ChannelState::BackingOff { .. } => "backing_off",
            ChannelState::Stopped { .. } => "stopped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outcome as a plugin built before `state` existed sends it: named fields, no `state`.
    #[derive(Serialize)]
    struct LegacyOutcome {
        send: Vec<Frame>,
        control: ChannelControl,
        status: Option<String>,
    }

    fn across<T: Serialize>(value: &T) -> ChannelOutcome {
        let bytes = rmp_serde::to_vec_named(value).expect("encode");
        rmp_serde::from_slice(&bytes).expect("decode")
    }

    #[test]
    fn every_state_crosses_the_abi() {
        let states = [
            ChannelState::Connected,
            ChannelState::Connecting,
            ChannelState::BackingOff { until_ms: 1_700_000_000_123 },
            ChannelState::Stopped { reason: "invalid sign".into(), operator_must_act: true },
            ChannelState::Stopped { reason: "asked to stop".into(), operator_must_act: false },
        ];
        for state in states {
            let outcome = ChannelOutcome { state: Some(state.clone()), ..ChannelOutcome::default() };
            let back = across(&outcome);
            assert_eq!(back, outcome);
            assert_eq!(back.reported_state(), Some(state));
        }
    }

    #[test]
    fn the_state_wins_over_the_text() {
        let outcome = ChannelOutcome {
            status: Some("connected to TMC as group `default`".into()),
            state: Some(ChannelState::Connected),
            ..ChannelOutcome::default()
        };
        assert_eq!(across(&outcome).reported_state(), Some(ChannelState::Connected));
        let prose = ChannelOutcome { status: Some("connected to TMC as group `default`".into()), ..Default::default() };
        assert_eq!(prose.reported_state(), None, "prose is never parsed");
        let said = ChannelOutcome {
            status: Some("connected".into()),
            state: Some(ChannelState::Connecting),
            ..Default::default()
        };
        assert_eq!(said.reported_state(), Some(ChannelState::Connecting));
    }

    #[test]
    fn an_older_plugin_still_decodes_and_its_connected_still_counts() {
        let old = LegacyOutcome { send: vec![], control: ChannelControl::Continue, status: Some("connected".into()) };
        let back = across(&old);
        assert_eq!(back.state, None);
        assert_eq!(back.reported_state(), Some(ChannelState::Connected));
        let heartbeat =
            LegacyOutcome { send: vec![], control: ChannelControl::Continue, status: Some("heartbeat".into()) };
        assert_eq!(across(&heartbeat).reported_state(), None);
    }

    #[test]
    fn a_state_with_missing_fields_decodes_with_defaults() {
        #[derive(Serialize)]
        struct Bare {
            state: &'static str,
        }
        #[derive(Serialize)]
        struct Outcome {
            state: Bare,
        }
        let back = across(&Outcome { state: Bare { state: "stopped" } });
        assert_eq!(back.state, Some(ChannelState::Stopped { reason: String::new(), operator_must_act: false }));
        assert_eq!(ChannelState::BackingOff { until_ms: 1 }.as_str(), "backing_off");
    }
}
