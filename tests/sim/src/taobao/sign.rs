//! TOP request signing, the TMC CONNECT signature and Beijing-time conversions, written from
//! PROTOCOLS.md §1.1–1.2 alone (no code shared with the connector).

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// The three TOP `sign_method` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    Md5,
    HmacMd5,
    HmacSha256,
}

impl SignMethod {
    /// Parses the `sign_method` parameter; TOP's default when it is absent is `md5`.
    pub fn parse(value: Option<&str>) -> Option<SignMethod> {
        match value {
            None | Some("") | Some("md5") => Some(SignMethod::Md5),
            Some("hmac") => Some(SignMethod::HmacMd5),
            Some("hmac-sha256") => Some(SignMethod::HmacSha256),
            Some(_) => None,
        }
    }
}

/// The string TOP signs: every parameter except `sign`, empty values dropped, sorted by name in
/// byte order, concatenated as `name1value1name2value2…`.
pub fn top_string_to_sign<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let sorted: BTreeMap<&str, &str> = params.into_iter().filter(|(k, v)| *k != "sign" && !v.is_empty()).collect();
    let mut s = String::new();
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

/// The TOP signature (upper-case hex) of `params` with `secret`.
pub fn top_sign<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>, secret: &str, method: SignMethod) -> String {
    let s = top_string_to_sign(params);
    match method {
        SignMethod::Md5 => {
            let mut h = Md5::new();
            h.update(secret.as_bytes());
            h.update(s.as_bytes());
            h.update(secret.as_bytes());
            hex::encode_upper(h.finalize())
        }
        SignMethod::HmacMd5 => {
            let mut m = <Hmac<Md5> as KeyInit>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
            m.update(s.as_bytes());
            hex::encode_upper(m.finalize().into_bytes())
        }
        SignMethod::HmacSha256 => {
            let mut m =
                <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
            m.update(s.as_bytes());
            hex::encode_upper(m.finalize().into_bytes())
        }
    }
}

/// The TMC CONNECT signature:
/// `upper(hex(MD5(secret + "app_key"+app_key + "group_name"+group + "timestamp"+ts + secret)))`.
pub fn tmc_connect_sign(secret: &str, app_key: &str, group_name: &str, timestamp: &str) -> String {
    let mut h = Md5::new();
    for part in [secret, "app_key", app_key, "group_name", group_name, "timestamp", timestamp, secret] {
        h.update(part.as_bytes());
    }
    hex::encode_upper(h.finalize())
}

const BEIJING_OFFSET_MS: i64 = 8 * 3600 * 1000;
const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Epoch milliseconds as `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8).
pub fn beijing_string(epoch_ms: i64) -> String {
    let local = epoch_ms + BEIJING_OFFSET_MS;
    let days = local.div_euclid(DAY_MS);
    let secs = local.rem_euclid(DAY_MS) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Parses `yyyy-MM-dd HH:mm:ss` (Beijing time) into epoch milliseconds; None unless exactly that
/// shape with valid field ranges.
pub fn parse_beijing(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let local = days_from_civil(y, mo, d) * DAY_MS + ((h * 60 + mi) * 60 + se) * 1000;
    Some(local - BEIJING_OFFSET_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PROTOCOLS.md §1.1 / vectors.json `taobao_top`.
    fn vector_params(sign_method: &str) -> Vec<(&'static str, String)> {
        vec![
            ("app_key", "12345678".into()),
            ("fields", "num_iid,title,nick,price,num".into()),
            ("format", "json".into()),
            ("method", "taobao.item.seller.get".into()),
            ("num_iid", "11223344".into()),
            ("session", "test".into()),
            ("sign_method", sign_method.into()),
            ("timestamp", "2016-01-01 12:00:00".into()),
            ("v", "2.0".into()),
        ]
    }

    #[test]
    fn top_vectors() {
        for (method_name, method, want) in [
            ("md5", SignMethod::Md5, "66987CB115214E59E6EC978214934FB8"),
            ("hmac", SignMethod::HmacMd5, "D56D7858309C31B6251083A874D48273"),
            ("hmac-sha256", SignMethod::HmacSha256, "04DB15AD0774D5CFCE2C837DE43E3FCEA9011ED74F3038FB6AB5F3C4CEA119E8"),
        ] {
            let params = vector_params(method_name);
            let got = top_sign(params.iter().map(|(k, v)| (*k, v.as_str())), "helloworld", method);
            assert_eq!(got, want, "sign_method {method_name}");
            assert_eq!(SignMethod::parse(Some(method_name)), Some(method));
        }
    }

    #[test]
    fn top_sign_ignores_sign_and_empty_values_and_sorts_bytewise() {
        let base = vector_params("md5");
        let mut noisy = base.clone();
        noisy.push(("sign", "WHATEVER".into()));
        noisy.push(("partner_id", String::new()));
        noisy.reverse();
        let a = top_sign(base.iter().map(|(k, v)| (*k, v.as_str())), "helloworld", SignMethod::Md5);
        let b = top_sign(noisy.iter().map(|(k, v)| (*k, v.as_str())), "helloworld", SignMethod::Md5);
        assert_eq!(a, b);
        // Byte order: upper case sorts before lower case, `_` (0x5F) before `a`.
        assert_eq!(top_string_to_sign([("b", "2"), ("B", "1"), ("a_b", "3"), ("ab", "4")]), "B1a_b3ab4b2");
        assert_eq!(SignMethod::parse(None), Some(SignMethod::Md5));
        assert_eq!(SignMethod::parse(Some("sha1")), None);
    }

    #[test]
    fn tmc_vector() {
        // PROTOCOLS.md §1.2 / vectors.json `taobao_tmc_connect`.
        assert_eq!(
            tmc_connect_sign("helloworld", "12345678", "default", "1451620800000"),
            "2E03D1348D7B65A366F8DB4BD1435983"
        );
    }

    #[test]
    fn beijing_time() {
        // The TMC vector's timestamp is the TOP vector's timestamp.
        assert_eq!(parse_beijing("2016-01-01 12:00:00"), Some(1_451_620_800_000));
        assert_eq!(beijing_string(1_451_620_800_000), "2016-01-01 12:00:00");
        assert_eq!(beijing_string(1_451_620_800_999), "2016-01-01 12:00:00");
        // Crossing midnight and a leap day in UTC+8.
        assert_eq!(parse_beijing("2024-02-29 07:59:59"), Some(1_709_164_799_000));
        assert_eq!(beijing_string(1_709_164_799_000), "2024-02-29 07:59:59");
        assert_eq!(beijing_string(0), "1970-01-01 08:00:00");
        for ms in [0, 951_782_400_000, 1_700_000_000_123, 4_102_444_800_000] {
            assert_eq!(parse_beijing(&beijing_string(ms)), Some(ms - ms % 1000));
        }
        for bad in ["2016-01-01T12:00:00", "2016-1-01 12:00:00", "2023-02-29 00:00:00", "2016-01-01 24:00:00", ""] {
            assert_eq!(parse_beijing(bad), None, "{bad}");
        }
        assert_eq!(parse_beijing("1451620800000"), None);
    }
}
