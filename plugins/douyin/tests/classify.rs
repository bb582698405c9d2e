//! The send-answer classification table (PROTOCOLS.md §2.1 error families), through the
//! connector's `classify_send`.

use huiliu_douyin::DouyinConnector;
use huiliu_sdk::{Connector, HttpResponse, SendOutcome, ShopConfig};

fn connector() -> DouyinConnector {
    DouyinConnector::new(ShopConfig::new("s1").with("app_key", "k").with("app_secret", "s")).expect("valid config")
}

/// (HTTP status, body, class, code, sub_code). Kept one row per line, as a table.
#[rustfmt::skip]
const TABLE: &[(u16, &str, &str, &str, Option<&str>)] = &[
    (200, r#"{"code":10000,"msg":"success","sub_code":"","sub_msg":"","log_id":"1","data":{"msg_id":"m-1"}}"#, "delivered", "", None),
    (200, r#"{"code":"10000","msg":"success","data":{}}"#, "delivered", "", None),
    (200, r#"{"code":60000,"msg":"流量超限","sub_code":"isv.traffic-limited","sub_msg":"请稍后再试"}"#, "rate_limited", "60000", Some("isv.traffic-limited")),
    (200, r#"{"code":60000,"msg":"流量超限"}"#, "rate_limited", "60000", None),
    (200, r#"{"code":40003,"msg":"x","sub_code":"isv.traffic-limited"}"#, "rate_limited", "40003", Some("isv.traffic-limited")),
    (429, r#"{"code":20000,"msg":"busy"}"#, "rate_limited", "20000", None),
    (429, "Too Many Requests", "rate_limited", "http_429", None),
    (200, r#"{"code":50001,"msg":"access_token不存在"}"#, "token_expired", "50001", None),
    (200, r#"{"code":40003,"msg":"参数不合法","sub_code":"isv.access-token-expired","sub_msg":"access_token已过期"}"#, "token_expired", "40003", Some("isv.access-token-expired")),
    (200, r#"{"code":40003,"msg":"x","sub_code":"isv.access-token-no-exist"}"#, "token_expired", "40003", Some("isv.access-token-no-exist")),
    (200, r#"{"code":20000,"msg":"服务异常","sub_code":"isp.service-error"}"#, "retryable", "20000", Some("isp.service-error")),
    (200, r#"{"code":99999,"msg":"?","sub_code":"isp.unknown"}"#, "retryable", "99999", Some("isp.unknown")),
    (200, r#"{"code":30001,"msg":"无权限","sub_code":"isv.permission-denied"}"#, "permanent", "30001", Some("isv.permission-denied")),
    (200, r#"{"code":40001,"msg":"缺少参数","sub_code":"isv.missing-parameter"}"#, "permanent", "40001", Some("isv.missing-parameter")),
    (200, r#"{"code":40003,"msg":"参数不合法","sub_code":"isv.signature-invalid"}"#, "permanent", "40003", Some("isv.signature-invalid")),
    (200, r#"{"code":40003,"msg":"参数不合法","sub_code":"isv.timestamp-invalid"}"#, "permanent", "40003", Some("isv.timestamp-invalid")),
    (200, r#"{"code":70000,"msg":"接口已下线"}"#, "permanent", "70000", None),
    (200, r#"{"code":12345,"msg":"unknown"}"#, "permanent", "12345", None),
    (500, r#"{"code":50001,"msg":"x"}"#, "retryable", "50001", None),
    (502, "<html>Bad Gateway</html>", "retryable", "http_502", None),
    (503, "", "retryable", "http_503", None),
    (200, "", "retryable", "http_200", None),
    (200, "not json", "retryable", "http_200", None),
    (200, r#"{"msg":"no code"}"#, "retryable", "http_200", None),
    (404, "Not Found", "retryable", "http_404", None),
];

#[test]
fn classification_table() {
    let mut connector = connector();
    let mut failures = Vec::new();
    for &(status, body, class, code, sub_code) in TABLE {
        let outcome = connector.classify_send(&HttpResponse::json(status, body), 0);
        let error = match &outcome {
            SendOutcome::Delivered { .. } => None,
            SendOutcome::Retryable { error }
            | SendOutcome::RateLimited { error, .. }
            | SendOutcome::TokenExpired { error }
            | SendOutcome::Permanent { error } => Some(error),
        };
        let ok = outcome.class() == class
            && error.is_none_or(|e| e.code == code && e.sub_code.as_deref() == sub_code && e.http_status == status);
        if !ok {
            failures.push(format!("{status} {body} → {outcome:?}, expected {class} code {code} sub {sub_code:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn delivered_keeps_the_platform_message_id() {
    let outcome = connector()
        .classify_send(&HttpResponse::json(200, r#"{"code":10000,"data":{"msg_id":7301234567890123456}}"#), 0);
    assert_eq!(outcome, SendOutcome::Delivered { platform_msg_id: Some("7301234567890123456".into()) });
}
