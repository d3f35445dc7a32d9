//! The validated description of an actor, with the user's spans kept for generated code.

use proc_macro2::Span;
use syn::{Ident, LitStr, Type};

/// One actor: the impl block's self type and what `#[actor]` found inside it.
pub(crate) struct Actor {
    pub(crate) self_ty: Type,
    pub(crate) name: Ident,
    pub(crate) msg: Ident,
    pub(crate) api: Ident,
    pub(crate) krate: syn::Path,
    pub(crate) remote: bool,
    pub(crate) mailbox: Option<syn::LitInt>,
    pub(crate) handlers: Vec<Handler>,
    pub(crate) init: Option<Hook>,
    pub(crate) terminate: Option<Hook>,
    pub(crate) on_exit: Option<Hook>,
    pub(crate) on_down: Option<Hook>,
}

/// One `#[handle]` method.
pub(crate) struct Handler {
    pub(crate) method: Ident,
    /// `true` when the method has an error, already reported. A stub still gets its variant
    /// (without fields) and its `ActorRef` method (the user's signature, with `Self` spelled
    /// out), so the user's calls to it add no follow-on errors; nothing of it ever runs.
    pub(crate) stub: bool,
    pub(crate) variant: Ident,
    pub(crate) docs: Vec<LitStr>,
    pub(crate) is_async: bool,
    /// The arguments carried in the message, in order.
    pub(crate) args: Vec<Arg>,
    /// How to call the method: each parameter is an argument or the context.
    pub(crate) params: Vec<Param>,
    /// `None` for a cast; the reply type for a call.
    pub(crate) reply: Option<Type>,
}

/// A message-carried argument (of a stub: the parameter as written, `Self` spelled out).
pub(crate) struct Arg {
    pub(crate) name: Ident,
    pub(crate) ty: Type,
}

/// One parameter of a handler or hook after the receiver.
#[derive(Clone, Copy)]
pub(crate) enum Param {
    /// The `i`-th carried argument (for hooks: the `i`-th runtime-provided value).
    Arg(usize),
    /// The `ctx: &mut Ctx<Self>` parameter.
    Ctx,
}

/// A lifecycle hook (`#[init]`, `#[terminate]`, `#[on_exit]`, `#[on_down]`).
pub(crate) struct Hook {
    pub(crate) method: Ident,
    pub(crate) is_async: bool,
    /// The runtime-provided values the hook takes, with the user's types (their spans carry
    /// type mismatches to the user's signature).
    pub(crate) args: Vec<Arg>,
    pub(crate) params: Vec<Param>,
    /// The declared return type (only `#[init]` may have one).
    pub(crate) output: Option<Type>,
    pub(crate) span: Span,
}

/// `add_item` → `AddItem`.
pub(crate) fn variant_name(method: &Ident) -> Ident {
    let raw = method.to_string();
    let raw = raw.trim_start_matches("r#");
    let mut out = String::new();
    let mut upper = true;
    for c in raw.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push_str("Msg");
    }
    Ident::new(&out, method.span())
}
