//! Building signed JOS API calls (public, PROTOCOLS.md §3.1).
//!
//! `POST {api_url}?method=…&app_key=…&access_token=…&timestamp=…&v=2.0[&sign_method=…]&sign=…`
//! with the business parameters as the one form field `360buy_param_json` in an
//! `application/x-www-form-urlencoded` body. Values are form-encoded the way the official Java
//! SDK's `URLEncoder` does, so the `+` of `+0800` travels as `%2B` and never turns into a space.

use std::collections::BTreeMap;

use huiliu_sdk::time::beijing_datetime_millis;
use huiliu_sdk::{HttpRequest, Millis};
use serde_json::Value;

use crate::sign::{SIGN, SignMethod, sign};

/// The form field that carries the business parameters.
pub const PARAM_JSON: &str = "360buy_param_json";
/// The API version JOS expects.
pub const API_VERSION: &str = "2.0";
/// The body's content type.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded;charset=utf-8";

/// One JOS call, ready to sign.
#[derive(Debug, Clone)]
pub struct JosCall<'a> {
    pub api_url: &'a str,
    pub app_key: &'a str,
    pub app_secret: &'a str,
    /// Omitted when absent (JOS wants no empty parameters).
    pub access_token: Option<&'a str>,
    pub sign_method: SignMethod,
    pub method: &'a str,
    /// The canonical business JSON (see [`param_json`]).
    pub param_json: &'a str,
}

impl JosCall<'_> {
    /// The fully signed request, timestamped `yyyy-MM-dd HH:mm:ss.SSS+0800` from `now`.
    pub fn request(&self, now: Millis) -> HttpRequest {
        let timestamp = beijing_datetime_millis(now);
        let mut system: Vec<(&str, &str)> =
            vec![("method", self.method), ("app_key", self.app_key), ("timestamp", &timestamp), ("v", API_VERSION)];
        if let Some(token) = self.access_token {
            system.push(("access_token", token));
        }
        if let Some(m) = self.sign_method.param() {
            system.push(("sign_method", m));
        }
        system.retain(|(_, v)| !v.is_empty());

        let signed = system.iter().copied().chain([(PARAM_JSON, self.param_json)]);
        let signature = sign(self.app_secret, self.sign_method, signed);

        let mut query = form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(system.iter().copied());
        query.append_pair(SIGN, &signature);
        let body = form_urlencoded::Serializer::new(String::new()).append_pair(PARAM_JSON, self.param_json).finish();

        HttpRequest {
            method: "POST".to_owned(),
            url: with_query(self.api_url, &query.finish()),
            headers: vec![("content-type".to_owned(), FORM_CONTENT_TYPE.to_owned())],
            body: body.into_bytes(),
        }
    }
}

/// The canonical `360buy_param_json`: keys sorted, compact, non-ASCII left as UTF-8.
pub fn param_json(params: &BTreeMap<&str, Value>) -> String {
    // A BTreeMap keeps the keys sorted whatever serde_json's map type is; serializing a map of
    // string keys to JSON values cannot fail.
    serde_json::to_string(params).unwrap_or_else(|_| "{}".to_owned())
}

/// `url` with `query` appended, respecting a query string the configured URL already has.
pub fn with_query(url: &str, query: &str) -> String {
    if query.is_empty() {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// The form pairs of `encoded` (a query string or form body), decoded.
#[cfg(test)]
pub fn decode_form(encoded: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(encoded.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_JSON: &str = r#"{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT","page":"1","page_size":"200","start_date":null}"#;

    fn vector_call(sign_method: SignMethod) -> JosCall<'static> {
        JosCall {
            api_url: "https://api.jd.com/routerjson",
            app_key: "yourappkey",
            app_secret: "yourappSecret",
            access_token: Some("yourtoken"),
            sign_method,
            method: "jingdong.pop.order.search",
            param_json: VECTOR_JSON,
        }
    }

    /// The official vector through the whole request builder: 2021-05-07 09:20:39.683 +08:00.
    #[test]
    fn official_vector_end_to_end() {
        let req = vector_call(SignMethod::Md5).request(1_620_350_439_683);
        assert_eq!(req.method, "POST");
        let (base, query) = req.url.split_once('?').expect("query string");
        assert_eq!(base, "https://api.jd.com/routerjson");
        assert!(query.contains("timestamp=2021-05-07+09%3A20%3A39.683%2B0800"), "{query}");
        assert!(query.ends_with("&sign=D70825340F4084360B9362B60DFD7930"), "{query}");
        let pairs = decode_form(query);
        assert!(pairs.contains(&("timestamp".into(), "2021-05-07 09:20:39.683+0800".into())));
        assert!(!pairs.iter().any(|(k, _)| k == "sign_method"));
        let body = String::from_utf8(req.body).expect("utf-8");
        assert_eq!(decode_form(&body), [(PARAM_JSON.to_owned(), VECTOR_JSON.to_owned())]);
    }

    #[test]
    fn hmac_sends_and_signs_sign_method() {
        let req = vector_call(SignMethod::HmacSha256).request(1_620_350_439_683);
        let (_, query) = req.url.split_once('?').expect("query string");
        let pairs = decode_form(query);
        assert!(pairs.contains(&("sign_method".into(), "hmacsha256".into())));
        let mut signed: Vec<(&str, &str)> =
            pairs.iter().filter(|(k, _)| k != "sign").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        signed.push((PARAM_JSON, VECTOR_JSON));
        let expected = sign("yourappSecret", SignMethod::HmacSha256, signed);
        assert!(pairs.contains(&("sign".into(), expected)));
    }

    #[test]
    fn no_empty_parameters() {
        let mut call = vector_call(SignMethod::Md5);
        call.access_token = None;
        let req = call.request(0);
        assert!(!req.url.contains("access_token"), "{}", req.url);
        call.access_token = Some("");
        assert!(!call.request(0).url.contains("access_token"));
    }

    #[test]
    fn keeps_an_existing_query() {
        assert_eq!(with_query("http://127.0.0.1:9/r?x=1", "a=b"), "http://127.0.0.1:9/r?x=1&a=b");
        assert_eq!(with_query("http://127.0.0.1:9/r", "a=b"), "http://127.0.0.1:9/r?a=b");
    }

    #[test]
    fn param_json_is_sorted_and_compact() {
        let mut p = BTreeMap::new();
        p.insert("z", Value::from("汇流"));
        p.insert("a", Value::from(1));
        assert_eq!(param_json(&p), r#"{"a":1,"z":"汇流"}"#);
    }
}
