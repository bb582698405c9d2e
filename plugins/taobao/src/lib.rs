//! # huiliu-taobao — the Taobao/Tmall connector
//!
//! Receives buyer chat, trade and refund messages over TMC (the Taobao Message Channel, a
//! WebSocket of binary frames), and sends replies and transfers as signed TOP API calls. A
//! sans-IO state machine: the gateway owns the socket and HTTP client, this crate only turns
//! bytes into events and intents into signed requests, with time passed in as `now`.
//!
//! ## Public platform conventions (implemented exactly, PROTOCOLS.md §1.1–1.2)
//! - TOP request signing (`md5`, `hmac`, `hmac-sha256`), system parameters, Beijing-time
//!   timestamps, the form-encoded POST — [`sign`], `top`.
//! - TOP error bodies and their classes (codes 7/8/15/27, `isp.*`/`isv.*` sub-codes) — `top`.
//! - OAuth token refresh at `https://oauth.taobao.com/token` — `oauth`.
//! - The TMC binary frame codec and session (CONNECT signing, pull, confirm, failed) —
//!   [`tmc::codec`], `tmc`.
//! - The trade and refund topics (`taobao_trade_*`, `taobao_refund_*`) and their content.
//! - The transfer method `taobao.qianniu.cloudkefu.forward` and `cntaobao` nicks.
//!
//! ## MODELED (not published by Taobao; PROTOCOLS.md §1.3)
//! - The buyer-chat topic (config `chat_topic`, default `taobao_qianniu_BuyerMessage`) and its
//!   content fields.
//! - The send method (config `send_method`, default `taobao.qianniu.cloudkefu.message.send`),
//!   its business parameters and its `result.success`/`msg_id` answer.
//!
//! Both are per-shop configuration, so a shop with a granted API points them at the real
//! names without a code change. See README.md for the configuration table.

#![forbid(unsafe_code)]

mod inbound;
mod json;
mod oauth;
mod outbound;
mod settings;
pub mod sign;
pub mod tmc;
mod top;

use std::collections::BTreeMap;

use huiliu_sdk::{
    Capability, ChannelData, ChannelOpen, ChannelOutcome, ConnectionNeed, Connector, ConnectorError, Frame,
    HttpRequest, HttpResponse, Manifest, Millis, OutgoingMessage, RejectKind, SendOutcome, ShopConfig, TokenGrant,
    TransferRequest,
};

use crate::oauth::Tokens;
use crate::settings::Settings;

pub use crate::settings::{
    DEFAULT_API_URL, DEFAULT_CHAT_TOPIC, DEFAULT_OAUTH_TOKEN_URL, DEFAULT_SEND_METHOD, DEFAULT_TMC_GROUP,
    DEFAULT_TMC_URL, DEFAULT_TRANSFER_METHOD,
};

/// The connector for one Taobao shop.
#[derive(Debug)]
pub struct TaobaoConnector {
    settings: Settings,
    tokens: Tokens,
    tmc: tmc::Session,
}

impl TaobaoConnector {
    /// The TOP session, or a configuration error: every call this connector makes needs one.
    fn session(&self) -> Result<&str, ConnectorError> {
        self.tokens.access_token.as_deref().ok_or_else(|| {
            ConnectorError::config(format!(
                "shop `{}`: no access token (set key `access_token` or refresh one)",
                self.settings.shop_id
            ))
        })
    }

    fn top_call(
        &self,
        method: &str,
        business: BTreeMap<String, String>,
        now: Millis,
    ) -> Result<HttpRequest, ConnectorError> {
        Ok(top::request(&self.settings, method, self.session()?, business, now))
    }
}

impl Connector for TaobaoConnector {
    fn manifest() -> Manifest {
        Manifest {
            id: "taobao".into(),
            platform: inbound::PLATFORM.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Taobao/Tmall: TMC push (chat, trades, refunds), TOP replies and transfers".into(),
            capabilities: vec![Capability::WebSocket, Capability::Send, Capability::Transfer, Capability::TokenRefresh],
            config_keys: settings::config_keys(),
        }
    }

    fn new(config: ShopConfig) -> Result<Self, ConnectorError> {
        let settings = Settings::from_config(&config)?;
        let tokens = Tokens::from_config(&config)?;
        Ok(TaobaoConnector { settings, tokens, tmc: tmc::Session::default() })
    }

    fn connections(&self) -> Vec<ConnectionNeed> {
        vec![ConnectionNeed::WebSocket {
            channel: tmc::CHANNEL.to_owned(),
            tick_interval_ms: Some(tmc::TICK_INTERVAL_MS),
        }]
    }

    fn channel_open(&mut self, channel: &str, now: Millis) -> Result<ChannelOpen, ConnectorError> {
        if channel != tmc::CHANNEL {
            return Err(ConnectorError::invalid(format!("unknown channel `{channel}`; this connector has `tmc`")));
        }
        let connect = self.tmc.open(&self.settings, now);
        Ok(ChannelOpen::WebSocket { url: self.settings.tmc_url.clone(), headers: Vec::new(), frames: vec![connect] })
    }

    fn channel_data(&mut self, channel: &str, data: ChannelData, now: Millis) -> ChannelOutcome {
        if channel != tmc::CHANNEL {
            return ChannelOutcome {
                rejected: vec![(RejectKind::Malformed, format!("data for unknown channel `{channel}`"))],
                ..ChannelOutcome::default()
            };
        }
        self.tmc.on_data(&self.settings, data, now)
    }

    fn channel_tick(&mut self, channel: &str, _now: Millis) -> Vec<Frame> {
        if channel == tmc::CHANNEL { self.tmc.tick() } else { Vec::new() }
    }

    fn channel_closed(&mut self, channel: &str, _now: Millis) {
        if channel == tmc::CHANNEL {
            self.tmc.closed();
        }
    }

    fn encode_send(&mut self, message: &OutgoingMessage, now: Millis) -> Result<HttpRequest, ConnectorError> {
        let business = outbound::send_params(message, &self.settings)?;
        self.top_call(&self.settings.send_method, business, now)
    }

    fn classify_send(&mut self, response: &HttpResponse, _now: Millis) -> SendOutcome {
        top::classify(response, &self.settings.send_method)
    }

    fn encode_transfer(&mut self, transfer: &TransferRequest, now: Millis) -> Result<HttpRequest, ConnectorError> {
        let business = outbound::transfer_params(transfer)?;
        self.top_call(&self.settings.transfer_method, business, now)
    }

    fn classify_transfer(&mut self, response: &HttpResponse, _now: Millis) -> SendOutcome {
        top::classify(response, &self.settings.transfer_method)
    }

    fn token_refresh(&mut self, now: Millis, force: bool) -> Option<HttpRequest> {
        let refresh_token = self.tokens.refresh_token.as_deref()?;
        self.tokens.refresh_due(now, force).then(|| oauth::refresh_request(&self.settings, refresh_token))
    }

    fn token_refreshed(&mut self, response: &HttpResponse, now: Millis) -> Result<TokenGrant, ConnectorError> {
        let grant = oauth::parse_grant(response, now)?;
        self.tokens.apply(&grant);
        Ok(grant)
    }
}

huiliu_sdk::export_connector!(TaobaoConnector);
