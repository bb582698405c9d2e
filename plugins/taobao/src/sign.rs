//! TOP and TMC signatures (public, PROTOCOLS.md §1.1 and §1.2).
//!
//! TOP: take every parameter except `sign`, drop empty values, sort by name (byte order),
//! concatenate `name1value1name2value2…` and digest with the app secret — `md5`:
//! MD5(secret + s + secret), `hmac`: HMAC-MD5(secret, s), `hmac-sha256`: HMAC-SHA256(secret, s) —
//! written as upper-case hex. The `sign_method` parameter is itself signed.
//!
//! TMC CONNECT: the same MD5 scheme over `app_key`, `group_name` and `timestamp`.

use std::collections::BTreeMap;

use huiliu_sdk::crypto::{Case, hmac_md5_hex, hmac_sha256_hex, md5_hex};

/// The digest a TOP request is signed with (`sign_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    Md5,
    Hmac,
    HmacSha256,
}

impl SignMethod {
    /// The `sign_method` parameter values TOP accepts.
    pub const NAMES: [&'static str; 3] = ["md5", "hmac", "hmac-sha256"];

    /// Parses a `sign_method` value.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "md5" => Some(SignMethod::Md5),
            "hmac" => Some(SignMethod::Hmac),
            "hmac-sha256" => Some(SignMethod::HmacSha256),
            _ => None,
        }
    }

    /// The `sign_method` parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::Md5 => "md5",
            SignMethod::Hmac => "hmac",
            SignMethod::HmacSha256 => "hmac-sha256",
        }
    }
}

/// The string TOP signs: sorted `namevalue` pairs, `sign` and empty values left out.
/// A `BTreeMap<String, _>` iterates in byte order of the names, which is TOP's order.
fn canonical(params: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    for (name, value) in params {
        if name == "sign" || value.is_empty() {
            continue;
        }
        s.push_str(name);
        s.push_str(value);
    }
    s
}

/// The `sign` of a TOP request's parameters, upper-case hex.
pub fn top_sign(params: &BTreeMap<String, String>, secret: &str, method: SignMethod) -> String {
    let s = canonical(params);
    let (secret, s) = (secret.as_bytes(), s.as_bytes());
    match method {
        SignMethod::Md5 => md5_hex(&[secret, s, secret], Case::Upper),
        SignMethod::Hmac => hmac_md5_hex(secret, &[s], Case::Upper),
        SignMethod::HmacSha256 => hmac_sha256_hex(secret, &[s], Case::Upper),
    }
}

/// The `sign` of a TMC CONNECT:
/// `upper(hex(MD5(secret + "app_key"+app_key + "group_name"+group + "timestamp"+ts + secret)))`.
pub fn tmc_connect_sign(secret: &str, app_key: &str, group_name: &str, timestamp_ms: &str) -> String {
    let params: BTreeMap<String, String> =
        [("app_key", app_key), ("group_name", group_name), ("timestamp", timestamp_ms)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    top_sign(&params, secret, SignMethod::Md5)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameters of the `taobao_top` vectors in /work/shared/vectors.json.
    fn vector_params(sign_method: &str) -> BTreeMap<String, String> {
        [
            ("app_key", "12345678"),
            ("fields", "num_iid,title,nick,price,num"),
            ("format", "json"),
            ("method", "taobao.item.seller.get"),
            ("num_iid", "11223344"),
            ("session", "test"),
            ("sign_method", sign_method),
            ("timestamp", "2016-01-01 12:00:00"),
            ("v", "2.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn top_vector_md5_official() {
        assert_eq!(top_sign(&vector_params("md5"), "helloworld", SignMethod::Md5), "66987CB115214E59E6EC978214934FB8");
    }

    #[test]
    fn top_vector_hmac() {
        assert_eq!(
            top_sign(&vector_params("hmac"), "helloworld", SignMethod::Hmac),
            "D56D7858309C31B6251083A874D48273"
        );
    }

    #[test]
    fn top_vector_hmac_sha256() {
        assert_eq!(
            top_sign(&vector_params("hmac-sha256"), "helloworld", SignMethod::HmacSha256),
            "04DB15AD0774D5CFCE2C837DE43E3FCEA9011ED74F3038FB6AB5F3C4CEA119E8"
        );
    }

    #[test]
    fn tmc_connect_vector() {
        assert_eq!(
            tmc_connect_sign("helloworld", "12345678", "default", "1451620800000"),
            "2E03D1348D7B65A366F8DB4BD1435983"
        );
    }

    #[test]
    fn sign_and_empty_values_are_not_signed() {
        let mut params = vector_params("md5");
        params.insert("sign".into(), "WHATEVER".into());
        params.insert("empty".into(), String::new());
        assert_eq!(top_sign(&params, "helloworld", SignMethod::Md5), "66987CB115214E59E6EC978214934FB8");
        params.insert("extra".into(), "x".into());
        assert_ne!(top_sign(&params, "helloworld", SignMethod::Md5), "66987CB115214E59E6EC978214934FB8");
    }

    #[test]
    fn sign_method_names_round_trip() {
        for name in SignMethod::NAMES {
            assert_eq!(SignMethod::parse(name).map(SignMethod::as_str), Some(name));
        }
        assert_eq!(SignMethod::parse("HMAC"), None);
    }
}
