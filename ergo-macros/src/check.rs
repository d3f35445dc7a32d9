//! Validation: one function per rule. Each records its errors in the [`Ctxt`] and the whole
//! impl block is still emitted, so the user sees exactly the mistakes and nothing else.
//!
//! A mistake in one handler does not cost the rest of the actor: the model keeps every handler,
//! a wrong one as a stub (see [`Handler::stub`]), so the `Actor` impl and the `…Api` trait are
//! still generated and the user's code that spawns the actor or calls its handlers, the wrong
//! ones included, adds no follow-on errors.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::ctxt::Ctxt;
use crate::model::{variant_name, Actor, Arg, Handler, Hook, Param};
use crate::parse::{docs, take_roles, ActorArgs, Role};

const ROLES: &str = "`#[handle]`, `#[init]`, `#[terminate]`, `#[on_exit]`, `#[on_down]`";

/// Builds the model from the impl block, stripping our attributes from it. `None` when no
/// `Actor` impl can be generated at all (a trait impl, a generic impl, an unnamed type).
pub(crate) fn actor(cx: &mut Ctxt, args: ActorArgs, item: &mut ItemImpl) -> Option<Actor> {
    let target = impl_target(cx, item);
    let type_name = self_type_name(item).map_or_else(|| "MyActor".to_owned(), |i| i.to_string());
    let self_ty = (*item.self_ty).clone();
    let mut handlers = Vec::new();
    let mut hooks: [Option<Hook>; 4] = [None, None, None, None];
    for impl_item in &mut item.items {
        let method = match impl_item {
            ImplItem::Fn(method) => method,
            ImplItem::Const(c) => {
                role_on_non_method(cx, &mut c.attrs);
                continue;
            }
            ImplItem::Type(t) => {
                role_on_non_method(cx, &mut t.attrs);
                continue;
            }
            ImplItem::Macro(m) => {
                role_on_non_method(cx, &mut m.attrs);
                continue;
            }
            _ => continue,
        };
        let roles = take_roles(&mut method.attrs);
        let Some((role, attr)) = roles.first().cloned() else {
            continue;
        };
        for (other, attr) in roles.iter().skip(1) {
            cx.error_spanned_by(
                attr,
                format!(
                    "`{}` already has `#[{}]`, and a method takes only one of {ROLES}; remove `#[{}]`",
                    method.sig.ident,
                    role.name(),
                    other.name()
                ),
            );
        }
        attr_takes_no_args(cx, role, &attr);
        if role == Role::Handle {
            if let Some(h) = handler(cx, method, &self_ty, &type_name) {
                handlers.push(h);
            }
            continue;
        }
        let slot = match role {
            Role::Init => 0,
            Role::Terminate => 1,
            Role::OnExit => 2,
            _ => 3,
        };
        let Some(hook) = hook(cx, role, method, &type_name) else {
            continue;
        };
        match &hooks[slot] {
            Some(first) => cx.error_spanned_by(
                &hook.method,
                format!(
                    "an actor has one `#[{}]` hook and `{}` is it already; merge `{}` into `{}`",
                    role.name(),
                    first.method,
                    hook.method,
                    first.method
                ),
            ),
            None => hooks[slot] = Some(hook),
        }
    }
    unique_variants(cx, &mut handlers);
    let name = target?;
    let [init, terminate, on_exit, on_down] = hooks;
    let ident = |given: Option<syn::Ident>, suffix: &str| {
        given.unwrap_or_else(|| syn::Ident::new(&format!("{name}{suffix}"), name.span()))
    };
    Some(Actor {
        self_ty,
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

/// The last segment of the impl's self type, for messages (`Counter` in `impl a::Counter`).
fn self_type_name(item: &ItemImpl) -> Option<&syn::Ident> {
    match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| &s.ident),
        _ => None,
    }
}

/// `#[actor]` goes on an inherent, non-generic impl of a named type.
fn impl_target(cx: &mut Ctxt, item: &ItemImpl) -> Option<syn::Ident> {
    let mut ok = true;
    if let Some((_, path, _)) = &item.trait_ {
        cx.error_spanned_by(
            path,
            format!(
                "`#[actor]` goes on the type's own `impl` block, not on a trait impl; write `impl {} {{ ... }}`",
                type_str(&item.self_ty)
            ),
        );
        ok = false;
    }
    let generic_impl = !item.generics.params.is_empty() || item.generics.where_clause.is_some();
    if generic_impl {
        let tokens = if item.generics.params.is_empty() {
            item.generics.where_clause.to_token_stream()
        } else {
            item.generics.to_token_stream()
        };
        cx.error_spanned_by(
            tokens,
            "generic actors are not supported; make the actor a concrete type, wrapping a generic one in a newtype",
        );
        ok = false;
    }
    let name = match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| {
            // `impl<T> Store<T>` is reported once, on `<T>`, above.
            if !s.arguments.is_none() && !generic_impl {
                cx.error_spanned_by(
                    &s.arguments,
                    format!(
                        "`#[actor]` needs a type without generic arguments; wrap `{}` in a newtype",
                        type_str(&item.self_ty)
                    ),
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
    name.filter(|_| ok)
}

/// Our attributes only mean something on methods.
fn role_on_non_method(cx: &mut Ctxt, attrs: &mut Vec<syn::Attribute>) {
    for (role, attr) in take_roles(attrs) {
        cx.error_spanned_by(
            attr,
            format!(
                "`#[{}]` goes on a method of the `#[actor]` impl block, not on this item",
                role.name()
            ),
        );
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
                    "`#[{}]` methods take `&mut self` or `&self`; found `{}`",
                    role.name(),
                    tokens_str(r.to_token_stream())
                ),
            );
            false
        }
        _ => {
            cx.error_spanned_by(
                &method.sig.ident,
                format!(
                    "`#[{}]` methods need a receiver; add `&mut self` or `&self` as the first parameter of `{}`",
                    role.name(),
                    method.sig.ident
                ),
            );
            false
        }
    }
}

/// Generics rule: a message needs concrete types. Returns `false` when the method is generic.
fn not_generic(cx: &mut Ctxt, role: Role, method: &ImplItemFn) -> bool {
    let generics = &method.sig.generics;
    if generics.params.is_empty() && generics.where_clause.is_none() {
        return true;
    }
    let tokens = if generics.params.is_empty() {
        generics.where_clause.to_token_stream()
    } else {
        generics.to_token_stream()
    };
    cx.error_spanned_by(
        tokens,
        format!(
            "`#[{}]` methods cannot be generic because every message needs concrete types; remove the generics from `{}`",
            role.name(),
            method.sig.ident
        ),
    );
    false
}

/// Qualifier rule: no `unsafe`, no `extern`, no variadics. Returns whether the generated code
/// can still call the method.
fn plain_qualifiers(cx: &mut Ctxt, role: Role, method: &ImplItemFn) -> bool {
    let sig = &method.sig;
    let mut callable = true;
    if let Some(u) = &sig.unsafety {
        cx.error_spanned_by(
            u,
            format!(
                "`#[{}]` methods cannot be `unsafe`; remove `unsafe` and use an `unsafe {{ ... }}` block inside",
                role.name()
            ),
        );
        callable = false;
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(
            abi,
            format!(
                "`#[{}]` methods cannot be `extern`; remove `{}`",
                role.name(),
                tokens_str(abi.to_token_stream())
            ),
        );
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(
            v,
            format!("`#[{}]` methods cannot be variadic", role.name()),
        );
        callable = false;
    }
    callable
}

/// What a parameter is, as far as the context goes.
#[derive(PartialEq, Eq)]
enum CtxParam {
    /// Not the context: a carried argument.
    No,
    /// `&mut Ctx<..>`.
    Yes,
    /// The context taken wrongly (`&Ctx`, `Ctx`); the error is reported.
    Wrong,
}

/// Is this parameter the context (`&mut Ctx<..>`)? Errors on `&Ctx` and a by-value `Ctx`.
fn ctx_param(cx: &mut Ctxt, ty: &Type) -> CtxParam {
    fn names_ctx(ty: &Type) -> bool {
        matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Ctx"))
    }
    let ctx = match ty {
        Type::Reference(r) if names_ctx(&r.elem) && r.mutability.is_some() => return CtxParam::Yes,
        Type::Reference(r) if names_ctx(&r.elem) => &*r.elem,
        t if names_ctx(t) => t,
        _ => return CtxParam::No,
    };
    cx.error_spanned_by(
        ty,
        format!(
            "the context is taken by mutable reference; write `&mut {}`",
            type_str(ctx)
        ),
    );
    CtxParam::Wrong
}

fn contains_ident(tokens: TokenStream, name: &str) -> Option<Span> {
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

/// The owned counterpart of a borrowed type, for the fix in a message.
fn owned_counterpart(elem: &Type) -> String {
    match elem {
        Type::Slice(s) => format!("Vec<{}>", type_str(&s.elem)),
        Type::TraitObject(_) => format!("Box<{} + Send>", type_str(elem)),
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last().map(|s| s.ident.to_string());
            match last.as_deref() {
                Some("str") => "String".to_owned(),
                Some("Path") => "PathBuf".to_owned(),
                Some("OsStr") => "OsString".to_owned(),
                Some("CStr") => "CString".to_owned(),
                _ => type_str(elem),
            }
        }
        _ => type_str(elem),
    }
}

/// Carried types must be owned, concrete and nameable outside the impl block.
fn owned_type(cx: &mut Ctxt, ty: &Type, what: &str, type_name: &str) -> bool {
    match ty {
        // A `'static` borrow outlives any message.
        Type::Reference(r) if r.lifetime.as_ref().is_some_and(|lt| lt.ident == "static") => {
            owned_type(cx, &r.elem, what, type_name)
        }
        Type::Reference(r) => {
            cx.error_spanned_by(
                r,
                format!(
                    "{what} must be owned because a message outlives the caller's borrows; take `{}` instead of `{}`",
                    owned_counterpart(&r.elem),
                    type_str(ty)
                ),
            );
            false
        }
        Type::ImplTrait(t) => {
            let bounds = tokens_str(t.bounds.to_token_stream());
            cx.error_spanned_by(
                t,
                format!(
                    "{what} cannot be `impl {bounds}` because a message needs a concrete type; name the type, or use `Box<dyn {bounds} + Send>`"
                ),
            );
            false
        }
        _ => {
            if let Some(span) = contains_ident(ty.to_token_stream(), "Self") {
                cx.syn_error(syn::Error::new(
                    span,
                    format!(
                        "{what} cannot mention `Self` because the message enum lives outside the impl block; write `{type_name}` instead"
                    ),
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
                        format!(
                            "{what} cannot borrow (`{lt}`) because messages own their data; use an owned type or `'static`"
                        ),
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

/// The typed parameters of a method.
struct Params {
    /// The carried arguments (a destructured one gets a made-up name).
    args: Vec<Arg>,
    /// Each parameter: an argument or the context.
    params: Vec<Param>,
    /// Whether every parameter is right (an error was reported otherwise).
    ok: bool,
}

/// The typed parameters, each a plain-named argument or the context.
fn params(cx: &mut Ctxt, role: Role, method: &ImplItemFn, type_name: &str) -> Params {
    let mut args = Vec::new();
    let mut params = Vec::new();
    let mut ok = true;
    let mut seen_ctx = false;
    for input in &method.sig.inputs {
        let FnArg::Typed(pt) = input else { continue };
        let ctx = ctx_param(cx, &pt.ty);
        if ctx != CtxParam::No {
            if seen_ctx {
                cx.error_spanned_by(
                    pt,
                    "a method takes the context once; remove this `Ctx` parameter",
                );
                ok = false;
            }
            ok &= ctx == CtxParam::Yes;
            seen_ctx = true;
            params.push(Param::Ctx);
            continue;
        }
        let name = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            // Hooks never name their values in generated code, so `_` is fine there.
            Pat::Wild(w) if role != Role::Handle => syn::Ident::new("_", w.span()),
            other => {
                cx.error_spanned_by(
                    other,
                    format!(
                        "`#[{}]` arguments need a plain name like `value: T`; destructure inside the method",
                        role.name()
                    ),
                );
                ok = false;
                syn::Ident::new(&format!("__arg{}", args.len()), other.span())
            }
        };
        if role == Role::Handle && !owned_type(cx, &pt.ty, "handler arguments", type_name) {
            ok = false;
        }
        params.push(Param::Arg(args.len()));
        args.push(Arg {
            name,
            ty: (*pt.ty).clone(),
        });
    }
    Params { args, params, ok }
}

/// The reply: `None` for a cast (no return type or `()`), the type for a call; and whether it
/// is right (an error was reported otherwise).
fn reply(cx: &mut Ctxt, method: &ImplItemFn, type_name: &str) -> (Option<Type>, bool) {
    match &method.sig.output {
        ReturnType::Default => (None, true),
        ReturnType::Type(_, ty) => match &**ty {
            Type::Tuple(t) if t.elems.is_empty() => (None, true),
            ty => (
                Some(ty.clone()),
                owned_type(cx, ty, "reply types", type_name),
            ),
        },
    }
}

fn handler(cx: &mut Ctxt, method: &ImplItemFn, self_ty: &Type, type_name: &str) -> Option<Handler> {
    let role = Role::Handle;
    let rec = receiver(cx, role, method);
    let concrete = not_generic(cx, role, method);
    let qualifiers = plain_qualifiers(cx, role, method);
    let Params {
        mut args,
        params,
        ok: params_ok,
    } = params(cx, role, method, type_name);
    let (mut reply, reply_ok) = reply(cx, method, type_name);
    let stub = !(rec && qualifiers && params_ok && reply_ok);
    if stub {
        // A generic method's types cannot be named outside it, nor can an `impl Trait` reply
        // be produced by a stub: such a handler is left out entirely.
        let impl_reply = reply
            .as_ref()
            .is_some_and(|r| contains_ident(r.to_token_stream(), "impl").is_some());
        if !concrete || impl_reply {
            return None;
        }
        for arg in &mut args {
            arg.ty = spell_out_self(&arg.ty, self_ty);
        }
        reply = reply.map(|r| spell_out_self(&r, self_ty));
    }
    concrete.then(|| Handler {
        variant: variant_name(&method.sig.ident),
        method: method.sig.ident.clone(),
        stub,
        docs: docs(&method.attrs),
        is_async: method.sig.asyncness.is_some(),
        args,
        params,
        reply,
    })
}

/// `ty` with every `Self` replaced by the actor's type, for a stub's signature outside the impl.
fn spell_out_self(ty: &Type, self_ty: &Type) -> Type {
    fn replace(tokens: TokenStream, self_ty: &Type) -> TokenStream {
        tokens
            .into_iter()
            .flat_map(|tt| match tt {
                TokenTree::Ident(i) if i == "Self" => self_ty.to_token_stream(),
                TokenTree::Group(g) => {
                    let mut group =
                        proc_macro2::Group::new(g.delimiter(), replace(g.stream(), self_ty));
                    group.set_span(g.span());
                    TokenTree::Group(group).into()
                }
                other => other.into(),
            })
            .collect()
    }
    syn::parse2(replace(ty.to_token_stream(), self_ty)).unwrap_or_else(|_| ty.clone())
}

/// What a hook receives from the runtime: (name, type, by reference?).
fn provided(role: Role) -> &'static [(&'static str, &'static str, bool)] {
    match role {
        Role::Init | Role::Handle => &[],
        Role::Terminate => &[("reason", "ExitReason", true)],
        Role::OnExit => &[("from", "Pid", false), ("reason", "ExitReason", false)],
        Role::OnDown => &[("down", "Down", false)],
    }
}

/// Hooks take exactly what the runtime provides, in order, plus an optional context.
fn hook_shape(cx: &mut Ctxt, role: Role, method: &ImplItemFn, args: &[Arg]) -> bool {
    let expected = provided(role);
    if args.len() != expected.len() {
        let shape = expected
            .iter()
            .map(|(n, t, by_ref)| format!(", {n}: {}{t}", if *by_ref { "&" } else { "" }))
            .collect::<String>();
        let found = match args.len() {
            1 => "1 argument".to_owned(),
            n => format!("{n} arguments"),
        };
        cx.error_spanned_by(
            &method.sig.inputs,
            format!(
                "`#[{}]` hooks take `(&mut self{shape})`, optionally with `ctx: &mut Ctx<Self>`; found {found}",
                role.name()
            ),
        );
        return false;
    }
    let mut ok = true;
    for (arg, (_, ty, by_ref)) in args.iter().zip(expected) {
        let is_ref = matches!(arg.ty, Type::Reference(_));
        if is_ref != *by_ref {
            let (how, want) = if *by_ref {
                ("by reference", format!("&{ty}"))
            } else {
                ("by value", (*ty).to_owned())
            };
            cx.error_spanned_by(
                &arg.ty,
                format!(
                    "`#[{}]` receives `{}` {how}; write `{}: {want}`",
                    role.name(),
                    arg.name,
                    arg.name
                ),
            );
            ok = false;
        }
    }
    ok
}

fn hook(cx: &mut Ctxt, role: Role, method: &ImplItemFn, type_name: &str) -> Option<Hook> {
    let rec = receiver(cx, role, method);
    let concrete = not_generic(cx, role, method);
    let callable = plain_qualifiers(cx, role, method);
    let Params { args, params, ok } = params(cx, role, method, type_name);
    if !ok {
        return None;
    }
    let shape = hook_shape(cx, role, method, &args);
    let output = match &method.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) if role == Role::Init => Some((**ty).clone()),
        out @ ReturnType::Type(..) => {
            cx.error_spanned_by(
                out,
                format!(
                    "`#[{}]` hooks return nothing; remove `{}`",
                    role.name(),
                    tokens_str(out.to_token_stream())
                ),
            );
            return None;
        }
    };
    (rec && concrete && callable && shape).then(|| Hook {
        method: method.sig.ident.clone(),
        is_async: method.sig.asyncness.is_some(),
        args,
        params,
        output,
        span: method.sig.span(),
    })
}

/// Handler names become variants; two handlers must not map to the same one. Keeps the first.
fn unique_variants(cx: &mut Ctxt, handlers: &mut Vec<Handler>) {
    let mut kept: Vec<Handler> = Vec::with_capacity(handlers.len());
    for h in handlers.drain(..) {
        match kept.iter().find(|o| o.variant == h.variant) {
            Some(first) => cx.error_spanned_by(
                &h.method,
                format!(
                    "duplicate handler name: `{}` and `{}` both become the message variant `{}`; rename one of them",
                    first.method, h.method, h.variant
                ),
            ),
            None => kept.push(h),
        }
    }
    *handlers = kept;
}

/// A type as the user would write it, for messages.
fn type_str(ty: &Type) -> String {
    tokens_str(ty.to_token_stream())
}

/// Tokens as source text: `& 'a mut Vec < u8 >` → `&'a mut Vec<u8>`.
fn tokens_str(tokens: TokenStream) -> String {
    let mut s = tokens.to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :: ", "::"),
        (":: ", "::"),
        ("& ", "&"),
        ("' ", "'"),
        (" : ", ": "),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
    ] {
        s = s.replace(from, to);
    }
    s
}
