//! Search and filters of the session list: by buyer nick, order number and phone tail (on the
//! masked text: the originals are never searched), with paging, within the caller's scope.

mod common;

use axum::http::StatusCode;
use common::{buyer_message, world};
use huiliu_sdk::Buyer;
use serde_json::Value;

fn ids(list: &Value) -> Vec<i64> {
    list["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn sessions_are_found_by_nick_order_number_and_phone_tail() {
    let w = world().await;
    w.gw.flow.set_status("a01", huiliu_routing::AgentStatus::Online).await.unwrap();
    let mut first = buyer_message("m1", "我的订单 2606180001 还没发货，电话 138 1234 5678");
    first.buyer = Buyer { open_id: "buyer-1".into(), nick: Some("小鱼儿".into()) };
    let (s1, _, m1) = w.arrive(first, 1).await;
    let mut second = buyer_message("m2", "这款有红色吗");
    second.buyer = Buyer { open_id: "buyer-2".into(), nick: Some("大熊".into()) };
    let (s2, _, _) = w.arrive(second, 2).await;
    let token = w.login("a01").await;
    let find = |q: &str| {
        let (token, q) = (token.clone(), q.to_owned());
        let w = &w;
        async move {
            let (st, body) = w.call("GET", &format!("/sessions?{q}"), Some(&token), None).await;
            assert_eq!(st, StatusCode::OK, "{q}: {body}");
            ids(&body)
        }
    };
    assert_eq!(find("limit=10").await, [s2, s1]);
    assert_eq!(find("nick=%E5%B0%8F%E9%B1%BC").await, [s1], "小鱼 finds 小鱼儿");
    assert_eq!(find("nick=%E7%86%8A").await, [s2], "熊 finds 大熊");
    assert_eq!(find("order=2606180001").await, [s1]);
    assert_eq!(find("order=99999").await, Vec::<i64>::new());
    // The phone is stored masked (138****5678): its tail finds it, its middle cannot.
    let stored = w.gw.store.session_messages(s1).await.unwrap();
    let text = &stored.iter().find(|m| m.id == m1).unwrap().text;
    assert!(text.contains("138****5678") && !text.contains("1234"), "{text}");
    assert_eq!(find("phone_tail=5678").await, [s1]);
    assert_eq!(find("phone_tail=1234").await, Vec::<i64>::new(), "the masked digits are not searchable");
    // Pattern characters are searched as text.
    assert_eq!(find("nick=%25").await, Vec::<i64>::new());
    assert_eq!(find("nick=_").await, Vec::<i64>::new());
    // Filters combine; paging.
    assert_eq!(find("platform=douyin&nick=%E5%B0%8F%E9%B1%BC").await, [s1]);
    assert_eq!(find("platform=jd&nick=%E5%B0%8F%E9%B1%BC").await, Vec::<i64>::new());
    assert_eq!(find("limit=1").await, [s2]);
    assert_eq!(find("limit=1&offset=1").await, [s1]);
    assert_eq!(find("limit=1&offset=2").await, Vec::<i64>::new());
    // Out of bounds: refused as the contract says.
    let (st, _) = w.call("GET", "/sessions?offset=-1", Some(&token), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = w.call("GET", &format!("/sessions?phone_tail={}", "1".repeat(12)), Some(&token), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Scope holds: another agent finds nothing of a01's.
    let a02 = w.login("a02").await;
    let (_, body) = w.call("GET", "/sessions?phone_tail=5678", Some(&a02), None).await;
    assert_eq!(ids(&body), Vec::<i64>::new());
}
