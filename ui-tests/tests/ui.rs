//! Compile-fail and pass cases of `#[actor]` and `supervisor!`, run with trybuild.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p ui-tests` and read the
//! diff: every message must be one a user understands.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("fail/**/*.rs");
    t.pass("pass/*.rs");
}
