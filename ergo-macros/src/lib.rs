//! Procedural macros of the ergo actor framework.
//!
//! - `#[actor]` on an inherent `impl` block turns the type into an actor: every `#[handle]`
//!   method becomes a message variant, and `ActorRef<T>` gains one method per handler (through the
//!   generated `TApi` trait).
//! - `#[handle]` only means something inside `#[actor]`; used elsewhere it is an error that says
//!   so.
//!
//! The crate is split as parse (syn input → raw attributes), model (validated description with
//! the user's spans), check (one function per rule), expand (quote), with every error collected
//! in a [`ctxt::Ctxt`] so one build shows every mistake. On error the user's own items are still
//! emitted, so no cascade of follow-on errors appears.

mod check;
mod ctxt;
mod expand;
mod model;
mod parse;

use proc_macro::TokenStream;

/// Turns an inherent `impl` block into an actor. See the `ergo` crate docs.
///
/// Options: `#[actor(remote, mailbox = 64, msg = Name, api = Name, crate = "path")]`.
#[proc_macro_attribute]
pub fn actor(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::actor(args.into(), input.into()).into()
}

/// Marks a message handler inside an `#[actor]` impl block.
#[proc_macro_attribute]
pub fn handle(_args: TokenStream, input: TokenStream) -> TokenStream {
    let mut out = proc_macro2::TokenStream::from(input);
    let err = syn::Error::new(
        proc_macro2::Span::call_site(),
        "`#[handle]` only works on methods inside an `#[actor]` impl block; add `#[actor]` to the enclosing `impl`",
    );
    out.extend(err.to_compile_error());
    out.into()
}
