//! Douyin signing, written from PROTOCOLS.md §2.1 / §2.2 only (no code shared with the
//! connector): OpenAPI `sign` (hmac-sha256 and md5), push `event-sign`, the canonical
//! `param_json` form, and Beijing-time timestamps.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use serde_json::Value;
use sha2::Sha256;

/// The two OpenAPI signature methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    HmacSha256,
    Md5,
}

impl SignMethod {
    /// Parses the `sign_method` query value.
    pub fn parse(s: &str) -> Option<SignMethod> {
        match s {
            "hmac-sha256" => Some(SignMethod::HmacSha256),
            "md5" => Some(SignMethod::Md5),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::HmacSha256 => "hmac-sha256",
            SignMethod::Md5 => "md5",
        }
    }
}

/// The OpenAPI string to sign (without the surrounding secrets):
/// `app_key<k>method<m>param_json<p>timestamp<ts>v2`.
pub fn openapi_plain(app_key: &str, method: &str, param_json: &str, timestamp: &str, v: &str) -> String {
    format!("app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v{v}")
}

/// `lower(hex(HMAC-SHA256(secret, secret + p + secret)))` or `lower(hex(MD5(secret + p + secret)))`.
pub fn openapi_sign(
    method_kind: SignMethod,
    secret: &str,
    app_key: &str,
    method: &str,
    param_json: &str,
    timestamp: &str,
) -> String {
    let plain = openapi_plain(app_key, method, param_json, timestamp, "2");
    let wrapped = format!("{secret}{plain}{secret}");
    match method_kind {
        SignMethod::HmacSha256 => {
            let mut mac =
                <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
            mac.update(wrapped.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        SignMethod::Md5 => hex::encode(Md5::digest(wrapped.as_bytes())),
    }
}

/// Push `event-sign`: `lower(hex(MD5(app_key + raw_body + secret)))` over the raw bytes.
pub fn event_sign(app_key: &str, body: &[u8], secret: &str) -> String {
    let mut h = Md5::new();
    h.update(app_key.as_bytes());
    h.update(body);
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// The canonical `param_json` of a JSON value: object keys sorted by byte order at every depth,
/// compact, no HTML escaping, non-ASCII as raw UTF-8, only `"` `\` and control characters escaped.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sort explicitly: serde_json's map order depends on a feature flag.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Checks that `body` is exactly the canonical form of the JSON object it encodes.
/// Returns the parsed object, or why it is not canonical.
pub fn check_canonical(body: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "param_json is not UTF-8".to_owned())?;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("param_json is not JSON: {e}"))?;
    let Value::Object(map) = &value else {
        return Err("param_json is not a JSON object".into());
    };
    let canon = canonical_json(&value);
    if canon != text {
        return Err(format!(
            "param_json is not canonical (sorted keys, compact): got {:?}, canonical {:?}",
            clip(text),
            clip(&canon)
        ));
    }
    Ok(map.clone())
}

/// At most 200 characters, for messages.
fn clip(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

const BEIJING_OFFSET_S: i64 = 8 * 3600;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8) for a Unix second.
pub fn beijing_timestamp(unix_s: i64) -> String {
    let local = unix_s + BEIJING_OFFSET_S;
    let (days, secs) = (local.div_euclid(86400), local.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Reads a request timestamp: `yyyy-MM-dd HH:mm:ss` Beijing time, or Unix seconds (digits only).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = &s[from..to];
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (y, mo, d, h, mi, se) = (num(0, 4)?, num(5, 7)?, num(8, 10)?, num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - BEIJING_OFFSET_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_KEY: &str = "3409409348479354011";
    const SECRET: &str = "2ad2355c-01d0-11f8-91dc-05a8cd1054b1";

    #[test]
    fn openapi_vectors() {
        let p = r#"{"cid":"12","page":"1"}"#;
        let ts = "2020-09-15 14:48:13";
        assert_eq!(
            openapi_sign(SignMethod::HmacSha256, SECRET, APP_KEY, "product.getGoodsCategory", p, ts),
            "7bb73a7e14f593bbac6615fc5c30bf6ccc348c060e80e9a2edd96744a1fb8312"
        );
        assert_eq!(
            openapi_sign(SignMethod::Md5, SECRET, APP_KEY, "product.getGoodsCategory", p, ts),
            "cf5c13e551eb2f3e4e883a472e2c12f8"
        );
    }

    #[test]
    fn push_vector() {
        let body = br#"[{"tag":"0","msg_id":"0","data":"{}"}]"#;
        assert_eq!(event_sign(APP_KEY, body, SECRET), "356532ab10e2668eb4f1c9b6665b6864");
    }

    /// The vectors also exist machine-readable beside PROTOCOLS.md; when that file is present,
    /// check every Douyin entry of it too.
    #[test]
    fn vectors_json_when_present() {
        let Ok(text) = std::fs::read_to_string("/work/shared/vectors.json") else { return };
        let v: Value = serde_json::from_str(&text).expect("vectors.json parses");
        let mut n = 0;
        for case in v["douyin_openapi"].as_array().expect("douyin_openapi") {
            let s = |k: &str| case[k].as_str().unwrap_or_else(|| panic!("{k}")).to_owned();
            let kind = SignMethod::parse(&s("sign_method")).expect("sign_method");
            assert_eq!(s("v"), "2");
            let got = openapi_sign(kind, &s("secret"), &s("app_key"), &s("method"), &s("param_json"), &s("timestamp"));
            assert_eq!(got, s("sign"));
            n += 1;
        }
        for case in v["douyin_push"].as_array().expect("douyin_push") {
            let s = |k: &str| case[k].as_str().unwrap_or_else(|| panic!("{k}")).to_owned();
            assert_eq!(event_sign(&s("app_key"), s("body").as_bytes(), &s("secret")), s("event_sign"));
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn canonical_form() {
        let ok = r#"{"a":{"b":1,"c":[{"x":"<&>","y":null}]},"content":"你好\n\"q\"","z":true}"#;
        assert!(check_canonical(ok.as_bytes()).is_ok());
        assert!(check_canonical(b"{}").is_ok());
        for bad in [
            r#"{"b":1,"a":2}"#,
            r#"{"a": 1}"#,
            r#"{"a":{"d":1,"c":2}}"#,
            r#"{"a":"\u4f60"}"#,
            r#"{"a":"\u003c"}"#,
            r#"{"a":"\/"}"#,
            " {}",
            "",
            "[]",
            r#"{"a":1,"a":2}"#,
        ] {
            assert!(check_canonical(bad.as_bytes()).is_err(), "{bad:?} should not be canonical");
        }
        // Byte order, not alphabetical order ignoring case.
        assert!(check_canonical(br#"{"B":1,"a":2}"#).is_ok());
        assert!(check_canonical(br#"{"a":2,"B":1}"#).is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("2020-09-15 14:48:13"), Some(1_600_152_493));
        assert_eq!(beijing_timestamp(1_600_152_493), "2020-09-15 14:48:13");
        assert_eq!(parse_timestamp("1600152493"), Some(1_600_152_493));
        // Across midnight and a leap day.
        assert_eq!(beijing_timestamp(951_753_600), "2000-02-29 00:00:00");
        assert_eq!(parse_timestamp("2000-02-29 00:00:00"), Some(951_753_600));
        for bad in ["2020-09-15T14:48:13", "2020-02-30 00:00:00", "2020-09-15 24:00:00", "", "16001524930000", "x"] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }
}
