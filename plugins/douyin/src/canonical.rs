//! The canonical `param_json` text Douyin signs (public convention, PROTOCOLS.md §2.1): object
//! keys sorted recursively (byte order), compact (no whitespace), no HTML escaping, non-ASCII
//! left as UTF-8, `{}` when empty.
//!
//! The order is imposed here rather than inherited from `serde_json::Map`: with serde_json's
//! `preserve_order` feature (which any crate in a build may switch on) a map keeps insertion
//! order, and the signature would silently change.

use std::fmt::Write as _;

use serde_json::Value;

/// The canonical text of `value`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // serde_json prints integers exactly and floats in their shortest round-trip form.
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map.iter()),
    }
}

/// Writes an object with its entries sorted by key, whatever order `entries` come in.
fn write_object<'a>(out: &mut String, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    let mut entries: Vec<_> = entries.collect();
    entries.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

/// A JSON string literal escaping only what JSON requires: `"`, `\` and control characters.
/// `<`, `>`, `&`, `/` and non-ASCII text pass through unchanged.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vector_param_json() {
        // PROTOCOLS.md §2.1 test vector input.
        assert_eq!(canonical_json(&json!({"page": "1", "cid": "12"})), r#"{"cid":"12","page":"1"}"#);
    }

    #[test]
    fn sorts_whatever_order_entries_arrive_in() {
        let (b, a) = (json!(1), json!({"z": true, "y": [3, {"d": null, "c": "x"}]}));
        let (kb, ka) = ("b".to_owned(), "a".to_owned());
        let mut out = String::new();
        write_object(&mut out, [(&kb, &b), (&ka, &a)].into_iter());
        assert_eq!(out, r#"{"a":{"y":[3,{"c":"x","d":null}],"z":true},"b":1}"#);
    }

    #[test]
    fn byte_order_puts_upper_case_first() {
        assert_eq!(canonical_json(&json!({"b": 1, "B": 2, "_": 3, "a": 4})), r#"{"B":2,"_":3,"a":4,"b":1}"#);
    }

    #[test]
    fn compact_without_html_escaping_and_utf8_kept() {
        let v = json!({"content": "<b>你好</b> & \"hi\"\n\\/", "n": 4781320682406083640_u64, "f": 1.5, "e": {}});
        assert_eq!(
            canonical_json(&v),
            "{\"content\":\"<b>你好</b> & \\\"hi\\\"\\n\\\\/\",\"e\":{},\"f\":1.5,\"n\":4781320682406083640}"
        );
        assert_eq!(canonical_json(&json!({})), "{}");
    }

    #[test]
    fn control_characters_are_escaped_like_serde_json() {
        let s: String = (0u8..0x20).map(char::from).chain("\u{7f}é\u{2028}".chars()).collect();
        let mut ours = String::new();
        write_string(&mut ours, &s);
        assert_eq!(ours, serde_json::to_string(&s).unwrap());
        // And the result parses back to the same string.
        assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), s);
    }
}
