//! The classification table: JOS answers to a send → outcome class, platform code and message.

use huiliu_jd::JdConnector;
use huiliu_sdk::{Connector, HttpResponse, SendOutcome, ShopConfig};

const SUCCESS_KEY: &str = "jingdong_im_pop_message_send_responce";

struct Case {
    name: &'static str,
    status: u16,
    body: String,
    class: &'static str,
    code: Option<&'static str>,
    message: Option<&'static str>,
}

fn case(name: &'static str, status: u16, body: impl Into<String>, class: &'static str) -> Case {
    Case { name, status, body: body.into(), class, code: None, message: None }
}

impl Case {
    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
    fn message(mut self, message: &'static str) -> Self {
        self.message = Some(message);
        self
    }
}

fn jos_error(code: &str, zh: &str, en: &str) -> String {
    format!(r#"{{"error_response":{{"code":"{code}","zh_desc":"{zh}","en_desc":"{en}"}}}}"#)
}

fn table() -> Vec<Case> {
    vec![
        case(
            "success",
            200,
            format!(r#"{{"{SUCCESS_KEY}":{{"code":"0","result":{{"success":true,"msg_id":"jd-out-1"}}}}}}"#),
            "delivered",
        ),
        case(
            "success, numeric code and msg_id above 2^53",
            200,
            format!(r#"{{"{SUCCESS_KEY}":{{"code":0,"result":{{"success":true,"msg_id":9007199254740993}}}}}}"#),
            "delivered",
        ),
        case("app call limit", 200, jos_error("2", "调用次数超限", "App call limited"), "rate_limited")
            .code("2")
            .message("调用次数超限 (App call limited)"),
        case("invalid timestamp", 200, jos_error("8", "时间戳无效", "Invalid timestamp"), "retryable").code("8"),
        case("missing sign", 200, jos_error("11", "缺少签名", "Missing sign"), "permanent").code("11"),
        case("invalid sign", 200, jos_error("12", "签名无效", "Invalid signature"), "permanent").code("12"),
        case("access token missing", 200, jos_error("18", "缺少access_token", "Missing access_token"), "token_expired")
            .code("18"),
        case("access token invalid", 200, jos_error("19", "token已过期", "Invalid access_token"), "token_expired")
            .code("19")
            .message("token已过期 (Invalid access_token)"),
        case("missing app key", 200, jos_error("20", "缺少app_key", "Missing app_key"), "permanent").code("20"),
        case("invalid app key", 200, jos_error("21", "app_key无效", "Invalid app_key"), "permanent").code("21"),
        case("no API permission", 200, jos_error("24", "无权调用", "No permission"), "permanent").code("24"),
        case("unknown gateway code", 200, jos_error("67", "平台连接后端服务不可用", "Service unavailable"), "permanent")
            .code("67"),
        case("numeric error code", 200, r#"{"error_response":{"code":19,"zh_desc":"token过期"}}"#, "token_expired")
            .code("19")
            .message("token过期"),
        case(
            "business failure: success false",
            200,
            format!(
                r#"{{"{SUCCESS_KEY}":{{"code":"0","result":{{"success":false,"code":"1002","message":"买家不在会话中"}}}}}}"#
            ),
            "permanent",
        )
        .code("1002")
        .message("买家不在会话中"),
        case(
            "business failure: non-zero inner code",
            200,
            format!(r#"{{"{SUCCESS_KEY}":{{"code":"100","zh_desc":"参数错误"}}}}"#),
            "permanent",
        )
        .code("100")
        .message("参数错误"),
        case("HTTP 500 without JSON", 500, "Internal Server Error", "retryable").code("unparseable_response"),
        case("HTTP 503 with a permanent code", 503, jos_error("24", "无权调用", "No permission"), "retryable").code("24"),
        case("HTTP 502 with a call limit", 502, jos_error("2", "调用次数超限", "App call limited"), "rate_limited"),
        case("HTTP 200 with HTML", 200, "<html>maintenance</html>", "retryable").code("unparseable_response"),
        case("empty body", 200, "", "retryable"),
        case("JSON but neither shape", 200, r#"{"something":"else"}"#, "retryable").code("unrecognized_response"),
        case("success without result", 200, format!(r#"{{"{SUCCESS_KEY}":{{"code":"0"}}}}"#), "retryable"),
    ]
}

#[test]
fn send_answers_classify_as_documented() {
    let config = ShopConfig::new("shop-jd-1").with("app_key", "k").with("app_secret", "s");
    let mut connector = JdConnector::new(config).expect("valid config");
    let mut failures = Vec::new();
    for c in table() {
        let response = HttpResponse::json(c.status, c.body.clone());
        let outcome = connector.classify_send(&response, 0);
        let error = match &outcome {
            SendOutcome::Delivered { .. } => None,
            SendOutcome::Retryable { error }
            | SendOutcome::RateLimited { error, .. }
            | SendOutcome::TokenExpired { error }
            | SendOutcome::Permanent { error } => Some(error),
        };
        let code_ok = c.code.is_none_or(|code| error.is_some_and(|e| e.code == code));
        let message_ok = c.message.is_none_or(|m| error.is_some_and(|e| e.message == m));
        let status_ok = error.is_none_or(|e| e.http_status == c.status);
        if outcome.class() != c.class || !code_ok || !message_ok || !status_ok {
            failures.push(format!("{}: expected {} {:?} {:?}, got {outcome:?}", c.name, c.class, c.code, c.message));
        }
    }
    assert!(failures.is_empty(), "misclassified:\n{}", failures.join("\n"));
}

#[test]
fn delivered_keeps_the_platform_msg_id() {
    let config = ShopConfig::new("shop-jd-1").with("app_key", "k").with("app_secret", "s");
    let mut connector = JdConnector::new(config).expect("valid config");
    let body = format!(r#"{{"{SUCCESS_KEY}":{{"code":"0","result":{{"success":true,"msg_id":9007199254740993}}}}}}"#);
    assert_eq!(
        connector.classify_send(&HttpResponse::json(200, body), 0),
        SendOutcome::Delivered { platform_msg_id: Some("9007199254740993".into()) }
    );
}

#[test]
fn a_configured_send_method_changes_the_success_key() {
    let config = ShopConfig::new("shop-jd-1")
        .with("app_key", "k")
        .with("app_secret", "s")
        .with("send_method", "jingdong.im.granted.send");
    let mut connector = JdConnector::new(config).expect("valid config");
    let body = r#"{"jingdong_im_granted_send_responce":{"code":"0","result":{"success":true,"msg_id":"m"}}}"#;
    assert_eq!(connector.classify_send(&HttpResponse::json(200, body), 0).class(), "delivered");
}
