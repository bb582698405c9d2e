//! `echo`: the smallest complete Huiliu connector, for a made-up platform.
//!
//! The "platform" pushes `{"id":"…","buyer":"…","text":"…"}` to the shop's hook, signed with
//! header `x-echo-sign: hex(HMAC-SHA256(app_secret, body))`, and accepts replies at
//! `POST {api_url}/send` with the same signature header. It answers
//! `{"ok":true,"id":"…"}` or `{"ok":false,"error":"…","retry":true|false}`.
//!
//! Everything a real connector does is here in miniature: verify before parsing, dead-letter
//! what verifies but does not parse, build signed requests from `now`, classify answers.

use huiliu_sdk::crypto::{hmac_sha256_hex, signature_eq, Case};
use huiliu_sdk::{
    header, Buyer, BuyerMessage, Capability, ConfigKey, ConnectionNeed, Connector, ConnectorError, Content, DeadLetter,
    EventKind, ExactId, HttpPush, HttpRequest, HttpResponse, InboundEvent, Manifest, Millis, OutgoingMessage,
    PlatformError, PushOutcome, RejectKind, SendOutcome, ShopConfig,
};
use serde::Deserialize;

/// One echo shop.
pub struct Echo {
    shop: String,
    secret: String,
    api_url: String,
}

#[derive(Deserialize)]
struct Push {
    /// Platforms send ids as JSON numbers or strings, often beyond 2^53: `ExactId` takes both.
    id: ExactId,
    buyer: String,
    text: String,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    error: String,
    #[serde(default)]
    retry: bool,
}

impl Connector for Echo {
    fn manifest() -> Manifest {
        Manifest {
            id: "echo".into(),
            platform: "echo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Example connector for a made-up platform (copy me)".into(),
            capabilities: vec![Capability::Push, Capability::Send],
            config_keys: vec![
                ConfigKey::required("app_secret", "Shared secret for the x-echo-sign HMAC").secret(),
                ConfigKey::optional("api_url", Some("http://127.0.0.1:9"), "Base URL of the echo platform API"),
            ],
        }
    }

    fn new(config: ShopConfig) -> Result<Self, ConnectorError> {
        Ok(Echo {
            secret: config.require("app_secret")?.to_owned(),
            api_url: config.get_or("api_url", "http://127.0.0.1:9").trim_end_matches('/').to_owned(),
            shop: config.shop_id,
        })
    }

    fn connections(&self) -> Vec<ConnectionNeed> {
        vec![ConnectionNeed::PushRoute]
    }

    fn decode_push(&mut self, push: &HttpPush, now: Millis) -> PushOutcome {
        let expected = hmac_sha256_hex(self.secret.as_bytes(), &[&push.body], Case::Lower);
        let given = header(&push.headers, "x-echo-sign").unwrap_or("");
        if !signature_eq(given, &expected) {
            return PushOutcome::Rejected {
                kind: RejectKind::BadSignature,
                reason: "x-echo-sign does not match the body".into(),
                response: HttpResponse::text(401, "bad signature"),
            };
        }
        let (events, dead_letters) = match serde_json::from_slice::<Push>(&push.body) {
            Ok(p) => (
                vec![InboundEvent {
                    platform: "echo".into(),
                    shop: self.shop.clone(),
                    event_id: p.id.into_string(),
                    buyer: Buyer { open_id: p.buyer, nick: None },
                    occurred_at: now,
                    kind: EventKind::BuyerMessage(BuyerMessage {
                        conversation: None,
                        content: vec![Content::text(p.text)],
                        vip: Default::default(),
                        reply_context: Default::default(),
                    }),
                }],
                vec![],
            ),
            Err(e) => (vec![], vec![DeadLetter { reason: e.to_string(), event_id: None, raw: push.body.clone() }]),
        };
        PushOutcome::Accepted {
            events,
            dead_letters,
            ack: HttpResponse::json(200, r#"{"ok":true}"#),
            // A 5xx, so the platform retries when the gateway could not store the push.
            nack: HttpResponse::json(503, r#"{"ok":false}"#),
            ignored: Vec::new(),
            lookups: Vec::new(),
        }
    }

    fn encode_send(&mut self, message: &OutgoingMessage, _now: Millis) -> Result<HttpRequest, ConnectorError> {
        if message.content.is_empty() {
            return Err(ConnectorError::invalid("nothing to send"));
        }
        let body = serde_json::json!({
            "client_msg_id": message.client_msg_id,
            "buyer": message.buyer.open_id,
            "text": huiliu_sdk::fallback_text(&message.content),
        })
        .to_string()
        .into_bytes();
        let sign = hmac_sha256_hex(self.secret.as_bytes(), &[&body], Case::Lower);
        Ok(HttpRequest {
            method: "POST".into(),
            url: format!("{}/send", self.api_url),
            headers: vec![("content-type".into(), "application/json".into()), ("x-echo-sign".into(), sign)],
            body,
        })
    }

    fn classify_send(&mut self, response: &HttpResponse, _now: Millis) -> SendOutcome {
        let error = |code: &str, message: String| PlatformError {
            http_status: response.status,
            code: code.into(),
            sub_code: None,
            message,
        };
        match serde_json::from_slice::<Answer>(&response.body) {
            Ok(a) if a.ok => SendOutcome::Delivered { platform_msg_id: a.id },
            Ok(a) if a.retry => SendOutcome::Retryable { error: error("retry", a.error) },
            Ok(a) => SendOutcome::Permanent { error: error("error", a.error) },
            Err(_) if response.status == 429 => {
                SendOutcome::RateLimited { error: error("429", "rate limited".into()), retry_after_ms: None }
            }
            Err(e) => SendOutcome::Retryable { error: error("unreadable", e.to_string()) },
        }
    }
}

huiliu_sdk::export_connector!(Echo);
