//! The demo's scripted agents reply through the one reply door: their replies are stored as the
//! session's agent's and stop the first-response clock (the engine's and the store's), exactly
//! as a person's reply at the workbench does.

mod common;

use std::time::Duration;

use common::{buyer_message, world};
use huiliu_routing::{AgentStatus, SessionView};

#[tokio::test]
async fn scripted_replies_stop_the_first_response_clock() {
    let w = world().await;
    // l1 (not the workbench's a01, whose sessions the script leaves alone) serves presales.
    w.gw.flow.set_status("l1", AgentStatus::Online).await.unwrap();
    tokio::spawn(huiliu_gateway::demo::demo_agent(w.gw.clone()));
    let (s, _, _) = w.arrive(buyer_message("m1", "你好，这款有货吗"), 1).await;
    let routing = w.gw.flow.routing.clone().expect("routing on");
    match routing.session(s).await {
        Some(SessionView::Assigned { agent, responded, .. }) => {
            assert_eq!((agent.as_str(), responded), ("l1", false), "assigned, not yet answered");
        }
        other => panic!("session {s} not assigned: {other:?}"),
    }

    let mut answered = None;
    for _ in 0..100 {
        let engine = routing.session(s).await;
        let stored = w.gw.store.session(s).await.unwrap().unwrap();
        if let Some(SessionView::Assigned { responded: true, .. }) = engine
            && stored.first_response_at.is_some()
        {
            answered = Some(stored);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = answered.expect("the scripted reply stopped the engine's and the store's first-response clock");
    let messages = w.gw.store.session_messages(s).await.unwrap();
    let authors: Vec<Option<&str>> =
        messages.iter().filter(|m| m.client_msg_id.is_some()).map(|m| m.author.as_deref()).collect();
    assert!(authors.contains(&Some("l1")), "a reply written as the session's agent: {authors:?}");
    assert!(stored.first_response_at >= stored.assigned_at);
    let metrics = w.gw.metrics.render();
    assert!(metrics.contains("huiliu_first_response_seconds_count 1"), "{metrics}");
}
