//! Douyin's two signatures, both public conventions (PROTOCOLS.md §2.1, §2.2).
//!
//! - OpenAPI calls: `p = "app_key"+app_key + "method"+method + "param_json"+param_json +
//!   "timestamp"+timestamp + "v"+v`, then `lower(hex(HMAC-SHA256(key = secret, secret + p + secret)))`
//!   (`sign_method=hmac-sha256`) or the older `lower(hex(MD5(secret + p + secret)))` (`md5`).
//!   The access token is not signed.
//! - Pushes: `event-sign = lower(hex(MD5(app_key + raw_body + secret)))` over the raw bytes.

use huiliu_sdk::crypto::{Case, hmac_sha256_hex, md5_hex};

/// How OpenAPI calls are signed (the `sign_method` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    HmacSha256,
    Md5,
}

impl SignMethod {
    /// The `sign_method` value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::HmacSha256 => "hmac-sha256",
            SignMethod::Md5 => "md5",
        }
    }

    /// Parses a configured `sign_method`.
    pub fn parse(s: &str) -> Option<SignMethod> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(SignMethod::HmacSha256),
            "md5" => Some(SignMethod::Md5),
            _ => None,
        }
    }
}

/// The signed fields of one OpenAPI call.
#[derive(Debug, Clone, Copy)]
pub struct ApiSignInput<'a> {
    pub app_key: &'a str,
    pub method: &'a str,
    /// The canonical `param_json`, exactly the bytes sent as the body.
    pub param_json: &'a str,
    /// Exactly as sent in the query string.
    pub timestamp: &'a str,
    pub v: &'a str,
}

/// The string both OpenAPI sign methods wrap in the secret.
fn api_sign_string(input: &ApiSignInput<'_>) -> String {
    format!(
        "app_key{}method{}param_json{}timestamp{}v{}",
        input.app_key, input.method, input.param_json, input.timestamp, input.v
    )
}

/// The `sign` of an OpenAPI call, lower-case hex.
pub fn api_sign(secret: &str, method: SignMethod, input: &ApiSignInput<'_>) -> String {
    let p = api_sign_string(input);
    let parts: [&[u8]; 3] = [secret.as_bytes(), p.as_bytes(), secret.as_bytes()];
    match method {
        SignMethod::HmacSha256 => hmac_sha256_hex(secret.as_bytes(), &parts, Case::Lower),
        SignMethod::Md5 => md5_hex(&parts, Case::Lower),
    }
}

/// The `event-sign` of a push body, lower-case hex.
pub fn push_sign(app_key: &str, body: &[u8], secret: &str) -> String {
    md5_hex(&[app_key.as_bytes(), body, secret.as_bytes()], Case::Lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    // /work/shared/vectors.json, "douyin_openapi" and "douyin_push" (computed from the
    // documented algorithm; Douyin publishes no official vector).
    const APP_KEY: &str = "3409409348479354011";
    const SECRET: &str = "2ad2355c-01d0-11f8-91dc-05a8cd1054b1";

    fn vector_input() -> ApiSignInput<'static> {
        ApiSignInput {
            app_key: APP_KEY,
            method: "product.getGoodsCategory",
            param_json: r#"{"cid":"12","page":"1"}"#,
            timestamp: "2020-09-15 14:48:13",
            v: "2",
        }
    }

    #[test]
    fn openapi_vector_hmac_sha256() {
        assert_eq!(
            api_sign(SECRET, SignMethod::HmacSha256, &vector_input()),
            "7bb73a7e14f593bbac6615fc5c30bf6ccc348c060e80e9a2edd96744a1fb8312"
        );
    }

    #[test]
    fn openapi_vector_md5() {
        assert_eq!(api_sign(SECRET, SignMethod::Md5, &vector_input()), "cf5c13e551eb2f3e4e883a472e2c12f8");
    }

    #[test]
    fn push_vector() {
        let body = br#"[{"tag":"0","msg_id":"0","data":"{}"}]"#;
        assert_eq!(push_sign(APP_KEY, body, SECRET), "356532ab10e2668eb4f1c9b6665b6864");
    }

    #[test]
    fn every_signed_field_matters() {
        let base = api_sign(SECRET, SignMethod::HmacSha256, &vector_input());
        let changed = [
            ApiSignInput { app_key: "1", ..vector_input() },
            ApiSignInput { method: "product.getGoodsCategor", ..vector_input() },
            ApiSignInput { param_json: r#"{"page":"1","cid":"12"}"#, ..vector_input() },
            ApiSignInput { timestamp: "2020-09-15 14:48:14", ..vector_input() },
            ApiSignInput { v: "1", ..vector_input() },
        ];
        for input in changed {
            assert_ne!(api_sign(SECRET, SignMethod::HmacSha256, &input), base, "{input:?}");
        }
        assert_ne!(api_sign("other", SignMethod::HmacSha256, &vector_input()), base);
    }

    #[test]
    fn sign_method_names() {
        assert_eq!(SignMethod::parse("HMAC-SHA256"), Some(SignMethod::HmacSha256));
        assert_eq!(SignMethod::parse("md5"), Some(SignMethod::Md5));
        assert_eq!(SignMethod::parse("hmac"), None);
        assert_eq!(SignMethod::HmacSha256.as_str(), "hmac-sha256");
    }
}
