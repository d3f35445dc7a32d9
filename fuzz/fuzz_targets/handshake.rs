//! Fuzz target `handshake`: see `ergo::__fuzz::handshake` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ergo::__fuzz::handshake(data));
