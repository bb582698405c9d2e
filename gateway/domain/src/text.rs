//! Text rules shared by the API's contract and the services that enforce it.

/// A text that is not blank has a character other than a space, a tab, a line break or the
/// ideographic space (U+3000, what Chinese input methods type). As a JSON Schema `pattern`
/// (unanchored: "contains such a character"), so the API document and the checks agree exactly.
pub const NOT_BLANK: &str = "[^ \\t\\n\\r\u{3000}]";

/// Whether `s` is blank by [`NOT_BLANK`]'s definition.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{3000}'))
}

#[cfg(test)]
mod tests {
    use super::*;

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
