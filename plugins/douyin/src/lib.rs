//! # huiliu-douyin — the Douyin Shop (抖店) connector
//!
//! A sans-IO [`Connector`] for one Douyin shop: it verifies and decodes the platform's signed
//! HTTP pushes, builds signed OpenAPI requests for replies and token refreshes, and classifies
//! the platform's answers. It reads no clock and opens no socket; the gateway does both.
//!
//! ## Public conventions and MODELED names
//!
//! Implemented exactly as Douyin publishes them (PROTOCOLS.md §2.1–2.2):
//! - OpenAPI signing (HMAC-SHA256 or MD5 over the canonical `param_json`): [`sign`],
//!   [`canonical`]; request layout and response envelope: [`openapi`]; error families:
//!   [`classify`];
//! - push verification (`app-id`, `event-sign`), the batch envelope, the address check and the
//!   success/failure answers: [`push`];
//! - order tags 100/101/103 and refund tags 200/201 ([`events`]; their `data` fields are a
//!   best-effort reading of Douyin's public message docs, listed there);
//! - token refresh (`token.refresh`, the one-hour window): [`token`].
//!
//! **MODELED** (Douyin grants buyer-chat APIs only to certified providers and does not publish
//! them; PROTOCOLS.md §2.3 defines a stand-in on the public envelope): the chat push tag
//! (config `chat_tag`, default `9001`) with its `data` fields ([`events`]), and the send method
//! (config `send_method`, default `im.sendMsg`) with its `param_json` ([`outgoing`]). Both names
//! are per-shop configuration so an operator with a granted API can point them at the real
//! ones without a code change.
//!
//! ## Robustness
//!
//! Nothing that comes from outside — push bodies, headers, responses, configuration — can make
//! the connector panic: ids are read without floats ([`json`]), a signed unit that cannot be
//! read becomes a [`huiliu_sdk::DeadLetter`], and a push that fails its checks is refused before
//! any parsing.

#![forbid(unsafe_code)]

pub mod canonical;
pub mod classify;
pub mod config;
pub mod events;
pub mod json;
pub mod openapi;
pub mod outgoing;
pub mod push;
pub mod sign;
pub mod token;

use huiliu_sdk::{
    Capability, ConnectionNeed, Connector, ConnectorError, HttpPush, HttpRequest, HttpResponse, Manifest, Millis,
    OutgoingMessage, PushOutcome, SendOutcome, ShopConfig, TokenGrant,
};

use crate::config::{Settings, Tokens};

/// The public OpenAPI method that reads one order (`shop_order_id` → `data.shop_order_detail`,
/// whose `doudian_open_id` is the buyer): order and refund pushes name no buyer.
pub const ORDER_DETAIL_METHOD: &str = "order.orderDetail";

/// The Douyin Shop connector for one shop.
#[derive(Debug)]
pub struct DouyinConnector {
    settings: Settings,
    tokens: Tokens,
}

impl Connector for DouyinConnector {
    fn manifest() -> Manifest {
        Manifest {
            id: events::PLATFORM.into(),
            platform: events::PLATFORM.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Douyin Shop (抖店): signed HTTP push, OpenAPI replies (modeled chat API), token refresh"
                .into(),
            capabilities: vec![Capability::Push, Capability::Send, Capability::TokenRefresh],
            config_keys: config::config_keys(),
        }
    }

    fn new(config: ShopConfig) -> Result<Self, ConnectorError> {
        let (settings, tokens) = config::load(&config)?;
        Ok(DouyinConnector { settings, tokens })
    }

    fn connections(&self) -> Vec<ConnectionNeed> {
        vec![ConnectionNeed::PushRoute]
    }

    fn decode_push(&mut self, push: &HttpPush, now: Millis) -> PushOutcome {
        let (settings, token) = (&self.settings, self.tokens.access_token.as_deref());
        let order_lookup = |order_id: &str| {
            let params = serde_json::json!({ "shop_order_id": order_id });
            token.map(|t| openapi::signed_request(settings, ORDER_DETAIL_METHOD, &params, Some(t), now))
        };
        push::decode_push(settings, push, now, &order_lookup)
    }

    fn complete_lookup(
        &mut self,
        context: &[u8],
        response: &HttpResponse,
        now: Millis,
    ) -> Result<huiliu_sdk::LookupOutcome, ConnectorError> {
        Ok(push::complete_lookup(&self.settings, context, response, now))
    }

    fn encode_send(&mut self, message: &OutgoingMessage, now: Millis) -> Result<HttpRequest, ConnectorError> {
        let token = self.tokens.access_token.as_deref().ok_or_else(|| {
            ConnectorError::config(format!(
                "shop `{}` has no access_token: configure one or a refresh_token",
                self.settings.shop_id
            ))
        })?;
        let params = outgoing::send_params(message)?;
        Ok(openapi::signed_request(&self.settings, &self.settings.send_method, &params, Some(token), now))
    }

    fn classify_send(&mut self, response: &HttpResponse, _now: Millis) -> SendOutcome {
        classify::classify_send(response)
    }

    fn token_refresh(&mut self, now: Millis, force: bool) -> Option<HttpRequest> {
        if !token::is_due(&self.tokens, now, force) {
            return None;
        }
        let params = token::refresh_params(self.tokens.refresh_token.as_deref()?);
        // The token calls are made without an access token: the refresh token authorizes them.
        Some(openapi::signed_request(&self.settings, token::REFRESH_METHOD, &params, None, now))
    }

    fn token_refreshed(&mut self, response: &HttpResponse, now: Millis) -> Result<TokenGrant, ConnectorError> {
        let grant = token::parse_grant(response, now)?;
        self.tokens.apply(&grant);
        Ok(grant)
    }
}

huiliu_sdk::export_connector!(DouyinConnector);
