//! Edits of `users.toml` made by the API (a password change, a user added, disabled or given a
//! new password), written so that the operator's file stays theirs: only the `[[user]]` block
//! concerned changes, comments and the other blocks are kept byte for byte. The result is
//! parsed and checked before it is written (atomically: a temporary file renamed over it).

use std::path::Path;

use super::auth::{UserConfig, parse_users};

use huiliu_domain::text::toml_string as quoted;

/// The `[[user]]` block of `user`, as written for a new user.
fn block(u: &UserConfig) -> String {
    let mut out = format!("[[user]]\nid = {}\npassword_hash = {}\n", quoted(&u.id), quoted(&u.password_hash));
    if let Some(name) = &u.name {
        out.push_str(&format!("name = {}\n", quoted(name)));
    }
    if let Some(role) = u.role {
        out.push_str(&format!("role = {}\n", quoted(role.as_str())));
    }
    if !u.groups.is_empty() {
        let groups: Vec<String> = u.groups.iter().map(|g| quoted(g)).collect();
        out.push_str(&format!("groups = [{}]\n", groups.join(", ")));
    }
    if u.disabled {
        out.push_str("disabled = true\n");
    }
    out
}

/// A whole file for `users` (the demo writes its users so).
pub fn render(users: &[UserConfig]) -> String {
    let mut out = String::from("# Workbench users (written by huiliu; edits by hand are kept).\n");
    for u in users {
        out.push('\n');
        out.push_str(&block(u));
    }
    out
}

/// `text` with `user` appended.
pub fn append(text: &str, user: &UserConfig) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&block(user));
    out
}

/// `text` with `key = value` (a TOML value, already written) set in the `[[user]]` block whose
/// position among the blocks is `index`: the key's line is replaced, or added after the
/// block's header. `None` when there is no such block.
pub fn set(text: &str, index: usize, key: &str, value: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let headers: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| l.trim() == "[[user]]").map(|(i, _)| i).collect();
    let start = *headers.get(index)?;
    // The block ends at the next table header of any kind.
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, l)| l.trim_start().starts_with('['))
        .map_or(lines.len(), |(i, _)| i);
    let is_key = |l: &str| {
        let t = l.trim_start();
        t.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let new_line = format!("{key} = {value}\n");
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    match (start + 1..end).find(|&i| is_key(lines[i])) {
        Some(i) => out[i] = new_line,
        None => {
            if !out[start].ends_with('\n') {
                out[start].push('\n');
            }
            out.insert(start + 1, new_line);
        }
    }
    Some(out.concat())
}

/// Checks `text` as `users.toml` and writes it to `path` atomically; the users it lists.
pub fn write_checked(path: &Path, text: &str) -> Result<Vec<UserConfig>, String> {
    let users = parse_users(text, &path.display().to_string())
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::auth::hash_password;

    #[test]
    fn edits_touch_only_the_block_concerned() {
        let h1 = hash_password("one");
        let h2 = hash_password("two");
        let text = format!(
            "# the team\n[[user]]\nid = \"a01\" # 小美\npassword_hash = \"{h1}\"\n\n# leads\n[[user]]\nid = \"a04\"\npassword_hash = \"{h1}\"\nrole = \"lead\"\n"
        );
        let edited = set(&text, 1, "password_hash", &quoted(&h2)).unwrap();
        assert!(
            edited.starts_with(&format!(
                "# the team\n[[user]]\nid = \"a01\" # 小美\npassword_hash = \"{h1}\"\n\n# leads\n"
            )),
            "{edited}"
        );
        assert!(edited.contains(&format!("id = \"a04\"\npassword_hash = \"{h2}\"\nrole = \"lead\"\n")), "{edited}");
        let disabled = set(&edited, 0, "disabled", "true").unwrap();
        let users = parse_users(&disabled, "users.toml").unwrap();
        assert!(users[0].disabled && !users[1].disabled);
        assert_eq!(users[1].password_hash, h2);
        assert!(set(&text, 2, "disabled", "true").is_none());
        let new = UserConfig {
            id: "a09".into(),
            password_hash: h2.clone(),
            name: Some("小\"新\"\\\n".into()),
            role: None,
            groups: vec!["售前".into()],
            disabled: false,
        };
        let users = parse_users(&append(&disabled, &new), "users.toml").unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(users[2], new);
        assert_eq!(parse_users(&render(&users), "u").unwrap(), users);
    }
}
