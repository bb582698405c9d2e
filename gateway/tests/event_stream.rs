//! `/api/v1/events` over a real socket: each user gets only their events, and a client that
//! drops and reconnects with `since` gets everything it missed, in order, nothing twice.

mod common;

use std::time::Duration;

use common::{buyer_message, world};
use futures_util::StreamExt;
use huiliu_gateway::flow::Ack;
use huiliu_routing::AgentStatus;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str, token: &str, since: Option<u64>) -> Ws {
    let since = since.map(|s| format!("&since={s}")).unwrap_or_default();
    let (ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events?token={token}{since}")).await.unwrap();
    ws
}

/// The next JSON frame, or None after `wait` of silence.
async fn next(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

async fn drain(ws: &mut Ws) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(v) = next(ws, Duration::from_millis(400)).await {
        out.push(v);
    }
    out
}

#[tokio::test]
async fn events_are_per_user_and_resume_misses_nothing() {
    let w = world().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(axum::serve(listener, w.app.clone()).into_future());
    w.gw.flow.set_status("a01", AgentStatus::Online).await.unwrap();
    let (a01, a02, l1) = (w.login("a01").await, w.login("a02").await, w.login("l1").await);

    // No token, a wrong token: refused before the upgrade.
    assert!(tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events")).await.is_err());
    assert!(tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events?token=nope")).await.is_err());

    let mut ws1 = connect(&addr, &a01, None).await;
    let mut ws2 = connect(&addr, &a02, None).await;
    let mut ws_lead = connect(&addr, &l1, None).await;
    let hello = next(&mut ws1, Duration::from_secs(5)).await.unwrap();
    assert_eq!((hello["type"].as_str(), hello["user"].as_str()), (Some("hello"), Some("a01")));

    // The one inbound flow stores the message and then routes it.
    let ack = w.gw.flow.inbound(vec![buyer_message("m1", "在吗")], vec![], "douyin", "dy-1", 1).await;
    assert_eq!(ack, Ack::Durable);
    let open = w.gw.store.open_sessions().await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    let s = open[0].id;
    let seen = drain(&mut ws1).await;
    let kinds: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"assigned"), "{seen:?}");
    assert!(seen.iter().all(|e| e["session_id"] == s), "{seen:?}");
    let last = seen.last().unwrap()["seq"].as_u64().unwrap();

    // The other agent hears nothing of it; the presales lead hears the assignment.
    let other: Vec<Value> = drain(&mut ws2).await.into_iter().filter(|e| e["type"] != "hello").collect();
    assert!(other.is_empty(), "a02 saw {other:?}");
    let lead = drain(&mut ws_lead).await;
    assert!(lead.iter().any(|e| e["type"] == "assigned" && e["agent"] == "a01"), "{lead:?}");

    // a01 drops; meanwhile a reply and two buyer messages happen.
    ws1.close(None).await.unwrap();
    drop(ws1);
    let (st, _) = w.call("POST", &format!("/sessions/{s}/reply"), Some(&a01), Some(json!({"text": "在的亲"}))).await;
    assert_eq!(st.as_u16(), 202);
    for id in ["m2", "m3"] {
        assert_eq!(w.gw.flow.inbound(vec![buyer_message(id, id)], vec![], "douyin", "dy-1", 2).await, Ack::Durable);
        let open: Vec<i64> = w.gw.store.open_sessions().await.unwrap().iter().map(|x| x.id).collect();
        assert_eq!(open, vec![s], "the buyer's next messages join the same session");
    }

    // Reconnect with resume: the missed events, in order, then live ones.
    let mut ws1 = connect(&addr, &a01, Some(last)).await;
    let missed = drain(&mut ws1).await;
    assert_eq!(missed[0]["type"], "hello");
    let missed = &missed[1..];
    let seqs: Vec<u64> = missed.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]) && seqs[0] > last, "in order, after {last}: {seqs:?}");
    let types: Vec<&str> = missed.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.iter().filter(|t| **t == "message_out").count(), 1, "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == "message_in").count(), 2, "{types:?}");
    assert_eq!(w.gw.flow.inbound(vec![buyer_message("m4", "m4")], vec![], "douyin", "dy-1", 3).await, Ack::Durable);
    let live = next(&mut ws1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(live["type"], "message_in");
    assert_eq!(live["seq"].as_u64().unwrap(), seqs.last().unwrap() + 1, "nothing twice, nothing skipped");

    // Resuming from before what the hub keeps asks the client to reload.
    for i in 0..huiliu_gateway::events::RING {
        w.gw.flow.events.send(huiliu_gateway::events::GatewayEvent::Alert {
            kind: "test".into(),
            session_id: None,
            detail: i.to_string(),
        });
    }
    let mut old = connect(&addr, &a01, Some(1)).await;
    let frames = drain(&mut old).await;
    assert_eq!(frames.get(1).map(|f| f["type"].clone()), Some(json!("resync")), "{:?}", frames.first());
    let metrics = w.gw.metrics.render();
    assert!(metrics.contains("huiliu_stream_clients "), "{metrics}");
}
