//! The error accumulator: parse and check add to it; the macro reports every error at once.

use std::fmt::Display;

use quote::ToTokens;

/// Collects errors so one build shows every mistake.
///
/// An error can never be lost: a `Ctxt` that still holds errors when it is dropped panics (the
/// build then fails with "proc-macro panicked" and the message below). Its errors are taken by
/// [`Ctxt::into_compile_errors`] (what a macro emits), [`Ctxt::check`] (for tests) or
/// [`Ctxt::append`] (into another context), each of which consumes it.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    pub(crate) fn new() -> Self {
        Ctxt::default()
    }

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
        self.errors.extend(other.take());
    }

    /// How many errors were recorded so far (to tell whether a part added any).
    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// All errors as `compile_error!` invocations.
    pub(crate) fn into_compile_errors(self) -> proc_macro2::TokenStream {
        self.take()
            .iter()
            .map(syn::Error::to_compile_error)
            .collect()
    }

    /// All errors combined into one, or `Ok` when there are none.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn check(self) -> syn::Result<()> {
        let mut errors = self.take().into_iter();
        let Some(mut first) = errors.next() else {
            return Ok(());
        };
        for e in errors {
            first.combine(e);
        }
        Err(first)
    }

    fn take(mut self) -> Vec<syn::Error> {
        std::mem::take(&mut self.errors)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        // Not while unwinding: a second panic would abort and hide the first one's message.
        if !self.errors.is_empty() && !std::thread::panicking() {
            panic!(
                "ergo-macros bug: {} error(s) recorded and never reported, the first: {}",
                self.errors.len(),
                self.errors[0]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ctxt;
    use proc_macro2::Span;

    #[test]
    fn taken_errors_are_reported_in_order() {
        let mut cx = Ctxt::new();
        cx.syn_error(syn::Error::new(Span::call_site(), "first"));
        let mut other = Ctxt::new();
        other.syn_error(syn::Error::new(Span::call_site(), "second"));
        cx.append(other);
        assert_eq!(cx.error_count(), 2);
        let err = cx.check().unwrap_err();
        let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn empty_context_drops_quietly() {
        let cx = Ctxt::new();
        drop(cx);
        assert!(Ctxt::new().check().is_ok());
    }

    #[test]
    #[should_panic(expected = "recorded and never reported")]
    fn forgotten_error_panics() {
        let mut cx = Ctxt::new();
        cx.syn_error(syn::Error::new(Span::call_site(), "lost"));
        drop(cx);
    }
}
