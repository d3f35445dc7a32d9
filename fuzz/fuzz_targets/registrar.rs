//! Fuzz target `registrar`: see `ergo::__fuzz::registrar` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ergo::__fuzz::registrar(data));
