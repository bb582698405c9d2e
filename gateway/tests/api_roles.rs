//! Authorization of every `/api/v1` endpoint for every role, in process (`oneshot`, no socket).
//!
//! The cast: `a01` (agent, presales) owns session S; `a02` (agent, aftersales) does not; `l1`
//! leads presales (S's group); `l2` leads aftersales; `boss` is an admin; `anon` has no token.
//! The table says who may call each endpoint; the test checks that everyone else gets 401
//! (anonymous) or 403 (signed in), and that those allowed get neither. A second check makes the
//! table cover every operation of the OpenAPI document, so a new endpoint cannot go untested.

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::{PASSWORD, buyer_message, world};
use serde_json::{Value, json};

/// Who may call an endpoint.
#[derive(Clone, Copy, Debug)]
enum May {
    Anyone,
    /// Any signed-in user.
    All,
    /// S's agent, S's lead, admins.
    Owner,
    /// Leads and admins.
    Lead,
    /// S's lead and admins.
    OwnerLead,
    Admin,
}

impl May {
    fn allows(self, who: &str) -> bool {
        match self {
            May::Anyone => true,
            May::All => who != "anon",
            May::Owner => matches!(who, "a01" | "l1" | "boss"),
            May::Lead => matches!(who, "l1" | "l2" | "boss"),
            May::OwnerLead => matches!(who, "l1" | "boss"),
            May::Admin => who == "boss",
        }
    }
}

#[tokio::test]
async fn every_endpoint_enforces_its_roles() {
    let w = world().await;
    w.gw.flow.set_status("a01", huiliu_routing::AgentStatus::Online).await.unwrap();
    let (s, c, m) = w.arrive(buyer_message("m1", "你好"), 1).await;
    assert_eq!(w.gw.store.session(s).await.unwrap().unwrap().agent.as_deref(), Some("a01"));

    let mut tokens = std::collections::BTreeMap::new();
    for u in ["a01", "a02", "l1", "l2", "boss"] {
        tokens.insert(u, w.login(u).await);
    }
    // A reply to S, so that there is an outbox row; a blacklist proposal to decide on.
    let (st, reply) =
        w.call("POST", &format!("/sessions/{s}/reply"), Some(&tokens["a01"]), Some(json!({"text": "在的"}))).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply["compliance"]["action"], "allow");
    let o = reply["outbox_id"].as_i64().unwrap();
    let (_, list) = w.call("GET", "/sessions?open=true", Some(&tokens["a01"]), None).await;
    assert_eq!(list["sessions"][0]["unread"], 0, "the agent's reply answered the buyer: {list}");
    assert_eq!(list["sessions"][0]["waiting_ms"], Value::Null);
    let proposal = json!({"platform": "douyin", "buyer_id": "buyer-9", "level": "flag", "reason": "测试", "evidence": [m.to_string()]});
    let (st, entry) = w.call("POST", "/blacklist", Some(&tokens["a01"]), Some(proposal.clone())).await;
    assert_eq!(st, StatusCode::CREATED, "{entry}");
    let b = entry["id"].as_i64().unwrap();

    // (method, documented path, concrete path, body, who may)
    let table: Vec<(&str, &str, String, Option<Value>, May)> = vec![
        ("get", "/openapi.json", "/openapi.json".into(), None, May::Anyone),
        ("get", "/me", "/me".into(), None, May::All),
        ("get", "/events", "/events".into(), None, May::All),
        ("get", "/status", "/status".into(), None, May::Lead),
        ("get", "/dashboard", "/dashboard".into(), None, May::Lead),
        ("get", "/dashboard/series", "/dashboard/series?minutes=60".into(), None, May::Lead),
        ("get", "/agents", "/agents".into(), None, May::All),
        ("post", "/agents/{agent}/status", "/agents/a01/status".into(), Some(json!({"status": "online"})), May::Owner),
        ("get", "/sessions", "/sessions".into(), None, May::All),
        ("get", "/sessions/{id}", format!("/sessions/{s}"), None, May::Owner),
        ("get", "/sessions/{id}/messages", format!("/sessions/{s}/messages"), None, May::Owner),
        ("post", "/sessions/{id}/reply", format!("/sessions/{s}/reply"), Some(json!({"text": "好的"})), May::Owner),
        ("get", "/sessions/{id}/quick-replies", format!("/sessions/{s}/quick-replies"), None, May::Owner),
        ("get", "/sessions/{id}/suggestions", format!("/sessions/{s}/suggestions"), None, May::Owner),
        // Both targets: refused as a bad request after the permission check, so S stays put.
        (
            "post",
            "/sessions/{id}/transfer",
            format!("/sessions/{s}/transfer"),
            Some(json!({"to_agent": "a02", "to_group": "aftersales", "problem": "x"})),
            May::Owner,
        ),
        ("get", "/sessions/{id}/explain", format!("/sessions/{s}/explain"), None, May::Owner),
        ("get", "/quick-replies", "/quick-replies".into(), None, May::All),
        ("get", "/directory", "/directory".into(), None, May::All),
        (
            "post",
            "/me/password",
            "/me/password".into(),
            Some(json!({"current_password": "not it", "new_password": "long enough"})),
            May::All,
        ),
        ("get", "/users", "/users".into(), None, May::Admin),
        // An id that is taken: refused (409) after the permission check, nothing written.
        ("post", "/users", "/users".into(), Some(json!({"id": "a01", "password": "long enough"})), May::Admin),
        ("post", "/users/{id}/{action}", "/users/nobody/enable".into(), None, May::Admin),
        (
            "post",
            "/users/{id}/password",
            "/users/nobody/password".into(),
            Some(json!({"password": "long enough"})),
            May::Admin,
        ),
        ("get", "/customers/{id}/history", format!("/customers/{c}/history"), None, May::Owner),
        (
            "put",
            "/customers/{id}/profile",
            format!("/customers/{c}/profile"),
            Some(json!({"tags": ["回头客"], "notes": "喜欢蓝色"})),
            May::Owner,
        ),
        ("post", "/outbox/{id}/retry", format!("/outbox/{o}/retry"), None, May::Owner),
        ("get", "/blacklist", "/blacklist".into(), None, May::Lead),
        ("post", "/blacklist", "/blacklist".into(), Some(proposal.clone()), May::All),
        ("post", "/blacklist/reload", "/blacklist/reload".into(), None, May::Admin),
        ("post", "/blacklist/{id}/{action}", format!("/blacklist/{b}/approve"), Some(json!({"note": "ok"})), May::Lead),
        (
            "post",
            "/messages/{id}/reveal",
            format!("/messages/{m}/reveal"),
            Some(json!({"reason": "核对地址"})),
            May::OwnerLead,
        ),
        ("get", "/audit", "/audit?subject=message:1".into(), None, May::Lead),
        ("get", "/routing", "/routing".into(), None, May::Lead),
        ("get", "/knowledge/figures", "/knowledge/figures".into(), None, May::Lead),
        ("get", "/knowledge/entries", "/knowledge/entries".into(), None, May::Lead),
        // Added by each lead and admin (a new entry each: ids are given by the server).
        (
            "post",
            "/knowledge/entries",
            "/knowledge/entries".into(),
            Some(json!({"question": "可以开发票吗", "answer": "{buyer}您好，可以开电子发票"})),
            May::Lead,
        ),
        // An entry that does not exist: refused (404) after the permission check.
        (
            "put",
            "/knowledge/entries/{id}",
            "/knowledge/entries/nobody".into(),
            Some(json!({"question": "包邮吗", "answer": "包邮"})),
            May::Lead,
        ),
        ("delete", "/knowledge/entries/{id}", "/knowledge/entries/nobody".into(), None, May::Lead),
        ("post", "/config/reload", "/config/reload".into(), None, May::Admin),
        (
            "post",
            "/buyers/export",
            "/buyers/export".into(),
            Some(json!({"platform": "douyin", "shop": "dy-1", "buyer_id": "nobody", "reason": "工单 1"})),
            May::Admin,
        ),
        (
            "post",
            "/buyers/erase",
            "/buyers/erase".into(),
            Some(json!({"platform": "douyin", "shop": "dy-1", "buyer_id": "nobody", "reason": "工单 2"})),
            May::Admin,
        ),
        ("post", "/sessions/{id}/close", format!("/sessions/{s}/close"), None, May::Owner),
    ];

    let mut failures = Vec::new();
    for (method, _, path, body, may) in &table {
        for who in ["anon", "a01", "a02", "l1", "l2", "boss"] {
            let token = tokens.get(who).map(String::as_str);
            let (status, out) = w.call(&method.to_uppercase(), path, token, body.clone()).await;
            let denied = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            let ok = if may.allows(who) {
                !denied && !status.is_server_error()
            } else if who == "anon" {
                status == StatusCode::UNAUTHORIZED
            } else {
                status == StatusCode::FORBIDDEN && out["code"].is_string()
            };
            if !ok {
                failures.push(format!("{method} {path} as {who}: {status} {out}"));
            }
        }
    }
    assert!(failures.is_empty(), "authorization table broken:\n{}", failures.join("\n"));

    // The table covers the whole documented API (logout and login are checked below).
    let doc: Value = serde_json::from_str(&w.call("GET", "/openapi.json", None, None).await.1.to_string()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let mut tested: BTreeSet<(String, String)> =
        table.iter().map(|(m, p, ..)| (m.to_string(), p.to_string())).collect();
    tested.insert(("post".into(), "/auth/login".into()));
    tested.insert(("post".into(), "/auth/logout".into()));
    assert_eq!(tested, documented, "every documented operation is in the table");

    // Logout ends that token only.
    let extra = w.login("a02").await;
    assert_eq!(w.call("POST", "/auth/logout", None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(w.call("POST", "/auth/logout", Some(&extra), None).await.0, StatusCode::OK);
    assert_eq!(w.call("GET", "/me", Some(&extra), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(w.call("GET", "/me", Some(&tokens["a02"]), None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn lists_are_scoped_and_logins_are_limited() {
    let w = world().await;
    w.gw.flow.set_status("a01", huiliu_routing::AgentStatus::Online).await.unwrap();
    let (s, _, _) = w.arrive(buyer_message("m1", "在吗"), 1).await;

    for (who, expected) in [("a01", 1), ("a02", 0), ("l1", 1), ("l2", 0), ("boss", 1)] {
        let token = w.login(who).await;
        let (_, list) = w.call("GET", "/sessions?open=true", Some(&token), None).await;
        let n = list["sessions"].as_array().unwrap().len();
        assert_eq!(n, expected, "{who} sees {list}");
        let (_, agents) = w.call("GET", "/agents", Some(&token), None).await;
        let ids: Vec<&str> = agents["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
        let want: &[&str] = match who {
            "a01" => &["a01"],
            "a02" => &["a02"],
            "l1" => &["a01", "l1"],
            "l2" => &["a02", "l2"],
            _ => &["a01", "a02", "l1", "l2"],
        };
        assert_eq!(ids, want, "{who}'s agents");
    }
    let token = w.login("a01").await;
    let (_, list) = w.call("GET", "/sessions?open=true", Some(&token), None).await;
    let row = &list["sessions"][0];
    assert_eq!(row["customer"]["nick"], "小鱼");
    // The routing welcome is the last message, but it answers nothing: the buyer still waits.
    assert_eq!(row["last_message"]["text"], "您好，我是小美，很高兴为您服务～");
    assert_eq!(row["unread"], 1);
    assert!(row["waiting_ms"].as_i64().is_some(), "{row}");
    let (_, quick) = w.call("GET", &format!("/sessions/{s}/quick-replies"), Some(&token), None).await;
    let greet = quick["replies"].as_array().unwrap().iter().find(|r| r["id"] == "greet").unwrap();
    assert_eq!(greet["text"], "亲爱的小鱼您好，我是小美，很高兴为您服务，请问有什么可以帮您？");

    // Wrong passwords: 401 without saying which part was wrong, then 429 once locked.
    for _ in 0..5 {
        let (st, body) = w.call("POST", "/auth/login", None, Some(json!({"user": "a02", "password": "nope"}))).await;
        assert_eq!((st, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("bad_credentials")));
    }
    let (st, body) = w.call("POST", "/auth/login", None, Some(json!({"user": "a02", "password": PASSWORD}))).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "too_many_attempts");
    // Another id is not affected.
    w.login("l2").await;
    let metrics = w.gw.metrics.render();
    assert!(metrics.contains("huiliu_logins_total{result=\"locked\"} 1"), "{metrics}");
}
