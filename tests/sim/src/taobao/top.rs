//! The TOP router (`/router/rest`) and the OAuth token endpoint (`/oauth/token`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value as Json, json};

use super::sign::{self, SignMethod};
use super::{FORWARD_METHOD, SEND_METHOD, Shared, TIMESTAMP_TOLERANCE_MS, TOKEN_LIFETIME_S};
use crate::{Faults, ReceivedSend, now_ms};

/// Lifetime of a refresh token (`re_expires_in`).
const REFRESH_LIFETIME_S: i64 = 30 * 86_400;
/// URL-encoding of `taobao_user_nick`: everything but unreserved characters (spaces as `%20`).
const NICK_ESCAPE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// System parameters: everything else is a business parameter.
const SYSTEM_PARAMS: &[&str] =
    &["method", "app_key", "session", "timestamp", "format", "v", "sign_method", "sign", "partner_id", "simplify"];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/router/rest", any(top_call))
        .route("/oauth/token", post(oauth_token))
        .route("/token", post(oauth_token))
        .with_state(shared)
}

fn json_response(status: StatusCode, body: &Json) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json;charset=UTF-8")], body.to_string()).into_response()
}

/// Query parameters then form-body parameters (the body wins on a repeated name).
fn params(query: Option<&str>, body: &[u8]) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()).chain(form_urlencoded::parse(body)) {
        p.insert(k.into_owned(), v.into_owned());
    }
    p
}

/// A TOP `error_response`.
struct TopError {
    code: u32,
    msg: &'static str,
    sub_code: String,
    sub_msg: String,
    /// Why, for the journal.
    reason: String,
}

fn err(
    code: u32,
    msg: &'static str,
    sub_code: &str,
    sub_msg: impl Into<String>,
    reason: impl Into<String>,
) -> TopError {
    TopError { code, msg, sub_code: sub_code.to_owned(), sub_msg: sub_msg.into(), reason: reason.into() }
}

async fn top_call(State(s): State<Arc<Shared>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let delay = s.faults.slow_api_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let request_id = s.request_id();
    let p = params(query.as_deref(), &body);
    let method = p.get("method").cloned().unwrap_or_default();
    let result = if s.faults.api_down.load(Ordering::Relaxed) {
        Err(err(
            15,
            "Remote service error",
            "isp.top-remote-service-unavailable",
            "服务暂不可用",
            "api_down: answered 15 isp.top-remote-service-unavailable",
        ))
    } else {
        s.verify(&p).and_then(|()| match method.as_str() {
            SEND_METHOD => s.send(&p, &request_id),
            FORWARD_METHOD => s.forward(&p, &request_id),
            other => Err(err(
                22,
                "Invalid method",
                "isv.method-not-exist",
                "方法不存在",
                format!("unknown method {other:?}"),
            )),
        })
    };
    match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => {
            s.journal.reject(format!("top {method}: {}", e.reason));
            let body = json!({"error_response": {
                "code": e.code, "msg": e.msg, "sub_code": e.sub_code, "sub_msg": e.sub_msg, "request_id": request_id,
            }});
            json_response(StatusCode::OK, &body)
        }
    }
}

impl Shared {
    /// The platform checks, in TOP's order: app key, method, timestamp, format/version,
    /// signature, session.
    fn verify(&self, p: &BTreeMap<String, String>) -> Result<(), TopError> {
        let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let Some(app_key) = get("app_key") else {
            return Err(err(28, "Missing app key", "isv.missing-parameter:app_key", "缺少app_key", "missing app_key"));
        };
        if app_key != self.cfg.app_key {
            return Err(err(
                29,
                "Invalid app Key",
                "isv.appkey-not-exists",
                "app_key不存在",
                format!("invalid app_key {app_key:?}"),
            ));
        }
        let Some(method) = get("method") else {
            return Err(err(21, "Missing method", "isv.missing-parameter:method", "缺少method", "missing method"));
        };
        if method != SEND_METHOD && method != FORWARD_METHOD {
            return Err(err(
                22,
                "Invalid method",
                "isv.method-not-exist",
                format!("方法{method}不存在"),
                format!("unknown method {method:?}"),
            ));
        }
        let Some(ts) = get("timestamp") else {
            return Err(err(
                30,
                "Missing timestamp",
                "isv.missing-parameter:timestamp",
                "缺少timestamp",
                "missing timestamp",
            ));
        };
        match sign::parse_beijing(ts) {
            Some(ms) if (now_ms() - ms).abs() <= TIMESTAMP_TOLERANCE_MS => {}
            _ => {
                return Err(err(
                    31,
                    "Invalid timestamp",
                    "isv.invalid-parameter:timestamp",
                    "时间戳错误或超出10分钟误差",
                    format!("invalid timestamp {ts:?} (yyyy-MM-dd HH:mm:ss, UTC+8, 10 min)"),
                ));
            }
        }
        if get("format") != Some("json") {
            return Err(err(
                23,
                "Invalid format",
                "isv.invalid-parameter:format",
                "format must be json",
                format!("format {:?} (TOP answers XML unless format=json)", get("format")),
            ));
        }
        match get("v") {
            None => return Err(err(32, "Missing version", "isv.missing-parameter:v", "缺少v", "missing v")),
            Some("2.0") => {}
            Some(v) => {
                return Err(err(
                    34,
                    "Unsupported version",
                    "isv.invalid-parameter:v",
                    "v must be 2.0",
                    format!("version {v:?}"),
                ));
            }
        }
        let Some(sign_value) = get("sign") else {
            return Err(err(24, "Missing signature", "isv.missing-parameter:sign", "缺少sign", "missing sign"));
        };
        let Some(sign_method) = SignMethod::parse(p.get("sign_method").map(String::as_str)) else {
            return Err(err(
                41,
                "Invalid arguments:sign_method",
                "isv.invalid-parameter:sign_method",
                "sign_method must be md5, hmac or hmac-sha256",
                format!("unsupported sign_method {:?}", p.get("sign_method")),
            ));
        };
        let want = sign::top_sign(p.iter().map(|(k, v)| (k.as_str(), v.as_str())), &self.cfg.app_secret, sign_method);
        if sign_value != want {
            return Err(err(
                25,
                "Invalid signature",
                "isv.invalid-signature",
                "签名错误",
                format!("invalid signature ({sign_method:?}): got {sign_value}, want {want}"),
            ));
        }
        let Some(session) = get("session") else {
            return Err(err(26, "Missing session", "isv.missing-parameter:session", "缺少session", "missing session"));
        };
        let t = self.tokens();
        let expired = |why: String| err(27, "Invalid session", "invalid-sessionkey", "SessionKey已过期", why);
        if session == t.access {
            if self.faults.token_expired.load(Ordering::SeqCst) {
                return Err(expired("session expired (fault token_expired)".into()));
            }
            if now_ms() >= t.expires_at_ms {
                return Err(expired(format!("session expired at {}", t.expires_at_ms)));
            }
        } else if t.retired.iter().any(|r| r == session) {
            return Err(expired("session replaced by a refresh".into()));
        } else {
            return Err(err(27, "Invalid session", "invalid-sessionkey", "SessionKey非法", "unknown session"));
        }
        Ok(())
    }

    fn send(&self, p: &BTreeMap<String, String>, request_id: &str) -> Result<Json, TopError> {
        let required = |name: &'static str| {
            p.get(name).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
                err(
                    40,
                    "Missing required arguments",
                    "isv.missing-parameter",
                    format!("Missing required arguments:{name}"),
                    format!("missing {name}"),
                )
            })
        };
        let buyer = required("buyer_open_uid")?;
        let msg_type = required("msg_type")?;
        let content = required("content")?;
        let client_msg_id = required("client_msg_id")?;
        if !matches!(msg_type.as_str(), "text" | "image" | "item" | "order") {
            return Err(err(
                41,
                "Invalid arguments",
                "isv.invalid-parameter",
                "msg_type must be text, image, item or order",
                format!("invalid msg_type {msg_type:?}"),
            ));
        }
        if Faults::take(&self.faults.rate_limit_sends) {
            return Err(err(
                7,
                "App Call Limited",
                "accesscontrol.limited-by-app-access-count",
                "This ban will last 1 more seconds",
                "rate limited (fault rate_limit_sends)",
            ));
        }
        let extra = business_extra(p, &["buyer_open_uid", "msg_type", "content", "client_msg_id"]);
        let msg_id = {
            let mut t = self.tokens();
            let next = format!("{}", (1u64 << 60) + self.next_seq());
            t.msg_ids.entry(client_msg_id.clone()).or_insert(next).clone()
        };
        self.journal.accept(ReceivedSend {
            method: SEND_METHOD.to_owned(),
            buyer_id: buyer,
            msg_type,
            content,
            client_msg_id,
            conversation: None,
            extra,
            at_ms: now_ms(),
            duplicate: false,
        });
        Ok(json!({ response_key(SEND_METHOD): {
            "result": {"success": true, "msg_id": msg_id},
            "request_id": request_id,
        }}))
    }

    fn forward(&self, p: &BTreeMap<String, String>, request_id: &str) -> Result<Json, TopError> {
        let mut nicks = Vec::new();
        for name in ["buyer_nick", "from_ww_nick", "to_ww_nick"] {
            let Some(v) = p.get(name).filter(|v| !v.is_empty()) else {
                return Err(err(
                    40,
                    "Missing required arguments",
                    "isv.missing-parameter",
                    format!("Missing required arguments:{name}"),
                    format!("missing {name}"),
                ));
            };
            if !v.starts_with("cntaobao") {
                return Err(err(
                    41,
                    "Invalid arguments",
                    "isv.invalid-parameter",
                    format!("{name} must carry the cntaobao prefix"),
                    format!("{name} {v:?} without the cntaobao prefix"),
                ));
            }
            nicks.push(v.clone());
        }
        let extra = business_extra(p, &["buyer_nick"]);
        let client_msg_id = p.get("client_msg_id").cloned().unwrap_or_else(|| format!("forward-{request_id}"));
        self.journal.accept(ReceivedSend {
            method: FORWARD_METHOD.to_owned(),
            buyer_id: nicks[0].clone(),
            msg_type: "forward".to_owned(),
            content: nicks[2].clone(),
            client_msg_id,
            conversation: None,
            extra,
            at_ms: now_ms(),
            duplicate: false,
        });
        // Live TOP names public responses without the `taobao_` prefix.
        let key = response_key(FORWARD_METHOD).trim_start_matches("taobao_").to_owned();
        Ok(json!({ key: {"result": {"success": true}, "request_id": request_id} }))
    }
}

/// `<method with dots → underscores>_response`.
fn response_key(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// Business parameters other than `mapped`, verbatim.
fn business_extra(p: &BTreeMap<String, String>, mapped: &[&str]) -> BTreeMap<String, String> {
    p.iter()
        .filter(|(k, _)| !SYSTEM_PARAMS.contains(&k.as_str()) && !mapped.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, &json!({"error": error, "error_description": description}))
}

/// `POST /oauth/token` with `grant_type=refresh_token`.
async fn oauth_token(State(s): State<Arc<Shared>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let delay = s.faults.slow_api_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if s.faults.api_down.load(Ordering::Relaxed) {
        s.journal.reject("oauth: api_down: answered 503");
        return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "service unavailable");
    }
    let p = params(query.as_deref(), &body);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    if get("grant_type") != "refresh_token" {
        s.journal.reject(format!("oauth: unsupported grant_type {:?}", get("grant_type")));
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type must be refresh_token");
    }
    if get("client_id") != s.cfg.app_key || get("client_secret") != s.cfg.app_secret {
        s.journal.reject("oauth: invalid client_id or client_secret");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "invalid client_id or client_secret");
    }
    let mut t = s.tokens();
    if get("refresh_token").is_empty() || get("refresh_token") != t.refresh {
        drop(t);
        s.journal.reject("oauth: invalid refresh_token");
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "refresh_token is invalid or expired");
    }
    t.refreshes += 1;
    let n = t.refreshes;
    let old = std::mem::replace(&mut t.access, format!("{}-r{n}", s.cfg.access_token));
    t.retired.push(old);
    t.refresh = format!("{}-r{n}", s.cfg.refresh_token);
    t.expires_at_ms = now_ms() + TOKEN_LIFETIME_S * 1000;
    s.faults.token_expired.store(false, Ordering::SeqCst);
    s.journal.refreshes.fetch_add(1, Ordering::SeqCst);
    let nick = percent_encoding::utf8_percent_encode(&s.cfg.platform_shop_id, NICK_ESCAPE).to_string();
    let body = json!({
        "access_token": t.access,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_S,
        "refresh_token": t.refresh,
        "re_expires_in": REFRESH_LIFETIME_S,
        "r1_expires_in": TOKEN_LIFETIME_S,
        "r2_expires_in": TOKEN_LIFETIME_S,
        "w1_expires_in": TOKEN_LIFETIME_S,
        "w2_expires_in": TOKEN_LIFETIME_S,
        "taobao_user_id": s.user_id.to_string(),
        "taobao_user_nick": nick,
    });
    drop(t);
    json_response(StatusCode::OK, &body)
}
