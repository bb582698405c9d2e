//! The scanner of the architecture check: a lexer that keeps identifiers, `::` and punctuation,
//! then a pass that reads `use` trees, paths, `mod` blocks and `#[cfg(test)]` items. Written by
//! hand because it is ours: it needs only what a module graph needs, not a Rust parser.

// ---------------------------------------------------------------------------------------------
// The scanner: a lexer that keeps identifiers, `::` and punctuation, then a pass that reads
// `use` trees, paths, `mod` blocks and `#[cfg(test)]` items.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
    /// A string, character or number literal (contents dropped).
    Lit,
}

pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) line: usize,
}

pub(crate) fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

pub(crate) fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

pub(crate) fn lex(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips a quoted body from just after the opening `"` to just after the closing one.
    let skip_string = |mut i: usize, line: &mut usize| -> usize {
        while i < c.len() {
            match c[i] {
                '\\' => i += 2,
                '"' => return i + 1,
                ch => {
                    if ch == '\n' {
                        *line += 1;
                    }
                    i += 1;
                }
            }
        }
        i
    };
    while i < c.len() {
        let ch = c[i];
        let start_line = line;
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 1;
            i += 2;
            while i < c.len() && depth > 0 {
                if c[i] == '\n' {
                    line += 1;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(i + 1, &mut line);
            out.push(Token { tok: Tok::Lit, line: start_line });
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped character literal: skip the escape, then up to the closing quote.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(Token { tok: Tok::Lit, line });
            } else if at(i + 2) == '\'' {
                i += 3;
                out.push(Token { tok: Tok::Lit, line });
            } else {
                // A lifetime or label.
                i += 1;
                while i < c.len() && is_ident_continue(c[i]) {
                    i += 1;
                }
            }
        } else if is_ident_start(ch) {
            let start = i;
            while i < c.len() && is_ident_continue(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            if matches!(word.as_str(), "r" | "br" | "cr") && matches!(at(i), '"' | '#') {
                let mut j = i;
                while at(j) == '#' {
                    j += 1;
                }
                let hashes = j - i;
                if at(j) == '"' {
                    // A raw string: up to `"` followed by as many `#`.
                    j += 1;
                    while j < c.len() {
                        if c[j] == '\n' {
                            line += 1;
                        }
                        if c[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                            j += 1 + hashes;
                            break;
                        }
                        j += 1;
                    }
                    i = j;
                    out.push(Token { tok: Tok::Lit, line: start_line });
                    continue;
                }
                if word == "r" && hashes == 1 && is_ident_start(at(j)) {
                    // A raw identifier, `r#type`.
                    let s = j;
                    while j < c.len() && is_ident_continue(c[j]) {
                        j += 1;
                    }
                    i = j;
                    out.push(Token { tok: Tok::Ident(c[s..j].iter().collect()), line });
                    continue;
                }
            }
            if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i = skip_string(i + 1, &mut line);
                out.push(Token { tok: Tok::Lit, line: start_line });
                continue;
            }
            if word == "b" && at(i) == '\'' {
                i += if at(i + 1) == '\\' { 3 } else { 2 };
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(Token { tok: Tok::Lit, line });
                continue;
            }
            out.push(Token { tok: Tok::Ident(word), line });
        } else if ch.is_ascii_digit() {
            while i < c.len() && (is_ident_continue(c[i]) || (c[i] == '.' && at(i + 1).is_ascii_digit())) {
                i += 1;
            }
            out.push(Token { tok: Tok::Lit, line });
        } else if ch == ':' && at(i + 1) == ':' {
            out.push(Token { tok: Tok::Sep, line });
            i += 2;
        } else {
            out.push(Token { tok: Tok::Punct(ch), line });
            i += 1;
        }
    }
    out
}

/// A path found in a file, as written.
pub(crate) struct RawRef {
    /// Inline (non-test) `mod` blocks around it, innermost last.
    pub(crate) inline: Vec<String>,
    pub(crate) path: Vec<String>,
    pub(crate) line: usize,
    pub(crate) in_use: bool,
}

#[derive(Default)]
pub(crate) struct FileScan {
    pub(crate) refs: Vec<RawRef>,
    /// `#[cfg(test)] mod x;` declarations.
    pub(crate) test_children: Vec<String>,
    /// The file's module-level `use` bindings: name -> path as written.
    pub(crate) bindings: Vec<(String, Vec<String>)>,
    /// `#![cfg(test)]` at the top.
    pub(crate) test_only_file: bool,
}

pub(crate) fn ident(t: Option<&Token>) -> Option<&str> {
    match t {
        Some(Token { tok: Tok::Ident(s), .. }) => Some(s),
        _ => None,
    }
}

pub(crate) fn punct(t: Option<&Token>, p: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(c), .. }) if *c == p)
}

pub(crate) fn sep(t: Option<&Token>) -> bool {
    matches!(t, Some(Token { tok: Tok::Sep, .. }))
}

/// The index just past the bracket group opening at `i` (`(`, `[` or `{`).
pub(crate) fn skip_group(toks: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < toks.len() {
        match toks[i].tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// The index just past the item starting at `i`: its `;` or its closing `}` at depth 0.
pub(crate) fn skip_item(toks: &[Token], mut i: usize) -> usize {
    while i < toks.len() {
        match toks[i].tok {
            Tok::Punct(';') => return i + 1,
            Tok::Punct('{') => return skip_group(toks, i),
            Tok::Punct('(' | '[') => i = skip_group(toks, i),
            Tok::Punct('}') => return i, // the enclosing block ends: not ours to eat
            _ => i += 1,
        }
    }
    i
}

pub(crate) fn scan_file(toks: &[Token], lib_prefix: Option<&str>) -> FileScan {
    let mut scan = FileScan::default();
    let mut depth = 0usize;
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut cfg_test = false;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match &t.tok {
            Tok::Punct('#') => {
                let inner = punct(toks.get(i + 1), '!');
                let open = if inner { i + 2 } else { i + 1 };
                if !punct(toks.get(open), '[') {
                    i += 1;
                    continue;
                }
                let end = skip_group(toks, open);
                let body: Vec<&Tok> = toks[open + 1..end.saturating_sub(1)].iter().map(|t| &t.tok).collect();
                let is_cfg_test =
                    body == [&Tok::Ident("cfg".into()), &Tok::Punct('('), &Tok::Ident("test".into()), &Tok::Punct(')')];
                if is_cfg_test {
                    if inner && depth == 0 {
                        scan.test_only_file = true;
                        return scan;
                    }
                    cfg_test = true;
                }
                i = end;
                continue;
            }
            _ if cfg_test => {
                // The item under `#[cfg(test)]`: note `mod x;`, skip it whole.
                let mut j = i;
                while matches!(ident(toks.get(j)), Some("pub" | "crate" | "super" | "in" | "self"))
                    || punct(toks.get(j), '(')
                    || punct(toks.get(j), ')')
                {
                    j += 1;
                }
                if ident(toks.get(j)) == Some("mod")
                    && let Some(name) = ident(toks.get(j + 1))
                    && punct(toks.get(j + 2), ';')
                {
                    scan.test_children.push(name.to_owned());
                }
                cfg_test = false;
                i = skip_item(toks, i);
                continue;
            }
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(word) if word == "mod" => {
                if let Some(name) = ident(toks.get(i + 1))
                    && punct(toks.get(i + 2), '{')
                {
                    inline.push((name.to_owned(), depth));
                    i += 2;
                    continue;
                }
            }
            Tok::Ident(word) if word == "use" => {
                let mut j = i + 1;
                let mut leaves = Vec::new();
                parse_use_tree(toks, &mut j, Vec::new(), &mut leaves);
                for (path, binding) in leaves {
                    if path.is_empty() {
                        continue;
                    }
                    if inline.is_empty() && depth == 0 && binding != "*" && binding != "_" {
                        scan.bindings.push((binding, path.clone()));
                    }
                    scan.refs.push(RawRef {
                        inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                        path,
                        line: t.line,
                        in_use: true,
                    });
                }
                while j < toks.len() && !punct(toks.get(j), ';') {
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            Tok::Ident(word)
                if (word == "crate" || word == "super" || word == "self" || Some(word.as_str()) == lib_prefix)
                    && sep(toks.get(i + 1))
                    && !(i > 0 && (punct(toks.get(i - 1), '$') || sep(toks.get(i - 1))))
                    && !(i > 0 && ident(toks.get(i - 1)) == Some("in")) =>
            {
                let mut path = vec![word.clone()];
                let mut j = i + 1;
                while sep(toks.get(j))
                    && let Some(next) = ident(toks.get(j + 1))
                {
                    path.push(next.to_owned());
                    j += 2;
                }
                scan.refs.push(RawRef {
                    inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                    path,
                    line: t.line,
                    in_use: false,
                });
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// Expands a `use` tree into (path, bound name) leaves; a glob binds `*`.
pub(crate) fn parse_use_tree(
    toks: &[Token],
    i: &mut usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    if sep(toks.get(*i)) {
        *i += 1; // a leading `::`
    }
    loop {
        match toks.get(*i).map(|t| &t.tok) {
            Some(Tok::Ident(segment)) => {
                *i += 1;
                if sep(toks.get(*i)) {
                    prefix.push(segment.clone());
                    *i += 1;
                    continue;
                }
                let (path, mut binding) = if segment == "self" {
                    (prefix.clone(), prefix.last().cloned().unwrap_or_default())
                } else {
                    ([prefix.clone(), vec![segment.clone()]].concat(), segment.clone())
                };
                if ident(toks.get(*i)) == Some("as")
                    && let Some(alias) = ident(toks.get(*i + 1))
                {
                    binding = alias.to_owned();
                    *i += 2;
                }
                out.push((path, binding));
                return;
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push((prefix, "*".into()));
                return;
            }
            Some(Tok::Punct('{')) => {
                *i += 1;
                while *i < toks.len() && !punct(toks.get(*i), '}') {
                    let before = *i;
                    parse_use_tree(toks, i, prefix.clone(), out);
                    if punct(toks.get(*i), ',') {
                        *i += 1;
                    } else if *i == before {
                        *i += 1; // something unexpected: move on
                    }
                }
                *i += 1;
                return;
            }
            _ => return,
        }
    }
}
