//! Procedural macros of the ergo actor framework.
//!
//! - `#[actor]` on an inherent `impl` block turns the type into an actor: every `#[handle]`
//!   method becomes a message variant, and `ActorRef<T>` gains one method per handler (through the
//!   generated `TApi` trait).
//! - `#[handle]` and the hooks (`#[init]`, `#[terminate]`, `#[on_exit]`, `#[on_down]`) only mean
//!   something inside `#[actor]`; used elsewhere each is an error that says so.
//! - `supervisor!` declares a supervision tree (strategy, intensity, children, nested
//!   supervisors) as a type that can be spawned or nested in another tree.
//!
//! # Layout
//!
//! Built like serde_derive's internals. Each macro, in its own module (`actor/`,
//! `supervisor/`), is four steps:
//!
//! - `parse`: the macro's input into raw syntax (options as `key = value` tokens, our attributes
//!   taken off the impl block's methods, a supervisor's header and children cut at their
//!   commas). No rules: only input that does not have the shape at all is reported.
//! - `model`: the description built from that syntax, with the user's spans. Building it
//!   applies no rule either; `check` makes it the validated description.
//! - `check`: one `check()` whose doc comment lists every rule, calling one small function per
//!   rule. It records what the options mean in the model and marks what can still be generated
//!   (a handler with a mistake becomes a stub, a child with one is left out).
//! - `expand`: the generated code, from the checked model (quote only, no checks). It names
//!   only `::ergo::__private::…` (or the `crate = ".."` path's `__private`) and `::core::…`,
//!   and every generated trait impl is `#[automatically_derived]`.
//!
//! `internals/` holds what both macros share: `Ctxt` (the error accumulator, which panics if an
//! error is dropped without being reported), `RawOption` and the `crate = "path"` option, and
//! the text helpers (`tokens_str`, `did_you_mean`, `one_of`).
//!
//! Every error goes to one `Ctxt`, so one build shows every mistake, and a misspelled keyword
//! gets a "did you mean" suggestion. On error the user's own items are still emitted, and so
//! is the actor or tree built from the parts that are right, so no cascade of follow-on errors
//! appears (in the impl block, or where the actor is spawned and called).

mod actor;
mod internals;
mod supervisor;

use proc_macro::TokenStream;

/// Turns an inherent `impl` block into an actor. See the `ergo` crate docs.
///
/// Options: `#[actor(remote, mailbox = 64, msg = Name, api = Name, crate = "path")]`; a
/// misspelled one gets a suggestion (`remot` → `remote`).
#[proc_macro_attribute]
pub fn actor(args: TokenStream, input: TokenStream) -> TokenStream {
    actor::actor(args.into(), input.into()).into()
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

/// Declares a supervision tree as a type (see `ergo::supervisor` for the semantics).
///
/// ```text
/// supervisor! {
///     /// Doc comments (copied onto the type).
///     pub CounterSup: one_for_one, intensity = 3, period = 5s {
///         counter: Counter::default() => permanent,
///         cache: Cache::new(10) => transient, shutdown = 2s, name = "cache",
///         flaky: Flaky::new() => temporary, shutdown = brutal_kill,
///         nested: OtherSup::new() => permanent,
///         inner: one_for_all, intensity = 1, period = 500ms {
///             a: A::default() => permanent,
///         } => permanent, shutdown = infinity,
///     }
/// }
/// ```
///
/// # Grammar
///
/// - **Header**: doc comments and lint attributes, an optional visibility, the type's name,
///   `:`, the strategy (`one_for_one`, `one_for_all` or `rest_for_one`), then optional
///   comma-separated settings: `intensity = N` (default 1), `period = <duration>` (default
///   `5s`) and `auto_shutdown = never | any_significant | all_significant` (default `never`).
///   At most `intensity` restarts within `period` are allowed; the period must be longer than
///   zero. An optional first line `#![crate = "path::to::ergo"]` points the generated code at a
///   re-export of the runtime.
/// - **Durations**: a whole number with the unit `ms`, `s` or `m`: `500ms`, `5s`, `1m`.
/// - **Children**, in braces, separated by commas (a trailing comma is fine, and no children
///   at all is a valid tree): `id: <constructor> => <restart>` then optional comma-separated
///   options. The id names the child in `SupervisorApi` calls and is unique within its
///   supervisor. The constructor is any expression whose value is an actor (an `#[actor]`
///   type, or a type made by another `supervisor!`); it runs at every (re)start. The restart
///   type is `permanent`, `transient` or `temporary`.
/// - **Child options**: `shutdown = <duration> | brutal_kill | infinity` (default: 5 s for
///   workers, `infinity` for supervisors), `name = "..."` (every incarnation is registered under
///   it; names are unique in the tree), and `significant` (for transient and temporary
///   children of a supervisor whose `auto_shutdown` is not `never`, as OTP requires).
/// - **Inline supervisors**: a child's constructor can be a header without name and
///   visibility, followed by its own children in braces:
///   `id: one_for_all, intensity = 1 { ... } => permanent`.
///
/// # Generated code
///
/// `pub struct CounterSup(ergo::supervisor::Supervisor)` with `CounterSup::new()` (also
/// `Default`) building the tree, `Debug`, and the `Actor` impl every supervisor has: spawn it
/// with `node.spawn(CounterSup::new())`, call `SupervisorApi` methods on the `ActorRef`, or
/// nest it as a child of another tree. The type's docs list the tree.
///
/// # Errors
///
/// Every mistake is a compile error on its token: an unknown strategy, restart type, option or
/// unit, a duplicate id, option or registered name, a missing constructor or `=> restart`, a
/// zero period, `significant` on a permanent child or without `auto_shutdown`, and
/// `auto_shutdown` without a significant child. A misspelled word gets a suggestion
/// (`one_for_al` → `one_for_all`, `2sec` → `2s`). The type is still generated from the valid
/// parts, so its uses add no follow-on errors.
#[proc_macro]
pub fn supervisor(input: TokenStream) -> TokenStream {
    supervisor::supervisor(input.into()).into()
}
