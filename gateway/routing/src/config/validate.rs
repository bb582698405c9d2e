//! Validation: every problem in a `routing.toml` that reads, each with its dotted key, checked
//! one section at a time in a fixed order (categories, settings and messages, groups, the
//! fallback group, agents, rules); and the cross-check of shop ids against shops.toml.

use std::collections::BTreeSet;

use huiliu_domain::ConfigError;

use super::parse::{parse_date, parse_range, template_vars};
use super::{CategoryConfig, HoursConfig, Messages, RoutingConfig};

/// Upper bounds that keep every millisecond computation far from overflow.
const MAX_WAIT_S: u64 = 86_400;
const MAX_TTL_S: u64 = 365 * 86_400;

impl RoutingConfig {
    /// Every problem in the configuration, each with its dotted key.
    pub fn validate(&self, file: &str) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut err = |key: String, message: String| errors.push(ConfigError { file: file.into(), key, message });
        let categories = self.effective_categories();
        self.check_categories(&categories, &mut err);
        self.check_settings(&mut err);
        self.check_groups(&mut err);
        self.check_fallback_group(&mut err);
        self.check_agents(&mut err);
        self.check_rules(&categories, &mut err);
        errors
    }

    /// `[[category]]`, and the categories `[routing]` names.
    fn check_categories(&self, categories: &[CategoryConfig], err: &mut impl FnMut(String, String)) {
        let r = &self.routing;
        let mut category_ids = BTreeSet::new();
        for (i, c) in self.categories.iter().enumerate() {
            if !is_id(&c.id) {
                err(format!("category[{i}].id"), format!("`{}` must be letters, digits, `-`, `_` or `.`", c.id));
            }
            if !category_ids.insert(c.id.as_str()) {
                err(format!("category[{i}].id"), format!("duplicate category id `{}`", c.id));
            }
            for (k, w) in c.keywords.iter().enumerate() {
                if w.trim().is_empty() {
                    err(format!("category[{i}].keywords[{k}]"), "empty keyword would match every text".into());
                }
            }
        }
        if !has_category(categories, &r.default_category) {
            err("routing.default_category".into(), format!("unknown category `{}`", r.default_category));
        }
        if !r.open_refund_category.is_empty() && !has_category(categories, &r.open_refund_category) {
            err("routing.open_refund_category".into(), format!("unknown category `{}`", r.open_refund_category));
        }
    }

    /// `[routing]`'s numbers and `[messages]`.
    fn check_settings(&self, err: &mut impl FnMut(String, String)) {
        let r = &self.routing;
        if !(r.aging_rate.is_finite() && r.aging_rate > 0.0 && r.aging_rate <= 1000.0) {
            err(
                "routing.aging_rate".into(),
                format!("{} must be above 0 (so nobody starves) and at most 1000", r.aging_rate),
            );
        }
        if r.sticky_ttl_s > MAX_TTL_S {
            err("routing.sticky_ttl_s".into(), format!("at most {MAX_TTL_S} (one year)"));
        }
        for (key, v) in [
            ("sticky_wait_s", r.sticky_wait_s),
            ("transfer_wait_s", r.transfer_wait_s),
            ("default_handle_time_s", r.default_handle_time_s),
        ] {
            if v > MAX_WAIT_S {
                err(format!("routing.{key}"), format!("{v} is more than {MAX_WAIT_S} (one day)"));
            }
        }
        if r.first_response_limit_s == 0 || r.first_response_limit_s > 3600 {
            err("routing.first_response_limit_s".into(), "must be 1 to 3600".into());
        }
        if r.default_handle_time_s == 0 {
            err("routing.default_handle_time_s".into(), "must be at least 1".into());
        }
        if r.decision_candidates > 1000 {
            err("routing.decision_candidates".into(), "at most 1000".into());
        }
        check_messages(&self.messages, "messages", err);
    }

    /// `[[group]]`: ids, on-duty groups, hours, message overrides, members.
    fn check_groups(&self, err: &mut impl FnMut(String, String)) {
        if self.groups.is_empty() {
            err("group".into(), "at least one [[group]] is needed".into());
        }
        let mut group_ids = BTreeSet::new();
        for (i, g) in self.groups.iter().enumerate() {
            if !is_id(&g.id) {
                err(format!("group[{i}].id"), format!("`{}` must be letters, digits, `-`, `_` or `.`", g.id));
            }
            if !group_ids.insert(g.id.as_str()) {
                err(format!("group[{i}].id"), format!("duplicate group id `{}`", g.id));
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            if let Some(duty) = &g.off_hours_group {
                if duty == &g.id {
                    err(format!("group[{i}].off_hours_group"), "cannot be the group itself".into());
                } else if !self.has_group(duty) {
                    err(format!("group[{i}].off_hours_group"), format!("unknown group `{duty}`"));
                }
            }
            if let Some(h) = &g.hours {
                check_hours(h, &format!("group[{i}].hours"), err);
            }
            let m = &g.messages;
            let overrides = Messages {
                welcome: m.welcome.clone().unwrap_or_default(),
                queue_position: m.queue_position.clone().unwrap_or_default(),
                off_hours: m.off_hours.clone().unwrap_or_default(),
                overflow: m.overflow.clone().unwrap_or_default(),
            };
            check_messages(&overrides, &format!("group[{i}].messages"), err);
            if !self.agents.iter().any(|a| a.groups.contains_key(&g.id)) {
                err(
                    format!("group[{i}]"),
                    format!("no agent works in group `{}`; its conversations would wait forever", g.id),
                );
            }
        }
    }

    /// `routing.fallback_group`, or a catch-all rule in its place.
    fn check_fallback_group(&self, err: &mut impl FnMut(String, String)) {
        let r = &self.routing;
        if let Some(f) = &r.fallback_group {
            if !self.has_group(f) {
                err("routing.fallback_group".into(), format!("unknown group `{f}`"));
            }
        } else if !self.rules.iter().any(|rule| rule.when.is_catch_all()) {
            err(
                "routing.fallback_group".into(),
                "no rule matches every conversation: set a fallback group or end with a rule without [rule.match]"
                    .into(),
            );
        }
    }

    /// `[[agent]]`.
    fn check_agents(&self, err: &mut impl FnMut(String, String)) {
        let mut agent_ids = BTreeSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            let at = |k: &str| format!("agent[{i}].{k}");
            if !is_id(&a.id) {
                err(at("id"), format!("`{}` must be letters, digits, `-`, `_` or `.`", a.id));
            }
            if !agent_ids.insert(a.id.as_str()) {
                err(at("id"), format!("duplicate agent id `{}`", a.id));
            }
            if a.groups.is_empty() {
                err(at("groups"), "an agent must work in at least one group".into());
            }
            for (g, p) in &a.groups {
                if !self.has_group(g) {
                    err(at(&format!("groups.{g}")), format!("unknown group `{g}`"));
                }
                if !(1..=5).contains(p) {
                    err(at(&format!("groups.{g}")), format!("proficiency {p} is out of 1–5"));
                }
            }
            for (shop, account) in &a.accounts {
                if account.trim().is_empty() {
                    err(
                        at(&format!("accounts.{shop}")),
                        "empty account: leave the shop out to use the shop's default".into(),
                    );
                }
            }
            if a.max_sessions == 0 || a.max_sessions > 1000 {
                err(at("max_sessions"), format!("cap {} must be 1 to 1000", a.max_sessions));
            }
            if let Some(shops) = &a.shops {
                if shops.is_empty() {
                    err(at("shops"), "empty: leave the key out to serve every shop".into());
                }
                for (k, s) in shops.iter().enumerate() {
                    if s.trim().is_empty() {
                        err(at(&format!("shops[{k}]")), "empty shop id".into());
                    }
                }
            }
        }
    }

    /// `[[rule]]`: names, reachability, targets, match values.
    fn check_rules(&self, categories: &[CategoryConfig], err: &mut impl FnMut(String, String)) {
        let mut seen_catch_all: Option<usize> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |k: &str| format!("rule[{i}].{k}");
            if rule.name.trim().is_empty() {
                err(at("name"), "a rule needs a name (it appears in every decision)".into());
            }
            if let Some(c) = seen_catch_all {
                err(format!("rule[{i}]"), format!("unreachable: rule[{c}] before it matches every conversation"));
            }
            if rule.when.is_catch_all() && seen_catch_all.is_none() {
                seen_catch_all = Some(i);
            }
            if rule.targets.is_empty() {
                err(at("target"), "a rule needs at least one [[rule.target]]".into());
            }
            if !(-1000..=1000).contains(&rule.priority) {
                err(at("priority"), format!("{} is out of -1000–1000", rule.priority));
            }
            let mut seen = BTreeSet::new();
            for (t, target) in rule.targets.iter().enumerate() {
                let tk = |k: &str| format!("rule[{i}].target[{t}].{k}");
                if !self.has_group(&target.group) {
                    err(tk("group"), format!("unknown group `{}`", target.group));
                } else if !seen.insert((target.group.as_str(), target.min_proficiency)) {
                    err(tk("group"), format!("group `{}` is already a target of this rule", target.group));
                }
                if !(1..=5).contains(&target.min_proficiency) {
                    err(tk("min_proficiency"), format!("{} is out of 1–5", target.min_proficiency));
                }
                if target.wait_s > MAX_WAIT_S {
                    err(tk("wait_s"), format!("{} is more than {MAX_WAIT_S} (one day)", target.wait_s));
                }
            }
            for (k, c) in rule.when.category.iter().enumerate() {
                if !has_category(categories, c) {
                    err(at(&format!("match.category[{k}]")), format!("unknown category `{c}`"));
                }
            }
            for (list, name) in
                [(&rule.when.platform, "platform"), (&rule.when.shop, "shop"), (&rule.when.tags, "tags")]
            {
                for (k, v) in list.iter().enumerate() {
                    if v.trim().is_empty() {
                        err(at(&format!("match.{name}[{k}]")), "empty value".into());
                    }
                }
            }
        }
    }

    fn has_group(&self, id: &str) -> bool {
        self.groups.iter().any(|g| g.id == id)
    }

    /// Problems with shop ids that are not among `known` (the shop ids of shops.toml), for
    /// `huiliu check`: routing.toml alone cannot know them.
    pub fn check_shops(&self, known: &[&str], file: &str) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut check = |key: String, shop: &str| {
            if !known.contains(&shop) {
                errors.push(ConfigError { file: file.into(), key, message: format!("unknown shop `{shop}`") });
            }
        };
        for (i, a) in self.agents.iter().enumerate() {
            for (k, s) in a.shops.iter().flatten().enumerate() {
                check(format!("agent[{i}].shops[{k}]"), s);
            }
            for shop in a.accounts.keys() {
                check(format!("agent[{i}].accounts.{shop}"), shop);
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            for (k, s) in r.when.shop.iter().enumerate() {
                check(format!("rule[{i}].match.shop[{k}]"), s);
            }
        }
        errors
    }
}

fn has_category(categories: &[CategoryConfig], id: &str) -> bool {
    categories.iter().any(|c| c.id == id)
}

/// Letters (any script), digits, `-`, `_`, `.`; 1 to 64 characters.
pub(crate) fn is_id(s: &str) -> bool {
    let n = s.chars().count();
    (1..=64).contains(&n) && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_messages(m: &Messages, prefix: &str, err: &mut impl FnMut(String, String)) {
    let list: [(&str, &str, &[&str]); 4] = [
        ("welcome", &m.welcome, &["agent", "group"]),
        ("queue_position", &m.queue_position, &["position", "wait_minutes", "group"]),
        ("off_hours", &m.off_hours, &["group", "open_time"]),
        ("overflow", &m.overflow, &["group"]),
    ];
    for (key, text, allowed) in list {
        match template_vars(text) {
            Err(e) => err(format!("{prefix}.{key}"), e),
            Ok(vars) => {
                for v in vars {
                    if !allowed.contains(&v) {
                        err(
                            format!("{prefix}.{key}"),
                            format!("unknown variable `{{{v}}}`; this message knows {}", braces(allowed)),
                        );
                    }
                }
            }
        }
    }
}

fn braces(names: &[&str]) -> String {
    names.iter().map(|n| format!("{{{n}}}")).collect::<Vec<_>>().join(" ")
}

fn check_hours(h: &HoursConfig, prefix: &str, err: &mut impl FnMut(String, String)) {
    let lists: [(&str, &Option<Vec<String>>); 9] = [
        ("mon", &h.mon),
        ("tue", &h.tue),
        ("wed", &h.wed),
        ("thu", &h.thu),
        ("fri", &h.fri),
        ("sat", &h.sat),
        ("sun", &h.sun),
        ("daily", &h.daily),
        ("extra_workday_hours", &h.extra_workday_hours),
    ];
    for (name, list) in lists {
        let mut ranges: Vec<(u16, u16, usize)> = Vec::new();
        for (k, s) in list.iter().flatten().enumerate() {
            match parse_range(s) {
                Ok((a, b)) => ranges.push((a, b, k)),
                Err(e) => err(format!("{prefix}.{name}[{k}]"), e),
            }
        }
        ranges.sort_unstable();
        for w in ranges.windows(2) {
            if w[1].0 < w[0].1 {
                err(format!("{prefix}.{name}[{}]", w[1].2), "overlaps another range of the same day".into());
            }
        }
    }
    let mut holidays = BTreeSet::new();
    for (k, d) in h.holidays.iter().enumerate() {
        match parse_date(d) {
            None => err(format!("{prefix}.holidays[{k}]"), format!("`{d}` is not a date like 2025-10-01")),
            Some(day) => {
                if !holidays.insert(day) {
                    err(format!("{prefix}.holidays[{k}]"), format!("`{d}` is listed twice"));
                }
            }
        }
    }
    for (k, d) in h.extra_workdays.iter().enumerate() {
        match parse_date(d) {
            None => err(format!("{prefix}.extra_workdays[{k}]"), format!("`{d}` is not a date like 2025-09-28")),
            Some(day) if holidays.contains(&day) => {
                err(format!("{prefix}.extra_workdays[{k}]"), format!("`{d}` is also a holiday"))
            }
            Some(_) => {}
        }
    }
}
