//! The OpenAPI side (PROTOCOLS.md §2.1): request verification, `im.sendMsg` (modeled) and
//! `token.refresh`, answered with Douyin's envelope
//! `{"code","msg","sub_code","sub_msg","log_id","data"}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::push::id_value;
use super::sign::{self, SignMethod};
use super::{
    ACCESS_TOKEN_LIFE_MS, HOUR_MS, ORDER_DETAIL_METHOD, REFRESH_METHOD, REFRESH_TOKEN_LIFE_MS, SEND_METHOD, Shared,
    TIMESTAMP_TOLERANCE_S, lock,
};
use crate::{Faults, ReceivedSend};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A refusal: Douyin's code, msg, sub_code and sub_msg, and the reason for the journal.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: i64,
    msg: &'static str,
    sub_code: String,
    sub_msg: String,
    reason: String,
}

fn err(code: i64, sub_code: impl Into<String>, sub_msg: impl Into<String>, reason: impl Into<String>) -> ApiError {
    let msg = match code {
        20000 => "服务不可用",
        30001 => "无权限",
        40001 => "缺少必选参数",
        40003 => "非法的参数",
        50001 => "无效的授权",
        60000 => "调用频率超限",
        _ => "错误",
    };
    ApiError { code, msg, sub_code: sub_code.into(), sub_msg: sub_msg.into(), reason: reason.into() }
}

fn missing(name: &str) -> ApiError {
    err(40001, format!("isv.missing-parameter:{name}"), format!("缺少参数 {name}"), format!("missing parameter {name}"))
}

fn invalid(name: &str, why: impl Into<String>) -> ApiError {
    err(40003, format!("isv.parameter-invalid:{name}"), format!("参数 {name} 不合法"), why)
}

fn envelope(s: &Shared, code: i64, msg: &str, sub_code: &str, sub_msg: &str, data: &Value) -> String {
    let log_id = format!(
        "{}{:06X}",
        sign::beijing_timestamp(s.now_ms().div_euclid(1000)).replace(['-', ' ', ':'], ""),
        s.next_seq()
    );
    let q = |t: &str| serde_json::to_string(t).unwrap_or_default();
    format!(
        r#"{{"code":{code},"msg":{},"sub_code":{},"sub_msg":{},"log_id":{},"data":{}}}"#,
        q(msg),
        q(sub_code),
        q(sub_msg),
        q(&log_id),
        serde_json::to_string(data).unwrap_or_else(|_| "{}".into())
    )
}

async fn handle(State(s): State<Arc<Shared>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let delay = s.faults.slow_api_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let text = match process(&s, &method, &uri, &body) {
        Ok(data) => envelope(&s, 10000, "success", "", "", &data),
        Err(e) => {
            s.journal.reject(format!("douyin {}: {} {}: {}", uri.path(), e.code, e.sub_code, e.reason));
            envelope(&s, e.code, e.msg, &e.sub_code, &e.sub_msg, &json!({}))
        }
    };
    ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], text).into_response()
}

/// Verifies one call and runs it; `Ok` is the `data` of the success envelope.
fn process(s: &Shared, http_method: &Method, uri: &Uri, body: &[u8]) -> Result<Value, ApiError> {
    if s.faults.api_down.load(Ordering::SeqCst) {
        return Err(err(20000, "isp.service-unavailable", "服务暂不可用，请稍后重试", "api_down fault"));
    }
    let mut q: HashMap<String, String> = HashMap::new();
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if q.insert(k.to_string(), v.to_string()).is_some() {
            return Err(invalid(&k, format!("query parameter {k} given twice")));
        }
    }
    let get = |name: &str| -> Result<&str, ApiError> {
        q.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| missing(name))
    };
    let app_key = get("app_key")?;
    let method = get("method")?;
    let timestamp = get("timestamp")?;
    let v = get("v")?;
    let sign_given = get("sign")?;
    if app_key != s.cfg.app_key {
        return Err(err(40003, "isv.app-key-invalid", "app_key不存在", format!("unknown app_key {app_key:?}")));
    }
    if v != "2" {
        return Err(invalid("v", format!("v must be 2, got {v:?}")));
    }
    let from_path = uri.path().trim_start_matches('/').replace('/', ".");
    if method != from_path {
        return Err(invalid("method", format!("method {method:?} does not match path {:?}", uri.path())));
    }
    if http_method != Method::POST {
        return Err(invalid("http_method", format!("{http_method} instead of POST")));
    }
    // Douyin's historic default is md5 when sign_method is absent.
    let sign_method = match q.get("sign_method").map(String::as_str) {
        None | Some("") => SignMethod::Md5,
        Some(m) => SignMethod::parse(m).ok_or_else(|| invalid("sign_method", format!("unknown sign_method {m:?}")))?,
    };
    let ts = sign::parse_timestamp(timestamp).ok_or_else(|| {
        err(40003, "isv.timestamp-invalid", "时间戳格式不正确", format!("unreadable timestamp {timestamp:?}"))
    })?;
    let skew = ts - crate::now_ms().div_euclid(1000);
    if skew.abs() > TIMESTAMP_TOLERANCE_S {
        return Err(err(
            40003,
            "isv.timestamp-invalid",
            "时间戳已过期",
            format!("timestamp {timestamp:?} is {skew} s off (tolerance {TIMESTAMP_TOLERANCE_S} s)"),
        ));
    }
    let params = sign::check_canonical(body).map_err(|why| err(40003, "isv.signature-invalid", "签名校验失败", why))?;
    let param_json = std::str::from_utf8(body).unwrap_or_default();
    let expected = sign::openapi_sign(sign_method, &s.cfg.app_secret, app_key, method, param_json, timestamp);
    if sign_given != expected {
        return Err(err(
            40003,
            "isv.signature-invalid",
            "签名校验失败",
            format!("sign mismatch ({}): got {sign_given}, expected {expected}", sign_method.as_str()),
        ));
    }
    if method == REFRESH_METHOD {
        return refresh(s, &params);
    }
    check_token(s, q.get("access_token").map(String::as_str).unwrap_or(""))?;
    match method {
        SEND_METHOD => send(s, method, &params),
        ORDER_DETAIL_METHOD => order_detail(s, &params),
        other => Err(err(30001, "isv.permission-denied", "应用无权限调用该接口", format!("method {other} not served"))),
    }
}

fn check_token(s: &Shared, token: &str) -> Result<(), ApiError> {
    if token.is_empty() {
        return Err(err(50001, "isv.access-token-no-exist", "access_token不存在", "missing access_token"));
    }
    let now = s.now_ms();
    let t = lock(&s.tokens);
    let valid_until = if token == t.access {
        t.access_expires_at
    } else if let Some((_, until)) = t.retired.iter().find(|(old, _)| old == token) {
        *until
    } else {
        return Err(err(
            50001,
            "isv.access-token-invalid",
            "access_token不合法",
            format!("unknown access_token {token:?}"),
        ));
    };
    let expired = |why: String| err(40003, "isv.access-token-expired", "access_token已过期", why);
    if s.faults.token_expired.load(Ordering::SeqCst) {
        return Err(expired(format!("access_token {token:?} expired (token_expired fault)")));
    }
    if now >= valid_until {
        return Err(expired(format!("access_token {token:?} expired")));
    }
    Ok(())
}

fn str_param<'a>(p: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) => Ok(Some(v.as_str())),
        Some(other) => Err(invalid(name, format!("{name} must be a string, got {other}"))),
    }
}

fn required<'a>(p: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    str_param(p, name)?.filter(|v| !v.is_empty()).ok_or_else(|| missing(name))
}

/// `im.sendMsg` (modeled): `{"buyer_open_id","client_msg_id","content","conversation_id","msg_type"}`.
fn send(s: &Shared, method: &str, p: &Map<String, Value>) -> Result<Value, ApiError> {
    if Faults::take(&s.faults.rate_limit_sends) || Faults::nth(&s.faults.rate_limit_nth_send) {
        return Err(err(60000, "isv.traffic-limited", "调用频率超限，请稍后重试", "rate_limit_sends fault"));
    }
    let buyer = required(p, "buyer_open_id")?;
    let msg_type = required(p, "msg_type")?;
    let content = required(p, "content")?;
    let client_msg_id = required(p, "client_msg_id")?;
    let conversation = str_param(p, "conversation_id")?.filter(|c| !c.is_empty());
    if !matches!(msg_type, "text" | "image" | "product" | "order") {
        return Err(invalid("msg_type", format!("unknown msg_type {msg_type:?}")));
    }
    if let Some(c) = conversation
        && c != format!("conv-{buyer}")
    {
        return Err(invalid("conversation_id", format!("conversation {c:?} is not buyer {buyer:?}'s")));
    }
    let mut extra = BTreeMap::new();
    for (k, v) in p {
        if !matches!(k.as_str(), "buyer_open_id" | "msg_type" | "content" | "client_msg_id" | "conversation_id") {
            extra.insert(k.clone(), if let Value::String(t) = v { t.clone() } else { v.to_string() });
        }
    }
    let msg_id = lock(&s.sent_ids)
        .entry(client_msg_id.to_owned())
        .or_insert_with(|| (7_300_000_000_000_000_000u64 + s.next_seq()).to_string())
        .clone();
    s.journal.accept(ReceivedSend {
        method: method.to_owned(),
        buyer_id: buyer.to_owned(),
        msg_type: msg_type.to_owned(),
        content: content.to_owned(),
        client_msg_id: client_msg_id.to_owned(),
        conversation: conversation.map(str::to_owned),
        extra,
        at_ms: crate::now_ms(),
        duplicate: false,
    });
    Ok(json!({ "msg_id": msg_id }))
}

/// `order.orderDetail` with `{"shop_order_id"}` (public method; the response is reduced to the
/// fields the gateway reads: `shop_order_detail.order_id`, `doudian_open_id`, `order_status`).
/// An order the simulator never pushed answers 40004 `isv.business-failed` 订单不存在 (the
/// business-error family; the exact sub_code is modeled).
fn order_detail(s: &Shared, p: &Map<String, Value>) -> Result<Value, ApiError> {
    let order = required(p, "shop_order_id")?;
    s.order_lookups.fetch_add(1, Ordering::SeqCst);
    let Some(buyer) = lock(&s.orders).get(order).cloned() else {
        return Err(err(40004, "isv.business-failed", "订单不存在", format!("order {order} not found")));
    };
    Ok(json!({"shop_order_detail": {"order_id": order, "doudian_open_id": buyer, "order_status": 2}}))
}

/// `token.refresh` with `{"grant_type":"refresh_token","refresh_token":…}`.
fn refresh(s: &Shared, p: &Map<String, Value>) -> Result<Value, ApiError> {
    let grant = required(p, "grant_type")?;
    if grant != "refresh_token" {
        return Err(invalid("grant_type", format!("grant_type {grant:?} is not refresh_token")));
    }
    let given = required(p, "refresh_token")?;
    let now = s.now_ms();
    let mut t = lock(&s.tokens);
    if given != t.refresh {
        return Err(err(
            50001,
            "isv.refresh-token-invalid",
            "refresh_token不合法",
            format!("unknown refresh_token {given:?}"),
        ));
    }
    if now >= t.refresh_expires_at {
        return Err(err(50001, "isv.refresh-token-expired", "refresh_token已过期", "refresh_token expired"));
    }
    let expired = s.faults.token_expired.load(Ordering::SeqCst) || now >= t.access_expires_at;
    if expired || now >= t.access_expires_at - HOUR_MS {
        t.rotations += 1;
        let n = t.rotations;
        let old = std::mem::replace(&mut t.access, format!("{}-r{n}", s.cfg.access_token));
        t.retired.push((old, if expired { now } else { now + HOUR_MS }));
        t.refresh = format!("{}-r{n}", s.cfg.refresh_token);
        t.access_expires_at = now + ACCESS_TOKEN_LIFE_MS;
        t.refresh_expires_at = now + REFRESH_TOKEN_LIFE_MS;
        s.faults.token_expired.store(false, Ordering::SeqCst);
    }
    s.journal.refreshes.fetch_add(1, Ordering::SeqCst);
    Ok(json!({
        "access_token": t.access,
        "expires_in": (t.access_expires_at - now).div_euclid(1000),
        "refresh_token": t.refresh,
        "scope": "SCOPE",
        "shop_id": id_value(&s.cfg.platform_shop_id),
        "shop_name": format!("模拟店铺 {}", s.cfg.platform_shop_id),
        "authority_id": "",
    }))
}
