//! `cargo fuzz run jd_stream`: see fuzz/README.md and `huiliu_fuzz::jd_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huiliu_fuzz::jd_stream(data));
