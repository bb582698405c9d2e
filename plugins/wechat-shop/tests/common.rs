//! Shared test helpers: pushes signed and sealed the way the message-push guide describes.
#![allow(dead_code)]

use huiliu_sdk::{Buyer, Content, HttpPush, OutgoingMessage, ShopConfig};
use huiliu_wechat_shop::crypto::{AesKey, sorted_sha1};

pub const SHOP: &str = "wx-shop-1";
pub const APPID: &str = "wxba5fad812f8e6fb9";
pub const TOKEN: &str = "AAAAA";
pub const AES_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
pub const SECRET: &str = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6";
/// 2024-04-26 06:20:45 UTC: the published safe-mode example's timestamp.
pub const TS: i64 = 1_714_112_445;
pub const NOW: i64 = TS * 1000;

pub fn config() -> ShopConfig {
    ShopConfig::new(SHOP)
        .with("appid", APPID)
        .with("token", TOKEN)
        .with("encoding_aes_key", AES_KEY)
        .with("appsecret", SECRET)
        .with("access_token", "ACCESS_TOKEN_1")
        .with("token_expires_at", (NOW + 7_200_000).to_string())
        .with("api_url", "http://127.0.0.1:9")
}

pub fn plain(body: &str) -> HttpPush {
    let (ts, nonce) = (TS.to_string(), "486452656");
    let sig = sorted_sha1(&[TOKEN, &ts, nonce]);
    HttpPush {
        method: "POST".into(),
        path: format!("/hooks/wechat-shop/{SHOP}"),
        query: format!("signature={sig}&timestamp={ts}&nonce={nonce}&openid=o9AgO5Kd5ggOC-bXrbNODIiE3bGY"),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

pub fn sealed_for(body: &str, appid: &str) -> HttpPush {
    let (ts, nonce) = (TS.to_string(), "415670741");
    let encrypt = AesKey::from_encoding_key(AES_KEY).unwrap().encrypt(b"a8eedb185eb2fecf", body.as_bytes(), appid);
    let msg_sig = sorted_sha1(&[TOKEN, &ts, nonce, &encrypt]);
    let sig = sorted_sha1(&[TOKEN, &ts, nonce]);
    HttpPush {
        method: "POST".into(),
        path: format!("/hooks/wechat-shop/{SHOP}"),
        query: format!("signature={sig}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_sig}"),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::json!({"ToUserName": "gh_97417a04a28d", "Encrypt": encrypt}).to_string().into_bytes(),
    }
}

pub fn sealed(body: &str) -> HttpPush {
    sealed_for(body, APPID)
}

pub fn chat(msg_type: &str, part: &str) -> String {
    format!(
        r#"{{"ToUserName":"gh_97417a04a28d","FromUserName":"o7eep4jVQelr2eyoDSmE1buyer","CreateTime":{TS},"MsgType":"event","Event":"commkf_send_msg_to_kf","msg_id":3893720449229537280,"msg_type":"{msg_type}","msg_event":"EVENT_TYPE_SEND_MSG","{msg_type}":{part}}}"#
    )
}

pub fn reply(id: &str, content: Vec<Content>) -> OutgoingMessage {
    OutgoingMessage {
        client_msg_id: id.into(),
        shop: SHOP.into(),
        buyer: Buyer { open_id: "o7eep4jVQelr2eyoDSmE1buyer".into(), nick: None },
        conversation: None,
        reply_context: Default::default(),
        staff_account: None,
        content,
    }
}
