//! # huiliu-wechat-shop — the 微信小店 (WeChat Shop) connector
//!
//! A sans-IO [`Connector`] for one WeChat Shop on its **public** 自研客服 (self-built customer
//! service) API: buyer messages arrive as the `commkf_send_msg_to_kf` event on the shop's message
//! push, next to the order and after-sale events; replies go out through `commkf/sendmsg` with
//! `request_id` = the gateway's client message id; the access token comes from `stable_token`.
//! Unlike the other bundled connectors nothing in the chat path is modeled: the platform
//! publishes it (README.md lists the sources and the few field names that are still read on
//! trust).
//!
//! Modules: push verification and answers ([`push`]), the published crypto ([`crypto`]), the
//! events ([`events`]), replies and media upload ([`outgoing`]), error classes ([`classify`]),
//! the token ([`token`]), the shop table ([`config`]).

#![forbid(unsafe_code)]

pub mod classify;
pub mod config;
pub mod crypto;
pub mod events;
pub mod outgoing;
pub mod push;
pub mod token;

use huiliu_sdk::{
    Capability, ConnectionNeed, Connector, ConnectorError, HttpPush, HttpRequest, HttpResponse, Manifest, Millis,
    OutgoingMessage, PushOutcome, SendOutcome, ShopConfig, TokenGrant,
};

use crate::config::{Settings, Tokens};

/// The WeChat Shop connector for one shop. Its `Debug` shows no secret or token.
#[derive(Debug)]
pub struct WechatShopConnector {
    settings: Settings,
    tokens: Tokens,
}

impl Connector for WechatShopConnector {
    fn manifest() -> Manifest {
        Manifest {
            id: events::PLATFORM.into(),
            platform: events::PLATFORM.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "WeChat Shop (微信小店) 自研客服 API: signed/encrypted push, commkf sendmsg, stable token"
                .into(),
            capabilities: vec![Capability::Push, Capability::Send, Capability::TokenRefresh],
            config_keys: config::config_keys(),
        }
    }

    fn new(config: ShopConfig) -> Result<Self, ConnectorError> {
        let (settings, tokens) = config::load(&config)?;
        Ok(WechatShopConnector { settings, tokens })
    }

    fn connections(&self) -> Vec<ConnectionNeed> {
        vec![ConnectionNeed::PushRoute]
    }

    fn decode_push(&mut self, push: &HttpPush, now: Millis) -> PushOutcome {
        push::decode_push(&self.settings, push, now)
    }

    fn encode_send(&mut self, message: &OutgoingMessage, _now: Millis) -> Result<HttpRequest, ConnectorError> {
        let token = self.tokens.access_token.as_deref().ok_or_else(|| {
            ConnectorError::config(format!(
                "shop `{}` has no access token yet: configure `appsecret` so the gateway can fetch one",
                self.settings.shop_id
            ))
        })?;
        outgoing::send_request(&self.settings.api_url, token, message)
    }

    fn classify_send(&mut self, response: &HttpResponse, _now: Millis) -> SendOutcome {
        classify::classify_send(response)
    }

    fn prepare_send(&mut self, message: &OutgoingMessage, _now: Millis) -> huiliu_sdk::SendPrep {
        match outgoing::needs_upload(message) {
            Some((element, url)) => huiliu_sdk::SendPrep::Upload { element, url },
            None => huiliu_sdk::SendPrep::Ready,
        }
    }

    fn encode_upload(
        &mut self,
        message: &OutgoingMessage,
        element: u32,
        media: &[u8],
        _now: Millis,
    ) -> Result<HttpRequest, ConnectorError> {
        let token = self.tokens.access_token.as_deref().ok_or_else(|| {
            ConnectorError::config(format!("shop `{}` has no access token yet", self.settings.shop_id))
        })?;
        outgoing::upload_for(&self.settings.api_url, token, message, element, media)
    }

    fn uploaded(
        &mut self,
        message: &OutgoingMessage,
        element: u32,
        response: &HttpResponse,
        _now: Millis,
    ) -> huiliu_sdk::UploadOutcome {
        outgoing::uploaded(message, element, response)
    }

    fn token_refresh(&mut self, now: Millis, force: bool) -> Option<HttpRequest> {
        if !token::is_due(&self.tokens, now, force) {
            return None;
        }
        token::refresh_request(&self.settings, force)
    }

    fn token_refreshed(&mut self, response: &HttpResponse, now: Millis) -> Result<TokenGrant, ConnectorError> {
        let grant = token::parse_grant(response, now)?;
        self.tokens.access_token = Some(grant.access_token.clone());
        self.tokens.expires_at = Some(grant.expires_at);
        Ok(grant)
    }
}

huiliu_sdk::export_connector!(WechatShopConnector);
