//! Quick replies (快捷短语): reply templates with variables, rendered for one session.
//!
//! Variables: `{buyer}` the buyer's nick (else 亲), `{order}` the buyer's latest order number,
//! `{agent}` the agent's display name, `{shop}` the storefront's name. A template whose variable
//! has no value for the session is still offered, with the variable listed in `missing`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use huiliu_domain::ConfigError;

/// The file of reply templates, in the config directory.
pub const QUICK_REPLIES_FILE: &str = "quick_replies.toml";

/// The variables a template may use.
pub const VARIABLES: &[&str] = &["buyer", "order", "agent", "shop"];

/// One `[[reply]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickReply {
    /// Short id, unique (`greet`, `ship-time`).
    pub id: String,
    /// What the agent sees in the list.
    pub title: String,
    /// The text sent, with variables.
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    reply: Vec<QuickReply>,
}

/// The templates used when there is no `quick_replies.toml` (from seeds/002's 常用话术).
pub fn defaults() -> Vec<QuickReply> {
    [
        ("greet", "问候", "亲爱的{buyer}您好，我是{agent}，很高兴为您服务，请问有什么可以帮您？"),
        ("order-check", "查订单", "{buyer}您好，您的订单{order}我这边帮您查一下，请稍等～"),
        ("shipping", "发货时间", "亲，现货订单48小时内发货，发货后物流信息会同步更新，请您留意查收哦。"),
        ("refund", "退款进度", "亲，订单{order}的退款已在处理中，审核通过后原路退回，一般1-3个工作日到账。"),
        ("thanks", "结束语", "感谢您对{shop}的支持，祝您生活愉快！如有问题随时联系我们～"),
    ]
    .into_iter()
    .map(|(id, title, text)| QuickReply { id: id.into(), title: title.into(), text: text.into() })
    .collect()
}

/// Parses and checks `quick_replies.toml`: unique ids, known variables, no empty text.
pub fn parse(text: &str, file: &str) -> Result<Vec<QuickReply>, Vec<ConfigError>> {
    let parsed: File = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| vec![ConfigError { file: file.into(), key: String::new(), message: e.to_string() }])?;
    let mut errors = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, r) in parsed.reply.iter().enumerate() {
        let err =
            |key: &str, message: String| ConfigError { file: file.into(), key: format!("reply[{i}].{key}"), message };
        if let Some(first) = seen.insert(r.id.clone(), i) {
            errors.push(err("id", format!("`{}` is already reply[{first}]", r.id)));
        }
        if r.text.trim().is_empty() {
            errors.push(err("text", "must not be empty".into()));
        }
        for v in huiliu_domain::text::placeholders(&r.text) {
            if !VARIABLES.contains(&v) {
                errors.push(err("text", format!("unknown variable {{{v}}} (known: {})", VARIABLES.join(", "))));
            }
        }
    }
    if errors.is_empty() { Ok(parsed.reply) } else { Err(errors) }
}

/// A template filled in for one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rendered {
    pub id: String,
    pub title: String,
    pub text: String,
    /// Variables that had no value (left out of `text`).
    pub missing: Vec<String>,
}

/// Fills in `reply` with `values`; a variable without a value renders as nothing (`{buyer}`
/// falls back to 亲).
pub fn render(reply: &QuickReply, values: &BTreeMap<&str, String>) -> Rendered {
    let mut text = reply.text.clone();
    let mut missing = Vec::new();
    for v in VARIABLES {
        let key = format!("{{{v}}}");
        if !text.contains(&key) {
            continue;
        }
        let value = match values.get(v).filter(|s| !s.is_empty()) {
            Some(s) => s.clone(),
            None if *v == "buyer" => "亲".into(),
            None => {
                missing.push((*v).to_owned());
                String::new()
            }
        };
        text = text.replace(&key, &value);
    }
    Rendered { id: reply.id.clone(), title: reply.title.clone(), text, missing }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables_and_reports_missing_ones() {
        let t = QuickReply {
            id: "x".into(), title: "t".into(), text: "{buyer}您好，订单{order}，我是{agent}".into()
        };
        let values = BTreeMap::from([("buyer", "小鱼".to_string()), ("agent", "小美".to_string())]);
        let r = render(&t, &values);
        assert_eq!(r.text, "小鱼您好，订单，我是小美");
        assert_eq!(r.missing, vec!["order"]);
        let r = render(&t, &BTreeMap::from([("order", "3618123456789".to_string())]));
        assert_eq!(r.text, "亲您好，订单3618123456789，我是");
    }

    #[test]
    fn the_file_is_checked() {
        let errors = parse(
            "[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"hi {nick}\"\n[[reply]]\nid = \"a\"\ntitle = \"B\"\ntext = \"\"\n",
            "q.toml",
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].contains("unknown variable {nick}"), "{text:?}");
        assert!(parse("[[reply]]\nid = \"a\"\ntitle = \"A\"\ntext = \"{buyer}\"\n", "q").is_ok());
        for d in defaults() {
            assert!(huiliu_domain::text::placeholders(&d.text).iter().all(|v| VARIABLES.contains(v)), "{}", d.id);
        }
    }
}
