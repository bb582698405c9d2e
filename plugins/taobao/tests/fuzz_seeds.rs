//! The `taobao_tmc_frame` fuzz target's inputs as an ordinary test (no nightly, no libFuzzer):
//! every seed in `fuzz/seeds/taobao_tmc_frame/`, their prefixes and bit flips, fixed-seed
//! random bytes and hostile lengths go through `channel_data` on an up session, as TMC frames
//! and as the content of a well-formed data frame. Nothing may panic. See `fuzz/README.md`.

mod common;

use std::path::Path;

use common::{NOW, SHOP, config};
use huiliu_sdk::testkit::{Mutations, seed_inputs};
use huiliu_sdk::{ChannelData, ChannelOutcome, Connector, Frame};
use huiliu_taobao::tmc::codec::{MAX_FRAME_LEN, MessageType, TmcFrame, Value};
use huiliu_taobao::{DEFAULT_CHAT_TOPIC, TaobaoConnector};

const CHANNEL: &str = "tmc";
const TOPICS: [&str; 4] = [DEFAULT_CHAT_TOPIC, "taobao_trade_TradeBuyerPay", "taobao_refund_RefundCreated", "x"];

/// Seeds, their prefixes and one-bit flips, random bytes, hostile lengths.
fn inputs() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/taobao_tmc_frame");
    let mut inputs = seed_inputs(&dir, Mutations::default());
    // Half of the random strings start like a TMC frame, so they get past the version byte.
    for bytes in inputs.garbage.iter_mut().step_by(2).filter(|b| b.len() >= 2) {
        bytes[0] = 2;
        bytes[1] %= 4;
    }
    let mut all = inputs.all();
    // A Token claiming i32::MAX bytes, a negative length, a frame one byte over the limit.
    all.push(vec![2, 1, 5, 0, 0xff, 0xff, 0xff, 0x7f, b'a']);
    all.push(vec![2, 2, 1, 0, 0xff, 0xff, 0xff, 0xff]);
    all.push(vec![2; MAX_FRAME_LEN + 1]);
    all
}

fn check(out: &ChannelOutcome) {
    for batch in &out.batches {
        assert!(batch.events.len() + batch.dead_letters.len() <= 1, "{batch:?}");
        for event in &batch.events {
            assert_eq!((event.platform.as_str(), event.shop.as_str()), ("taobao", SHOP));
            assert!(!event.event_id.is_empty());
        }
    }
}

#[test]
fn seeds_and_garbage_never_panic() {
    let mut connector = TaobaoConnector::new(config()).expect("config");
    connector.channel_open(CHANNEL, NOW).expect("opens");
    let ack = TmcFrame::new(MessageType::ConnectAck).with_token(Some("tk")).encode();
    assert_eq!(connector.channel_data(CHANNEL, ChannelData::Frame(Frame::Binary(ack)), NOW).send.len(), 1);
    for (i, input) in inputs().into_iter().enumerate() {
        if input.len() < 4096 {
            let content = String::from_utf8_lossy(&input).into_owned();
            let frame = TmcFrame::new(MessageType::Send)
                .with_token(Some("tk"))
                .with("__kind", Value::Int16(3))
                .with("id", Value::Int64(i64::try_from(i).unwrap_or(0) + 1))
                .with("topic", Value::Str(TOPICS[i % TOPICS.len()].to_owned()))
                .with("content", Value::Str(content));
            let out = connector.channel_data(CHANNEL, ChannelData::Frame(Frame::Binary(frame.encode())), NOW);
            check(&out);
            assert_eq!(out.batches.len(), 1, "a data frame is one batch");
        }
        let out = connector.channel_data(CHANNEL, ChannelData::Frame(Frame::Binary(input)), NOW);
        check(&out);
    }
    // Some inputs are refused CONNECTACKs, which end the session: a tick then sends nothing.
    assert!(connector.channel_tick(CHANNEL, NOW).len() <= 1);
}
