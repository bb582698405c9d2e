//! What a send answer means (public error families, PROTOCOLS.md §2.1; the success payload
//! `data.msg_id` belongs to the modeled send method, §4).
//!
//! | answer                                                       | outcome        |
//! |--------------------------------------------------------------|----------------|
//! | HTTP 5xx                                                     | `Retryable`    |
//! | HTTP 429                                                     | `RateLimited`  |
//! | body not a Douyin envelope                                   | `Retryable`    |
//! | `code` 10000                                                 | `Delivered`    |
//! | `code` 60000, or `sub_code` `isv.traffic-limited`            | `RateLimited`  |
//! | `code` 50001, or a `sub_code` naming the access token        | `TokenExpired` |
//! | `code` 20000, or an `isp.*` `sub_code` (platform fault)      | `Retryable`    |
//! | anything else (30001, 40001, 40003, 70000, unknown codes)    | `Permanent`    |
//!
//! Rate limiting is checked before the token: a throttled call says nothing about the token.
//! Unknown codes are permanent so that a request the platform will never accept is not
//! retried forever; the code and message reach the agent verbatim.

use huiliu_sdk::{HttpResponse, SendOutcome};

use crate::json::id_text;
use crate::openapi::{ApiReply, unparseable};

const TRAFFIC_LIMITED_CODE: &str = "60000";
const TRAFFIC_LIMITED_SUB: &str = "isv.traffic-limited";
const TOKEN_INVALID_CODE: &str = "50001";
const SERVICE_ERROR_CODE: &str = "20000";

/// Classifies the platform's answer to a send request.
pub fn classify_send(response: &HttpResponse) -> SendOutcome {
    let status = response.status;
    let reply = ApiReply::parse(&response.body);
    if status >= 500 {
        let error = reply.map(|r| r.error(status)).unwrap_or_else(|| unparseable(status, &response.body));
        return SendOutcome::Retryable { error };
    }
    let Some(reply) = reply else {
        let error = unparseable(status, &response.body);
        return if status == 429 {
            SendOutcome::RateLimited { error, retry_after_ms: None }
        } else {
            SendOutcome::Retryable { error }
        };
    };
    if reply.is_success() && (200..300).contains(&status) {
        let platform_msg_id = reply.data.as_ref().and_then(|d| d.get("msg_id")).and_then(id_text);
        return SendOutcome::Delivered { platform_msg_id };
    }
    classify_error(&reply, status)
}

fn classify_error(reply: &ApiReply, status: u16) -> SendOutcome {
    let error = reply.error(status);
    let sub = reply.sub_code.as_deref().unwrap_or("");
    let code = reply.code.as_str();
    if status == 429 || code == TRAFFIC_LIMITED_CODE || sub == TRAFFIC_LIMITED_SUB {
        SendOutcome::RateLimited { error, retry_after_ms: None }
    } else if code == TOKEN_INVALID_CODE || sub.contains("access-token") || sub.contains("access_token") {
        SendOutcome::TokenExpired { error }
    } else if code == SERVICE_ERROR_CODE || sub.starts_with("isp.") {
        SendOutcome::Retryable { error }
    } else {
        SendOutcome::Permanent { error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str) -> SendOutcome {
        classify_send(&HttpResponse::json(status, body))
    }

    #[test]
    fn keeps_the_platform_error_verbatim() {
        let outcome = classify(
            200,
            r#"{"code":40003,"msg":"参数不合法","sub_code":"isv.signature-invalid","sub_msg":"签名错误","log_id":"L1"}"#,
        );
        let SendOutcome::Permanent { error } = outcome else { panic!("{outcome:?}") };
        assert_eq!(error.http_status, 200);
        assert_eq!(error.code, "40003");
        assert_eq!(error.sub_code.as_deref(), Some("isv.signature-invalid"));
        assert_eq!(error.message, "参数不合法: 签名错误");
    }

    #[test]
    fn delivered_reads_a_numeric_or_string_msg_id() {
        let big = classify(200, r#"{"code":10000,"msg":"success","data":{"msg_id":7123456789012345678}}"#);
        assert_eq!(big, SendOutcome::Delivered { platform_msg_id: Some("7123456789012345678".into()) });
        let none = classify(200, r#"{"code":"10000","msg":"success"}"#);
        assert_eq!(none, SendOutcome::Delivered { platform_msg_id: None });
    }

    #[test]
    fn a_success_code_on_an_error_status_is_not_delivery() {
        assert_eq!(classify(400, r#"{"code":10000,"msg":"success"}"#).class(), "permanent");
        assert_eq!(classify(503, r#"{"code":10000,"msg":"success"}"#).class(), "retryable");
    }
}
