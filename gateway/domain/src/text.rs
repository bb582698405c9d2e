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
    fn blank_means_only_the_listed_spaces() {
        for s in ["", " ", "\t\n", "\u{3000}", " \r\n\u{3000} "] {
            assert!(is_blank(s), "{s:?}");
        }
        for s in ["x", " 好 ", "\u{1c}", "\u{a0}"] {
            assert!(!is_blank(s), "{s:?}");
        }
    }
}
