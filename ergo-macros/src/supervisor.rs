//! `supervisor!`: a supervision tree declared as a type.
//!
//! The same split as `#[actor]`: [`parse`] cuts the invocation into raw parts that keep the
//! user's tokens, [`check`] turns them into the [`model`] with one function per rule, and
//! [`expand`] writes the type. Every error goes to one [`Ctxt`], so one build shows every
//! mistake; the type is still generated whenever its name parsed (from the valid parts), so
//! code that spawns or nests it adds no follow-on errors.

mod check;
mod expand;
mod model;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ctxt::Ctxt;

pub(crate) fn supervisor(input: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let generated =
        parse::tree(&mut cx, input).map(|raw| expand::generate(&check::tree(&mut cx, raw)));
    let errors = cx.into_compile_errors();
    quote! { #generated #errors }
}
