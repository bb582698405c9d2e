//! `cargo fuzz run douyin_push`: see fuzz/README.md and `huiliu_fuzz::douyin_push`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huiliu_fuzz::douyin_push(data));
