//! Text rules shared by the API's contract and the services that enforce it.

/// A text that is not blank has a character other than a space, a tab, a line break or the
/// ideographic space (U+3000, what Chinese input methods type). As a JSON Schema `pattern`
/// (unanchored: "contains such a character"), so the API document and the checks agree exactly.
pub const NOT_BLANK: &str = "[^ \\t\\n\\r\u{3000}]";

/// Whether `s` is blank by [`NOT_BLANK`]'s definition.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{3000}'))
}

/// The `{name}` placeholders of a template (quick replies, knowledge-base answers), in order.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// `s` as a TOML basic string (`"…"`, quotes, backslashes and control characters escaped), for
/// the config files the daemon writes (users.toml edits, `huiliu faq import`).
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_in_order_and_an_unclosed_brace_ends_them() {
        assert_eq!(placeholders("亲 {buyer}，订单 {order} 已发货"), ["buyer", "order"]);
        assert_eq!(placeholders("{a}{b} {c"), ["a", "b"]);
        assert!(placeholders("没有").is_empty());
    }

    #[test]
    fn toml_strings_escape_what_toml_requires() {
        assert_eq!(toml_string("小美"), "\"小美\"");
        assert_eq!(toml_string("a\"b\\c\nd\te\u{7f}"), "\"a\\\"b\\\\c\\nd\\te\\u007F\"");
    }

    #[test]
    fn blank_means_only_the_listed_spaces() {
        for s in ["", " ", "\t\n", "\u{3000}", " \r\n\u{3000} "] {
            assert!(is_blank(s), "{s:?}");
        }
        for s in ["x", " 好 ", "\u{1c}", "\u{a0}"] {
            assert!(!is_blank(s), "{s:?}");
        }
    }
}
