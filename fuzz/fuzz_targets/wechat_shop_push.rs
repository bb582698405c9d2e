//! `cargo fuzz run wechat_shop_push`: see fuzz/README.md and `huiliu_fuzz::wechat_shop_push`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huiliu_fuzz::wechat_shop_push(data));
