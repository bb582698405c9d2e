//! # huiliu-jd — the JD (京东) connector
//!
//! Receives buyer chat from the JOS message stream and replies through JOS API calls, as a
//! sans-IO [`Connector`]: the host performs every request this crate builds and feeds back
//! what it read.
//!
//! ## Public platform conventions (implemented exactly, PROTOCOLS.md §3.1–3.2)
//! - JOS call envelope and signing ([`api`], [`sign`]): system parameters in the query string,
//!   business parameters as the one form field `360buy_param_json`, MD5 (or HMAC-SHA256)
//!   signature over the sorted parameters, `yyyy-MM-dd HH:mm:ss.SSS+0800` timestamps.
//! - JOS error codes (`error_response`) and the `<method>_responce` success envelope.
//! - OAuth refresh at `open-oauth.jd.com/oauth2/refresh_token`.
//! - The message stream ([`stream`]): signed form connect, newline-separated packets with codes
//!   101–105 and 200–203, the 86,400 s connection limit.
//!
//! ## MODELED (JD does not publish its buyer-chat API; PROTOCOLS.md §3.3)
//! - Inbound chat: packet 202 whose business `type` is config `chat_type` (default `dd_chat`)
//!   and its fields (`msg_id`, `sid`, `customer_open_id`, `msg_type`, …).
//! - Outbound chat: the JOS method config `send_method` (default `jingdong.im.pop.message.send`)
//!   with `360buy_param_json` `{sid, customer_open_id, waiter, msg_type, content, client_msg_id}`
//!   and the success payload `{"code":"0","result":{"success":true,"msg_id":…}}`.
//! - Order and refund business messages: `type` = config `order_type_prefix` or
//!   `refund_type_prefix` followed by the stage (defaults `order_paid`, `refund_requested`, …)
//!   with `order_id`, `customer_open_id`, `amount` (yuan), `time`, `refund_id` (`trade.rs`).
//!
//! ## Deliberately not done
//! - Business types other than chat, order and refund are reported in the channel status as
//!   ignored, not guessed at.
//! - Transfer between staff accounts: JD publishes no transfer API; the capability is not declared.

#![forbid(unsafe_code)]

pub mod api;
mod chat;
mod classify;
pub mod config;
mod json;
mod outgoing;
pub mod sign;
pub mod stream;
mod token;
mod trade;

use huiliu_sdk::{
    Capability, ChannelData, ChannelOpen, ChannelOutcome, ConnectionNeed, Connector, ConnectorError, HttpRequest,
    HttpResponse, Manifest, Millis, OutgoingMessage, RejectKind, SendOutcome, ShopConfig, TokenGrant,
};

use crate::api::{JosCall, param_json};
use crate::chat::{ChatScope, PLATFORM};
use crate::config::Settings;
use crate::stream::{CHANNEL, StreamState};

/// The JD connector for one shop.
#[derive(Debug)]
pub struct JdConnector {
    settings: Settings,
    stream: StreamState,
}

impl Connector for JdConnector {
    fn manifest() -> Manifest {
        Manifest {
            id: PLATFORM.to_owned(),
            platform: PLATFORM.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "JD (京东): buyer chat from the JOS message stream, replies via JOS routerjson".to_owned(),
            capabilities: vec![Capability::Stream, Capability::Send, Capability::TokenRefresh],
            config_keys: config::config_keys(),
        }
    }

    fn new(config: ShopConfig) -> Result<Self, ConnectorError> {
        Ok(JdConnector { settings: Settings::from_config(&config)?, stream: StreamState::default() })
    }

    fn connections(&self) -> Vec<ConnectionNeed> {
        vec![ConnectionNeed::Stream { channel: CHANNEL.to_owned() }]
    }

    fn channel_open(&mut self, channel: &str, now: Millis) -> Result<ChannelOpen, ConnectorError> {
        if channel != CHANNEL {
            return Err(ConnectorError::invalid(format!(
                "unknown channel `{channel}` (this connector opens `{CHANNEL}`)"
            )));
        }
        self.stream.opened(now);
        let s = &self.settings;
        let request = stream::connect_request(&s.stream_url, &s.app_key, &s.app_secret, s.stream_user.as_deref(), now);
        Ok(ChannelOpen::Stream { request })
    }

    fn channel_data(&mut self, channel: &str, data: ChannelData, now: Millis) -> ChannelOutcome {
        if channel != CHANNEL {
            return rejected(format!("data on unknown channel `{channel}`"));
        }
        match data {
            ChannelData::Response(head) => self.stream.on_head(&head, now),
            ChannelData::Chunk(bytes) => {
                let scope = ChatScope {
                    shop_id: &self.settings.shop_id,
                    chat_type: &self.settings.chat_type,
                    order_prefix: &self.settings.order_type_prefix,
                    refund_prefix: &self.settings.refund_type_prefix,
                };
                self.stream.on_chunk(&bytes, scope, now)
            }
            ChannelData::Frame(_) => rejected("a WebSocket frame on the JD stream channel".to_owned()),
        }
    }

    fn channel_closed(&mut self, channel: &str, _now: Millis) {
        if channel == CHANNEL {
            self.stream.closed();
        }
    }

    fn encode_send(&mut self, message: &OutgoingMessage, now: Millis) -> Result<HttpRequest, ConnectorError> {
        let s = &self.settings;
        let Some(access_token) = s.access_token.as_deref() else {
            return Err(ConnectorError::config(format!(
                "shop `{}` has no access_token: authorize the shop (or set refresh_token to refresh one)",
                s.shop_id
            )));
        };
        let params = outgoing::send_params(message, s.waiter.as_deref())?;
        let param_json = param_json(&params);
        let call = JosCall {
            api_url: &s.api_url,
            app_key: &s.app_key,
            app_secret: &s.app_secret,
            access_token: Some(access_token),
            sign_method: s.sign_method,
            method: &s.send_method,
            param_json: &param_json,
        };
        Ok(call.request(now))
    }

    fn classify_send(&mut self, response: &HttpResponse, _now: Millis) -> SendOutcome {
        classify::classify_send(response, &self.settings.send_method)
    }

    fn token_refresh(&mut self, now: Millis, force: bool) -> Option<HttpRequest> {
        let s = &self.settings;
        let refresh_token = s.refresh_token.as_deref()?;
        let needed = force || s.access_token.is_none() || token::due(s.token_expires_at, now);
        needed.then(|| token::refresh_request(&s.oauth_url, &s.app_key, &s.app_secret, refresh_token))
    }

    fn token_refreshed(&mut self, response: &HttpResponse, now: Millis) -> Result<TokenGrant, ConnectorError> {
        let grant = token::parse_grant(response, now)?;
        let s = &mut self.settings;
        s.access_token = Some(grant.access_token.clone());
        s.token_expires_at = Some(grant.expires_at);
        if let Some(refresh) = &grant.refresh_token {
            s.refresh_token = Some(refresh.clone());
        }
        Ok(grant)
    }
}

/// An outcome that only reports a refused unit.
fn rejected(reason: String) -> ChannelOutcome {
    ChannelOutcome { rejected: vec![(RejectKind::Malformed, reason)], ..Default::default() }
}

huiliu_sdk::export_connector!(JdConnector);
