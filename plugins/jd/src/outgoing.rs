//! Turning an [`OutgoingMessage`] into the MODELED send payload (PROTOCOLS.md §3.3):
//! `360buy_param_json` = `{sid, customer_open_id, waiter, msg_type, content, client_msg_id}`.
//!
//! One JOS call carries one chat message of one `msg_type`, so a reply is sent as:
//! - its first rich element (image → `image` with the URL, product → `sku` with the id,
//!   order → `order` with the id) when it has one — a card or picture carries what its text
//!   fallback cannot, and the host splits a reply it wants delivered element by element;
//! - otherwise the text (and emoji fallbacks) joined with spaces, as `text`.

use std::collections::BTreeMap;

use huiliu_sdk::{ConnectorError, Content, OutgoingMessage, fallback_text};
use serde_json::Value;

/// The `waiter` key of a buyer message's reply context.
pub const WAITER_CONTEXT_KEY: &str = "waiter";

/// JD chat message types (modeled).
pub const TEXT: &str = "text";
pub const IMAGE: &str = "image";
pub const SKU: &str = "sku";
pub const ORDER: &str = "order";

/// The `(msg_type, content)` one JOS send carries for `content`.
pub fn message_body(content: &[Content]) -> Result<(&'static str, String), ConnectorError> {
    let rich = content.iter().find_map(|c| match c {
        Content::Image { url, .. } => Some((IMAGE, url.clone())),
        Content::Product { product_id, .. } => Some((SKU, product_id.clone())),
        Content::Order { order_id, .. } => Some((ORDER, order_id.clone())),
        Content::Text { .. } | Content::Emoji { .. } => None,
    });
    if let Some(body) = rich {
        return Ok(body);
    }
    let text = fallback_text(content);
    if text.trim().is_empty() {
        return Err(ConnectorError::invalid("the reply has no content to send"));
    }
    Ok((TEXT, text))
}

/// The business parameters of the send call. The waiter is the agent's own account
/// (`staff_account`), else the one the buyer wrote to (reply context), else the shop's default.
pub fn send_params<'a>(
    message: &'a OutgoingMessage,
    default_waiter: Option<&'a str>,
) -> Result<BTreeMap<&'static str, Value>, ConnectorError> {
    let waiter = message
        .staff_account
        .as_deref()
        .filter(|w| !w.trim().is_empty())
        .or_else(|| message.reply_context.get(WAITER_CONTEXT_KEY).map(String::as_str).filter(|w| !w.is_empty()))
        .or(default_waiter)
        .ok_or_else(|| {
            ConnectorError::invalid(
                "no JD staff account to send as: the reply context has no `waiter` and the shop sets no `waiter`",
            )
        })?;
    if message.buyer.open_id.is_empty() {
        return Err(ConnectorError::invalid("the reply names no buyer (`customer_open_id`)"));
    }
    let (msg_type, content) = message_body(&message.content)?;

    let mut params = BTreeMap::new();
    // Without a conversation id the platform routes by buyer and waiter; no empty `sid`.
    if let Some(sid) = message.conversation.as_deref().filter(|s| !s.is_empty()) {
        params.insert("sid", Value::from(sid));
    }
    params.insert("customer_open_id", Value::from(message.buyer.open_id.as_str()));
    params.insert("waiter", Value::from(waiter));
    params.insert("msg_type", Value::from(msg_type));
    params.insert("content", Value::from(content));
    params.insert("client_msg_id", Value::from(message.client_msg_id.as_str()));
    Ok(params)
}

#[cfg(test)]
mod tests {
    use huiliu_sdk::Buyer;

    use super::*;

    fn message(content: Vec<Content>) -> OutgoingMessage {
        OutgoingMessage {
            staff_account: None,
            client_msg_id: "c1".into(),
            shop: "s1".into(),
            buyer: Buyer { open_id: "b1".into(), nick: None },
            conversation: Some("sid-1".into()),
            reply_context: [("waiter".to_owned(), "w1".to_owned())].into(),
            content,
        }
    }

    #[test]
    fn text_elements_are_joined() {
        let body = message_body(&[Content::text("您好"), Content::emoji("/:)"), Content::text("在的")]).expect("text");
        assert_eq!(body, (TEXT, "您好 [表情] 在的".to_owned()));
    }

    #[test]
    fn first_rich_element_wins() {
        let content =
            [Content::text("看看这个"), Content::product("100012043978", None), Content::image("https://x/y.jpg")];
        assert_eq!(message_body(&content).expect("rich"), (SKU, "100012043978".to_owned()));
        assert_eq!(
            message_body(&[Content::image("https://x/y.jpg")]).expect("rich"),
            (IMAGE, "https://x/y.jpg".into())
        );
        assert_eq!(message_body(&[Content::order("2300000000000000001")]).expect("rich").0, ORDER);
    }

    #[test]
    fn empty_replies_are_refused() {
        assert!(message_body(&[]).is_err());
        assert!(message_body(&[Content::text("  ")]).is_err());
    }

    #[test]
    fn waiter_from_context_then_config() {
        let m = message(vec![Content::text("hi")]);
        assert_eq!(send_params(&m, Some("cfg")).expect("params")["waiter"], "w1");
        let mut m = m;
        m.reply_context.clear();
        assert_eq!(send_params(&m, Some("cfg")).expect("params")["waiter"], "cfg");
        let err = send_params(&m, None).expect_err("no waiter");
        assert!(err.message.contains("waiter"));
    }

    #[test]
    fn the_agents_own_account_comes_first() {
        let mut m = message(vec![Content::text("hi")]);
        m.staff_account = Some("xm_waiter".into());
        assert_eq!(send_params(&m, Some("cfg")).expect("params")["waiter"], "xm_waiter");
        m.staff_account = Some(" ".into());
        assert_eq!(send_params(&m, Some("cfg")).expect("params")["waiter"], "w1", "a blank account is no account");
    }

    #[test]
    fn no_sid_without_a_conversation() {
        let mut m = message(vec![Content::text("hi")]);
        m.conversation = None;
        let params = send_params(&m, None).expect("params");
        assert!(!params.contains_key("sid"));
        assert_eq!(params["client_msg_id"], "c1");
    }
}
