//! `cargo fuzz run taobao_tmc_frame`: see fuzz/README.md and `huiliu_fuzz::taobao_tmc_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huiliu_fuzz::taobao_tmc_frame(data));
