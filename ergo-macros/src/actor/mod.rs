//! `#[actor]`: an inherent impl block made an actor.
//!
//! [`parse`] cuts the options and the impl block into raw syntax, [`model`] builds the actor's
//! description from it, [`check`] enforces every rule on that description (marking what can
//! still be generated), and [`expand`] writes the code. Every error goes to one [`Ctxt`], so
//! one build shows every mistake, next to the user's own (stripped) impl block.

mod check;
mod expand;
mod model;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::internals::Ctxt;

pub(crate) fn actor(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut cx = Ctxt::new();
    let raw = parse::actor(&mut cx, args, input);
    let mut actor = model::Actor::from_raw(raw);
    check::check(&mut cx, &mut actor);
    let out = expand::actor(&actor);
    let errors = cx.into_compile_errors();
    quote! { #out #errors }
}
