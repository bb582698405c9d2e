//! Reasons as data: every "why" of a decision is a stable code with parameters ([`Reason`]),
//! stored so in the decision log and the API, and turned into words by the one catalog
//! ([`CATALOG`]) in a language ([`Lang`]) at the edge — `huiliu route explain` prints
//! Chinese (or English with `--lang en`), the workbench renders the same catalog
//! (served as JSON by the daemon) in Chinese.
//!
//! Parameters hold ids (`agent`, `group`, `shop`, `platform`, `category`); a rendering
//! shows them by their display names when it is given a [`Names`] directory.
//! The English rendering of every code is the text decisions carried before codes existed,
//! so the `why` strings kept beside the codes do not change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A reason: a code from [`CATALOG`] and its parameters. `inner` is a nested reason, rendered
/// where the template says `{inner}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reason {
    pub code: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner: Option<Box<Reason>>,
}

/// The language of a rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 简体中文 (zh-CN): what agents and operators read.
    #[default]
    Zh,
    En,
}

impl Lang {
    /// `zh`, `zh-CN`, `en`, `en-US` … (case-insensitive); anything else is `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.to_ascii_lowercase();
        if s == "zh" || s.starts_with("zh-") || s.starts_with("zh_") {
            Some(Lang::Zh)
        } else if s == "en" || s.starts_with("en-") || s.starts_with("en_") {
            Some(Lang::En)
        } else {
            None
        }
    }
}

/// Display names by id, for renderings: shops (from `shops.toml`), agents, groups and
/// categories (from `routing.toml`). Ids without a name are shown as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Names {
    pub shops: BTreeMap<String, String>,
    pub agents: BTreeMap<String, String>,
    pub groups: BTreeMap<String, String>,
    pub categories: BTreeMap<String, String>,
    pub platforms: BTreeMap<String, String>,
}

impl Names {
    /// The platforms' Chinese names, with nothing else: the base every directory starts from.
    pub fn with_platforms() -> Names {
        let platforms = [("taobao", "淘宝"), ("douyin", "抖音"), ("jd", "京东"), ("wechat_shop", "微信小店")];
        Names {
            platforms: platforms.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..Names::default()
        }
    }

    /// Adds the agents, groups and categories of a routing configuration.
    pub fn add_routing(&mut self, cfg: &crate::RoutingConfig) {
        for a in &cfg.agents {
            self.agents.insert(a.id.clone(), a.name.clone().unwrap_or_else(|| a.id.clone()));
        }
        for g in &cfg.groups {
            self.groups.insert(g.id.clone(), g.name.clone().unwrap_or_else(|| g.id.clone()));
        }
        for c in cfg.effective_categories().iter() {
            self.categories.insert(c.id.clone(), c.name.clone().unwrap_or_else(|| c.id.clone()));
        }
    }

    fn lookup(&self, key: &str, id: &str) -> Option<&str> {
        let table = match key {
            "agent" | "next" | "last" => &self.agents,
            "group" | "duty" => &self.groups,
            "shop" => &self.shops,
            "platform" => &self.platforms,
            "category" => &self.categories,
            _ => return None,
        };
        table.get(id).map(String::as_str)
    }

    /// `id` as shown: the display name when there is one. Lists (`a|b`) are shown item by item.
    fn show(&self, key: &str, value: &str) -> String {
        let base = key.trim_end_matches('s');
        let base = if key == "want_shops" {
            "shop"
        } else if key == "want_platforms" {
            "platform"
        } else if key == "want_categories" {
            "category"
        } else {
            base
        };
        if value.contains('|') {
            return value.split('|').map(|v| self.show(base, v)).collect::<Vec<_>>().join("、");
        }
        self.lookup(base, value).map_or_else(|| value.to_owned(), str::to_owned)
    }
}

/// The catalog: code, English template, Chinese template. Placeholders are `{param}` and
/// `{inner}`. Every code the engine emits is here (a test checks it).
pub const CATALOG: &[(&str, &str, &str)] = &[
    // Category
    ("category.open_refund", "the buyer has an open refund", "买家有进行中的退款"),
    ("category.keyword", "keyword `{keyword}`", "命中关键词「{keyword}」"),
    ("category.default", "no keyword or fact matched: default category", "未命中关键词或条件：默认分类"),
    ("category.at_arrival", "decided at arrival", "进线时已判定"),
    // Rules that did not match (dry runs)
    ("rule.skipped", "rule #{index} {rule}: {inner}", "规则 #{index} {rule}：{inner}"),
    ("rule.miss.platform", "platform `{platform}` is not {want_platforms}", "平台「{platform}」不是 {want_platforms}"),
    ("rule.miss.shop", "shop `{shop}` is not {want_shops}", "店铺「{shop}」不是 {want_shops}"),
    ("rule.miss.vip", "VIP level {has} < {needs}", "会员等级 {has} < {needs}"),
    ("rule.miss.fans", "fan level {has} < {needs}", "粉丝等级 {has} < {needs}"),
    ("rule.miss.category", "category {category} is not {want_categories}", "分类「{category}」不是 {want_categories}"),
    ("rule.miss.tags", "no tag of {tags}", "没有标签 {tags} 中的任何一个"),
    ("rule.miss.not_returning", "not a returning customer", "不是老客"),
    ("rule.miss.returning", "a returning customer", "是老客"),
    ("rule.miss.no_refund", "no open refund", "没有进行中的退款"),
    ("rule.miss.has_refund", "has an open refund", "有进行中的退款"),
    // Sticky routing (返回上次接待的客服)
    ("sticky.off", "sticky routing is off (sticky_ttl_s = 0)", "未开启老客优先分配（sticky_ttl_s = 0）"),
    ("sticky.rule_off", "the rule turns sticky routing off", "该规则关闭了老客优先分配"),
    ("sticky.unknown_agent", "last agent {last} is not in the configuration", "上次接待的客服 {last} 已不在配置中"),
    (
        "sticky.expired",
        "last agent {last} served this buyer more than {ttl_s} s ago",
        "上次接待的客服 {last} 接待该买家已超过 {ttl_s} 秒",
    ),
    ("sticky.no_target", "the rule has no target", "该规则没有目标技能组"),
    (
        "sticky.not_in_group",
        "last agent {last} is not in the rule's first group {group}",
        "上次接待的客服 {last} 不在规则的首选技能组「{group}」",
    ),
    ("sticky.not_serving_shop", "last agent {last} does not serve this shop", "上次接待的客服 {last} 不接待该店铺"),
    ("sticky.back", "returning buyer: back to their last agent {last}", "老客：分配回上次接待的客服 {last}"),
    (
        "sticky.waiting",
        "returning buyer: waiting up to {wait_s} s for their last agent {last} ({inner})",
        "老客：最多等待上次接待的客服 {last} {wait_s} 秒（{inner}）",
    ),
    ("sticky.unavailable", "last agent {last} is {inner}: normal routing", "上次接待的客服 {last}{inner}：按常规分配"),
    // Why the chosen agent / why waiting
    (
        "why.sticky_room",
        "sticky: last agent {last} is online with room ({active}/{cap})",
        "老客优先：上次接待的客服 {last} 在线且有空位（{active}/{cap}）",
    ),
    ("why.sticky_wait", "sticky wait for {last}", "等待上次接待的客服 {last}"),
    ("why.no_target", "no target", "没有可用的目标"),
    ("why.only_agent", "the only agent with room", "唯一有空位的客服"),
    (
        "why.round_robin",
        "round robin: assigned least recently (next in turn: {next})",
        "轮流分配：最久未分配（下一位：{next}）",
    ),
    (
        "why.highest_proficiency",
        "highest proficiency {has} (next: {next} with {next_has})",
        "熟练度最高 {has}（其次：{next}，{next_has}）",
    ),
    (
        "why.least_load_tied",
        "{prefix}least load {load} tied with {next} {next_load}, broken by idle time (idle since {idle} vs {next_idle})",
        "{prefix}负载最低 {load}，与 {next}（{next_load}）持平，按空闲时长决定（空闲自 {idle}，对方 {next_idle}）",
    ),
    (
        "why.least_load",
        "{prefix}least load {load} (next: {next} {next_load})",
        "{prefix}负载最低 {load}（其次：{next} {next_load}）",
    ),
    ("why.prefix_proficiency", "proficiency {has} like {next}; ", "熟练度 {has} 与 {next} 相同；"),
    ("why.group_closed", "the group is closed", "技能组不在接待时间"),
    ("why.nobody_online", "no member is online", "没有组员在线"),
    (
        "why.no_room",
        "no eligible agent has room ({members} members, {online} online, {with_room} with room)",
        "没有可接待的客服有空位（组员 {members} 人，在线 {online} 人，有空位 {with_room} 人）",
    ),
    (
        "why.queue_full_kept",
        "{inner}; the queue is full ({queued}/{limit}): kept, served in turn",
        "{inner}；排队已满（{queued}/{limit}）：保留，依次接待",
    ),
    (
        "why.waited_agent_free",
        "{agent}, whom it was waiting for, has room now (waited {waited_s} s)",
        "等待的客服 {agent} 现在有空位了（已等待 {waited_s} 秒）",
    ),
    ("why.capacity_freed", "capacity freed after {waited_s} s waiting: {inner}", "等待 {waited_s} 秒后有空位：{inner}"),
    ("why.transfer_to_agent", "transferred to {agent} by name", "指定转接给 {agent}"),
    (
        "why.transfer_wait",
        "transferred to {agent}, who is {inner}: waiting up to {wait_s} s, then the group",
        "转接给 {agent}，对方{inner}：最多等待 {wait_s} 秒，之后转给技能组",
    ),
    // Steps on the way (path)
    ("path.transferred_to_group", "transferred to the group", "已转接到技能组"),
    ("path.on_duty", "{group} is closed: on-duty group {duty}", "「{group}」不在接待时间：转值班组「{duty}」"),
    (
        "path.no_room_next",
        "nobody in {group} has room and the target's wait is 0: next target",
        "「{group}」无人有空位且该目标等待时间为 0：转下一目标",
    ),
    (
        "path.queue_full_next",
        "the queue of {group} is full ({queued}/{limit}): next target",
        "「{group}」排队已满（{queued}/{limit}）：转下一目标",
    ),
    (
        "path.closed_next",
        "{group} is closed and the target's wait is 0: next target",
        "「{group}」不在接待时间且该目标等待时间为 0：转下一目标",
    ),
    (
        "path.overflow",
        "waited at {group} (in queue {waited_s} s): overflow to the next target",
        "在「{group}」等待（排队 {waited_s} 秒）：溢出到下一目标",
    ),
    ("path.no_first_response", "{agent} did not answer within {limit_s} s", "{agent} 未在 {limit_s} 秒内首次回复"),
    // An agent's eligibility
    ("eligibility.eligible", "eligible", "可接待"),
    ("eligibility.offline", "offline", "离线"),
    ("eligibility.away", "away", "小休"),
    ("eligibility.busy", "busy (no new conversations)", "忙碌（不接新会话）"),
    ("eligibility.busy_short", "busy", "忙碌"),
    ("eligibility.at_cap", "at cap {active}/{cap}", "已达接待上限 {active}/{cap}"),
    ("eligibility.not_serving_shop", "not serving this shop", "不接待该店铺"),
    ("eligibility.not_in_group", "not in the group", "不在该技能组"),
    ("eligibility.below_proficiency", "proficiency {has} < {needs}", "熟练度 {has} < {needs}"),
    ("eligibility.excluded", "handed this conversation off", "已将该会话转出"),
];

/// The template of `code` in `lang`.
pub fn template(code: &str, lang: Lang) -> Option<&'static str> {
    CATALOG.iter().find(|(c, _, _)| *c == code).map(|(_, en, zh)| if lang == Lang::En { *en } else { *zh })
}

/// The catalog in one language, code → template: what the workbench renders with.
pub fn catalog(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    CATALOG.iter().map(|(c, en, zh)| (*c, if lang == Lang::En { *en } else { *zh })).collect()
}

impl Reason {
    pub fn new(code: &str) -> Reason {
        Reason { code: code.to_owned(), params: BTreeMap::new(), inner: None }
    }

    /// Adds a parameter.
    pub fn with(mut self, key: &str, value: impl ToString) -> Reason {
        self.params.insert(key.to_owned(), value.to_string());
        self
    }

    /// Nests a reason (`{inner}` in the template).
    pub fn inner(mut self, inner: Reason) -> Reason {
        self.inner = Some(Box::new(inner));
        self
    }

    /// The English text, ids as they are: the form the `why` strings keep.
    pub fn english(&self) -> String {
        self.render(Lang::En, &Names::default())
    }

    /// The reason in words. An unknown code (a newer daemon's) shows as the code and its
    /// parameters rather than nothing.
    pub fn render(&self, lang: Lang, names: &Names) -> String {
        if self.code.is_empty() {
            return String::new();
        }
        let Some(t) = template(&self.code, lang) else {
            let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return format!("{} {}", self.code, params.join(" ")).trim_end().to_owned();
        };
        let mut out = String::with_capacity(t.len() + 16);
        let mut rest = t;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let key = &after[..close];
            if key == "inner" {
                if let Some(inner) = &self.inner {
                    out.push_str(&inner.render(lang, names));
                }
            } else if key == "prefix" {
                // A nested reason given as a parameter code (`why.prefix_*`), or nothing.
                if let Some(code) = self.params.get("prefix").filter(|c| !c.is_empty()) {
                    let prefix = Reason { code: code.clone(), params: self.params.clone(), inner: None };
                    out.push_str(&prefix.render(lang, names));
                }
            } else if let Some(v) = self.params.get(key) {
                if lang == Lang::En { out.push_str(v) } else { out.push_str(&names.show(key, v)) }
            } else {
                out.push('{');
                out.push_str(key);
                out.push('}');
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_templates_agree_on_placeholders() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, en, zh) in CATALOG {
            assert!(seen.insert(*code), "duplicate code {code}");
            let holes = |t: &str| {
                let mut v: Vec<String> =
                    t.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(k, _)| k.to_owned())).collect();
                v.sort();
                v
            };
            assert_eq!(holes(en), holes(zh), "{code}: the languages name different parameters");
            assert!(zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{code}: no Chinese in {zh}");
        }
    }

    #[test]
    fn renders_with_display_names_and_nesting() {
        let mut names = Names::with_platforms();
        names.agents.insert("a02".into(), "小王".into());
        names.groups.insert("presales".into(), "售前".into());
        let r = Reason::new("why.capacity_freed")
            .with("waited_s", 12)
            .inner(Reason::new("why.least_load").with("load", "0/3").with("next", "a02").with("next_load", "1/3"));
        assert_eq!(r.english(), "capacity freed after 12 s waiting: least load 0/3 (next: a02 1/3)");
        assert_eq!(r.render(Lang::Zh, &names), "等待 12 秒后有空位：负载最低 0/3（其次：小王 1/3）");
        let miss = Reason::new("rule.miss.platform").with("platform", "jd").with("want_platforms", "taobao|douyin");
        assert_eq!(miss.render(Lang::Zh, &names), "平台「京东」不是 淘宝、抖音");
        assert_eq!(Reason::new("x.unknown").with("a", 1).render(Lang::Zh, &names), "x.unknown a=1");
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::Zh));
        assert_eq!(Lang::parse("EN"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
    }
}
