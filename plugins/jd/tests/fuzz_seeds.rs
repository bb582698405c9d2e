//! The `jd_stream` fuzz target's inputs as an ordinary test (no nightly, no libFuzzer): every
//! seed in `fuzz/seeds/jd_stream/`, their prefixes and bit flips, fixed-seed random bytes and
//! an oversized line go through `channel_data` on an open stream, in one chunk and cut into
//! small chunks (which must decode the same), and as the body of a refused connect. Nothing may
//! panic. See `fuzz/README.md`.

use std::path::Path;

use huiliu_jd::JdConnector;
use huiliu_jd::stream::MAX_LINE;
use huiliu_sdk::{AckBatch, ChannelControl, ChannelData, ChannelOutcome, Connector, HttpResponse, ShopConfig};

const CHANNEL: &str = "stream";
const NOW: i64 = 1_700_000_000_000;

fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/jd_stream");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "expected the seed corpus in {}", dir.display());
    paths.iter().map(|p| std::fs::read(p).expect("readable seed")).collect()
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Seeds, their prefixes and one-bit flips, random bytes, an oversized line.
fn inputs() -> Vec<Vec<u8>> {
    let seeds = seeds();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut all = Vec::new();
    for seed in &seeds {
        all.extend((0..seed.len()).step_by(5).map(|cut| seed[..cut].to_vec()));
        for _ in 0..8 {
            state = xorshift(state);
            let mut flipped = seed.clone();
            if let Some(b) = flipped.get_mut(usize::try_from(state).unwrap_or(0) % seed.len().max(1)) {
                *b ^= 1 << (state >> 61);
            }
            all.push(flipped);
        }
    }
    // Newlines, JSON punctuation, packet words and a split UTF-8 character, so lines form.
    const ALPHABET: &[u8] = b"\n{}[]\":,0123456789packetcodemsg\\\r\xe6\xb1\x87";
    for _ in 0..200 {
        state = xorshift(state);
        let len = usize::try_from(state % 300).unwrap_or(0);
        all.push(
            (0..len)
                .map(|_| {
                    state = xorshift(state);
                    ALPHABET[usize::from(state.to_le_bytes()[0]) % ALPHABET.len()]
                })
                .collect(),
        );
    }
    let mut long = vec![b'x'; MAX_LINE + 1];
    long.extend_from_slice(b"\n{\"packet\":{\"code\":201}}\n");
    all.push(long);
    all.push(format!("{{\"packet\":{{\"code\":202,\"msg\":{}1{}}}}}\n", "[".repeat(500), "]".repeat(500)).into_bytes());
    all.extend(seeds);
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
