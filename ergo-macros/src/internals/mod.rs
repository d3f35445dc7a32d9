//! What `#[actor]` and `supervisor!` share, written once.
//!
//! - [`ctxt`]: the error accumulator every phase reports to, which cannot lose an error.
//! - [`option`]: the `key = value` / `flag` option syntax and the `crate = "path"` option.
//! - [`text`]: tokens written back as source, "did you mean" suggestions, word lists.

pub(crate) mod ctxt;
pub(crate) mod option;
pub(crate) mod text;

pub(crate) use ctxt::Ctxt;
