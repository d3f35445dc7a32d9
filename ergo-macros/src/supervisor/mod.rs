//! `supervisor!`: a supervision tree declared as a type.
//!
//! The same split as `#[actor]`: [`parse`] cuts the invocation into raw parts that keep the
//! user's tokens, [`model`] builds the tree's description from them, [`check`] enforces every
//! rule on it (marking the children that can be generated), and [`expand`] writes the type.
//! Every error goes to one [`Ctxt`], so one build shows every mistake; the type is still
//! generated whenever its name parsed (from the valid parts), so code that spawns or nests it
//! adds no follow-on errors.

mod check;
mod expand;
mod model;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::internals::Ctxt;

pub(crate) fn supervisor(input: TokenStream) -> TokenStream {
    let mut cx = Ctxt::new();
    let generated = parse::tree(&mut cx, input).map(|raw| {
        let mut tree = model::Tree::from_raw(raw);
        check::check(&mut cx, &mut tree);
        expand::generate(&tree)
    });
    let errors = cx.into_compile_errors();
    quote! { #generated #errors }
}
