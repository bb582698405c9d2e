//! What a WeChat API answer means. WeChat answers `{"errcode": 0, "errmsg": "ok", …}`; the
//! global error codes are published at
//! <https://developers.weixin.qq.com/doc/oplatform/Return_codes/Return_code_descriptions_new.html>
//! and the sendmsg limits (48 hours after the buyer's last message, at most 5 replies) at
//! <https://developers.weixin.qq.com/doc/store/shop/API/kf/send_msg/send_image_msg_api.html>.
//!
//! | answer                                                   | outcome        |
//! |----------------------------------------------------------|----------------|
//! | HTTP 5xx, or a body that is not JSON                     | `Retryable`    |
//! | HTTP 429                                                 | `RateLimited`  |
//! | `errcode` 0 (or absent) with HTTP 2xx                    | `Delivered` (`msg_id`) |
//! | 45009 (API daily quota), 45011 (API minute quota)        | `RateLimited`  |
//! | 40001, 40014 (invalid access_token), 42001 (expired)     | `TokenExpired` |
//! | -1 (system busy)                                         | `Retryable`    |
//! | 45047 (reply quota for this buyer message used up), 45015 (48-hour window passed), 40003 (bad open_id), any other code | `Permanent` |

use huiliu_sdk::{HttpResponse, PlatformError, SendOutcome};
use serde_json::{Map, Value};

/// Codes meaning the access token must be renewed.
pub const TOKEN_CODES: [i64; 3] = [40001, 40014, 42001];
/// Codes meaning the caller is throttled.
pub const RATE_CODES: [i64; 2] = [45009, 45011];
/// WeChat's "system busy, retry".
pub const BUSY_CODE: i64 = -1;

fn error(status: u16, code: i64, message: &str) -> PlatformError {
    PlatformError { http_status: status, code: code.to_string(), sub_code: None, message: message.to_owned() }
}

/// Reads a WeChat reply: the object when `errcode` is 0 or absent, else the platform error.
pub fn parse_reply(status: u16, body: &[u8]) -> Result<Map<String, Value>, PlatformError> {
    let unreadable = || PlatformError {
        http_status: status,
        code: "unreadable".into(),
        sub_code: None,
        message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    };
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        _ => return Err(unreadable()),
    };
    let code = obj.get("errcode").map(|c| c.as_i64().ok_or_else(unreadable)).transpose()?.unwrap_or(0);
    if code != 0 {
        let message = obj.get("errmsg").and_then(Value::as_str).unwrap_or("");
        return Err(error(status, code, message));
    }
    Ok(obj)
}

/// Classifies the answer to a sendmsg request.
pub fn classify_send(response: &HttpResponse) -> SendOutcome {
    let status = response.status;
    match parse_reply(status, &response.body) {
        Ok(obj) if (200..300).contains(&status) => {
            let platform_msg_id = obj.get("msg_id").and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            SendOutcome::Delivered { platform_msg_id }
        }
        Ok(_) => SendOutcome::Retryable { error: error(status, 0, "non-2xx status with a success body") },
        Err(e) if e.code == "unreadable" => {
            if status == 429 {
                SendOutcome::RateLimited { error: e, retry_after_ms: None }
            } else {
                SendOutcome::Retryable { error: e }
            }
        }
        Err(e) => {
            let code: i64 = e.code.parse().unwrap_or(0);
            if status == 429 || RATE_CODES.contains(&code) {
                SendOutcome::RateLimited { error: e, retry_after_ms: None }
            } else if TOKEN_CODES.contains(&code) {
                SendOutcome::TokenExpired { error: e }
            } else if code == BUSY_CODE || status >= 500 {
                SendOutcome::Retryable { error: e }
            } else {
                SendOutcome::Permanent { error: e }
            }
        }
    }
}
