//! Validation: one function per rule. Each records its errors in the [`Ctxt`] and the whole
//! impl block is still emitted, so the user sees exactly the mistakes and nothing else.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::ctxt::Ctxt;
use crate::model::{variant_name, Actor, Arg, Handler, Hook, Param};
use crate::parse::{docs, take_roles, ActorArgs, Role};

/// Builds the model from the impl block, stripping our attributes from it.
pub(crate) fn actor(cx: &mut Ctxt, args: ActorArgs, item: &mut ItemImpl) -> Option<Actor> {
    let mut handlers = Vec::new();
    let mut hooks: [Option<Hook>; 4] = [None, None, None, None];
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let roles = take_roles(&mut method.attrs);
        let Some((role, attr)) = roles.first().cloned() else {
            continue;
        };
        for (other, attr) in roles.iter().skip(1) {
            cx.error_spanned_by(
                attr,
                format!(
                    "`{}` already has `#[{}]`; a method takes only one of `#[handle]`, `#[init]`, `#[terminate]`, `#[on_exit]`, `#[on_down]`, so remove `#[{}]`",
                    method.sig.ident,
                    role.name(),
                    other.name()
                ),
            );
        }
        attr_takes_no_args(cx, role, &attr);
        match role {
            Role::Handle => {
                if let Some(h) = handler(cx, method) {
                    handlers.push(h);
                }
            }
            _ => {
                let slot = match role {
                    Role::Init => 0,
                    Role::Terminate => 1,
                    Role::OnExit => 2,
                    _ => 3,
                };
                if let Some(hook) = hook(cx, role, method) {
                    if hooks[slot].is_some() {
                        cx.error_spanned_by(
                            &method.sig.ident,
                            format!("only one `#[{}]` hook per actor", role.name()),
                        );
                    } else {
                        hooks[slot] = Some(hook);
                    }
                }
            }
        }
    }
    unique_variants(cx, &handlers);
    let name = impl_target(cx, item)?;
    let [init, terminate, on_exit, on_down] = hooks;
    let ident = |given: Option<syn::Ident>, suffix: &str| {
        given.unwrap_or_else(|| syn::Ident::new(&format!("{name}{suffix}"), name.span()))
    };
    Some(Actor {
        self_ty: (*item.self_ty).clone(),
        msg: ident(args.msg, "Msg"),
        api: ident(args.api, "Api"),
        name,
        krate: args.krate.unwrap_or_else(|| syn::parse_quote!(::ergo)),
        remote: args.remote,
        mailbox: args.mailbox,
        handlers,
        init,
        terminate,
        on_exit,
        on_down,
    })
}

/// `#[actor]` goes on an inherent, non-generic impl of a named type.
fn impl_target(cx: &mut Ctxt, item: &ItemImpl) -> Option<syn::Ident> {
    let mut ok = true;
    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(
            path,
            "`#[actor]` goes on the type's own `impl` block, not on a trait impl; write `impl MyActor { ... }`",
        );
        ok = false;
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &item.generics,
            "generic actors are not supported; make the actor a concrete type (wrap a generic one in a newtype)",
        );
        ok = false;
    }
    let name = match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| {
            if !s.arguments.is_none() {
                cx.error_spanned_by(
                    &s.arguments,
                    "generic actors are not supported; make the actor a concrete type",
                );
                ok = false;
            }
            s.ident.clone()
        }),
        other => {
            cx.error_spanned_by(
                other,
                "`#[actor]` needs a named type: `impl MyActor { ... }`",
            );
            None
        }
    };
    if ok {
        name
    } else {
        None
    }
}

fn attr_takes_no_args(cx: &mut Ctxt, role: Role, attr: &syn::Attribute) {
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        cx.error_spanned_by(
            &attr.meta,
            format!("`#[{0}]` takes no arguments; write `#[{0}]`", role.name()),
        );
    }
}

/// Receiver rule: `&self` or `&mut self`.
fn receiver(cx: &mut Ctxt, role: Role, method: &ImplItemFn) -> bool {
    match method.sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.colon_token.is_none() => true,
        Some(FnArg::Receiver(r)) => {
            cx.error_spanned_by(
                r,
                format!(
                    "#[{}] methods take `&mut self` or `&self`; found `{}`",
                    role.name(),
                    r.to_token_stream()
                ),
            );
            false
        }
        _ => {
            cx.error_spanned_by(
                &method.sig.ident,
                format!(
                    "#[{}] methods need a `&mut self` or `&self` receiver; `{}` has none",
                    role.name(),
                    method.sig.ident
                ),
            );
            false
        }
    }
}

/// Qualifier rule: no generics, no `unsafe`, no `extern`, no `const`.
fn plain_signature(cx: &mut Ctxt, role: Role, method: &ImplItemFn) -> bool {
    let sig = &method.sig;
    let mut ok = true;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            format!(
                "#[{}] methods cannot be generic: every message must have concrete types; remove the type parameters from `{}`",
                role.name(),
                sig.ident
            ),
        );
        ok = false;
    }
    if let Some(u) = &sig.unsafety {
        cx.error_spanned_by(u, format!("#[{}] methods cannot be `unsafe`", role.name()));
        ok = false;
    }
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(c, format!("#[{}] methods cannot be `const`", role.name()));
        ok = false;
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(
            abi,
            format!("#[{}] methods cannot be `extern`", role.name()),
        );
        ok = false;
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, format!("#[{}] methods cannot be variadic", role.name()));
        ok = false;
    }
    ok
}

/// Is this parameter the context (`&mut Ctx<..>`)? Errors on `&Ctx` and a by-value `Ctx`.
fn is_ctx(cx: &mut Ctxt, ty: &Type) -> bool {
    fn names_ctx(ty: &Type) -> bool {
        matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Ctx"))
    }
    match ty {
        Type::Reference(r) if names_ctx(&r.elem) => {
            if r.mutability.is_none() {
                cx.error_spanned_by(r, "take the context as `&mut Ctx<Self>`");
            }
            true
        }
        t if names_ctx(t) => {
            cx.error_spanned_by(t, "take the context by reference: `ctx: &mut Ctx<Self>`");
            true
        }
        _ => false,
    }
}

fn contains_ident(tokens: TokenStream, name: &str) -> Option<proc_macro2::Span> {
    for tt in tokens {
        match tt {
            TokenTree::Ident(i) if i == name => return Some(i.span()),
            TokenTree::Group(g) => {
                if let Some(s) = contains_ident(g.stream(), name) {
                    return Some(s);
                }
            }
            _ => {}
        }
    }
    None
}

/// Carried types must be owned, concrete and nameable outside the impl block.
fn owned_type(cx: &mut Ctxt, ty: &Type, what: &str) -> bool {
    match ty {
        Type::Reference(r) => {
            cx.error_spanned_by(
                r,
                format!(
                    "{what} must be owned: messages outlive the caller's borrows; take `{}` instead of `{}`",
                    r.elem.to_token_stream(),
                    r.to_token_stream()
                ),
            );
            false
        }
        Type::ImplTrait(t) => {
            cx.error_spanned_by(
                t,
                format!("{what} cannot be `impl Trait`: a message needs a concrete type; name the type or use `Box<dyn Trait + Send>`"),
            );
            false
        }
        _ => {
            if let Some(span) = contains_ident(ty.to_token_stream(), "Self") {
                cx.syn_error(syn::Error::new(
                    span,
                    format!("{what} cannot mention `Self` (the message enum lives outside the impl block); write the type's name"),
                ));
                return false;
            }
            let mut ok = true;
            let mut lifetimes = Vec::new();
            collect_lifetimes(ty.to_token_stream(), &mut lifetimes);
            for lt in lifetimes {
                if lt.ident != "static" {
                    cx.error_spanned_by(
                        &lt,
                        format!("{what} cannot borrow (`{lt}`): messages must own their data"),
                    );
                    ok = false;
                }
            }
            ok
        }
    }
}

fn collect_lifetimes(tokens: TokenStream, out: &mut Vec<syn::Lifetime>) {
    let mut iter = tokens.into_iter().peekable();
    while let Some(tt) = iter.next() {
        match tt {
            TokenTree::Punct(p) if p.as_char() == '\'' => {
                if let Some(TokenTree::Ident(i)) = iter.peek() {
                    out.push(syn::Lifetime {
                        apostrophe: p.span(),
                        ident: i.clone(),
                    });
                }
            }
            TokenTree::Group(g) => collect_lifetimes(g.stream(), out),
            _ => {}
        }
    }
}

/// The parameters after the receiver: each a plain-named argument or the context.
fn params(cx: &mut Ctxt, role: Role, method: &ImplItemFn) -> Option<(Vec<Arg>, Vec<Param>)> {
    let mut args = Vec::new();
    let mut params = Vec::new();
    let mut ok = true;
    let mut seen_ctx = false;
    for input in method.sig.inputs.iter().skip(1) {
        let FnArg::Typed(pt) = input else { continue };
        if is_ctx(cx, &pt.ty) {
            if seen_ctx {
                cx.error_spanned_by(pt, "only one context parameter is allowed");
                ok = false;
            }
            seen_ctx = true;
            params.push(Param::Ctx);
            continue;
        }
        let name = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                cx.error_spanned_by(
                    other,
                    format!(
                        "#[{}] arguments need a plain name (`value: T`); destructure inside the method",
                        role.name()
                    ),
                );
                ok = false;
                continue;
            }
        };
        if role == Role::Handle && !owned_type(cx, &pt.ty, "handler arguments") {
            ok = false;
        }
        params.push(Param::Arg(args.len()));
        args.push(Arg {
            name,
            ty: (*pt.ty).clone(),
        });
    }
    ok.then_some((args, params))
}

fn handler(cx: &mut Ctxt, method: &ImplItemFn) -> Option<Handler> {
    let role = Role::Handle;
    let rec = receiver(cx, role, method);
    let plain = plain_signature(cx, role, method);
    let params = params(cx, role, method);
    let reply = match &method.sig.output {
        ReturnType::Default => Some(None),
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(t) if t.elems.is_empty() => Some(None),
            ty => owned_type(cx, ty, "reply types").then(|| Some(ty.clone())),
        },
    };
    let (args, params) = params?;
    if !(rec && plain) {
        return None;
    }
    Some(Handler {
        variant: variant_name(&method.sig.ident),
        method: method.sig.ident.clone(),
        docs: docs(&method.attrs),
        is_async: method.sig.asyncness.is_some(),
        args,
        params,
        reply: reply?,
    })
}

fn hook(cx: &mut Ctxt, role: Role, method: &ImplItemFn) -> Option<Hook> {
    let rec = receiver(cx, role, method);
    let plain = plain_signature(cx, role, method);
    let (args, params) = params(cx, role, method)?;
    let (expected, shape) = match role {
        Role::Init => (0, "`(&mut self)` or `(&mut self, ctx: &mut Ctx<Self>)`"),
        Role::Terminate => (
            1,
            "`(&mut self, reason: &ExitReason)`, optionally with `ctx: &mut Ctx<Self>`",
        ),
        Role::OnExit => (
            2,
            "`(&mut self, from: Pid, reason: ExitReason)`, optionally with `ctx: &mut Ctx<Self>`",
        ),
        _ => (
            1,
            "`(&mut self, down: Down)`, optionally with `ctx: &mut Ctx<Self>`",
        ),
    };
    if args.len() != expected {
        cx.error_spanned_by(
            &method.sig.inputs,
            format!("#[{}] hooks take {shape}", role.name()),
        );
        return None;
    }
    if role != Role::Init && !matches!(method.sig.output, ReturnType::Default) {
        cx.error_spanned_by(
            &method.sig.output,
            format!("#[{}] hooks return nothing", role.name()),
        );
        return None;
    }
    (rec && plain).then(|| Hook {
        method: method.sig.ident.clone(),
        is_async: method.sig.asyncness.is_some(),
        params,
        span: method.sig.span(),
    })
}

/// Handler names become variants; two handlers must not map to the same one.
fn unique_variants(cx: &mut Ctxt, handlers: &[Handler]) {
    for (i, h) in handlers.iter().enumerate() {
        if let Some(first) = handlers[..i].iter().find(|o| o.variant == h.variant) {
            cx.error_spanned_by(
                &h.method,
                format!(
                    "duplicate handler name: `{}` and `{}` both become the message variant `{}`; rename one of them",
                    first.method, h.method, h.variant
                ),
            );
        }
    }
}
