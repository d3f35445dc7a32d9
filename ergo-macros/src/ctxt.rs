//! Error accumulator: every check adds to it; the expansion reports them all at once.

use std::fmt::Display;

use quote::ToTokens;

/// Collects errors so one build shows every mistake.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    /// Records an error spanned on `tokens`.
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&mut self, tokens: T, msg: M) {
        self.errors.push(syn::Error::new_spanned(tokens, msg));
    }

    /// Records a ready-made error.
    pub(crate) fn syn_error(&mut self, err: syn::Error) {
        self.errors.push(err);
    }

    /// Adds another context's errors after this one's (errors collected apart, reported in
    /// source order).
    pub(crate) fn append(&mut self, other: Ctxt) {
        self.errors.extend(other.errors);
    }

    /// How many errors were recorded so far (to tell whether a part added any).
    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// All errors as `compile_error!` invocations.
    pub(crate) fn into_compile_errors(self) -> proc_macro2::TokenStream {
        self.errors
            .iter()
            .map(syn::Error::to_compile_error)
            .collect()
    }
}
