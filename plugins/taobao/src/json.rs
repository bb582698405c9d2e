//! Reading platform JSON without losing precision: ids and amounts never pass through `f64`.
//!
//! TOP sends ids as JSON numbers above 2^53 or as strings, and money as decimal yuan strings
//! (`"99.00"`). serde_json keeps integers up to `u64::MAX` exact in a `Number`; anything it could
//! only hold as a float is refused here rather than rounded.

use serde_json::Value;

/// An id as text: a non-empty string, or an integer number (exact). Floats are refused: a
/// float id has already lost digits.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// A non-empty string field.
pub(crate) fn text<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An integer given as a number or a decimal string (`"27"`, `27`).
pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Yuan (`"99.00"`, `"99.5"`, `99`) to fen, exactly. `None` for anything else: negative,
/// more than two significant decimals, overflow, or not a number.
pub(crate) fn amount_fen(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => yuan_to_fen(s),
        // `Number`'s text is its shortest exact decimal form (`19.99`, `100`), so it parses
        // the same way as the string form without going through f64 arithmetic.
        Value::Number(n) => yuan_to_fen(&n.to_string()),
        _ => None,
    }
}

fn yuan_to_fen(s: &str) -> Option<i64> {
    let s = s.trim();
    let (int_part, frac_part) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) {
        return None;
    }
    // Trailing zeros beyond the fen are harmless ("99.000"); other digits would be rounding.
    let frac_part = frac_part.trim_end_matches('0');
    if frac_part.len() > 2 {
        return None;
    }
    let yuan: i64 = int_part.parse().ok()?;
    let fen: i64 = format!("{frac_part:0<2}").parse().ok()?;
    yuan.checked_mul(100)?.checked_add(fen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_exact_from_numbers_and_strings() {
        let big: Value = serde_json::from_str("{\"a\":9007199254740993,\"b\":\"18446744073709551615\"}").unwrap();
        assert_eq!(id_text(&big["a"]).as_deref(), Some("9007199254740993"));
        assert_eq!(id_text(&big["b"]).as_deref(), Some("18446744073709551615"));
        assert_eq!(id_text(&json!(-5)).as_deref(), Some("-5"));
        assert_eq!(id_text(&json!(" abc ")).as_deref(), Some("abc"));
        // Larger than u64: serde_json can only hold it as a float, so it is refused.
        let huge: Value = serde_json::from_str("18446744073709551616").unwrap();
        assert_eq!(id_text(&huge), None);
        for v in [json!(1.5), json!(""), json!(null), json!(true), json!([1])] {
            assert_eq!(id_text(&v), None, "{v}");
        }
    }

    #[test]
    fn amounts_are_exact() {
        for (v, want) in [
            (json!("99.00"), Some(9900)),
            (json!("99"), Some(9900)),
            (json!("99.5"), Some(9950)),
            (json!("0.01"), Some(1)),
            (json!("19.990"), Some(1999)),
            (json!(" 1.20 "), Some(120)),
            (json!(19.99), Some(1999)),
            (json!(100), Some(10000)),
            (json!("92233720368547758.07"), Some(i64::MAX)),
            (json!("92233720368547758.08"), None),
            (json!("0.001"), None),
            (json!("-1.00"), None),
            (json!("1e2"), None),
            (json!(".5"), None),
            (json!("1.2.3"), None),
            (json!(""), None),
            (json!(null), None),
        ] {
            assert_eq!(amount_fen(&v), want, "{v}");
        }
    }

    #[test]
    fn ints_from_numbers_and_strings() {
        assert_eq!(int(&json!(27)), Some(27));
        assert_eq!(int(&json!("27")), Some(27));
        assert_eq!(int(&json!("x")), None);
        assert_eq!(int(&json!(2.5)), None);
    }
}
