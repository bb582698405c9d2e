//! Shared setup of the in-process API tests: a gateway on a temp config with routing and users.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use huiliu_gateway::Gateway;
use huiliu_gateway::services::auth::hash_password;
use huiliu_sdk::*;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const ROUTING: &str = r#"
[routing]
fallback_group = "presales"
first_response_limit_s = 3600
[[group]]
id = "presales"
[[group]]
id = "aftersales"
[[agent]]
id = "a01"
name = "小美"
groups = { presales = 5 }
[[agent]]
id = "a02"
groups = { aftersales = 5 }
[[agent]]
id = "l1"
role = "lead"
groups = { presales = 3 }
max_sessions = 1
[[agent]]
id = "l2"
role = "lead"
groups = { aftersales = 3 }
max_sessions = 1
[[rule]]
name = "all"
[[rule.target]]
group = "presales"
"#;

pub const PASSWORD: &str = "correct horse";

pub struct World {
    pub _dir: tempfile::TempDir,
    pub gw: Arc<Gateway>,
    pub app: axum::Router,
}

impl World {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(format!("/api/v1{path}"));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Sends one buyer message through the one inbound flow (as an ingress does) and waits until
    /// routing placed its session. Returns (session, customer, message).
    pub async fn arrive(&self, event: InboundEvent, now: i64) -> (i64, i64, i64) {
        let event_id = event.event_id.clone();
        let ack = self.gw.flow.inbound(vec![event], vec![], "douyin", "dy-1", now).await;
        assert_eq!(ack, huiliu_gateway::flow::Ack::Durable);
        for _ in 0..500 {
            for session in self.gw.store.open_sessions().await.unwrap() {
                let messages = self.gw.store.session_messages(session.id).await.unwrap();
                if let Some(m) = messages.iter().find(|m| m.platform_msg_id.as_deref() == Some(event_id.as_str()))
                    && session.skill_group.is_some()
                {
                    return (session.id, session.customer_id, m.id);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("message {event_id} was not routed within 5 s");
    }

    pub async fn login(&self, user: &str) -> String {
        let (status, body) =
            self.call("POST", "/auth/login", None, Some(json!({"user": user, "password": PASSWORD}))).await;
        assert_eq!(status, StatusCode::OK, "{user}: {body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

pub async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::write(
        dir.path().join("huiliu.toml"),
        format!("[plugins]\ndir = \"{}\"\n[store]\nurl = \"sqlite://t.db\"\n", plugins.display()),
    )
    .unwrap();
    std::fs::write(dir.path().join("routing.toml"), ROUTING).unwrap();
    let hash = hash_password(PASSWORD);
    let mut users = String::new();
    for u in ["a01", "a02", "l1", "l2"] {
        users.push_str(&format!("[[user]]\nid = \"{u}\"\npassword_hash = \"{hash}\"\n"));
    }
    users.push_str(&format!("[[user]]\nid = \"boss\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n"));
    std::fs::write(dir.path().join("users.toml"), users).unwrap();
    let config = huiliu_gateway::config::load(dir.path()).unwrap_or_else(|e| panic!("{e:?}"));
    let gw = Gateway::start(config).await.unwrap();
    let app = gw.app();
    World { _dir: dir, gw, app }
}

pub fn buyer_message(id: &str, text: &str) -> InboundEvent {
    InboundEvent {
        platform: "douyin".into(),
        shop: "dy-1".into(),
        event_id: id.into(),
        buyer: Buyer { open_id: "buyer-1".into(), nick: Some("小鱼".into()) },
        occurred_at: huiliu_domain::now_millis(),
        kind: EventKind::BuyerMessage(BuyerMessage {
            conversation: Some("c1".into()),
            content: vec![Content::text(text)],
            vip: VipHint::default(),
            reply_context: Default::default(),
        }),
    }
}
