//! The normalized model every connector produces and consumes.
//!
//! These types are what the gateway knows of a platform: nothing here names a wire format.
//! They cross the plugin boundary serialized (MessagePack with field names), so they evolve
//! additively: new fields get `#[serde(default)]`, fields are never renamed or removed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC). Time always enters a connector as an argument.
pub type Millis = i64;

/// A buyer as a platform identifies them: the platform's open buyer id (`buyer_open_uid`,
/// `buyer_open_id`, `customer_open_id`), never a decrypted phone number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Buyer {
    /// The platform's stable, shop-scoped open id of the buyer.
    pub open_id: String,
    /// Display nick, when the platform sends one.
    #[serde(default)]
    pub nick: Option<String>,
}

/// What the platform tells about a buyer's standing, used for VIP routing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipHint {
    /// Platform member / VIP level (0 = none).
    #[serde(default)]
    pub member_level: u32,
    /// Shop fan level (Douyin `fans_level`; 0 = not a fan).
    #[serde(default)]
    pub fans_level: u32,
}

/// Opaque values a connector needs again to reply in the same conversation
/// (Taobao's `sub_nick`, JD's `waiter`, …). The gateway stores and returns them untouched.
pub type ReplyContext = BTreeMap<String, String>;

/// One element of a message. Every element has a text fallback ([`Content::fallback_text`]), so
/// a surface that cannot render it (a log line, a search index, an SMS) still shows something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Plain text.
    Text { text: String },
    /// A picture, by URL.
    Image { url: String, fallback: String },
    /// A product card (商品卡片).
    Product {
        product_id: String,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        url: Option<String>,
        fallback: String,
    },
    /// An order card (订单卡片).
    Order { order_id: String, fallback: String },
    /// An emoji or sticker by platform code.
    Emoji { code: String, fallback: String },
}

impl Content {
    /// A text element.
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text { text: text.into() }
    }

    /// An image element with the customary fallback `[图片]`.
    pub fn image(url: impl Into<String>) -> Self {
        Content::Image { url: url.into(), fallback: "[图片]".to_owned() }
    }

    /// A product card with the fallback `[商品] <id>` (or the title when known).
    pub fn product(product_id: impl Into<String>, title: Option<String>) -> Self {
        let product_id = product_id.into();
        let fallback = match &title {
            Some(t) => format!("[商品] {t}"),
            None => format!("[商品] {product_id}"),
        };
        Content::Product { product_id, title, url: None, fallback }
    }

    /// An order card with the fallback `[订单] <id>`.
    pub fn order(order_id: impl Into<String>) -> Self {
        let order_id = order_id.into();
        Content::Order { fallback: format!("[订单] {order_id}"), order_id }
    }

    /// An emoji with the fallback `[表情]` unless one is given.
    pub fn emoji(code: impl Into<String>) -> Self {
        Content::Emoji { code: code.into(), fallback: "[表情]".to_owned() }
    }

    /// The text shown wherever the element cannot be rendered.
    pub fn fallback_text(&self) -> &str {
        match self {
            Content::Text { text } => text,
            Content::Image { fallback, .. }
            | Content::Product { fallback, .. }
            | Content::Order { fallback, .. }
            | Content::Emoji { fallback, .. } => fallback,
        }
    }

    /// The element's text when it carries free text a buyer typed (the part privacy masking
    /// and compliance look at), `None` for structured elements.
    pub fn typed_text(&self) -> Option<&str> {
        match self {
            Content::Text { text } => Some(text),
            _ => None,
        }
    }
}

/// The text of a whole message: the elements' fallbacks joined by spaces.
pub fn fallback_text(content: &[Content]) -> String {
    let mut out = String::new();
    for (i, c) in content.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(c.fallback_text());
    }
    out
}

/// A normalized event from a platform: a buyer message, an order or a refund event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundEvent {
    /// The platform (`taobao`, `douyin`, `jd`, …): the plugin's manifest platform.
    pub platform: String,
    /// The shop id as configured in the gateway (the `shop_id` of [`ShopConfig`]).
    pub shop: String,
    /// The platform's own id for this event: the dedupe key within (platform, shop).
    pub event_id: String,
    /// The buyer the event concerns.
    pub buyer: Buyer,
    /// When the platform says it happened.
    pub occurred_at: Millis,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of normalized event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The buyer wrote to the shop.
    BuyerMessage(BuyerMessage),
    /// An order changed state.
    Order(OrderEvent),
    /// A refund changed state.
    Refund(RefundEvent),
}

/// A message a buyer sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyerMessage {
    /// The platform's conversation id when it has one (Douyin `conversation_id`, JD `sid`).
    #[serde(default)]
    pub conversation: Option<String>,
    /// The message's elements, in order.
    pub content: Vec<Content>,
    /// Member / fan standing the platform sent with the message.
    #[serde(default)]
    pub vip: VipHint,
    /// What the connector needs to reply in this conversation.
    #[serde(default)]
    pub reply_context: ReplyContext,
}

/// Order stages the gateway distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStage {
    Created,
    Paid,
    Shipped,
    Received,
    Closed,
}

/// An order event (Taobao `taobao_trade_*`, Douyin tags 100/101/103, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub stage: OrderStage,
    /// The platform order id, kept as text (ids exceed 2^53).
    pub order_id: String,
    /// Amount in fen (1/100 yuan), when the platform sends one.
    #[serde(default)]
    pub amount_fen: Option<i64>,
    /// The platform's own status word, for display.
    #[serde(default)]
    pub status: Option<String>,
}

/// Refund stages the gateway distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStage {
    Requested,
    Agreed,
    Succeeded,
    Closed,
}

/// A refund event (Taobao `taobao_refund_*`, Douyin tags 200/201, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundEvent {
    pub stage: RefundStage,
    pub refund_id: String,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub amount_fen: Option<i64>,
}

/// A reply the gateway asks a connector to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// Gateway-assigned id, stable across retries: the platform's idempotency key.
    pub client_msg_id: String,
    /// The configured shop id.
    pub shop: String,
    /// The buyer to answer.
    pub buyer: Buyer,
    /// The platform conversation, when the buyer's message carried one.
    #[serde(default)]
    pub conversation: Option<String>,
    /// The reply context of the buyer's last message.
    #[serde(default)]
    pub reply_context: ReplyContext,
    /// The platform staff account to send as — the agent's own (a Taobao sub-account nick, a
    /// JD waiter), from their routing configuration — or `None` for the connector's usual
    /// choice (the account the buyer wrote to, else the shop's configured one). A connector
    /// whose platform has no per-account sending ignores it and says so in its README.
    #[serde(default)]
    pub staff_account: Option<String>,
    /// What to send. The host splits a reply of several elements into one call per element
    /// (in order, client message ids `{id}-1`, `{id}-2`, …), so `encode_send` sees one element
    /// in practice and should send it as the platform's native type; flattening several into
    /// one text is left for a host that did not split.
    pub content: Vec<Content>,
}

/// A request to hand a conversation to another staff account on the platform itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    pub shop: String,
    pub buyer: Buyer,
    /// The platform staff account now serving the buyer.
    pub from_account: String,
    /// The platform staff account to hand over to.
    pub to_account: String,
    #[serde(default)]
    pub reply_context: ReplyContext,
}

/// A platform's own error, kept verbatim for the agent and the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformError {
    /// HTTP status of the response.
    pub http_status: u16,
    /// The platform's error code (`"27"`, `"60000"`, …).
    pub code: String,
    /// The platform's sub-code when it has one (`isv.access-token-expired`).
    #[serde(default)]
    pub sub_code: Option<String>,
    /// The platform's message text.
    pub message: String,
}

impl std::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}", self.code)?;
        if let Some(sub) = &self.sub_code {
            write!(f, " ({sub})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// How a platform answered a send (or transfer) request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SendOutcome {
    /// Accepted by the platform.
    Delivered {
        #[serde(default)]
        platform_msg_id: Option<String>,
    },
    /// A platform-side fault: retry with backoff.
    Retryable { error: PlatformError },
    /// Throttled: back off (at least `retry_after_ms` when the platform says).
    RateLimited {
        error: PlatformError,
        #[serde(default)]
        retry_after_ms: Option<u64>,
    },
    /// The access token is expired or invalid: refresh once, then retry once.
    TokenExpired { error: PlatformError },
    /// The request can never succeed as sent.
    Permanent { error: PlatformError },
}

impl SendOutcome {
    /// The short class name (`delivered`, `retryable`, …) used in metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            SendOutcome::Delivered { .. } => "delivered",
            SendOutcome::Retryable { .. } => "retryable",
            SendOutcome::RateLimited { .. } => "rate_limited",
            SendOutcome::TokenExpired { .. } => "token_expired",
            SendOutcome::Permanent { .. } => "permanent",
        }
    }
}

/// Tokens obtained by a refresh, for the host to persist and hand back in [`ShopConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenGrant {
    pub access_token: String,
    /// When the access token expires.
    pub expires_at: Millis,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_expires_at: Option<Millis>,
}

/// A push that passed its signature check but could not be understood. The host stores it raw,
/// acknowledges it (a retry would fail the same way), counts it and shows it to operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Why it could not be decoded.
    pub reason: String,
    /// The platform's id for the unit, when one could be read.
    #[serde(default)]
    pub event_id: Option<String>,
    /// The raw bytes of the unit.
    #[serde(with = "serde_bytes")]
    pub raw: Vec<u8>,
}

/// The kinds of connector error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The shop configuration is wrong or incomplete.
    Config,
    /// The connector does not do that (a capability it did not declare).
    Unsupported,
    /// The input cannot be handled (e.g. an outgoing message with no content).
    InvalidInput,
    /// The platform answered in a way the connector cannot use.
    Platform,
    /// The platform refused the shop's grant itself (refresh token expired or revoked, app
    /// de-authorized, app credentials refused): only an operator re-authorizing the shop can fix
    /// it. From `token_refreshed`, it stops the host refreshing and shows the shop as needing
    /// re-authorization; any other refresh error is taken as temporary and retried.
    Reauthorize,
    /// The plugin panicked; set by the export glue, never by connector code.
    Panic,
    /// Anything else.
    Internal,
}

/// An error returned by a connector call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ConnectorError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConnectorError { kind, message: message.into() }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    pub fn unsupported(what: &str) -> Self {
        Self::new(ErrorKind::Unsupported, format!("this connector does not support {what}"))
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    pub fn platform(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Platform, message)
    }
    /// The shop must be authorized again by an operator (see [`ErrorKind::Reauthorize`]).
    pub fn reauthorize(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Reauthorize, message)
    }
}

impl std::fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} error: {}", self.kind, self.message)
    }
}

impl std::error::Error for ConnectorError {}

/// A shop's configuration as the connector sees it: the shop id and the string values of its
/// table in the gateway's `shops.toml`, with persisted tokens merged in
/// (`access_token`, `refresh_token`, `token_expires_at`).
///
/// Its `Debug` output shows the keys only: values may be secrets.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopConfig {
    pub shop_id: String,
    pub values: BTreeMap<String, String>,
}

impl std::fmt::Debug for ShopConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopConfig").field("shop_id", &self.shop_id).field("keys", &self.values.keys()).finish()
    }
}

impl ShopConfig {
    /// A config with the given shop id and no values.
    pub fn new(shop_id: impl Into<String>) -> Self {
        ShopConfig { shop_id: shop_id.into(), values: BTreeMap::new() }
    }

    /// Adds a value (builder style, for tests and examples).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.values.insert(key.to_owned(), value.into());
        self
    }

    /// The value of `key`, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The value of `key`, or a configuration error naming it.
    pub fn require(&self, key: &str) -> Result<&str, ConnectorError> {
        self.get(key)
            .ok_or_else(|| ConnectorError::config(format!("shop `{}`: missing required key `{key}`", self.shop_id)))
    }

    /// The value of `key`, or `default`.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// An integer value of `key`, `None` when unset, an error when not an integer.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ConnectorError::config(format!("shop `{}`: key `{key}` must be an integer, got `{v}`", self.shop_id))
            }),
        }
    }
}
