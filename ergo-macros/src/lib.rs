//! Procedural macros of the ergo actor framework.
//!
//! - `#[actor]` on an inherent `impl` block turns the type into an actor: every `#[handle]`
//!   method becomes a message variant, and `ActorRef<T>` gains one method per handler (through the
//!   generated `TApi` trait).
//! - `#[handle]` and the hooks (`#[init]`, `#[terminate]`, `#[on_exit]`, `#[on_down]`) only mean
//!   something inside `#[actor]`; used elsewhere each is an error that says so.
//!
//! The crate is split as parse (syn input → raw attributes), model (validated description with
//! the user's spans), check (one function per rule), expand (quote), with every error collected
//! in a `ctxt::Ctxt` so one build shows every mistake. On error the user's own items are still
//! emitted, and so is the actor built from the parts that are right, so no cascade of follow-on
//! errors appears (in the impl block, or where the actor is spawned and called).

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
    outside_actor("handle", "methods", input)
}

/// Marks the hook that runs first in a new process, inside an `#[actor]` impl block.
#[proc_macro_attribute]
pub fn init(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_actor("init", "hooks", input)
}

/// Marks the hook that runs when the process stops, inside an `#[actor]` impl block.
#[proc_macro_attribute]
pub fn terminate(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_actor("terminate", "hooks", input)
}

/// Marks the hook that receives trapped exit signals, inside an `#[actor]` impl block.
#[proc_macro_attribute]
pub fn on_exit(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_actor("on_exit", "hooks", input)
}

/// Marks the hook that receives down notices of monitored processes, inside an `#[actor]` impl
/// block.
#[proc_macro_attribute]
pub fn on_down(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_actor("on_down", "hooks", input)
}

/// `#[actor]` strips its inner attributes before they expand, so reaching one of these means it
/// is used outside an `#[actor]` impl block: the item is kept and the mistake reported.
fn outside_actor(name: &str, what: &str, input: TokenStream) -> TokenStream {
    let mut out = proc_macro2::TokenStream::from(input);
    let err = syn::Error::new(
        proc_macro2::Span::call_site(),
        format!(
            "`#[{name}]` only works on {what} inside an `#[actor]` impl block; add `#[actor]` to the enclosing `impl`"
        ),
    );
    out.extend(err.to_compile_error());
    out.into()
}

/// Declares a supervision tree as a type (see `ergo::supervisor`).
#[proc_macro]
pub fn supervisor(input: TokenStream) -> TokenStream {
    let _ = input;
    syn::Error::new(
        proc_macro2::Span::call_site(),
        "`supervisor!` is not implemented yet",
    )
    .to_compile_error()
    .into()
}
