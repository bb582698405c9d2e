//! JOS signing and timestamps, written from PROTOCOLS.md §3.1/§3.2 alone (no code shared with
//! the connector).
//!
//! - String to sign: every parameter except `sign`, sorted by name (byte order, so
//!   `360buy_param_json` comes first), concatenated `name + value`.
//! - MD5 (default): `upper(hex(MD5(secret + s + secret)))`.
//! - `sign_method=hmacsha256`: `upper(hex(HMAC-SHA256(key = secret, s)))`, no wrapping; the
//!   `sign_method` parameter itself is part of `s`.
//! - The stream connect uses the MD5 form over its form fields (`app_key`, `id`, `user`, `timestamp`).
//! - API timestamps are Beijing time (UTC+8) `yyyy-MM-dd HH:mm:ss` or
//!   `yyyy-MM-dd HH:mm:ss.SSS+0800`.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// How a request is signed (the `sign_method` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    /// Absent or `md5`.
    Md5,
    /// `hmacsha256`.
    HmacSha256,
}

impl SignMethod {
    /// Reads `sign_method`; an unknown method is an error (the platform cannot verify it).
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<SignMethod, String> {
        match params.get("sign_method").map(String::as_str) {
            None | Some("md5") => Ok(SignMethod::Md5),
            Some("hmacsha256") => Ok(SignMethod::HmacSha256),
            Some(other) => Err(format!("unsupported sign_method {other:?} (md5 or hmacsha256)")),
        }
    }
}

/// `name + value` of every parameter except `sign`, sorted by name.
pub fn string_to_sign(params: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    for (name, value) in params {
        if name != "sign" {
            s.push_str(name);
            s.push_str(value);
        }
    }
    s
}

/// `upper(hex(MD5(secret + s + secret)))`.
pub fn md5_sign(secret: &str, params: &BTreeMap<String, String>) -> String {
    let mut md5 = Md5::new();
    md5.update(secret.as_bytes());
    md5.update(string_to_sign(params).as_bytes());
    md5.update(secret.as_bytes());
    hex::encode_upper(md5.finalize())
}

/// `upper(hex(HMAC-SHA256(key = secret, s)))`.
pub fn hmac_sha256_sign(secret: &str, params: &BTreeMap<String, String>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(string_to_sign(params).as_bytes());
    hex::encode_upper(mac.finalize().into_bytes())
}

/// The signature `params` should carry, per their own `sign_method`.
pub fn sign(secret: &str, params: &BTreeMap<String, String>) -> Result<String, String> {
    Ok(match SignMethod::from_params(params)? {
        SignMethod::Md5 => md5_sign(secret, params),
        SignMethod::HmacSha256 => hmac_sha256_sign(secret, params),
    })
}

const BEIJING_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// Parses a JOS API timestamp to epoch ms: `yyyy-MM-dd HH:mm:ss` (Beijing time), optionally
/// followed by `.SSS` and an offset `+HHMM` / `-HHMM` (default +0800). None if malformed.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || !s.is_char_boundary(19) {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = &s[from..to];
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits != 3 {
            return None;
        }
        millis = frac[..3].parse::<i64>().ok()?;
        rest = &frac[3..];
    }
    let offset_ms = if rest.is_empty() {
        BEIJING_OFFSET_MS
    } else {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let hhmm = &rest[1..];
        if hhmm.len() != 4 || !hhmm.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let (h, m): (i64, i64) = (hhmm[..2].parse().ok()?, hhmm[2..].parse().ok()?);
        if h > 14 || m > 59 {
            return None;
        }
        sign * (h * 3600 + m * 60) * 1000
    };
    let days = days_from_civil(year, month, day);
    let local_ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis;
    Some(local_ms - offset_ms)
}

/// Formats epoch ms as Beijing time: `yyyy-MM-dd HH:mm:ss.SSS+0800` (with_millis) or
/// `yyyy-MM-dd HH:mm:ss`. A client-side helper for tests and hand-written callers.
pub fn format_timestamp(epoch_ms: i64, with_millis: bool) -> String {
    let local = epoch_ms + BEIJING_OFFSET_MS;
    let days = local.div_euclid(86_400_000);
    let in_day = local.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss, ms) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    if with_millis {
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}.{ms:03}+0800")
    } else {
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// PROTOCOLS.md §3.1 / vectors.json `jd_jos[0]` (official).
    #[test]
    fn official_md5_vector() {
        let p = params(&[
            (
                "360buy_param_json",
                r#"{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT","page":"1","page_size":"200","start_date":null}"#,
            ),
            ("access_token", "yourtoken"),
            ("app_key", "yourappkey"),
            ("method", "jingdong.pop.order.search"),
            ("timestamp", "2021-05-07 09:20:39.683+0800"),
            ("v", "2.0"),
        ]);
        assert_eq!(md5_sign("yourappSecret", &p), "D70825340F4084360B9362B60DFD7930");
        assert_eq!(sign("yourappSecret", &p).unwrap(), "D70825340F4084360B9362B60DFD7930");
        // `sign` itself never takes part.
        let mut with_sign = p.clone();
        with_sign.insert("sign".into(), "whatever".into());
        assert_eq!(md5_sign("yourappSecret", &with_sign), "D70825340F4084360B9362B60DFD7930");
        assert!(string_to_sign(&p).starts_with("360buy_param_json{"));
    }

    /// vectors.json `jd_jos[1]` (SDK test).
    #[test]
    fn sdk_md5_vector() {
        let p = params(&[
            ("360buy_param_json", r#"{"paramStrin":"abc"}"#),
            ("access_token", "yourtoken"),
            ("app_key", "yourappkey"),
            ("method", "jingdong.innovation.product.write.createSkus"),
            ("timestamp", "2019-06-27 15:41:49"),
            ("v", "2.0"),
        ]);
        assert_eq!(md5_sign("yourappSecret", &p), "E79CD3D49918172CA907A4CB493D9361");
    }

    /// No JOS vector exists for HMAC; check the primitive against RFC 4231 test case 2 and that
    /// the string is not wrapped and `sign_method` is signed.
    #[test]
    fn hmac_sha256_primitive_and_method() {
        let p = params(&[("what do ya want ", "for nothing?")]);
        assert_eq!(hmac_sha256_sign("Jefe", &p), "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843");
        let mut p = params(&[("app_key", "k"), ("sign_method", "hmacsha256")]);
        assert_eq!(SignMethod::from_params(&p), Ok(SignMethod::HmacSha256));
        assert_eq!(string_to_sign(&p), "app_keyksign_methodhmacsha256");
        assert_eq!(sign("s", &p).unwrap(), hmac_sha256_sign("s", &p));
        p.insert("sign_method".into(), "sha1".into());
        assert!(sign("s", &p).is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("2021-05-07 09:20:39.683+0800"), Some(1_620_350_439_683));
        assert_eq!(parse_timestamp("2019-06-27 15:41:49"), Some(1_561_621_309_000));
        assert_eq!(parse_timestamp("2019-06-27 07:41:49.000+0000"), Some(1_561_621_309_000));
        // `+` that was not percent-encoded arrives as a space.
        assert_eq!(parse_timestamp("2021-05-07 09:20:39.683 0800"), None);
        assert_eq!(parse_timestamp("2021-02-29 00:00:00"), None);
        assert_eq!(parse_timestamp("2021-05-07T09:20:39"), None);
        assert_eq!(parse_timestamp("1620350439683"), None);
        assert_eq!(format_timestamp(1_620_350_439_683, true), "2021-05-07 09:20:39.683+0800");
        assert_eq!(format_timestamp(1_561_621_309_000, false), "2019-06-27 15:41:49");
        for ms in [0, 951_782_400_000, 1_709_164_800_123, 4_102_444_799_999] {
            assert_eq!(parse_timestamp(&format_timestamp(ms, true)), Some(ms));
        }
    }
}
