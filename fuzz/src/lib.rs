//! The bodies of the fuzz targets, one function per network input a connector decodes.
//!
//! Each function drives a connector the way the gateway does: through the `huiliu_sdk::Connector`
//! trait methods the plugin's exported ABI table dispatches to (`channel_data`, `decode_push`),
//! on a connector created from sample shop settings, with a fixed clock. On top of "no panic"
//! each checks a few invariants that must hold for any input, and passes every result through
//! the ABI's MessagePack encoding and back (what crosses the plugin boundary), so a result the
//! host could not read is caught too.
//!
//! The `fuzz_targets/*.rs` binaries only call these functions; the unit tests below run them on
//! the seed corpora and on generated garbage with plain `cargo test`, no nightly, no libFuzzer.

use std::fmt::Debug;

use huiliu_sdk::{
    AckBatch, ChannelControl, ChannelData, ChannelOutcome, Connector, DeadLetter, Frame, HttpPush, HttpResponse,
    InboundEvent, Millis, PushOutcome, RejectKind, ShopConfig,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The clock every target runs at: 2024-01-01 10:00:00 Beijing.
pub const NOW: Millis = 1_704_074_400_000;

/// `value` survives the ABI's encoding unchanged.
fn abi_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let bytes = huiliu_sdk::abi::encode(value).expect("a connector result encodes for the ABI");
    let back: T = huiliu_sdk::abi::decode(&bytes).expect("the host decodes what the plugin encoded");
    assert_eq!(&back, value, "ABI round trip changed the value");
}

/// Every event names the platform and shop it came from and has an id to dedupe on.
fn check_events(events: &[InboundEvent], platform: &str, shop: &str) {
    for event in events {
        assert_eq!(event.platform, platform);
        assert_eq!(event.shop, shop);
        assert!(!event.event_id.is_empty(), "event without an id: {event:?}");
    }
}

fn check_channel_outcome(out: &ChannelOutcome, platform: &str, shop: &str) {
    for batch in &out.batches {
        check_events(&batch.events, platform, shop);
    }
    abi_round_trip(out);
}

// ---------------------------------------------------------------------------------------------
// Taobao: TMC binary frames.

mod taobao {
    pub const SHOP: &str = "tb-shop-1";
    pub const CHANNEL: &str = "tmc";
    pub const TOKEN: &str = "tmc-session-token-1";
    /// The topics the connector maps (chat with the default chat topic), plus one it does not.
    pub const TOPICS: [&str; 10] = [
        huiliu_taobao::DEFAULT_CHAT_TOPIC,
        "taobao_trade_TradeCreate",
        "taobao_trade_TradeBuyerPay",
        "taobao_trade_TradeSellerShip",
        "taobao_trade_TradeSuccess",
        "taobao_trade_TradeClose",
        "taobao_refund_RefundCreated",
        "taobao_refund_RefundSellerAgreeAgreement",
        "taobao_refund_RefundSuccess",
        "taobao_item_ItemAdd",
    ];
}

/// The sample Taobao shop (the credentials of the PROTOCOLS.md vectors, loopback URLs).
pub fn taobao_config() -> ShopConfig {
    ShopConfig::new(taobao::SHOP)
        .with("app_key", "12345678")
        .with("app_secret", "helloworld")
        .with("access_token", "session-abc")
        .with("refresh_token", "refresh-xyz")
        .with("tmc_url", "ws://127.0.0.1:18081/")
        .with("api_url", "http://127.0.0.1:18080/router/rest")
}

/// Target `taobao_tmc_frame`: `data` is one WebSocket binary frame from TMC.
///
/// 1. The frame codec alone: whatever decodes re-encodes to a frame that decodes the same.
/// 2. The connector on a session that is up (CONNECTACK with a Token already seen): the frame
///    as it arrives on the socket, then a tick.
/// 3. The message-content decoding: a well-formed data frame (SEND, `__kind` 3) whose topic is
///    picked by the first byte and whose `content` is the rest of `data`, so the content JSON
///    readers see arbitrary text without the frame codec in the way.
pub fn taobao_tmc_frame(data: &[u8]) {
    use huiliu_taobao::TaobaoConnector;
    use huiliu_taobao::tmc::codec::{MessageType, TmcFrame, Value};

    if let Ok(frame) = TmcFrame::decode(data) {
        let again = TmcFrame::decode(&frame.encode()).expect("a re-encoded frame decodes");
        assert_eq!(again, frame, "encode/decode round trip changed the frame");
    }

    let mut connector = TaobaoConnector::new(taobao_config()).expect("sample Taobao config is valid");
    let open = connector.channel_open(taobao::CHANNEL, NOW).expect("the tmc channel opens");
    abi_round_trip(&open);
    let ack = TmcFrame::new(MessageType::ConnectAck).with_token(Some(taobao::TOKEN)).encode();
    let up = connector.channel_data(taobao::CHANNEL, ChannelData::Frame(Frame::Binary(ack)), NOW);
    assert_eq!(up.send.len(), 1, "CONNECTACK with a Token answers with a pull request");

    let out = connector.channel_data(taobao::CHANNEL, ChannelData::Frame(Frame::Binary(data.to_vec())), NOW);
    check_channel_outcome(&out, "taobao", taobao::SHOP);
    for batch in &out.batches {
        assert!(batch.events.len() + batch.dead_letters.len() <= 1, "one TMC message per batch: {batch:?}");
    }
    let _ = connector.channel_tick(taobao::CHANNEL, NOW);

    let Some((&pick, content)) = data.split_first() else { return };
    if content.len() > huiliu_taobao::tmc::codec::MAX_FRAME_LEN / 4 {
        return; // may not fit in one frame once invalid UTF-8 is replaced (1 byte → 3)
    }
    let topic = taobao::TOPICS[usize::from(pick) % taobao::TOPICS.len()];
    let handled = topic != "taobao_item_ItemAdd";
    let frame = TmcFrame::new(MessageType::Send)
        .with_token(Some(taobao::TOKEN))
        .with("__kind", Value::Int16(3))
        .with("id", Value::Int64(9_007_199_254_740_993))
        .with("topic", Value::Str(topic.to_owned()))
        .with("content", Value::Str(String::from_utf8_lossy(content).into_owned()))
        .with("outtime", Value::Date(NOW - 1_000));
    let out = connector.channel_data(taobao::CHANNEL, ChannelData::Frame(Frame::Binary(frame.encode())), NOW);
    check_channel_outcome(&out, "taobao", taobao::SHOP);
    assert!(out.rejected.is_empty(), "a well-formed data frame was rejected: {:?}", out.rejected);
    let [batch] = out.batches.as_slice() else { panic!("one data frame, one batch: {out:?}") };
    assert_eq!(batch.on_durable.len(), 1, "every data message with an id is confirmed");
    let units = batch.events.len() + batch.dead_letters.len();
    assert_eq!(units, usize::from(handled), "topic `{topic}`: {batch:?}");
}

// ---------------------------------------------------------------------------------------------
// Douyin: HTTP push bodies.

mod douyin {
    pub const SHOP: &str = "shop-dy-1";
    pub const APP_KEY: &str = "3409409348479354011";
    pub const SECRET: &str = "2ad2355c-01d0-11f8-91dc-05a8cd1054b1";
}

/// The sample Douyin shop (the credentials of the PROTOCOLS.md vectors).
pub fn douyin_config() -> ShopConfig {
    ShopConfig::new(douyin::SHOP)
        .with("app_key", douyin::APP_KEY)
        .with("app_secret", douyin::SECRET)
        .with("access_token", "fixture-access-token")
}

fn douyin_push_of(body: &[u8], sign: &str) -> HttpPush {
    HttpPush {
        method: "POST".to_owned(),
        path: format!("/hooks/douyin/{}", douyin::SHOP),
        query: String::new(),
        headers: vec![
            ("App-Id".to_owned(), douyin::APP_KEY.to_owned()),
            ("Event-Sign".to_owned(), sign.to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ],
        body: body.to_vec(),
    }
}

/// Target `douyin_push`: `data` is the raw body of a push to `/hooks/douyin/{shop}`.
///
/// 1. Signed correctly (`event-sign` = MD5(app_key + body + secret)), so the body reaches the
///    batch splitter and the per-tag decoders: accepted (or refused as too large), every dead
///    letter's raw bytes a piece of the body.
/// 2. Signed with text taken from the body itself, so the header check sees arbitrary
///    (lossy UTF-8) signatures: accepted only if that text is the right signature.
pub fn douyin_push(data: &[u8]) {
    use huiliu_douyin::DouyinConnector;
    use huiliu_douyin::push::MAX_BODY_BYTES;
    use huiliu_douyin::sign::push_sign;

    let mut connector = DouyinConnector::new(douyin_config()).expect("sample Douyin config is valid");
    let expected = push_sign(douyin::APP_KEY, data, douyin::SECRET);

    let outcome = connector.decode_push(&douyin_push_of(data, &expected), NOW);
    abi_round_trip(&outcome);
    match &outcome {
        PushOutcome::Accepted { events, dead_letters, ack, nack, .. } => {
            assert!(data.len() <= MAX_BODY_BYTES);
            check_events(events, "douyin", douyin::SHOP);
            check_dead_letters(dead_letters, data);
            assert_eq!((ack.status, nack.status), (200, 200));
        }
        PushOutcome::Rejected { kind, .. } => {
            assert!(*kind == RejectKind::TooLarge && data.len() > MAX_BODY_BYTES, "authentic push refused: {outcome:?}")
        }
    }

    let sign = String::from_utf8_lossy(data.get(..32).unwrap_or(data)).into_owned();
    let outcome = connector.decode_push(&douyin_push_of(data, &sign), NOW);
    abi_round_trip(&outcome);
    if let PushOutcome::Accepted { .. } = outcome {
        assert!(sign.trim().eq_ignore_ascii_case(&expected), "accepted a push signed `{sign}`");
    }
}

// ---------------------------------------------------------------------------------------------
// WeChat Shop: the message push, plain and safe mode.

mod wechat {
    pub const SHOP: &str = "wx-shop-1";
    pub const APPID: &str = "wxba5fad812f8e6fb9";
    pub const TOKEN: &str = "AAAAA";
    pub const AES_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
}

/// The sample WeChat Shop (the credentials of the message-push guide's published example).
pub fn wechat_config() -> ShopConfig {
    ShopConfig::new(wechat::SHOP)
        .with("appid", wechat::APPID)
        .with("token", wechat::TOKEN)
        .with("encoding_aes_key", wechat::AES_KEY)
        .with("access_token", "fixture-access-token")
}

fn wechat_push_of(query: String, body: Vec<u8>) -> HttpPush {
    HttpPush {
        method: "POST".to_owned(),
        path: format!("/hooks/wechat-shop/{}", wechat::SHOP),
        query,
        headers: vec![],
        body,
    }
}

/// Target `wechat_shop_push`: `data` is the plaintext of a push (what WeChat encrypts).
///
/// 1. Sealed with the shop's EncodingAESKey and signed (`msg_signature`), so it reaches the
///    decryption and the event decoder: accepted, with exactly one unit (an event, a dead letter
///    keeping the exact plaintext, or an ignored unit), or refused as too large.
/// 2. Sent in plain mode, correctly signed: the same, on the plain path.
/// 3. Used as the `Encrypt` value itself, signed: refused unless it happens to open.
pub fn wechat_shop_push(data: &[u8]) {
    use huiliu_wechat_shop::WechatShopConnector;
    use huiliu_wechat_shop::crypto::{AesKey, sorted_sha1};

    let mut connector = WechatShopConnector::new(wechat_config()).expect("sample WeChat Shop config is valid");
    let ts = (NOW / 1000).to_string();
    let nonce = "415670741";
    let one_unit = |outcome: &PushOutcome, body_len: usize| match outcome {
        PushOutcome::Accepted { events, dead_letters, ignored, ack, nack, .. } => {
            check_events(events, "wechat-shop", wechat::SHOP);
            check_dead_letters(dead_letters, data);
            assert_eq!(events.len() + dead_letters.len() + ignored.len(), 1, "one push, one unit: {outcome:?}");
            assert_eq!((ack.status, nack.status), (200, 503));
        }
        PushOutcome::Rejected { kind, .. } => assert!(
            *kind == RejectKind::TooLarge && body_len > huiliu_wechat_shop::push::MAX_BODY_BYTES,
            "authentic push refused: {outcome:?}"
        ),
    };

    let key = AesKey::from_encoding_key(wechat::AES_KEY).expect("sample key");
    let encrypt = key.encrypt(b"a8eedb185eb2fecf", data, wechat::APPID);
    let msg_signature = sorted_sha1(&[wechat::TOKEN, &ts, nonce, &encrypt]);
    let body = format!(r#"{{"ToUserName":"gh_fuzz","Encrypt":"{encrypt}"}}"#).into_bytes();
    let len = body.len();
    let query = format!("timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_signature}");
    let outcome = connector.decode_push(&wechat_push_of(query, body), NOW);
    abi_round_trip(&outcome);
    one_unit(&outcome, len);

    let signature = sorted_sha1(&[wechat::TOKEN, &ts, nonce]);
    let outcome = connector.decode_push(
        &wechat_push_of(format!("signature={signature}&timestamp={ts}&nonce={nonce}"), data.to_vec()),
        NOW,
    );
    abi_round_trip(&outcome);
    one_unit(&outcome, data.len());

    let raw = String::from_utf8_lossy(data).replace(['"', '\\'], "");
    let msg_signature = sorted_sha1(&[wechat::TOKEN, &ts, nonce, &raw]);
    let body = format!(r#"{{"Encrypt":"{raw}"}}"#).into_bytes();
    let query = format!("timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_signature}");
    let outcome = connector.decode_push(&wechat_push_of(query, body), NOW);
    abi_round_trip(&outcome);
    if let PushOutcome::Accepted { .. } = outcome {
        assert!(
            key.decrypt(&raw).is_ok_and(|(_, appid)| appid == wechat::APPID),
            "accepted an Encrypt that does not open"
        );
    }
}

/// A dead letter keeps the exact bytes of the unit (or the whole body) it could not read.
fn check_dead_letters(dead_letters: &[DeadLetter], body: &[u8]) {
    for dead in dead_letters {
        assert!(
            dead.raw.is_empty() || body.windows(dead.raw.len()).any(|w| w == dead.raw.as_slice()),
            "dead letter raw bytes are not part of the body: {dead:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// JD: the JOS message stream body.

mod jd {
    pub const SHOP: &str = "shop-jd-1";
    pub const CHANNEL: &str = "stream";
}

/// The sample JD shop (loopback URLs).
pub fn jd_config() -> ShopConfig {
    ShopConfig::new(jd::SHOP)
        .with("app_key", "testappkey")
        .with("app_secret", "testappsecret")
        .with("access_token", "testtoken")
        .with("api_url", "http://127.0.0.1:18080/routerjson")
        .with("stream_url", "http://127.0.0.1:18081/stream")
}

/// A JD connector whose stream is open (connect sent, HTTP 200 head received).
fn jd_open() -> huiliu_jd::JdConnector {
    let mut connector = huiliu_jd::JdConnector::new(jd_config()).expect("sample JD config is valid");
    let open = connector.channel_open(jd::CHANNEL, NOW).expect("the stream channel opens");
    abi_round_trip(&open);
    let head = connector.channel_data(jd::CHANNEL, ChannelData::Response(HttpResponse::json(200, Vec::new())), NOW);
    assert_eq!(head.control, ChannelControl::Continue);
    connector
}

/// Target `jd_stream`: `data` is (a piece of) the streamed body of the JOS message stream.
///
/// 1. The body in one chunk: line framing, packet codes, and the chat decoding of packet 202.
/// 2. The same body cut into chunks whose sizes come from the data, anywhere (mid-line,
///    mid-UTF-8): the same events, dead letters and refusals as in one chunk.
/// 3. The body as the answer to a refused connect (HTTP 403): the `error_response` reader,
///    which must close the channel.
pub fn jd_stream(data: &[u8]) {
    let mut whole = jd_open();
    let out = whole.channel_data(jd::CHANNEL, ChannelData::Chunk(data.to_vec()), NOW);
    check_channel_outcome(&out, "jd", jd::SHOP);
    let want = units(std::slice::from_ref(&out));

    let mut split = jd_open();
    let mut outs = Vec::new();
    let mut rest = data;
    let mut state = data.len() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    while !rest.is_empty() {
        state = xorshift(state);
        let cut = usize::try_from(state % 64).unwrap_or(0) + 1;
        let (piece, tail) = rest.split_at(cut.min(rest.len()));
        let out = split.channel_data(jd::CHANNEL, ChannelData::Chunk(piece.to_vec()), NOW);
        check_channel_outcome(&out, "jd", jd::SHOP);
        outs.push(out);
        rest = tail;
    }
    assert_eq!(units(&outs), want, "chunk boundaries changed what the stream decoded");

    let mut refused = jd_open();
    let out = refused.channel_data(jd::CHANNEL, ChannelData::Response(HttpResponse::json(403, data.to_vec())), NOW);
    check_channel_outcome(&out, "jd", jd::SHOP);
    assert!(!matches!(out.control, ChannelControl::Continue), "a refused connect must close the channel");
}

/// What a sequence of outcomes decoded, independent of how the body was chunked.
fn units(outs: &[ChannelOutcome]) -> (Vec<AckBatch>, Vec<(RejectKind, String)>) {
    let batches = outs.iter().flat_map(|o| o.batches.iter().cloned()).collect();
    let rejected = outs.iter().flat_map(|o| o.rejected.iter().cloned()).collect();
    (batches, rejected)
}

/// One step of a 64-bit xorshift generator (Marsaglia), never 0 from a non-zero state.
pub fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use huiliu_sdk::testkit::{Mutations, seed_inputs};

    use super::*;

    /// The seeds, a prefix every 3 bytes of each, one-bit flips, and fixed-seed random bytes.
    fn inputs(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
        let m = Mutations { cut_step: 3, flips: 16, max_len: 512, ..Mutations::default() };
        seed_inputs(&dir, m).all()
    }

    #[test]
    fn taobao_tmc_frame_on_seeds_and_garbage() {
        for input in inputs("taobao_tmc_frame") {
            taobao_tmc_frame(&input);
        }
        // Hostile lengths: a Token claiming i32::MAX bytes, a negative length, an oversized frame.
        taobao_tmc_frame(&[2, 1, 5, 0, 0xff, 0xff, 0xff, 0x7f, b'a']);
        taobao_tmc_frame(&[2, 2, 1, 0, 0xff, 0xff, 0xff, 0xff]);
        taobao_tmc_frame(&vec![2; huiliu_taobao::tmc::codec::MAX_FRAME_LEN + 1]);
    }

    #[test]
    fn douyin_push_on_seeds_and_garbage() {
        for input in inputs("douyin_push") {
            douyin_push(&input);
        }
        douyin_push(&vec![b'['; huiliu_douyin::push::MAX_BODY_BYTES + 1]);
        douyin_push(format!("{}1{}", "[".repeat(200), "]".repeat(200)).as_bytes());
    }

    #[test]
    fn wechat_shop_push_on_seeds_and_garbage() {
        for input in inputs("wechat_shop_push") {
            wechat_shop_push(&input);
        }
        wechat_shop_push(format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100)).as_bytes());
    }

    #[test]
    fn jd_stream_on_seeds_and_garbage() {
        for input in inputs("jd_stream") {
            jd_stream(&input);
        }
        let mut long = vec![b'x'; huiliu_jd::stream::MAX_LINE + 1];
        long.extend_from_slice(b"\n{\"packet\":{\"code\":201}}\n");
        jd_stream(&long);
        jd_stream(format!("{{\"packet\":{}1{}}}\n", "[".repeat(200), "]".repeat(200)).as_bytes());
    }

    /// `FUZZ_REPLAY=artifacts/<target>/crash-… cargo test replay -- --nocapture` runs one file (a
    /// crash artifact, a corpus entry) through its target, named by the file's folder, with plain
    /// stable `cargo test`; a file elsewhere goes through all three. Without the variable: nothing.
    #[test]
    fn replay() {
        let Some(path) = std::env::var_os("FUZZ_REPLAY").map(PathBuf::from) else { return };
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("FUZZ_REPLAY {}: {e}", path.display()));
        let folder = path.parent().and_then(Path::file_name).and_then(|n| n.to_str()).unwrap_or_default();
        type Target = fn(&[u8]);
        let targets: &[(&str, Target)] =
            &[("taobao_tmc_frame", taobao_tmc_frame), ("douyin_push", douyin_push), ("jd_stream", jd_stream)];
        for (name, target) in targets {
            if folder == *name || !targets.iter().any(|(n, _)| *n == folder) {
                eprintln!("replaying {} ({} bytes) through {name}", path.display(), data.len());
                target(&data);
            }
        }
    }
}
