//! Fuzz target `remote_payload`: see `ergo::__fuzz::remote_payload` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ergo::__fuzz::remote_payload(data));
