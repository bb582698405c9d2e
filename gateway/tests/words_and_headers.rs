//! The workbench's words and the browser's rules, in process (`oneshot`, no socket):
//! a routing decision carries its reasons as codes with parameters, the directory gives the
//! display names and the zh-CN catalog they render with, and every answer — page, script,
//! API, refusal — carries the security headers.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{buyer_message, world};
use huiliu_routing::{Lang, Names, Reason};
use tower::ServiceExt;

#[tokio::test]
async fn decisions_carry_reason_codes_rendered_in_chinese_with_display_names() {
    let w = world().await;
    w.gw.flow.set_status("a01", huiliu_routing::AgentStatus::Online).await.unwrap();
    let (s, _, _) = w.arrive(buyer_message("m1", "这款有货吗"), 1).await;
    let token = w.login("a01").await;
    let (st, detail) = w.call("GET", &format!("/sessions/{s}"), Some(&token), None).await;
    assert_eq!(st, StatusCode::OK, "{detail}");
    let last = detail["decisions"].as_array().and_then(|d| d.last()).cloned().expect("a decision");
    // The English text stays, and the code beside it says the same thing as data.
    assert_eq!(last["why"], "the only agent with room", "{last}");
    assert_eq!(last["reasons"]["why"]["code"], "why.only_agent", "{last}");
    assert_eq!(last["reasons"]["category"]["code"], "category.default", "{last}");

    let (st, dir) = w.call("GET", "/directory", Some(&token), None).await;
    assert_eq!(st, StatusCode::OK, "{dir}");
    assert_eq!(dir["names"]["agents"]["a01"], "小美");
    assert_eq!(dir["names"]["platforms"]["douyin"], "抖音");
    assert_eq!(dir["reasons"]["why.only_agent"], "唯一有空位的客服");
    assert_eq!(dir["errors"]["not_your_session"], "这不是你接待的会话");
    // Every code a decision can carry has Chinese words in the catalog the page gets.
    for (code, _, _) in huiliu_routing::reason::CATALOG {
        assert!(dir["reasons"][code].as_str().is_some_and(|t| !t.is_empty()), "{code} missing");
    }
    let names: Names = serde_json::from_value(dir["names"].clone()).unwrap();
    let why: Reason = serde_json::from_value(last["reasons"]["why"].clone()).unwrap();
    assert_eq!(why.render(Lang::Zh, &names), "唯一有空位的客服");
    let cat: Reason = serde_json::from_value(last["reasons"]["category"].clone()).unwrap();
    assert_eq!(cat.render(Lang::Zh, &names), "未命中关键词或条件：默认分类");
}

async fn headers_of(w: &common::World, path: &str) -> (StatusCode, axum::http::HeaderMap) {
    let req = Request::builder().uri(path).body(Body::empty()).unwrap();
    let res = w.app.clone().oneshot(req).await.unwrap();
    (res.status(), res.headers().clone())
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let w = world().await;
    for (path, status) in [
        ("/", StatusCode::OK),
        ("/app.js", StatusCode::OK),
        ("/app.css", StatusCode::OK),
        ("/vendor/uPlot.iife.min.js", StatusCode::OK),
        ("/api/v1/openapi.json", StatusCode::OK),
        ("/api/v1/me", StatusCode::UNAUTHORIZED),
        ("/api/v1/no-such-thing", StatusCode::NOT_FOUND),
        ("/healthz", StatusCode::OK),
    ] {
        let (got, h) = headers_of(&w, path).await;
        assert_eq!(got, status, "{path}");
        let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        for wanted in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
            assert!(directives.contains(&wanted), "{path}: `{wanted}` missing from `{csp}`");
        }
        // No way around the policy: nothing inline, nothing evaluated, no other origin.
        for forbidden in ["'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"] {
            assert!(!csp.split([' ', ';']).any(|t| t == forbidden), "{path}: `{forbidden}` in `{csp}`");
        }
        assert_eq!(h.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{path}");
        assert_eq!(h.get("referrer-policy").map(|v| v.as_bytes()), Some(&b"no-referrer"[..]), "{path}");
        assert_eq!(h.get("x-frame-options").map(|v| v.as_bytes()), Some(&b"DENY"[..]), "{path}");
    }
    // The page itself has no inline script or handler for the policy to block.
    let req = Request::builder().uri("/").body(Body::empty()).unwrap();
    let body = http_body_util::BodyExt::collect(w.app.clone().oneshot(req).await.unwrap().into_body())
        .await
        .unwrap()
        .to_bytes();
    let html = String::from_utf8_lossy(&body);
    for script in html.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap_or_default();
        assert!(tag.contains("src="), "an inline script: <script{tag}>");
    }
    assert!(
        !html.contains(" onclick=") && !html.contains(" onload=") && !html.contains(" style="),
        "inline handler or style"
    );
}

#[tokio::test]
async fn the_dashboard_series_has_a_point_a_minute_per_group_the_lead_oversees() {
    let w = world().await;
    w.gw.flow.set_status("a01", huiliu_routing::AgentStatus::Online).await.unwrap();
    w.arrive(buyer_message("m1", "在吗"), huiliu_domain::now_millis()).await;
    // Two samples as the per-minute sampler takes them, then the series.
    let dashboard = w.gw.dashboard();
    let now = huiliu_domain::now_millis();
    dashboard.sample(now - 120_000).await.unwrap();
    dashboard.sample(now - 60_000).await.unwrap();
    let l1 = w.login("l1").await;
    let (st, series) = w.call("GET", "/dashboard/series?minutes=60", Some(&l1), None).await;
    assert_eq!(st, StatusCode::OK, "{series}");
    let groups = series["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "l1 leads presales only: {series}");
    assert_eq!(groups[0]["id"], "presales");
    let points = groups[0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 3, "two samples and the point now: {series}");
    let ats: Vec<i64> = points.iter().map(|p| p["at"].as_i64().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] < w[1]), "oldest first: {ats:?}");
    // The session was answered by nobody yet: a reply rate of 0 over the last 15 minutes.
    assert_eq!(points[2]["reply_rate"], 0.0, "{series}");
    assert_eq!(points[2]["queued"], 0);
    // A shorter window leaves the older samples out.
    let (_, short) = w.call("GET", "/dashboard/series?minutes=2", Some(&l1), None).await;
    assert_eq!(short["groups"][0]["points"].as_array().unwrap().len(), 2, "{short}");
    let (st, _) = w.call("GET", "/dashboard/series?minutes=0", Some(&l1), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
