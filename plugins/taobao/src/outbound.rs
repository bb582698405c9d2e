//! Replies and transfers as TOP business parameters.
//!
//! Send (MODELED method, PROTOCOLS.md §1.3): `buyer_open_uid`, `sub_nick`, `msg_type`,
//! `content`, `client_msg_id`. Transfer (public `taobao.qianniu.cloudkefu.forward`):
//! `buyer_nick`, `from_ww_nick`, `to_ww_nick`, each a Wangwang nick with the `cntaobao` prefix.
//!
//! One request carries one message element, so an [`OutgoingMessage`]:
//! - with one element is sent natively: text → `text`, image → `image` (URL), product →
//!   `item` (item id), order → `order` (tid), emoji → `text` (its platform code, which is how
//!   Wangwang writes emoticons);
//! - with several elements is sent as one `text` joining every element's text (emoji codes,
//!   and the fallback of rich elements, e.g. `[商品] 123`), so nothing the agent wrote is dropped.
//!   A gateway that wants a card to render natively sends it as its own message.

use std::collections::BTreeMap;

use huiliu_sdk::{ConnectorError, Content, OutgoingMessage, TransferRequest};

use crate::settings::Settings;

/// The prefix Taobao puts before a Wangwang account name.
const WW_PREFIX: &str = "cntaobao";

/// A message's `msg_type` and `content` on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireContent {
    pub msg_type: &'static str,
    pub content: String,
}

pub(crate) fn wire_content(elements: &[Content]) -> Result<WireContent, ConnectorError> {
    let wire = match elements {
        [] => return Err(ConnectorError::invalid("outgoing message has no content")),
        [one] => native(one),
        many => WireContent { msg_type: "text", content: many.iter().map(element_text).collect::<Vec<_>>().join(" ") },
    };
    if wire.content.trim().is_empty() {
        return Err(ConnectorError::invalid(format!("outgoing {} message is empty", wire.msg_type)));
    }
    Ok(wire)
}

fn native(element: &Content) -> WireContent {
    let (msg_type, content) = match element {
        Content::Text { text } => ("text", text.clone()),
        Content::Image { url, .. } => ("image", url.clone()),
        Content::Product { product_id, .. } => ("item", product_id.clone()),
        Content::Order { order_id, .. } => ("order", order_id.clone()),
        Content::Emoji { code, .. } => ("text", code.clone()),
    };
    WireContent { msg_type, content }
}

fn element_text(element: &Content) -> &str {
    match element {
        Content::Emoji { code, .. } => code,
        other => other.fallback_text(),
    }
}

/// The business parameters of a reply. The staff account is the agent's own
/// (`staff_account`), else the one the buyer wrote to (`sub_nick` in the reply context), else the
/// shop's configured `sub_nick`.
pub(crate) fn send_params(
    message: &OutgoingMessage,
    settings: &Settings,
) -> Result<BTreeMap<String, String>, ConnectorError> {
    let buyer = message.buyer.open_id.trim();
    if buyer.is_empty() {
        return Err(ConnectorError::invalid("outgoing message has no buyer open id"));
    }
    if message.client_msg_id.trim().is_empty() {
        return Err(ConnectorError::invalid("outgoing message has no client_msg_id"));
    }
    let sub_nick = message
        .staff_account
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| message.reply_context.get("sub_nick").map(String::as_str).filter(|s| !s.trim().is_empty()))
        .or(settings.sub_nick.as_deref())
        .ok_or_else(|| {
            ConnectorError::config(format!(
                "shop `{}`: the reply has no sub_nick in its reply context and key `sub_nick` is not set",
                settings.shop_id
            ))
        })?;
    let wire = wire_content(&message.content)?;
    Ok(params([
        ("buyer_open_uid", buyer),
        ("sub_nick", sub_nick),
        ("msg_type", wire.msg_type),
        ("content", &wire.content),
        ("client_msg_id", &message.client_msg_id),
    ]))
}

/// The business parameters of a transfer.
pub(crate) fn transfer_params(transfer: &TransferRequest) -> Result<BTreeMap<String, String>, ConnectorError> {
    let buyer_nick = transfer
        .buyer
        .nick
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ConnectorError::invalid("a Taobao transfer needs the buyer's nick (Buyer::nick)"))?;
    let account = |name: &str, value: &str| {
        Some(value)
            .filter(|v| !v.trim().is_empty())
            .map(ww_nick)
            .ok_or_else(|| ConnectorError::invalid(format!("transfer has no {name}")))
    };
    let from = account("from_account", &transfer.from_account)?;
    let to = account("to_account", &transfer.to_account)?;
    Ok(params([("buyer_nick", ww_nick(buyer_nick).as_str()), ("from_ww_nick", &from), ("to_ww_nick", &to)]))
}

/// `cntaobao` + nick, unless it already has the prefix.
pub(crate) fn ww_nick(nick: &str) -> String {
    let nick = nick.trim();
    if nick.starts_with(WW_PREFIX) { nick.to_owned() } else { format!("{WW_PREFIX}{nick}") }
}

fn params<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(elements: &[Content]) -> Result<(&'static str, String), String> {
        wire_content(elements).map(|w| (w.msg_type, w.content)).map_err(|e| e.message)
    }

    #[test]
    fn single_elements_go_native() {
        assert_eq!(wire(&[Content::text("您好")]), Ok(("text", "您好".into())));
        assert_eq!(wire(&[Content::image("https://img/1.png")]), Ok(("image", "https://img/1.png".into())));
        assert_eq!(
            wire(&[Content::product("9007199254740993", Some("T恤".into()))]),
            Ok(("item", "9007199254740993".into()))
        );
        assert_eq!(wire(&[Content::order("2000000000000000001")]), Ok(("order", "2000000000000000001".into())));
        assert_eq!(wire(&[Content::emoji("/:^_^")]), Ok(("text", "/:^_^".into())));
    }

    #[test]
    fn several_elements_join_as_text() {
        let elements = [Content::text("看看这款"), Content::product("123", None), Content::emoji("/:^_^")];
        assert_eq!(wire(&elements), Ok(("text", "看看这款 [商品] 123 /:^_^".into())));
    }

    #[test]
    fn empty_messages_are_refused() {
        assert!(wire(&[]).is_err());
        assert!(wire(&[Content::text("  ")]).is_err());
        assert!(wire(&[Content::image("")]).is_err());
    }

    #[test]
    fn the_agents_own_sub_account_comes_first() {
        let settings = Settings::from_config(
            &huiliu_sdk::ShopConfig::new("tb-1")
                .with("app_key", "12345678")
                .with("app_secret", "s")
                .with("session", "t")
                .with("sub_nick", "店铺:默认"),
        )
        .expect("settings");
        let mut m = OutgoingMessage {
            staff_account: Some("店铺:小美".into()),
            client_msg_id: "c1".into(),
            shop: "tb-1".into(),
            buyer: huiliu_sdk::Buyer { open_id: "AAH1".into(), nick: None },
            conversation: None,
            reply_context: [("sub_nick".to_owned(), "店铺:客服1".to_owned())].into(),
            content: vec![Content::text("您好")],
        };
        assert_eq!(send_params(&m, &settings).expect("params")["sub_nick"], "店铺:小美");
        m.staff_account = None;
        assert_eq!(send_params(&m, &settings).expect("params")["sub_nick"], "店铺:客服1");
        m.reply_context.clear();
        assert_eq!(send_params(&m, &settings).expect("params")["sub_nick"], "店铺:默认");
    }

    #[test]
    fn ww_nicks_are_prefixed_once() {
        assert_eq!(ww_nick("店铺:客服1"), "cntaobao店铺:客服1");
        assert_eq!(ww_nick("cntaobao店铺:客服1"), "cntaobao店铺:客服1");
    }
}
