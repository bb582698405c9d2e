//! Reading the platform's loosely typed JSON fields.
//!
//! Douyin sends ids as JSON numbers in some messages and as strings in others, and its ids
//! exceed 2^53, so nothing here ever goes through `f64`: integers are read with
//! `Number::as_u64`/`as_i64` (exact) and decimals are parsed from their text.

use huiliu_sdk::Millis;
use huiliu_sdk::time::parse_beijing_datetime;
use serde_json::{Map, Value};

/// A JSON object, the shape of every `data` payload.
pub type Object = Map<String, Value>;

/// Values at or above this are taken as epoch milliseconds rather than seconds: 1e11 seconds is
/// in the year 5138, and 1e11 milliseconds is in 1973, before any Douyin message.
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// The first of `names` present in `obj` with a non-null value.
pub fn field<'a>(obj: &'a Object, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| obj.get(*name).filter(|v| !v.is_null()))
}

/// An id as text: a non-empty string (trimmed) or a non-negative integer of any size up to
/// `u64::MAX`. Anything else, a float included, is not an id: a float may already have lost
/// digits.
pub fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) => n.as_u64().map(|u| u.to_string()),
        _ => None,
    }
}

/// Free text: a string as is; a number or a structure as its compact JSON text (so an
/// unexpected shape is still shown, not dropped). `None` for null.
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A non-empty string field (trimmed).
pub fn non_empty(value: &Value) -> Option<String> {
    value.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// An integer: a JSON integer, or a string of ASCII digits with an optional sign.
pub fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_integer(s.trim()),
        _ => None,
    }
}

fn parse_integer(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A small non-negative level (`fans_level`): anything missing, negative or unreadable is 0.
pub fn level(value: Option<&Value>) -> u32 {
    value.and_then(integer).and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

/// An amount in fen. Douyin sends amounts as integer fen (`pay_amount: 9900`); a value with a
/// decimal point (`"99.00"`, `99.5`) is read as yuan and converted exactly.
pub fn fen(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| yuan_to_fen(&n.to_string())),
        Value::String(s) => {
            let s = s.trim();
            if s.contains('.') { yuan_to_fen(s) } else { parse_integer(s) }
        }
        _ => None,
    }
}

/// `"99.00"` → 9900, `"-0.5"` → -50, `"3"` → 300. More than two decimals are accepted only when
/// the extra digits are zeros (no silent rounding of money).
pub fn yuan_to_fen(s: &str) -> Option<i64> {
    let s = s.trim();
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(frac) {
        return None;
    }
    let (cents, rest) = frac.split_at(frac.len().min(2));
    if rest.bytes().any(|b| b != b'0') {
        return None;
    }
    let cents: i64 = format!("{cents:0<2}").parse().ok()?;
    let fen = whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(cents)?;
    Some(if negative { -fen } else { fen })
}

/// A point in time: Unix seconds (Douyin's convention), Unix milliseconds (values ≥ 1e11), as
/// a number or a digit string, or `yyyy-MM-dd HH:mm:ss` Beijing time.
pub fn time_ms(value: &Value) -> Option<Millis> {
    if let Some(n) = integer(value) {
        if n < 0 {
            return None;
        }
        return if n >= MILLIS_THRESHOLD { Some(n) } else { n.checked_mul(1000) };
    }
    value.as_str().and_then(parse_beijing_datetime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_keep_every_digit() {
        // 2^63 + 1: beyond i64, within u64; would round as an f64.
        let v: Value = serde_json::from_str("9223372036854775809").unwrap();
        assert_eq!(id_text(&v).as_deref(), Some("9223372036854775809"));
        assert_eq!(id_text(&json!(" 4781320682406083640 ")).as_deref(), Some("4781320682406083640"));
        assert_eq!(id_text(&json!(12)).as_deref(), Some("12"));
        for bad in [json!(""), json!("  "), json!(1.5), json!(-3), json!(null), json!([1]), json!({})] {
            assert_eq!(id_text(&bad), None, "{bad}");
        }
        // Larger than u64: serde_json keeps it as a float, which is not an id.
        let huge: Value = serde_json::from_str("123456789012345678901234").unwrap();
        assert_eq!(id_text(&huge), None);
    }

    #[test]
    fn amounts_in_fen_without_floats() {
        assert_eq!(fen(&json!(9900)), Some(9900));
        assert_eq!(fen(&json!("9900")), Some(9900));
        assert_eq!(fen(&json!("99.00")), Some(9900));
        assert_eq!(fen(&json!("99.5")), Some(9950));
        assert_eq!(fen(&json!(99.5)), Some(9950));
        assert_eq!(fen(&json!("0.01")), Some(1));
        assert_eq!(fen(&json!("-1.20")), Some(-120));
        assert_eq!(fen(&json!("12.3400")), Some(1234));
        for bad in [json!("12.345"), json!("abc"), json!(""), json!("."), json!(".5"), json!("1.2.3"), json!(true)] {
            assert_eq!(fen(&bad), None, "{bad}");
        }
        assert_eq!(yuan_to_fen("92233720368547758.07"), Some(i64::MAX));
        assert_eq!(yuan_to_fen("92233720368547758.08"), None);
    }

    #[test]
    fn times_in_seconds_millis_or_beijing_text() {
        assert_eq!(time_ms(&json!(1_451_620_800)), Some(1_451_620_800_000));
        assert_eq!(time_ms(&json!("1451620800")), Some(1_451_620_800_000));
        assert_eq!(time_ms(&json!(1_451_620_800_123_i64)), Some(1_451_620_800_123));
        assert_eq!(time_ms(&json!("2016-01-01 12:00:00")), Some(1_451_620_800_000));
        assert_eq!(time_ms(&json!(-1)), None);
        assert_eq!(time_ms(&json!("yesterday")), None);
        assert_eq!(time_ms(&json!(i64::MAX / 10)), Some(i64::MAX / 10));
    }

    #[test]
    fn levels_never_fail() {
        assert_eq!(level(Some(&json!(3))), 3);
        assert_eq!(level(Some(&json!("2"))), 2);
        assert_eq!(level(Some(&json!(-1))), 0);
        assert_eq!(level(Some(&json!(1e20))), 0);
        assert_eq!(level(None), 0);
    }

    #[test]
    fn first_present_field() {
        let obj = json!({"a": null, "b": 2, "c": 3});
        let obj = obj.as_object().unwrap();
        assert_eq!(field(obj, &["a", "b", "c"]), Some(&json!(2)));
        assert_eq!(field(obj, &["x"]), None);
    }
}
