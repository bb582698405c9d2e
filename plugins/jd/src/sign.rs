//! JOS signing (public, PROTOCOLS.md §3.1 and §3.2).
//!
//! Every sent parameter except `sign`, empty values dropped, sorted by name in byte order
//! (so `360buy_param_json` sorts first), concatenated `name` + `value`; then
//! - `md5`: `upper(hex(MD5(secret + s + secret)))` — API calls and the stream connect;
//! - `hmacsha256`: `upper(hex(HMAC-SHA256(key = secret, s)))` — the official SDK's alternative
//!   for API calls; the `sign_method` parameter is then sent and therefore signed.

use std::fmt;
use std::str::FromStr;

use huiliu_sdk::crypto::{Case, hmac_sha256_hex, md5_hex};

/// The name of the signature parameter, never part of the signed string.
pub const SIGN: &str = "sign";

/// How API calls are signed (config `sign_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    Md5,
    HmacSha256,
}

impl SignMethod {
    /// The `sign_method` parameter to send, if any. MD5 is JOS's default and the official
    /// vectors sign without the parameter, so it is not sent.
    pub fn param(self) -> Option<&'static str> {
        match self {
            SignMethod::Md5 => None,
            SignMethod::HmacSha256 => Some("hmacsha256"),
        }
    }
}

impl FromStr for SignMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "md5" => Ok(SignMethod::Md5),
            "hmacsha256" => Ok(SignMethod::HmacSha256),
            other => Err(format!("unknown sign method `{other}` (expected `md5` or `hmacsha256`)")),
        }
    }
}

impl fmt::Display for SignMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.param().unwrap_or("md5"))
    }
}

/// The string JOS signs: sorted `name` + `value` of every non-empty parameter but `sign`.
pub fn signing_string<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<(&str, &str)> =
        params.into_iter().filter(|(name, value)| *name != SIGN && !value.is_empty()).collect();
    // `str` orders by bytes, which is the order JOS sorts in.
    sorted.sort_unstable();
    let mut s = String::new();
    for (name, value) in sorted {
        s.push_str(name);
        s.push_str(value);
    }
    s
}

/// The JOS signature of `params` under `secret`.
pub fn sign<'a>(secret: &str, method: SignMethod, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let s = signing_string(params);
    match method {
        SignMethod::Md5 => md5_hex(&[secret.as_bytes(), s.as_bytes(), secret.as_bytes()], Case::Upper),
        SignMethod::HmacSha256 => hmac_sha256_hex(secret.as_bytes(), &[s.as_bytes()], Case::Upper),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PROTOCOLS.md §3.1 / vectors.json `jd_jos[0]` (official).
    const OFFICIAL: [(&str, &str); 6] = [
        (
            "360buy_param_json",
            r#"{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT","page":"1","page_size":"200","start_date":null}"#,
        ),
        ("access_token", "yourtoken"),
        ("app_key", "yourappkey"),
        ("method", "jingdong.pop.order.search"),
        ("timestamp", "2021-05-07 09:20:39.683+0800"),
        ("v", "2.0"),
    ];

    /// vectors.json `jd_jos[1]` (SDK test).
    const SDK_TEST: [(&str, &str); 6] = [
        ("360buy_param_json", r#"{"paramStrin":"abc"}"#),
        ("access_token", "yourtoken"),
        ("app_key", "yourappkey"),
        ("method", "jingdong.innovation.product.write.createSkus"),
        ("timestamp", "2019-06-27 15:41:49"),
        ("v", "2.0"),
    ];

    #[test]
    fn official_vector() {
        assert_eq!(sign("yourappSecret", SignMethod::Md5, OFFICIAL), "D70825340F4084360B9362B60DFD7930");
    }

    #[test]
    fn sdk_vector() {
        assert_eq!(sign("yourappSecret", SignMethod::Md5, SDK_TEST), "E79CD3D49918172CA907A4CB493D9361");
    }

    #[test]
    fn order_of_input_does_not_matter_and_sign_and_empties_are_skipped() {
        let mut shuffled: Vec<(&str, &str)> = OFFICIAL.iter().rev().copied().collect();
        shuffled.push(("sign", "WHATEVER"));
        shuffled.push(("user", ""));
        assert_eq!(sign("yourappSecret", SignMethod::Md5, shuffled), "D70825340F4084360B9362B60DFD7930");
    }

    #[test]
    fn signing_string_sorts_360buy_first() {
        let s = signing_string([("v", "2.0"), ("app_key", "k"), ("360buy_param_json", "{}")]);
        assert_eq!(s, "360buy_param_json{}app_keykv2.0");
    }

    #[test]
    fn hmac_sha256_signs_the_sign_method_too() {
        let mut params = SDK_TEST.to_vec();
        params.push(("sign_method", "hmacsha256"));
        let got = sign("yourappSecret", SignMethod::HmacSha256, params.iter().copied());
        // Computed independently with Python's hmac module from the documented algorithm
        // (JD publishes no HMAC vector).
        assert_eq!(got, "55640E35898C672F717F5919BBF7229701681C00933542A0EA851A375F88ED2E");
        // The sent `sign_method` is part of the signed string.
        assert_ne!(got, sign("yourappSecret", SignMethod::HmacSha256, SDK_TEST));
    }

    #[test]
    fn parses_sign_methods() {
        assert_eq!("md5".parse::<SignMethod>(), Ok(SignMethod::Md5));
        assert_eq!("hmacsha256".parse::<SignMethod>(), Ok(SignMethod::HmacSha256));
        assert!("hmac".parse::<SignMethod>().is_err());
    }
}
