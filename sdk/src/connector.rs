//! The `Connector` trait a plugin author implements, and what it declares about itself.

use serde::{Deserialize, Serialize};

use crate::model::{Millis, OutgoingMessage, SendOutcome, ShopConfig, TokenGrant, TransferRequest};
// The error type lives with the data it is built from (`ShopConfig::require` returns one);
// re-exported so `huiliu_sdk::connector::ConnectorError` keeps naming it.
pub use crate::model::{ConnectorError, ErrorKind};
use crate::wire::{
    ChannelData, ChannelOpen, ChannelOutcome, Frame, HttpPush, HttpRequest, HttpResponse, PushOutcome, RejectKind,
};

/// What a connector can do. Declared in the manifest and in the exported table; the conformance
/// kit exercises every declared capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Receives HTTP pushes at `/hooks/{platform}/{shop_id}`.
    Push,
    /// Keeps a WebSocket open (Taobao TMC).
    WebSocket,
    /// Reads a never-ending HTTP response (JD message stream).
    Stream,
    /// Polls an API on an interval.
    Poll,
    /// Sends replies.
    Send,
    /// Transfers a conversation between platform staff accounts.
    Transfer,
    /// Refreshes its access token.
    TokenRefresh,
}

impl Capability {
    /// Every capability, in bit order.
    pub const ALL: [Capability; 7] = [
        Capability::Push,
        Capability::WebSocket,
        Capability::Stream,
        Capability::Poll,
        Capability::Send,
        Capability::Transfer,
        Capability::TokenRefresh,
    ];

    /// The capability's bit in [`crate::abi::PluginTable::capabilities`].
    pub fn bit(self) -> u64 {
        1 << (self as u32)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Push => "push",
            Capability::WebSocket => "web_socket",
            Capability::Stream => "stream",
            Capability::Poll => "poll",
            Capability::Send => "send",
            Capability::Transfer => "transfer",
            Capability::TokenRefresh => "token_refresh",
        }
    }

    /// The bitmask of a capability list.
    pub fn mask(caps: &[Capability]) -> u64 {
        caps.iter().fold(0, |m, c| m | c.bit())
    }

    /// The capabilities in a bitmask (unknown bits ignored).
    pub fn from_mask(mask: u64) -> Vec<Capability> {
        Capability::ALL.into_iter().filter(|c| mask & c.bit() != 0).collect()
    }
}

/// One configuration key a connector reads from its shop table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigKey {
    pub name: String,
    /// Whether a shop must set it.
    pub required: bool,
    /// The default when unset, if any.
    #[serde(default)]
    pub default: Option<String>,
    /// Whether the value names a *modeled* platform API (see the connector's docs).
    #[serde(default)]
    pub modeled: bool,
    /// Whether the value is a secret (never logged, never printed).
    #[serde(default)]
    pub secret: bool,
    /// One line of documentation.
    pub doc: String,
    /// Optional to receive, but needed to reply (an API secret, a token): a shop without it
    /// loads and takes pushes, and `huiliu check` reports that it cannot send.
    #[serde(default)]
    pub required_to_send: bool,
}

impl ConfigKey {
    /// A required key.
    pub fn required(name: &str, doc: &str) -> Self {
        ConfigKey {
            name: name.into(),
            required: true,
            default: None,
            modeled: false,
            secret: false,
            doc: doc.into(),
            required_to_send: false,
        }
    }

    /// An optional key with a default.
    pub fn optional(name: &str, default: Option<&str>, doc: &str) -> Self {
        ConfigKey {
            name: name.into(),
            required: false,
            default: default.map(Into::into),
            modeled: false,
            secret: false,
            doc: doc.into(),
            required_to_send: false,
        }
    }

    /// Marks an optional key as needed to send replies (see [`ConfigKey::required_to_send`]).
    pub fn required_to_send(mut self) -> Self {
        self.required_to_send = true;
        self
    }

    /// Marks the key as secret.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Marks the key as naming a modeled platform API.
    pub fn modeled(mut self) -> Self {
        self.modeled = true;
        self
    }
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Unique plugin id: lowercase ASCII letters, digits and `-` (`taobao`, `acme-shop`).
    pub id: String,
    /// The platform the events carry (`taobao`, `douyin`, `jd`, …); usually the id.
    pub platform: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// One line for `huiliu plugins list`.
    pub description: String,
    pub capabilities: Vec<Capability>,
    /// Every key the shop table may hold.
    #[serde(default)]
    pub config_keys: Vec<ConfigKey>,
}

/// A connection the host keeps for a shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "need", rename_all = "snake_case")]
pub enum ConnectionNeed {
    /// Mount the push route `/hooks/{platform}/{shop_id}`.
    PushRoute,
    /// Keep a WebSocket open; call `channel_tick` every `tick_interval_ms` if set.
    WebSocket {
        channel: String,
        #[serde(default)]
        tick_interval_ms: Option<u64>,
    },
    /// Keep a streamed HTTP response open.
    Stream { channel: String },
    /// Run a poll every `interval_ms`.
    Poll { channel: String, interval_ms: u64 },
}

/// A platform connector: a pure, synchronous state machine (sans-IO).
///
/// The host owns sockets, timers, retries and rate limits; a connector turns bytes into
/// [`crate::InboundEvent`]s and intents into signed [`HttpRequest`]s. It never reads a clock:
/// `now` (milliseconds since the Unix epoch, UTC) comes in as an argument, so a connector can
/// be replayed from recorded fixtures. One instance serves one configured shop; the export glue
/// serializes calls to an instance.
///
/// Every method but [`Connector::manifest`] and [`Connector::new`] has a default that
/// answers "unsupported", so a connector implements only what it declares.
pub trait Connector: Send + Sized + 'static {
    /// What the plugin is and can do. Must be the same on every call.
    fn manifest() -> Manifest;

    /// Once per process, before any shop is created.
    fn init_plugin() -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Creates the instance for one shop. Validate the configuration here and say exactly
    /// which key is wrong.
    fn new(config: ShopConfig) -> Result<Self, ConnectorError>;

    /// The connections the host should keep for this shop.
    fn connections(&self) -> Vec<ConnectionNeed> {
        Vec::new()
    }

    /// Verifies and decodes an HTTP push. Must not panic on any input.
    fn decode_push(&mut self, push: &HttpPush, now: Millis) -> PushOutcome {
        let _ = (push, now);
        PushOutcome::Rejected {
            kind: RejectKind::Malformed,
            reason: "this connector takes no pushes".into(),
            response: HttpResponse::text(404, "no push route"),
        }
    }

    /// How to open channel `channel` (or run one round of a poll).
    fn channel_open(&mut self, channel: &str, now: Millis) -> Result<ChannelOpen, ConnectorError> {
        let _ = (channel, now);
        Err(ConnectorError::unsupported("channels"))
    }

    /// Decodes data that arrived on `channel`. Must not panic on any input.
    fn channel_data(&mut self, channel: &str, data: ChannelData, now: Millis) -> ChannelOutcome {
        let _ = (channel, data, now);
        ChannelOutcome::default()
    }

    /// Called every `tick_interval_ms` while the channel is open; returns frames to send.
    fn channel_tick(&mut self, channel: &str, now: Millis) -> Vec<Frame> {
        let _ = (channel, now);
        Vec::new()
    }

    /// The host closed or lost the channel.
    fn channel_closed(&mut self, channel: &str, now: Millis) {
        let _ = (channel, now);
    }

    /// Builds the fully signed request that delivers `message`.
    fn encode_send(&mut self, message: &OutgoingMessage, now: Millis) -> Result<HttpRequest, ConnectorError> {
        let _ = (message, now);
        Err(ConnectorError::unsupported("sending"))
    }

    /// Classifies the platform's answer to a send request.
    fn classify_send(&mut self, response: &HttpResponse, now: Millis) -> SendOutcome {
        let _ = now;
        SendOutcome::Permanent {
            error: crate::model::PlatformError {
                http_status: response.status,
                code: "unsupported".into(),
                sub_code: None,
                message: "this connector does not send".into(),
            },
        }
    }

    /// Builds the signed request that transfers a conversation between staff accounts.
    fn encode_transfer(&mut self, transfer: &TransferRequest, now: Millis) -> Result<HttpRequest, ConnectorError> {
        let _ = (transfer, now);
        Err(ConnectorError::unsupported("transfer"))
    }

    /// Classifies the platform's answer to a transfer request.
    fn classify_transfer(&mut self, response: &HttpResponse, now: Millis) -> SendOutcome {
        self.classify_send(response, now)
    }

    /// The refresh request when the access token is due for refresh (or `force` is set, after
    /// a token error); `None` when no refresh is needed or possible.
    fn token_refresh(&mut self, now: Millis, force: bool) -> Option<HttpRequest> {
        let _ = (now, force);
        None
    }

    /// Whether `message` needs a step before `encode_send` (an upload of its picture to the
    /// platform's media storage). Called before every send; the default is `Ready`.
    fn prepare_send(&mut self, message: &OutgoingMessage, now: Millis) -> crate::wire::SendPrep {
        let _ = (message, now);
        crate::wire::SendPrep::Ready
    }

    /// The upload request for element `element` of `message`, whose media the host fetched
    /// (`media`). Required only by a connector whose `prepare_send` asks for uploads.
    fn encode_upload(
        &mut self,
        message: &OutgoingMessage,
        element: u32,
        media: &[u8],
        now: Millis,
    ) -> Result<HttpRequest, ConnectorError> {
        let _ = (message, element, media, now);
        Err(ConnectorError::unsupported("uploads"))
    }

    /// Reads the platform's answer to an upload: the reply to send now, or why not.
    fn uploaded(
        &mut self,
        message: &OutgoingMessage,
        element: u32,
        response: &HttpResponse,
        now: Millis,
    ) -> crate::wire::UploadOutcome {
        let _ = (message, element, response, now);
        crate::wire::UploadOutcome::Failed {
            outcome: SendOutcome::Permanent {
                error: crate::PlatformError {
                    http_status: 0,
                    code: "unsupported".into(),
                    sub_code: None,
                    message: "this connector does not upload media".into(),
                },
            },
        }
    }

    /// Finishes a unit that [`PushOutcome::Accepted::lookups`](crate::PushOutcome) said needed a
    /// lookup: `context` is the lookup's context, `response` the platform's answer to its
    /// request. Required only by a connector that returns lookups.
    fn complete_lookup(
        &mut self,
        context: &[u8],
        response: &HttpResponse,
        now: Millis,
    ) -> Result<crate::wire::LookupOutcome, ConnectorError> {
        let _ = (context, response, now);
        Err(ConnectorError::unsupported("lookups"))
    }

    /// Takes the platform's answer to a refresh request; on success the connector uses the new
    /// token from now on and the host persists the grant.
    ///
    /// On failure, say which kind: [`ConnectorError::reauthorize`] when the platform refused the
    /// grant itself (refresh token expired or revoked, app de-authorized) — the host stops
    /// refreshing, fails replies waiting on the token with that reason and shows the shop as
    /// needing re-authorization until its settings change; any other error (a service error,
    /// an answer it cannot read) is temporary and retried.
    ///
    /// A connector with a fixed token (no refresh) does not declare `TokenRefresh`; when the
    /// platform says that token expired, `classify_send` returns `SendOutcome::TokenExpired`
    /// and the host fails the reply at once as needing re-authorization, instead of retrying.
    fn token_refreshed(&mut self, response: &HttpResponse, now: Millis) -> Result<TokenGrant, ConnectorError> {
        let _ = (response, now);
        Err(ConnectorError::unsupported("token refresh"))
    }
}
