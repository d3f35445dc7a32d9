//! Fuzz target `frame_decode`: see `ergo::__fuzz::frame_decode` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ergo::__fuzz::frame_decode(data));
