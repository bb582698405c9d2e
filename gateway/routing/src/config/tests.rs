//! Parsing and validation of `routing.toml`.

use super::parse::template_vars;
use super::*;

const GOOD: &str = r#"
[routing]
fallback_group = "presales"

[[group]]
id = "presales"
name = "售前"

[[group]]
id = "aftersales"
[group.hours]
daily = ["09:00-12:00", "13:00-18:00"]
sun = []
holidays = [2025-10-01, "2025-10-02"]
extra_workdays = ["2025-09-28"]

[[agent]]
id = "a1"
groups = { presales = 5, aftersales = 3 }

[[rule]]
name = "refunds"
[rule.match]
category = ["aftersales"]
[[rule.target]]
group = "aftersales"
wait_s = 60
[[rule.target]]
group = "presales"
"#;

#[test]
fn parses_a_good_file() {
    let cfg = parse(GOOD, ROUTING_FILE).unwrap();
    assert_eq!(cfg.groups.len(), 2);
    assert_eq!(cfg.agents[0].groups["aftersales"], 3);
    assert_eq!(cfg.agents[0].max_sessions, 5);
    assert_eq!(cfg.rules[0].targets[1].min_proficiency, 1);
    let hours = cfg.groups[1].hours.as_ref().unwrap();
    assert_eq!(hours.holidays, vec!["2025-10-01", "2025-10-02"]);
    assert_eq!(hours.day(6), Some(&Vec::new()));
    assert_eq!(hours.day(0).map(Vec::len), Some(2));
}

#[test]
fn every_semantic_error_is_reported_with_its_key() {
    let text = r#"
[routing]
aging_rate = 0.0
default_category = "nope"
[messages]
welcome = "hi {buyer}"

[[group]]
id = "presales"
off_hours_group = "presales"
[group.hours]
mon = ["18:00-09:00", "9-10", "08:00-12:00", "11:00-13:00"]
holidays = ["2025-13-01"]

[[group]]
id = "presales"

[[group]]
id = "empty"

[[agent]]
id = "a1"
max_sessions = 0
groups = { presales = 7, ghost = 1 }

[[agent]]
id = "a1"
groups = {}
shops = []

[[rule]]
name = "x"
[[rule.target]]
group = "ghost"
min_proficiency = 0
[[rule.target]]
group = "presales"
wait_s = 999999

[[rule]]
name = ""
[rule.match]
category = ["weird"]
"#;
    let errors = parse(text, ROUTING_FILE).unwrap_err();
    let keys: Vec<String> = errors.iter().map(|e| format!("{} — {}", e.key, e.message)).collect();
    for key in [
        "routing.aging_rate",
        "routing.default_category",
        "messages.welcome",
        "group[0].off_hours_group",
        "group[0].hours.mon[0]",
        "group[0].hours.mon[1]",
        "group[0].hours.mon[3]",
        "group[0].hours.holidays[0]",
        "group[1].id",
        "group[2]",
        "agent[0].max_sessions",
        "agent[0].groups.presales",
        "agent[0].groups.ghost",
        "agent[1].id",
        "agent[1].groups",
        "agent[1].shops",
        "rule[0].target[0].group",
        "rule[0].target[0].min_proficiency",
        "rule[0].target[1].wait_s",
        "rule[1]",
        "rule[1].name",
        "rule[1].target",
        "rule[1].match.category[0]",
    ] {
        assert!(errors.iter().any(|e| e.key == key), "missing {key}:\n{keys:#?}");
    }
    assert_eq!(errors.len(), 23, "{keys:#?}");
    assert!(errors.iter().all(|e| e.file == ROUTING_FILE));
}

#[test]
fn type_errors_in_several_entries_are_all_reported() {
    let text = r#"
[routing]
policy = "fastest"
[[group]]
id = "g"
colour = "red"
[[agent]]
id = "a"
groups = { g = 1 }
max_sessions = "many"
[[rule]]
name = "r"
[[rule.target]]
group = "g"
wait_s = -5
[bogus]
"#;
    let errors = parse(text, ROUTING_FILE).unwrap_err();
    let keys: Vec<String> = errors.iter().map(|e| format!("{} — {}", e.key, e.message)).collect();
    for key in ["routing.policy", "group[0]", "agent[0].max_sessions", "rule[0].target[0].wait_s", "bogus"] {
        assert!(errors.iter().any(|e| e.key == key), "missing {key}:\n{keys:#?}");
    }
    assert!(keys.iter().any(|k| k.contains("colour")), "{keys:#?}");
}

#[test]
fn syntax_error_is_one_error() {
    let errors = parse("[[group]\nid=", ROUTING_FILE).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].key.is_empty());
}

#[test]
fn missing_fallback_without_catch_all_is_an_error() {
    let mut cfg = parse(GOOD, ROUTING_FILE).unwrap();
    cfg.routing.fallback_group = None;
    let errors = cfg.validate(ROUTING_FILE);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "routing.fallback_group");
}

#[test]
fn shop_ids_are_checked_against_known_shops() {
    let mut cfg = parse(GOOD, ROUTING_FILE).unwrap();
    cfg.agents[0].shops = Some(vec!["tb-1".into(), "dy-9".into()]);
    let errors = cfg.check_shops(&["tb-1"], ROUTING_FILE);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key, "agent[0].shops[1]");
}

#[test]
fn staff_accounts_name_known_shops_and_are_not_blank() {
    let mut cfg = parse(GOOD, ROUTING_FILE).unwrap();
    cfg.agents[0].accounts =
        [("tb-1".to_owned(), "旗舰店:小美".to_owned()), ("jd-9".to_owned(), "xm".to_owned())].into();
    let errors = cfg.check_shops(&["tb-1"], ROUTING_FILE);
    assert_eq!(errors.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["agent[0].accounts.jd-9"]);
    cfg.agents[0].accounts.insert("tb-1".into(), " ".into());
    let errors = cfg.validate(ROUTING_FILE);
    assert_eq!(errors.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["agent[0].accounts.tb-1"]);
    let text = GOOD.replacen("id = \"a1\"\n", "id = \"a1\"\naccounts = { tb-1 = \"旗舰店:小美\" }\n", 1);
    assert_ne!(text, GOOD);
    let parsed = parse(&text, ROUTING_FILE).expect("accounts parse");
    assert_eq!(parsed.agents[0].accounts["tb-1"], "旗舰店:小美");
}

#[test]
fn ranges_and_dates() {
    assert_eq!(parse_range("09:00-18:00"), Ok((540, 1080)));
    assert_eq!(parse_range("22:00-24:00"), Ok((1320, 1440)));
    for bad in ["24:00-24:00", "18:00-09:00", "9:00-10:00", "09:60-10:00", "24:30-25:00", "x", "", "09:00"] {
        assert!(parse_range(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_date("1970-01-02"), Some(1));
    assert_eq!(parse_date("2025-02-29"), None);
    assert_eq!(parse_date("+12025-01-01"), None);
    assert_eq!(template_vars("a{b}c{d}"), Ok(vec!["b", "d"]));
    assert!(template_vars("a{b").is_err());
    assert!(template_vars("a}b").is_err());
}
