//! CSV import in the layout of a 千牛 knowledge export: a header row naming the columns
//! 问题 (the standard question), 相似问法 (variants, one per line or separated by `|`, `｜`,
//! `；` or `;`) and 答案 (the answer); other columns are ignored. UTF-8 (a BOM is skipped).

use huiliu_domain::ConfigError;

use crate::config::{Conditions, Entry};

/// Reads a 千牛-style CSV into entries with ids `{prefix}-{row}` (row 1 = the first data row).
pub fn parse_csv(text: &str, file: &str, prefix: &str) -> Result<Vec<Entry>, Vec<ConfigError>> {
    let err = |key: String, message: String| ConfigError { file: file.into(), key, message };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows = records(text).map_err(|(line, m)| vec![err(format!("line {line}"), m)])?;
    let Some((header, data)) = rows.split_first() else {
        return Err(vec![err(String::new(), "empty file: expected a header row 问题,相似问法,答案".into())]);
    };
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(q), Some(a)) = (column("问题"), column("答案")) else {
        return Err(vec![err(
            "header".into(),
            "the header must name the columns 问题 and 答案 (相似问法 optional)".into(),
        )]);
    };
    let v = column("相似问法");
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, row) in data.iter().enumerate() {
        let cell = |c: usize| row.get(c).map(|s| s.trim()).unwrap_or("");
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let (question, answer) = (cell(q), cell(a));
        if question.is_empty() || answer.is_empty() {
            errors.push(err(format!("row {}", i + 1), "问题 and 答案 must not be empty".into()));
            continue;
        }
        let variants = v
            .map(|c| {
                cell(c)
                    .split(['\n', '|', '｜', '；', ';'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        entries.push(Entry {
            id: format!("{prefix}-{}", i + 1),
            question: question.into(),
            variants,
            answer: answer.into(),
            category: None,
            when: Conditions::default(),
            attach: Vec::new(),
        });
    }
    if errors.is_empty() { Ok(entries) } else { Err(errors) }
}

/// RFC 4180 records: quoted fields may hold commas, quotes (doubled) and line breaks.
fn records(text: &str) -> Result<Vec<Vec<String>>, (usize, String)> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut field_started = false;
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if !field_started => {
                quoted = true;
                field_started = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                field_started = false;
            }
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                field_started = false;
            }
            _ => {
                field.push(c);
                field_started = true;
            }
        }
    }
    if quoted {
        return Err((line, "a quoted field is not closed".into()));
    }
    if field_started || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// Writes entries as `[[entry]]` tables, for `huiliu faq import` (to paste into faq.toml).
pub fn to_toml(entries: &[Entry]) -> String {
    let quote = huiliu_domain::text::toml_string;
    let mut out = String::new();
    for e in entries {
        out.push_str("[[entry]]\n");
        out.push_str(&format!("id = {}\n", quote(&e.id)));
        out.push_str(&format!("question = {}\n", quote(&e.question)));
        if !e.variants.is_empty() {
            let v: Vec<String> = e.variants.iter().map(|s| quote(s)).collect();
            out.push_str(&format!("variants = [{}]\n", v.join(", ")));
        }
        out.push_str(&format!("answer = {}\n", quote(&e.answer)));
        if let Some(c) = &e.category {
            out.push_str(&format!("category = {}\n", quote(c)));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = "\u{feff}问题,相似问法,答案,更新时间\n\
什么时候发货,\"多久发货\n几天能发\",\"亲，48小时内发货，\"\"现货\"\"当天发\",2024-01-01\n\
包邮吗,运费多少|免运费吗；偏远地区包邮吗,全国包邮（偏远地区除外）,\n\
\n";

    #[test]
    fn a_qianniu_export_becomes_entries() {
        let entries = parse_csv(EXPORT, "export.csv", "qn").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "qn-1");
        assert_eq!(entries[0].variants, ["多久发货", "几天能发"]);
        assert_eq!(entries[0].answer, "亲，48小时内发货，\"现货\"当天发");
        assert_eq!(entries[1].variants, ["运费多少", "免运费吗", "偏远地区包邮吗"]);
    }

    #[test]
    fn the_toml_written_reads_back_the_same() {
        let entries = parse_csv(EXPORT, "export.csv", "qn").unwrap();
        let text = to_toml(&entries);
        let cfg = crate::config::parse(&text, "out.toml").unwrap();
        assert_eq!(cfg.entry, entries);
    }

    #[test]
    fn missing_columns_and_empty_cells_are_reported() {
        assert_eq!(parse_csv("标题,内容\na,b\n", "x.csv", "qn").unwrap_err()[0].key, "header");
        let errors = parse_csv("问题,答案\n,b\nq,\n", "x.csv", "qn").unwrap_err();
        assert_eq!(errors.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["row 1", "row 2"]);
        assert!(parse_csv("问题,答案\n\"q,a\n", "x.csv", "qn").is_err());
    }
}
