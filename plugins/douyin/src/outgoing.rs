//! The business parameters of a reply (MODELED send method, PROTOCOLS.md §2.3):
//! `{"conversation_id","buyer_open_id","msg_type","content","client_msg_id"}`.
//!
//! One send carries one message. A reply with a single element goes out natively:
//!
//! | element   | `msg_type` | `content`                              |
//! |-----------|------------|----------------------------------------|
//! | text      | `text`     | the text                               |
//! | image     | `image`    | the URL                                |
//! | product   | `product`  | the product id                         |
//! | order     | `order`    | the order id                           |
//! | emoji     | `text`     | the emoji code (飞鸽 writes `[微笑]` inline) |
//!
//! A reply with several elements goes out as **one text message** made of the elements'
//! fallback texts joined by spaces ([`huiliu_sdk::fallback_text`]): nothing the agent wrote is
//! dropped, at the cost of rendering rich elements as text. A gateway that wants every element
//! rendered natively sends them as separate messages.
//!
//! `conversation_id` comes from the message (or its reply context); when unknown it is left out
//! and the platform resolves the conversation from `buyer_open_id`.

use huiliu_sdk::{ConnectorError, Content, OutgoingMessage, fallback_text};
use serde_json::{Map, Value};

/// The reply-context key that may carry the conversation when the message does not.
pub const CONVERSATION_KEY: &str = "conversation_id";

/// A message as the platform types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformMessage {
    pub msg_type: &'static str,
    pub content: String,
}

/// The platform message for a reply's elements.
pub fn platform_message(content: &[Content]) -> Result<PlatformMessage, ConnectorError> {
    let message = match content {
        [] => return Err(ConnectorError::invalid("the outgoing message has no content")),
        [single] => native(single),
        several => PlatformMessage { msg_type: "text", content: fallback_text(several) },
    };
    if message.content.trim().is_empty() {
        return Err(ConnectorError::invalid(format!("the outgoing {} message is empty", message.msg_type)));
    }
    Ok(message)
}

fn native(element: &Content) -> PlatformMessage {
    let (msg_type, content) = match element {
        Content::Text { text } => ("text", text.clone()),
        Content::Image { url, .. } => ("image", url.clone()),
        Content::Product { product_id, .. } => ("product", product_id.clone()),
        Content::Order { order_id, .. } => ("order", order_id.clone()),
        Content::Emoji { code, .. } => ("text", code.clone()),
    };
    PlatformMessage { msg_type, content }
}

/// The `param_json` object of the send call.
pub fn send_params(message: &OutgoingMessage) -> Result<Value, ConnectorError> {
    let buyer_open_id = message.buyer.open_id.trim();
    if buyer_open_id.is_empty() {
        return Err(ConnectorError::invalid("the outgoing message has no buyer open id"));
    }
    if message.client_msg_id.trim().is_empty() {
        return Err(ConnectorError::invalid("the outgoing message has no client_msg_id (the idempotency key)"));
    }
    let body = platform_message(&message.content)?;
    let conversation = message
        .conversation
        .as_deref()
        .or_else(|| message.reply_context.get(CONVERSATION_KEY).map(String::as_str))
        .map(str::trim)
        .filter(|c| !c.is_empty());

    let mut params = Map::new();
    if let Some(conversation) = conversation {
        params.insert("conversation_id".into(), conversation.into());
    }
    params.insert("buyer_open_id".into(), buyer_open_id.into());
    params.insert("msg_type".into(), body.msg_type.into());
    params.insert("content".into(), body.content.into());
    params.insert("client_msg_id".into(), message.client_msg_id.clone().into());
    Ok(Value::Object(params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use huiliu_sdk::Buyer;

    fn message(content: Vec<Content>) -> OutgoingMessage {
        OutgoingMessage {
            staff_account: None,
            client_msg_id: "c-1".into(),
            shop: "s1".into(),
            buyer: Buyer { open_id: "buyer-1".into(), nick: None },
            conversation: Some("conv-1".into()),
            reply_context: Default::default(),
            content,
        }
    }

    #[test]
    fn single_elements_go_out_natively() {
        let cases = [
            (Content::text("你好"), "text", "你好"),
            (Content::image("https://img/x.png"), "image", "https://img/x.png"),
            (Content::product("3571234567890123456", Some("T恤".into())), "product", "3571234567890123456"),
            (Content::order("6918000000000000001"), "order", "6918000000000000001"),
            (Content::emoji("[微笑]"), "text", "[微笑]"),
        ];
        for (element, msg_type, content) in cases {
            let got = platform_message(std::slice::from_ref(&element)).unwrap();
            assert_eq!(got, PlatformMessage { msg_type, content: content.into() }, "{element:?}");
        }
    }

    #[test]
    fn several_elements_become_one_text() {
        let got = platform_message(&[Content::text("请看"), Content::image("https://img/x.png")]).unwrap();
        assert_eq!(got, PlatformMessage { msg_type: "text", content: "请看 [图片]".into() });
    }

    #[test]
    fn empty_replies_are_refused() {
        assert!(platform_message(&[]).is_err());
        assert!(platform_message(&[Content::text("  ")]).is_err());
        let mut m = message(vec![Content::text("hi")]);
        m.client_msg_id = String::new();
        assert!(send_params(&m).is_err());
        let mut m = message(vec![Content::text("hi")]);
        m.buyer.open_id = " ".into();
        assert!(send_params(&m).is_err());
    }

    #[test]
    fn conversation_falls_back_to_the_reply_context_then_is_omitted() {
        let params = send_params(&message(vec![Content::text("hi")])).unwrap();
        assert_eq!(params["conversation_id"], "conv-1");
        assert_eq!(params["client_msg_id"], "c-1");
        assert_eq!(params["buyer_open_id"], "buyer-1");

        let mut m = message(vec![Content::text("hi")]);
        m.conversation = None;
        m.reply_context.insert(CONVERSATION_KEY.into(), "conv-2".into());
        assert_eq!(send_params(&m).unwrap()["conversation_id"], "conv-2");

        m.reply_context.clear();
        assert!(send_params(&m).unwrap().get("conversation_id").is_none());
    }
}
