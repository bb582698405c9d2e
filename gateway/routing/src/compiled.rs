//! The validated configuration compiled for the engine: dense indexes instead of names,
//! normalized keywords, calendars, times in milliseconds.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

use super::calendar::Calendar;
use super::config::{Messages, OnLeave, Policy, Role, RoutingConfig};
use super::reason::Reason;

/// Interned strings (platforms, shops, tags). Lives as long as the router, across reloads,
/// so the facts kept for queued conversations stay valid.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    map: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.into());
        self.map.insert(s.into(), i);
        i
    }

    pub(crate) fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("", |s| s)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub sticky_ttl_ms: i64,
    pub sticky_wait_ms: i64,
    pub response_ms: i64,
    /// Milliseconds of waiting one priority point is worth (1 / aging rate).
    pub ms_per_point: i64,
    pub on_away: OnLeave,
    pub on_offline: OnLeave,
    pub transfer_wait_ms: i64,
    pub handle_ms: i64,
    pub candidates: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub id: String,
    pub name: String,
    pub policy: Policy,
    pub queue_limit: Option<u32>,
    pub calendar: Calendar,
    pub on_duty: Option<u16>,
    pub messages: Messages,
    /// (agent, proficiency), in config order.
    pub members: Vec<(u32, u8)>,
}

#[derive(Debug, Clone)]
pub(crate) struct AgentDef {
    pub id: String,
    pub name: String,
    pub cap: u32,
    /// Interned shop ids, sorted; `None` = every shop.
    pub shops: Option<Vec<u32>>,
    pub groups: Vec<(u16, u8)>,
    pub role: Role,
}

impl AgentDef {
    pub(crate) fn serves(&self, shop: u32) -> bool {
        self.shops.as_ref().is_none_or(|s| s.binary_search(&shop).is_ok())
    }

    pub(crate) fn proficiency(&self, group: u16) -> Option<u8> {
        self.groups.iter().find(|(g, _)| *g == group).map(|(_, p)| *p)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub group: u16,
    pub wait_ms: i64,
    pub min_prof: u8,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub name: String,
    pub platforms: Vec<u32>,
    pub shops: Vec<u32>,
    pub vip_min: Option<u32>,
    pub fans_min: Option<u32>,
    pub categories: Vec<u16>,
    pub tags: Vec<u32>,
    pub returning: Option<bool>,
    pub open_refund: Option<bool>,
    pub targets: Vec<Target>,
    pub priority: i32,
    pub sticky: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Category {
    pub id: String,
    /// NFKC-folded, lowercased.
    pub keywords: Vec<String>,
}

/// What the engine keeps of a conversation to route (and re-route) it: no text, no buyer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    pub platform: u32,
    pub shop: u32,
    pub vip: u32,
    pub fans: u32,
    pub open_refund: bool,
    pub returning: bool,
    pub category: u16,
    pub tags: Box<[u32]>,
}

#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub settings: Settings,
    pub groups: Vec<Group>,
    pub group_ix: HashMap<String, u16>,
    pub agents: Vec<AgentDef>,
    pub agent_ix: HashMap<String, u32>,
    pub rules: Vec<Rule>,
    pub categories: Vec<Category>,
    pub default_category: u16,
    pub refund_category: Option<u16>,
    /// Used when no rule matches.
    pub fallback: Option<Target>,
}

/// NFKC + lowercase: full-width digits and letters fold to ASCII.
pub(crate) fn fold(text: &str) -> String {
    text.nfkc().flat_map(char::to_lowercase).collect()
}

fn secs(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX / 4).min(i64::MAX / 4)
}

impl Compiled {
    /// Compiles a configuration that passed validation. Dangling references (impossible after
    /// validation) are dropped rather than trusted.
    pub(crate) fn new(cfg: &RoutingConfig, strings: &mut Interner) -> Compiled {
        let r = &cfg.routing;
        let categories: Vec<Category> = cfg
            .effective_categories()
            .iter()
            .map(|c| Category {
                id: c.id.clone(),
                keywords: c.keywords.iter().map(|k| fold(k)).filter(|k| !k.is_empty()).collect(),
            })
            .collect();
        let category_ix: HashMap<&str, u16> =
            categories.iter().enumerate().map(|(i, c)| (c.id.as_str(), i as u16)).collect();
        let group_ix: HashMap<String, u16> =
            cfg.groups.iter().enumerate().map(|(i, g)| (g.id.clone(), i as u16)).collect();
        let agent_ix: HashMap<String, u32> =
            cfg.agents.iter().enumerate().map(|(i, a)| (a.id.clone(), i as u32)).collect();
        let rate = if r.aging_rate.is_finite() && r.aging_rate > 0.0 { r.aging_rate } else { 1.0 };
        let ms_per_point = (60_000.0 / rate).round().clamp(1.0, 1e9) as i64;

        let agents: Vec<AgentDef> = cfg
            .agents
            .iter()
            .map(|a| AgentDef {
                id: a.id.clone(),
                name: a.name.clone().unwrap_or_else(|| a.id.clone()),
                cap: a.max_sessions,
                shops: a.shops.as_ref().map(|list| {
                    let mut v: Vec<u32> = list.iter().map(|s| strings.intern(s)).collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                }),
                groups: a
                    .groups
                    .iter()
                    .filter_map(|(g, p)| Some((*group_ix.get(g)?, (*p).clamp(1, 5) as u8)))
                    .collect(),
                role: a.role,
            })
            .collect();

        let groups = cfg
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let m = &g.messages;
                let d = &cfg.messages;
                Group {
                    id: g.id.clone(),
                    name: g.name.clone().unwrap_or_else(|| g.id.clone()),
                    policy: g.policy.unwrap_or(r.policy),
                    queue_limit: g.queue_limit,
                    calendar: Calendar::compile(g.hours.as_ref()),
                    on_duty: g.off_hours_group.as_ref().and_then(|d| group_ix.get(d).copied()),
                    messages: Messages {
                        welcome: m.welcome.clone().unwrap_or_else(|| d.welcome.clone()),
                        queue_position: m.queue_position.clone().unwrap_or_else(|| d.queue_position.clone()),
                        off_hours: m.off_hours.clone().unwrap_or_else(|| d.off_hours.clone()),
                        overflow: m.overflow.clone().unwrap_or_else(|| d.overflow.clone()),
                    },
                    members: agents
                        .iter()
                        .enumerate()
                        .filter_map(|(ai, a)| a.proficiency(gi as u16).map(|p| (ai as u32, p)))
                        .collect(),
                }
            })
            .collect();

        let rules = cfg
            .rules
            .iter()
            .map(|rule| Rule {
                name: rule.name.clone(),
                platforms: rule.when.platform.iter().map(|s| strings.intern(s)).collect(),
                shops: rule.when.shop.iter().map(|s| strings.intern(s)).collect(),
                vip_min: rule.when.vip_min,
                fans_min: rule.when.fans_min,
                categories: rule.when.category.iter().filter_map(|c| category_ix.get(c.as_str()).copied()).collect(),
                tags: rule.when.tags.iter().map(|s| strings.intern(s)).collect(),
                returning: rule.when.returning,
                open_refund: rule.when.open_refund,
                targets: rule
                    .targets
                    .iter()
                    .filter_map(|t| {
                        Some(Target {
                            group: *group_ix.get(&t.group)?,
                            wait_ms: secs(t.wait_s),
                            min_prof: t.min_proficiency.clamp(1, 5) as u8,
                        })
                    })
                    .collect(),
                priority: rule.priority.clamp(-1000, 1000),
                sticky: rule.sticky,
            })
            .filter(|rule| !rule.targets.is_empty())
            .collect();

        let fallback = r
            .fallback_group
            .as_ref()
            .and_then(|g| group_ix.get(g))
            .or_else(|| (!cfg.groups.is_empty()).then_some(&0))
            .map(|&group| Target { group, wait_ms: 0, min_prof: 1 });

        Compiled {
            settings: Settings {
                sticky_ttl_ms: secs(r.sticky_ttl_s),
                sticky_wait_ms: secs(r.sticky_wait_s),
                response_ms: secs(r.first_response_limit_s.max(1)),
                ms_per_point,
                on_away: r.on_away,
                on_offline: r.on_offline,
                transfer_wait_ms: secs(r.transfer_wait_s),
                handle_ms: secs(r.default_handle_time_s.max(1)),
                candidates: r.decision_candidates.min(1000),
            },
            default_category: category_ix.get(r.default_category.as_str()).copied().unwrap_or(0),
            refund_category: category_ix.get(r.open_refund_category.as_str()).copied(),
            categories,
            group_ix,
            agent_ix,
            agents,
            groups,
            rules,
            fallback,
        }
    }

    /// The category of a buyer's text and facts, and why. Categories are tried in order; an
    /// open refund counts as a hit for the refund category.
    pub(crate) fn categorize(&self, text: &str, open_refund: bool) -> (u16, Reason) {
        let folded = fold(text);
        for (i, c) in self.categories.iter().enumerate() {
            let i = i as u16;
            if open_refund && self.refund_category == Some(i) {
                return (i, Reason::new("category.open_refund"));
            }
            if let Some(k) = c.keywords.iter().find(|k| folded.contains(k.as_str())) {
                return (i, Reason::new("category.keyword").with("keyword", k));
            }
        }
        (self.default_category, Reason::new("category.default"))
    }

    pub(crate) fn category_id(&self, c: u16) -> &str {
        self.categories.get(c as usize).map_or("?", |c| c.id.as_str())
    }

    /// The first rule that matches, with the reasons the earlier ones did not.
    pub(crate) fn match_rule(&self, f: &Facts, strings: &Interner) -> (Option<usize>, Vec<Reason>) {
        let mut misses = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            match self.rule_miss(rule, f, strings) {
                None => return (Some(i), misses),
                Some(why) => {
                    misses.push(Reason::new("rule.skipped").with("index", i).with("rule", &rule.name).inner(why))
                }
            }
        }
        (None, misses)
    }

    /// The first rule that matches (no explanation; the hot path).
    pub(crate) fn first_rule(&self, f: &Facts) -> Option<usize> {
        self.rules.iter().position(|rule| Self::rule_matches(rule, f))
    }

    fn rule_matches(rule: &Rule, f: &Facts) -> bool {
        (rule.platforms.is_empty() || rule.platforms.contains(&f.platform))
            && (rule.shops.is_empty() || rule.shops.contains(&f.shop))
            && rule.vip_min.is_none_or(|v| f.vip >= v)
            && rule.fans_min.is_none_or(|v| f.fans >= v)
            && (rule.categories.is_empty() || rule.categories.contains(&f.category))
            && (rule.tags.is_empty() || rule.tags.iter().any(|t| f.tags.contains(t)))
            && rule.returning.is_none_or(|r| r == f.returning)
            && rule.open_refund.is_none_or(|r| r == f.open_refund)
    }

    fn rule_miss(&self, rule: &Rule, f: &Facts, s: &Interner) -> Option<Reason> {
        let names = |v: &[u32]| v.iter().map(|i| s.name(*i)).collect::<Vec<_>>().join("|");
        if !rule.platforms.is_empty() && !rule.platforms.contains(&f.platform) {
            return Some(
                Reason::new("rule.miss.platform")
                    .with("platform", s.name(f.platform))
                    .with("want_platforms", names(&rule.platforms)),
            );
        }
        if !rule.shops.is_empty() && !rule.shops.contains(&f.shop) {
            return Some(
                Reason::new("rule.miss.shop").with("shop", s.name(f.shop)).with("want_shops", names(&rule.shops)),
            );
        }
        if let Some(v) = rule.vip_min.filter(|v| f.vip < *v) {
            return Some(Reason::new("rule.miss.vip").with("has", f.vip).with("needs", v));
        }
        if let Some(v) = rule.fans_min.filter(|v| f.fans < *v) {
            return Some(Reason::new("rule.miss.fans").with("has", f.fans).with("needs", v));
        }
        if !rule.categories.is_empty() && !rule.categories.contains(&f.category) {
            let want: Vec<&str> = rule.categories.iter().map(|c| self.category_id(*c)).collect();
            return Some(
                Reason::new("rule.miss.category")
                    .with("category", self.category_id(f.category))
                    .with("want_categories", want.join("|")),
            );
        }
        if !rule.tags.is_empty() && !rule.tags.iter().any(|t| f.tags.contains(t)) {
            return Some(Reason::new("rule.miss.tags").with("tags", names(&rule.tags)));
        }
        if let Some(r) = rule.returning.filter(|r| *r != f.returning) {
            return Some(Reason::new(if r { "rule.miss.not_returning" } else { "rule.miss.returning" }));
        }
        if let Some(r) = rule.open_refund.filter(|r| *r != f.open_refund) {
            return Some(Reason::new(if r { "rule.miss.no_refund" } else { "rule.miss.has_refund" }));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled() -> Compiled {
        let mut cfg = RoutingConfig::default_empty();
        cfg.groups.push(super::super::config::GroupConfig {
            id: "g".into(),
            name: None,
            policy: None,
            queue_limit: None,
            hours: None,
            off_hours_group: None,
            messages: Default::default(),
        });
        Compiled::new(&cfg, &mut Interner::default())
    }

    #[test]
    fn categories_follow_the_seeds() {
        let c = compiled();
        let cat = |text: &str, refund: bool| c.category_id(c.categorize(text, refund).0).to_owned();
        assert_eq!(cat("我要退款", false), "aftersales");
        assert_eq!(cat("东西坏了", false), "aftersales");
        assert_eq!(cat("再不处理我就打１２３１５投诉", false), "complaint");
        assert_eq!(cat("退款不给我就给差评", false), "complaint");
        assert_eq!(cat("快递到哪了", false), "order");
        assert_eq!(cat("快递到哪了", true), "aftersales");
        assert_eq!(cat("你们是骗子", true), "complaint");
        assert_eq!(cat("这款有红色吗", false), "presales");
        assert_eq!(cat("", false), "presales");
        let (_, why) = c.categorize("我要退货", false);
        assert_eq!(why.english(), "keyword `退货`");
    }
}
