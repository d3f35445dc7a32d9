//! Compile-fail and pass cases of the ergo macros, run by trybuild from `tests/ui.rs`; the
//! cases live in `fail/<macro>/<mistake>.rs` (with the expected `.stderr`) and `pass/*.rs`.
