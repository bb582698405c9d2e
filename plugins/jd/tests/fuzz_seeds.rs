//! The `jd_stream` fuzz target's inputs as an ordinary test (no nightly, no libFuzzer): every
//! seed in `fuzz/seeds/jd_stream/`, their prefixes and bit flips, fixed-seed random bytes and
//! an oversized line go through `channel_data` on an open stream, in one chunk and cut into
//! small chunks (which must decode the same), and as the body of a refused connect. Nothing may
//! panic. See `fuzz/README.md`.

use std::path::Path;

use huiliu_jd::JdConnector;
use huiliu_jd::stream::MAX_LINE;
use huiliu_sdk::testkit::{Mutations, seed_inputs, xorshift};
use huiliu_sdk::{AckBatch, ChannelControl, ChannelData, ChannelOutcome, Connector, HttpResponse, ShopConfig};

const CHANNEL: &str = "stream";
const NOW: i64 = 1_700_000_000_000;

/// Seeds, their prefixes and one-bit flips, random bytes, an oversized line.
fn inputs() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/jd_stream");
    // Newlines, JSON punctuation, packet words and a split UTF-8 character, so lines form.
    const ALPHABET: &[u8] = b"\n{}[]\":,0123456789packetcodemsg\\\r\xe6\xb1\x87";
    let mut all = seed_inputs(&dir, Mutations { cut_step: 5, alphabet: ALPHABET, ..Mutations::default() }).all();
    let mut long = vec![b'x'; MAX_LINE + 1];
    long.extend_from_slice(b"\n{\"packet\":{\"code\":201}}\n");
    all.push(long);
    all.push(format!("{{\"packet\":{{\"code\":202,\"msg\":{}1{}}}}}\n", "[".repeat(500), "]".repeat(500)).into_bytes());
    all
}

fn open() -> JdConnector {
    let config = ShopConfig::new("shop-jd-1")
        .with("app_key", "testappkey")
        .with("app_secret", "testappsecret")
        .with("stream_url", "http://127.0.0.1:18081/stream");
    let mut connector = JdConnector::new(config).expect("config");
    connector.channel_open(CHANNEL, NOW).expect("opens");
    let head = connector.channel_data(CHANNEL, ChannelData::Response(HttpResponse::json(200, Vec::new())), NOW);
    assert_eq!(head.control, ChannelControl::Continue);
    connector
}

fn units(outs: &[ChannelOutcome]) -> Vec<AckBatch> {
    outs.iter().flat_map(|o| o.batches.iter().cloned()).collect()
}

#[test]
fn seeds_and_garbage_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for body in inputs() {
        let whole = open().channel_data(CHANNEL, ChannelData::Chunk(body.clone()), NOW);
        for event in whole.batches.iter().flat_map(|b| &b.events) {
            assert_eq!((event.platform.as_str(), event.shop.as_str()), ("jd", "shop-jd-1"));
            assert!(!event.event_id.is_empty());
        }

        let mut split = open();
        let size = if body.len() > 4096 { 100_000 } else { 17 };
        let outs: Vec<ChannelOutcome> = body
            .chunks(size)
            .map(|piece| {
                state = xorshift(state);
                let cut = usize::try_from(state).unwrap_or(0) % (piece.len() + 1);
                let (a, b) = piece.split_at(cut);
                [a, b].map(|p| split.channel_data(CHANNEL, ChannelData::Chunk(p.to_vec()), NOW))
            })
            .flat_map(|pair| pair.into_iter())
            .collect();
        assert_eq!(units(&outs), units(std::slice::from_ref(&whole)), "chunking changed the batches");

        let refused = open().channel_data(CHANNEL, ChannelData::Response(HttpResponse::json(403, body)), NOW);
        assert_ne!(refused.control, ChannelControl::Continue, "a refused connect closes the channel");
    }
}
