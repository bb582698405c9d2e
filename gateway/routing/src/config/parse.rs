//! Reading `routing.toml`: each section and each `[[…]]` entry on its own, with serde's errors
//! located at their dotted key; and the parsers of the values inside (time ranges, dates,
//! message templates) that validation and the calendar share.

use huiliu_domain::ConfigError;

use super::RoutingConfig;

/// Parses and validates the text of `routing.toml`, reporting every problem. `file` names
/// the file in the errors. Each section and each `[[…]]` entry is read on its own, so one
/// bad entry does not hide the problems of the others; the cross-checks of
/// [`RoutingConfig::validate`] (unknown groups, duplicate ids, …) run once every entry reads.
pub fn parse(text: &str, file: &str) -> Result<RoutingConfig, Vec<ConfigError>> {
    let err = |key: String, message: String| ConfigError { file: file.into(), key, message };
    let table = match config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<config::Map<String, config::Value>>())
    {
        Ok(t) => t,
        Err(e) => return Err(vec![err(String::new(), describe(&e).1)]),
    };
    let mut errors = Vec::new();
    let mut cfg = RoutingConfig::default_empty();
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort();
    for key in keys {
        let value = table.get(key).cloned().unwrap_or_else(|| config::Value::from(""));
        match key.as_str() {
            "routing" => {
                if let Some(v) = section(value, key, &mut errors, file) {
                    cfg.routing = v;
                }
            }
            "messages" => {
                if let Some(v) = section(value, key, &mut errors, file) {
                    cfg.messages = v;
                }
            }
            "category" => cfg.categories = entries(value, key, &mut errors, file),
            "group" => cfg.groups = entries(value, key, &mut errors, file),
            "agent" => cfg.agents = entries(value, key, &mut errors, file),
            "rule" => cfg.rules = entries(value, key, &mut errors, file),
            other => errors.push(err(
                other.into(),
                "unknown section; expected routing, messages, category, group, agent or rule".into(),
            )),
        }
    }
    if !errors.is_empty() {
        // Cross-checks on a partly read file would report phantoms (a group whose entry failed
        // to read would look "unknown" everywhere), so they wait until every entry reads.
        return Err(errors);
    }
    let problems = cfg.validate(file);
    if problems.is_empty() { Ok(cfg) } else { Err(problems) }
}

/// (key, message) of a `config` crate error, without its "for key … in …" decoration.
fn describe(e: &config::ConfigError) -> (Option<String>, String) {
    match e {
        config::ConfigError::Type { unexpected, expected, key, .. } => {
            (key.clone(), format!("invalid type: {unexpected}, expected {expected}"))
        }
        config::ConfigError::At { error, key, .. } => {
            let (inner_key, message) = describe(error);
            (key.clone().or(inner_key), message)
        }
        config::ConfigError::NotFound(key) => (None, format!("missing field `{key}`")),
        config::ConfigError::Message(m) => (None, m.clone()),
        other => (None, other.to_string()),
    }
}

fn located(prefix: &str, e: &config::ConfigError) -> (String, String) {
    let (key, message) = describe(e);
    // The `config` crate writes `target[0]wait_s`; we write `target[0].wait_s`.
    let key = key.map(|k| {
        let mut out = String::with_capacity(k.len() + 4);
        let mut prev = ' ';
        for c in k.chars() {
            if prev == ']' && c != '[' && c != '.' {
                out.push('.');
            }
            out.push(c);
            prev = c;
        }
        out
    });
    let key = match key {
        Some(k) if !k.is_empty() => {
            if k.starts_with('[') {
                format!("{prefix}{k}")
            } else {
                format!("{prefix}.{k}")
            }
        }
        _ => prefix.to_owned(),
    };
    (key, message)
}

fn section<T: serde::de::DeserializeOwned>(
    value: config::Value,
    key: &str,
    errors: &mut Vec<ConfigError>,
    file: &str,
) -> Option<T> {
    match value.try_deserialize::<T>() {
        Ok(v) => Some(v),
        Err(e) => {
            let (key, message) = located(key, &e);
            errors.push(ConfigError { file: file.into(), key, message });
            None
        }
    }
}

fn entries<T: serde::de::DeserializeOwned>(
    value: config::Value,
    key: &str,
    errors: &mut Vec<ConfigError>,
    file: &str,
) -> Vec<T> {
    let items = match value.into_array() {
        Ok(items) => items,
        Err(_) => {
            errors.push(ConfigError {
                file: file.into(),
                key: key.into(),
                message: format!("must be an array of tables ([[{key}]])"),
            });
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if let Some(v) = section(item, &format!("{key}[{i}]"), errors, file) {
            out.push(v);
        }
    }
    out
}

/// Parses `"HH:MM-HH:MM"` into minutes of the day `[start, end)`; `end` may be 24:00.
pub(crate) fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{s}` is not a range like \"09:00-18:00\"");
    let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
    let minutes = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let h: u16 = h.parse().ok()?;
        let m: u16 = m.parse().ok()?;
        (h <= 24 && m <= 59 && (h < 24 || m == 0)).then_some(h * 60 + m)
    };
    let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
    if start >= 24 * 60 {
        return Err(format!("`{s}` starts at 24:00; write it as 00:00 of the next day"));
    }
    if start >= end {
        return Err(format!(
            "`{s}` ends before it starts; a range over midnight is two ranges: \"22:00-24:00\" and next day \"00:00-02:00\""
        ));
    }
    Ok((start, end))
}

/// Parses `YYYY-MM-DD` into days since 1970-01-01.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    // Strict shape first: chrono accepts wider years that we have no use for.
    if s.len() != 10 || s.as_bytes()[4] != b'-' || s.as_bytes()[7] != b'-' {
        return None;
    }
    let date = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some(date.signed_duration_since(epoch).num_days())
}

/// The `{name}` variables in a template, or an error text for unbalanced braces.
pub(crate) fn template_vars(t: &str) -> Result<Vec<&str>, String> {
    let mut vars = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("has a `}` without `{`".into());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| "has a `{` without `}`".to_string())?;
        vars.push(&after[..close]);
        rest = &after[close + 1..];
    }
    Ok(vars)
}
