//! Accounts through the API: a user changes their password; an admin adds, disables, enables
//! and resets users (written to users.toml, audited, in force at once); users.toml and
//! quick_replies.toml reload live; the login limiter counts per client address as well as per id; an open event stream
//! closes with a reason when its token is revoked, expires or its user is disabled.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::{PASSWORD, World, world};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

fn users_toml(w: &World) -> String {
    std::fs::read_to_string(w._dir.path().join("users.toml")).unwrap()
}

async fn audit(w: &World, subject: &str) -> Vec<String> {
    let trail = w.gw.store.audit_trail(subject).await.unwrap();
    trail.into_iter().map(|(_, actor, action, _)| format!("{actor} {action}")).collect()
}

async fn login_as(w: &World, user: &str, password: &str) -> (StatusCode, Value) {
    w.call("POST", "/auth/login", None, Some(json!({"user": user, "password": password}))).await
}

#[tokio::test]
async fn a_user_changes_their_own_password() {
    let w = world().await;
    let token = w.login("a01").await;
    let before = users_toml(&w);
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (st, body) = w.call("POST", "/me/password", Some(&token), Some(change("wrong", "new secret 1"))).await;
    assert_eq!((st, body["code"].as_str()), (StatusCode::CONFLICT, Some("wrong_password")), "{body}");
    let (st, body) = w.call("POST", "/me/password", Some(&token), Some(change(PASSWORD, "short"))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(users_toml(&w), before, "refusals write nothing");

    let (st, body) = w.call("POST", "/me/password", Some(&token), Some(change(PASSWORD, "new secret 1"))).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(login_as(&w, "a01", PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login_as(&w, "a01", "new secret 1").await.0, StatusCode::OK);
    // The caller's token still works; only a01's block of the file changed.
    assert_eq!(w.call("GET", "/me", Some(&token), None).await.0, StatusCode::OK);
    let after = users_toml(&w);
    let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "one line changed: {changed:?}");
    assert!(changed[0].1.starts_with("password_hash = \"$argon2id$"), "{changed:?}");
    assert_eq!(audit(&w, "user:a01").await, ["a01 password_changed"]);
    // The operator token is nobody's account.
    let (st, _) = w.call("POST", "/me/password", None, Some(change("x", "new secret 2"))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_adds_disables_enables_and_resets_users() {
    let w = world().await;
    let boss = w.login("boss").await;
    let new = json!({"id": "a09", "password": "first password", "name": "小新", "role": "agent"});
    let (st, row) = w.call("POST", "/users", Some(&boss), Some(new.clone())).await;
    assert_eq!(st, StatusCode::CREATED, "{row}");
    assert_eq!((row["id"].as_str(), row["disabled"].as_bool()), (Some("a09"), Some(false)));
    assert!(row.get("password_hash").is_none(), "{row}");
    let (st, body) = w.call("POST", "/users", Some(&boss), Some(new)).await;
    assert_eq!((st, body["code"].as_str()), (StatusCode::CONFLICT, Some("user_exists")));
    // Optional fields may be left out but not sent as null, and the contract says so
    // (schemathesis found `role: null` described as valid and refused).
    for field in ["name", "role"] {
        let mut body = json!({"id": "a11", "password": "long enough"});
        body[field] = Value::Null;
        assert_eq!(w.call("POST", "/users", Some(&boss), Some(body)).await.0, StatusCode::BAD_REQUEST, "{field}: null");
    }
    let (_, doc) = w.call("GET", "/openapi.json", None, None).await;
    let props = &doc["components"]["schemas"]["NewUserBody"]["properties"];
    assert_eq!(props["name"]["type"], "string", "not [string, null]: {props}");
    assert!(props["role"]["$ref"].is_string() && props["role"].get("oneOf").is_none(), "not nullable: {props}");
    assert!(doc["components"]["schemas"]["UserAction"].is_object(), "the path parameter's enum is in the document");
    assert!(users_toml(&w).contains("id = \"a09\"\npassword_hash = \"$argon2id$"), "{}", users_toml(&w));
    let (st, a09) = login_as(&w, "a09", "first password").await;
    assert_eq!(st, StatusCode::OK, "{a09}");
    let a09 = a09["token"].as_str().unwrap().to_owned();
    let (_, list) = w.call("GET", "/users", Some(&boss), None).await;
    assert!(list["users"].as_array().unwrap().iter().any(|u| u["id"] == "a09"), "{list}");

    // Disabled: the token stops at once, logins fail like a wrong password.
    let (st, row) = w.call("POST", "/users/a09/disable", Some(&boss), None).await;
    assert_eq!((st, row["disabled"].as_bool()), (StatusCode::OK, Some(true)), "{row}");
    assert_eq!(w.call("GET", "/me", Some(&a09), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login_as(&w, "a09", "first password").await.0, StatusCode::UNAUTHORIZED);
    assert!(users_toml(&w).contains("disabled = true"));
    let (st, body) = w.call("POST", "/users/boss/disable", Some(&boss), None).await;
    assert_eq!((st, body["code"].as_str()), (StatusCode::CONFLICT, Some("not_allowed")));
    let (st, _) = w.call("POST", "/users/nobody/disable", Some(&boss), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Enabled again, then reset: the old password and the old tokens stop.
    assert_eq!(w.call("POST", "/users/a09/enable", Some(&boss), None).await.0, StatusCode::OK);
    let (_, again) = login_as(&w, "a09", "first password").await;
    let again = again["token"].as_str().unwrap().to_owned();
    let reset = json!({"password": "given by admin"});
    assert_eq!(w.call("POST", "/users/a09/password", Some(&boss), Some(reset)).await.0, StatusCode::OK);
    assert_eq!(w.call("GET", "/me", Some(&again), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login_as(&w, "a09", "first password").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login_as(&w, "a09", "given by admin").await.0, StatusCode::OK);
    assert_eq!(
        audit(&w, "user:a09").await,
        ["boss user_added", "boss user_disabled", "boss user_enabled", "boss password_reset"]
    );
    // The file is still a good users.toml for the next start.
    let text = users_toml(&w);
    let users = huiliu_gateway::services::auth::parse_users(&text, "users.toml").unwrap();
    assert_eq!(users.len(), 6);
}

#[tokio::test]
async fn users_toml_reloads_live() {
    let w = world().await;
    let path = w._dir.path().join("users.toml");
    let hash = huiliu_gateway::services::auth::hash_password("from the file");
    let mut text = users_toml(&w);
    text.push_str(&format!("[[user]]\nid = \"a10\"\npassword_hash = \"{hash}\"\n"));
    std::fs::write(&path, &text).unwrap();
    assert_eq!(login_as(&w, "a10", "from the file").await.0, StatusCode::UNAUTHORIZED, "not before the reload");
    let (st, body) = w.call("POST", "/config/reload", Some(&w.login("boss").await), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("users.toml"), "{body}");
    assert_eq!(login_as(&w, "a10", "from the file").await.0, StatusCode::OK);
    // A broken file keeps the users in force.
    std::fs::write(&path, "[[user]]\nid = \"a10\"\npassword_hash = \"plain\"\n").unwrap();
    let (st, body) = w.call("POST", "/config/reload", Some(&w.login("boss").await), None).await;
    assert_ne!(st, StatusCode::OK, "{body}");
    assert_eq!(login_as(&w, "a01", PASSWORD).await.0, StatusCode::OK);
}

#[tokio::test]
async fn quick_replies_reload_live() {
    let w = world().await;
    let token = w.login("a01").await;
    let ids = |v: &Value| -> Vec<String> {
        v["replies"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
    };
    let (_, before) = w.call("GET", "/quick-replies", Some(&token), None).await;
    assert!(ids(&before).contains(&"greet".to_owned()), "the built-in templates: {before}");
    let path = w._dir.path().join("quick_replies.toml");
    std::fs::write(&path, "[[reply]]\nid = \"sorry\"\ntitle = \"致歉\"\ntext = \"{buyer}，抱歉让您久等了\"\n").unwrap();
    let boss = w.login("boss").await;
    let (st, body) = w.call("POST", "/config/reload", Some(&boss), None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("quick_replies.toml"), "{body}");
    let (_, after) = w.call("GET", "/quick-replies", Some(&token), None).await;
    assert_eq!(ids(&after), ["sorry"]);
    // A broken file keeps them.
    std::fs::write(&path, "[[reply]]\nid = \"x\"\n").unwrap();
    assert_ne!(w.call("POST", "/config/reload", Some(&boss), None).await.0, StatusCode::OK);
    assert_eq!(ids(&w.call("GET", "/quick-replies", Some(&token), None).await.1), ["sorry"]);
}

async fn login_from(w: &World, addr: SocketAddr, user: &str, password: &str) -> StatusCode {
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/auth/login")
        .header("content-type", "application/json")
        .extension(ConnectInfo(addr))
        .body(Body::from(json!({"user": user, "password": password}).to_string()))
        .unwrap();
    let res = w.app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let _ = res.into_body().collect().await;
    status
}

#[tokio::test]
async fn the_login_limiter_counts_per_address_too() {
    let w = world().await;
    let spray: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let office: SocketAddr = "198.51.100.2:40000".parse().unwrap();
    // 20 failures from one address, spread over ids so that no id reaches its own limit (5).
    let ids = ["a01", "a02", "l1", "l2", "x1"];
    for i in 0..20 {
        assert_eq!(login_from(&w, spray, ids[i % 5], "guess").await, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // The address is locked, whatever id and password it brings...
    assert_eq!(login_from(&w, spray, "a01", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_from(&w, spray, "boss", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    // ...while the same ids log in from another address.
    assert_eq!(login_from(&w, office, "a01", PASSWORD).await, StatusCode::OK);
    assert_eq!(login_from(&w, office, "boss", PASSWORD).await, StatusCode::OK);
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn stream(addr: &str, token: &str) -> Ws {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events?token={token}")).await.unwrap();
    let hello = next_text(&mut ws).await.expect("hello");
    assert_eq!(hello["type"], "hello");
    ws
}

async fn next_text(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The stream's last words: its `closed` frame, then the close (nothing else after).
async fn closed_reason(ws: &mut Ws) -> String {
    loop {
        let frame = next_text(ws).await.expect("a `closed` frame before the socket closes");
        if frame["type"] == "closed" {
            assert!(next_text(ws).await.is_none(), "the socket closes after the reason");
            return frame["reason"].as_str().unwrap().to_owned();
        }
    }
}

#[tokio::test]
async fn an_open_stream_closes_with_a_reason_when_its_token_stops_working() {
    let w = world().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(axum::serve(listener, w.app.clone()).into_future());
    let boss = w.login("boss").await;

    // Logout (revocation) closes that stream only.
    let (a01, other) = (w.login("a01").await, w.login("a01").await);
    let (mut ws, mut ws_other) = (stream(&addr, &a01).await, stream(&addr, &other).await);
    assert_eq!(w.call("POST", "/auth/logout", Some(&a01), None).await.0, StatusCode::OK);
    assert_eq!(closed_reason(&mut ws).await, "revoked");
    // The other one is still open: it answers a ping.
    use futures_util::SinkExt;
    ws_other.send(Message::Ping(vec![1].into())).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), ws_other.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(pong, Message::Pong(_)), "{pong:?}");

    // Disabling the user closes their streams.
    assert_eq!(w.call("POST", "/users/a01/disable", Some(&boss), None).await.0, StatusCode::OK);
    assert_eq!(closed_reason(&mut ws_other).await, "user_disabled");

    // A token that expires while its stream is open.
    let token = "short-lived-token-for-the-test";
    let now = huiliu_domain::now_millis();
    let hash = huiliu_gateway::services::auth::token_hash(token);
    w.gw.store.save_api_token(&hash, "a02", now, now + 1_500).await.unwrap();
    let mut ws = stream(&addr, token).await;
    assert_eq!(closed_reason(&mut ws).await, "expired");

    // A password reset by an admin.
    let l1 = w.login("l1").await;
    let mut ws = stream(&addr, &l1).await;
    let reset = json!({"password": "given by admin"});
    assert_eq!(w.call("POST", "/users/l1/password", Some(&boss), Some(reset)).await.0, StatusCode::OK);
    assert_eq!(closed_reason(&mut ws).await, "revoked");
}
