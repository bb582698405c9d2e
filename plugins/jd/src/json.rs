//! Lenient readers for JSON values JD sends in more than one shape.
//!
//! JD ids exceed 2^53 and arrive as JSON numbers or strings; codes arrive as `"0"` or `0`.
//! Ids are never read through `f64`: an integer is printed from its exact `u64`/`i64`, and a
//! number with a fraction or exponent is refused instead of rounded.

use serde_json::Value;

/// An id as text: a non-empty string (trimmed) or an integer number, printed exactly.
pub fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// An integer given as a number or a numeric string.
pub fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A code as text (`"0"`, `0` → `"0"`); any other scalar is printed as is.
pub fn code_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A free-text field: a string, or any other scalar printed (some JD fields flip between
/// `"123"` and `123`).
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `value` shortened to at most `max` bytes on a character boundary, for log lines.
pub fn clip(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

/// A JSON value printed for a log line: strings without quotes, others compact.
pub fn display(value: &Value, max: usize) -> String {
    match value {
        Value::String(s) => clip(s, max),
        other => clip(&other.to_string(), max),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_beyond_2_pow_53_stay_exact() {
        let v: Value =
            serde_json::from_str(r#"{"a":9007199254740993,"b":"9007199254740993","c":18446744073709551615}"#)
                .expect("valid JSON");
        assert_eq!(id_text(&v["a"]).as_deref(), Some("9007199254740993"));
        assert_eq!(id_text(&v["b"]).as_deref(), Some("9007199254740993"));
        assert_eq!(id_text(&v["c"]).as_deref(), Some("18446744073709551615"));
    }

    #[test]
    fn ids_refuse_floats_and_empties() {
        assert_eq!(id_text(&json!(1.5)), None);
        assert_eq!(id_text(&json!(1e20)), None);
        assert_eq!(id_text(&json!("  ")), None);
        assert_eq!(id_text(&json!(null)), None);
        assert_eq!(id_text(&json!(-7)).as_deref(), Some("-7"));
    }

    #[test]
    fn ints_and_codes() {
        assert_eq!(int(&json!("42")), Some(42));
        assert_eq!(int(&json!(42)), Some(42));
        assert_eq!(int(&json!("4x")), None);
        assert_eq!(code_text(&json!(0)).as_deref(), Some("0"));
        assert_eq!(code_text(&json!(" 19 ")).as_deref(), Some("19"));
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("汇流汇流", 4), "汇…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
