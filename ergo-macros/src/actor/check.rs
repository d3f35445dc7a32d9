//! Validation: [`check`] enforces every rule of `#[actor]`, one small function per rule, each
//! recording its errors in the [`Ctxt`] on the user's token with the fix.
//!
//! A mistake in one handler does not cost the rest of the actor: a wrong handler stays in the
//! model as a stub (see [`Verdict::Stub`]), so the `Actor` impl and the `…Api` trait are still
//! generated and the user's code that spawns the actor or calls its handlers, the wrong ones
//! included, adds no follow-on errors.

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::{FnArg, Ident, Lit, ReturnType, Type};

use super::model::{find_ident, Actor, CtxForm, Input, Item, Method, Role, Target, Verdict};
use crate::internals::option::{crate_path, CrateForm, RawOption};
use crate::internals::text::{did_you_mean, tokens_str};
use crate::internals::Ctxt;

/// Checks the actor, recording every mistake, and makes its model the validated one: the
/// options' values go to [`Actor::settings`], [`Actor::generates`] says whether an `Actor`
/// impl can be written, and each method gets its [`Verdict`].
///
/// The rules, checked in this order so that errors come in source order:
///
/// - **Options** of `#[actor(...)]`, each in turn:
///   - [`option_once`]: an option is given at most once.
///   - [`known_option`]: the key is `remote`, `mailbox`, `msg`, `api` or `crate` (a misspelled
///     one gets a suggestion).
///   - [`remote_flag`]: `remote` takes no value.
///   - [`mailbox_capacity`]: `mailbox = N` with a whole number N of at least 1.
///   - [`type_name_option`]: `msg = Name` and `api = Name` take a type name, without quotes.
///   - `crate = "path"`: a path in quotes ([`crate_path`], shared with `supervisor!`).
/// - **The target**:
///   - [`on_impl_block`]: `#[actor]` is on an `impl` block (nothing else is checked if not).
///   - [`inherent_impl`]: not a trait impl.
///   - [`non_generic_impl`]: no generic parameters or where clause.
///   - [`named_type`]: the self type is a named type without generic arguments.
/// - **Each item** with one of our attributes (`#[handle]`, `#[init]`, `#[terminate]`,
///   `#[on_exit]`, `#[on_down]`):
///   - [`on_method`]: our attributes go on methods only.
///   - [`one_role`]: a method has one of them.
///   - [`role_without_arguments`]: the attribute takes no arguments.
/// - **Each handler or hook**:
///   - [`ref_receiver`]: it takes `&self` or `&mut self`.
///   - [`not_generic`]: no generic parameters or where clause.
///   - [`not_unsafe`], [`not_extern`], [`not_variadic`]: plain qualifiers.
///   - for each typed parameter, in order: [`ctx_by_mut_ref`] (the context is taken as
///     `&mut Ctx<..>`), [`one_ctx`] (at most once), [`plain_arg_name`] (an argument is a plain
///     name, not a pattern), and for handlers [`owned_type`] (a carried type is owned, concrete
///     and names no `Self`).
/// - **Each handler**: [`owned_type`] for the reply type too.
/// - **Each hook**:
///   - [`hook_args`]: it takes exactly what the runtime provides (plus an optional context).
///   - [`hook_returns_nothing`]: only `#[init]` has a return type.
///   - [`one_hook_per_role`]: an actor has at most one hook of each kind.
/// - **Finally** [`unique_variants`]: no two handlers map to the same message variant.
///
/// What a failing rule costs: a wrong option is ignored (its default applies); a wrong target
/// generates no actor (the items are still checked); a wrong handler becomes a stub, or is left
/// out when even a stub cannot be written (a generic one, or an `impl Trait` reply); a wrong
/// hook is left out.
pub(crate) fn check(cx: &mut Ctxt, actor: &mut Actor) {
    options(cx, actor);
    actor.generates = target(cx, actor);
    let Target::Impl(item) = &actor.target else {
        return;
    };
    let self_ty = (*item.self_ty).clone();
    let type_name = actor.type_name();
    let mut hooks: Vec<(Role, Ident)> = Vec::new();
    for item in &mut actor.items {
        let method = match item {
            Item::NotMethod(roles) => {
                on_method(cx, roles);
                continue;
            }
            Item::Method(m) => m,
        };
        one_role(cx, method);
        role_without_arguments(cx, method);
        if method.role == Role::Handle {
            handler(cx, method, &self_ty, &type_name);
        } else {
            hook(cx, method, &type_name, &mut hooks);
        }
    }
    unique_variants(cx, actor);
}

const KEYS: &[&str] = &["remote", "mailbox", "msg", "api", "crate"];
const KEY_FORMS: &str = "`remote`, `mailbox = N`, `msg = Name`, `api = Name`, `crate = \"path\"`";

fn options(cx: &mut Ctxt, actor: &mut Actor) {
    let mut seen: Vec<String> = Vec::new();
    let settings = &mut actor.settings;
    for opt in &actor.options {
        if !option_once(cx, opt, &mut seen) {
            continue;
        }
        match opt.key.to_string().as_str() {
            "remote" => settings.remote = remote_flag(cx, opt),
            "mailbox" => settings.mailbox = mailbox_capacity(cx, opt),
            "msg" => settings.msg = type_name_option(cx, opt),
            "api" => settings.api = type_name_option(cx, opt),
            "crate" => {
                let form = CrateForm {
                    before: "",
                    after: "",
                };
                let key = &opt.key;
                settings.krate = crate_path(cx, &form, opt.value_tokens(), quote!(#key));
            }
            _ => known_option(cx, opt),
        }
    }
}

/// An option is given at most once; the error is on the second.
fn option_once(cx: &mut Ctxt, opt: &RawOption, seen: &mut Vec<String>) -> bool {
    let key = opt.key.to_string();
    if seen.contains(&key) {
        cx.error_spanned_by(
            &opt.key,
            format!("the `#[actor]` option `{key}` is given twice; keep one"),
        );
        return false;
    }
    seen.push(key);
    true
}

/// Reports a key that is none of [`KEYS`] (only called for those).
fn known_option(cx: &mut Ctxt, opt: &RawOption) {
    let key = opt.key.to_string();
    cx.error_spanned_by(
        &opt.key,
        format!(
            "unknown `#[actor]` option `{key}`{}; expected one of {KEY_FORMS}",
            did_you_mean(&key, KEYS)
        ),
    );
}

/// `remote` is a flag.
fn remote_flag(cx: &mut Ctxt, opt: &RawOption) -> bool {
    if opt.value.is_none() {
        return true;
    }
    cx.error_spanned_by(
        opt.value_or_key(),
        "`remote` takes no value; write `#[actor(remote)]` for a remote actor, or leave it out",
    );
    false
}

/// `mailbox = N`: a capacity of at least 1 (no option: unbounded).
fn mailbox_capacity(cx: &mut Ctxt, opt: &RawOption) -> Option<syn::LitInt> {
    if let Some([TokenTree::Literal(l)]) = opt.value_tokens() {
        if let Lit::Int(n) = Lit::new(l.clone()) {
            match n.base10_parse::<usize>() {
                Ok(0) => cx.error_spanned_by(
                    &n,
                    "`mailbox` must be at least 1; leave it out for an unbounded mailbox",
                ),
                Ok(_) => return Some(n),
                Err(e) => cx.error_spanned_by(&n, e),
            }
            return None;
        }
    }
    cx.error_spanned_by(
        opt.value_or_key(),
        "`mailbox` takes a capacity: `mailbox = 64`",
    );
    None
}

/// `msg = Name`, `api = Name`: a type name, without quotes.
fn type_name_option(cx: &mut Ctxt, opt: &RawOption) -> Option<Ident> {
    let key = &opt.key;
    match opt.value_tokens() {
        Some([TokenTree::Ident(name)]) => return Some(name.clone()),
        Some([TokenTree::Literal(l)]) => {
            if let Lit::Str(s) = Lit::new(l.clone()) {
                if s.parse::<Ident>().is_ok() {
                    cx.error_spanned_by(
                        &s,
                        format!(
                            "`{key}` takes a type name without quotes: `{key} = {}`",
                            s.value()
                        ),
                    );
                    return None;
                }
            }
        }
        _ => {}
    }
    cx.error_spanned_by(
        opt.value_or_key(),
        format!("`{key}` takes a type name: `{key} = Name`"),
    );
    None
}

/// The target rules; whether an `Actor` impl can be generated.
fn target(cx: &mut Ctxt, actor: &Actor) -> bool {
    let item = match &actor.target {
        Target::Impl(item) => item,
        Target::NotImpl(_) => {
            on_impl_block(cx, actor);
            return false;
        }
    };
    let inherent = inherent_impl(cx, item);
    let non_generic = non_generic_impl(cx, item);
    let named = named_type(cx, item, non_generic);
    inherent && non_generic && named
}

/// `#[actor]` goes on an `impl` block; the error names the item it is on.
fn on_impl_block(cx: &mut Ctxt, actor: &Actor) {
    let Target::NotImpl(not) = &actor.target else {
        return;
    };
    let name = not
        .name
        .as_ref()
        .map_or_else(|| "MyActor".to_owned(), Ident::to_string);
    cx.error_spanned_by(
        &not.head,
        format!(
            "`#[actor]` goes on an `impl` block, not on {}; write `#[actor] impl {name} {{ ... }}`",
            not.what
        ),
    );
}

/// `#[actor]` goes on the type's own impl block, not a trait impl.
fn inherent_impl(cx: &mut Ctxt, item: &syn::ItemImpl) -> bool {
    let Some((_, path, _)) = &item.trait_ else {
        return true;
    };
    cx.error_spanned_by(
        path,
        format!(
            "`#[actor]` goes on the type's own `impl` block, not on a trait impl; write `impl {} {{ ... }}`",
            type_str(&item.self_ty)
        ),
    );
    false
}

/// Actors are concrete: no `impl<T>`, no where clause.
fn non_generic_impl(cx: &mut Ctxt, item: &syn::ItemImpl) -> bool {
    let generics = &item.generics;
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
        "generic actors are not supported; make the actor a concrete type, wrapping a generic one in a newtype",
    );
    false
}

/// The self type is a named type without generic arguments (`impl<T> Store<T>` is reported
/// once, on `<T>`, by [`non_generic_impl`]).
fn named_type(cx: &mut Ctxt, item: &syn::ItemImpl, non_generic_impl: bool) -> bool {
    match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return false;
            };
            if last.arguments.is_none() || !non_generic_impl {
                return last.arguments.is_none();
            }
            cx.error_spanned_by(
                &last.arguments,
                format!(
                    "`#[actor]` needs a type without generic arguments; wrap `{}` in a newtype",
                    type_str(&item.self_ty)
                ),
            );
            false
        }
        other => {
            cx.error_spanned_by(
                other,
                "`#[actor]` needs a named type: `impl MyActor { ... }`",
            );
            false
        }
    }
}

const ROLES: &str = "`#[handle]`, `#[init]`, `#[terminate]`, `#[on_exit]`, `#[on_down]`";

/// Our attributes only mean something on methods.
fn on_method(cx: &mut Ctxt, roles: &[(Role, syn::Attribute)]) {
    for (role, attr) in roles {
        cx.error_spanned_by(
            attr,
            format!(
                "`#[{}]` goes on a method of the `#[actor]` impl block, not on this item",
                role.name()
            ),
        );
    }
}

/// A method is a handler or one hook, not several.
fn one_role(cx: &mut Ctxt, m: &Method) {
    for (other, attr) in &m.extra_roles {
        cx.error_spanned_by(
            attr,
            format!(
                "`{}` already has `#[{}]`, and a method takes only one of {ROLES}; remove `#[{}]`",
                m.ident(),
                m.role.name(),
                other.name()
            ),
        );
    }
}

/// `#[handle]` and the hooks take no arguments.
fn role_without_arguments(cx: &mut Ctxt, m: &Method) {
    if !matches!(m.attr.meta, syn::Meta::Path(_)) {
        cx.error_spanned_by(
            &m.attr.meta,
            format!("`#[{0}]` takes no arguments; write `#[{0}]`", m.role.name()),
        );
    }
}

fn handler(cx: &mut Ctxt, m: &mut Method, self_ty: &Type, type_name: &str) {
    let receiver = ref_receiver(cx, m);
    let concrete = not_generic(cx, m);
    let safe = not_unsafe(cx, m);
    not_extern(cx, m);
    let fixed_arity = not_variadic(cx, m);
    let inputs = inputs(cx, m, type_name);
    let reply = m
        .output
        .as_ref()
        .is_none_or(|r| owned_type(cx, r, "reply types", type_name));
    // A generic method's types cannot be named outside it, nor can a stub produce an
    // `impl Trait` reply: such a handler is left out.
    let impl_reply = m
        .output
        .as_ref()
        .is_some_and(|r| find_ident(r.to_token_stream(), "impl").is_some());
    if !concrete {
        m.verdict = Verdict::Dropped;
    } else if !(receiver && safe && fixed_arity && inputs && reply) {
        if impl_reply {
            m.verdict = Verdict::Dropped;
        } else {
            m.make_stub(self_ty);
        }
    }
}

fn hook(cx: &mut Ctxt, m: &mut Method, type_name: &str, hooks: &mut Vec<(Role, Ident)>) {
    let receiver = ref_receiver(cx, m);
    let concrete = not_generic(cx, m);
    let safe = not_unsafe(cx, m);
    not_extern(cx, m);
    let fixed_arity = not_variadic(cx, m);
    // Whether the values fit the hook is moot when the parameters are malformed.
    if !inputs(cx, m, type_name) {
        m.verdict = Verdict::Dropped;
        return;
    }
    let args = hook_args(cx, m);
    if !hook_returns_nothing(cx, m) {
        m.verdict = Verdict::Dropped;
        return;
    }
    // A duplicate is only looked for among valid hooks.
    if !(receiver && concrete && safe && fixed_arity && args && one_hook_per_role(cx, m, hooks)) {
        m.verdict = Verdict::Dropped;
    }
}

/// Receiver rule: `&self` or `&mut self`.
fn ref_receiver(cx: &mut Ctxt, m: &Method) -> bool {
    let role = m.role.name();
    match m.sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.colon_token.is_none() => true,
        Some(FnArg::Receiver(r)) => {
            cx.error_spanned_by(
                r,
                format!(
                    "`#[{role}]` methods take `&mut self` or `&self`; found `{}`",
                    tokens_str(r.to_token_stream())
                ),
            );
            false
        }
        _ => {
            cx.error_spanned_by(
                m.ident(),
                format!(
                    "`#[{role}]` methods need a receiver; add `&mut self` or `&self` as the first parameter of `{}`",
                    m.ident()
                ),
            );
            false
        }
    }
}

/// A message needs concrete types: no generic parameters, no where clause.
fn not_generic(cx: &mut Ctxt, m: &Method) -> bool {
    let generics = &m.sig.generics;
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
            m.role.name(),
            m.ident()
        ),
    );
    false
}

/// No `unsafe` (generated code could not call it).
fn not_unsafe(cx: &mut Ctxt, m: &Method) -> bool {
    let Some(u) = &m.sig.unsafety else {
        return true;
    };
    cx.error_spanned_by(
        u,
        format!(
            "`#[{}]` methods cannot be `unsafe`; remove `unsafe` and use an `unsafe {{ ... }}` block inside",
            m.role.name()
        ),
    );
    false
}

/// No `extern "ABI"` (generated code can still call it).
fn not_extern(cx: &mut Ctxt, m: &Method) {
    if let Some(abi) = &m.sig.abi {
        cx.error_spanned_by(
            abi,
            format!(
                "`#[{}]` methods cannot be `extern`; remove `{}`",
                m.role.name(),
                tokens_str(abi.to_token_stream())
            ),
        );
    }
}

/// No variadic parameters.
fn not_variadic(cx: &mut Ctxt, m: &Method) -> bool {
    let Some(v) = &m.sig.variadic else {
        return true;
    };
    cx.error_spanned_by(
        v,
        format!("`#[{}]` methods cannot be variadic", m.role.name()),
    );
    false
}

/// The typed parameters' rules; whether every parameter is right.
fn inputs(cx: &mut Ctxt, m: &Method, type_name: &str) -> bool {
    let mut ok = true;
    let mut seen_ctx = false;
    for input in &m.inputs {
        if input.ctx.is_some() {
            ok &= ctx_by_mut_ref(cx, input);
            ok &= one_ctx(cx, input, &mut seen_ctx);
            continue;
        }
        ok &= plain_arg_name(cx, m.role, input);
        if m.role == Role::Handle {
            ok &= owned_type(cx, &input.ty, "handler arguments", type_name);
        }
    }
    ok
}

/// The context is taken by mutable reference.
fn ctx_by_mut_ref(cx: &mut Ctxt, input: &Input) -> bool {
    let ctx = match (&input.ctx, &input.ty) {
        (Some(CtxForm::MutRef) | None, _) => return true,
        (Some(CtxForm::SharedRef), Type::Reference(r)) => &*r.elem,
        (_, ty) => ty,
    };
    cx.error_spanned_by(
        &input.ty,
        format!(
            "the context is taken by mutable reference; write `&mut {}`",
            type_str(ctx)
        ),
    );
    false
}

/// A method takes the context at most once; the error is on the second.
fn one_ctx(cx: &mut Ctxt, input: &Input, seen: &mut bool) -> bool {
    if !std::mem::replace(seen, true) {
        return true;
    }
    let (pat, ty) = (&input.pat, &input.ty);
    cx.error_spanned_by(
        quote!(#pat: #ty),
        "a method takes the context once; remove this `Ctx` parameter",
    );
    false
}

/// Arguments have plain names (`value: T`); hooks may write `_`.
fn plain_arg_name(cx: &mut Ctxt, role: Role, input: &Input) -> bool {
    if input.plain_name(role).is_some() {
        return true;
    }
    cx.error_spanned_by(
        &input.pat,
        format!(
            "`#[{}]` arguments need a plain name like `value: T`; destructure inside the method",
            role.name()
        ),
    );
    false
}

/// Carried types (handler arguments and replies) are owned, concrete and nameable outside the
/// impl block: no borrow but `'static`, no `impl Trait`, no `Self`.
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
            if let Some(span) = find_ident(ty.to_token_stream(), "Self") {
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

/// Hooks take exactly what the runtime provides, in order, plus an optional context.
fn hook_args(cx: &mut Ctxt, m: &Method) -> bool {
    let role = m.role.name();
    let expected = m.role.provided();
    if m.args.len() != expected.len() {
        let shape = expected
            .iter()
            .map(|(n, t, by_ref)| format!(", {n}: {}{t}", if *by_ref { "&" } else { "" }))
            .collect::<String>();
        let found = match m.args.len() {
            1 => "1 argument".to_owned(),
            n => format!("{n} arguments"),
        };
        cx.error_spanned_by(
            &m.sig.inputs,
            format!(
                "`#[{role}]` hooks take `(&mut self{shape})`, optionally with `ctx: &mut Ctx<Self>`; found {found}"
            ),
        );
        return false;
    }
    let mut ok = true;
    for (arg, (_, ty, by_ref)) in m.args.iter().zip(expected) {
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
                    "`#[{role}]` receives `{}` {how}; write `{}: {want}`",
                    arg.name, arg.name
                ),
            );
            ok = false;
        }
    }
    ok
}

/// Only `#[init]` returns something (a `Result` or `()`); the other hooks return nothing.
fn hook_returns_nothing(cx: &mut Ctxt, m: &Method) -> bool {
    match &m.sig.output {
        ReturnType::Type(..) if m.role != Role::Init => {
            let out = &m.sig.output;
            cx.error_spanned_by(
                out,
                format!(
                    "`#[{}]` hooks return nothing; remove `{}`",
                    m.role.name(),
                    tokens_str(out.to_token_stream())
                ),
            );
            false
        }
        _ => true,
    }
}

/// An actor has one hook of each kind; the error is on the second.
fn one_hook_per_role(cx: &mut Ctxt, m: &Method, hooks: &mut Vec<(Role, Ident)>) -> bool {
    match hooks.iter().find(|(role, _)| *role == m.role) {
        Some((_, first)) => {
            cx.error_spanned_by(
                m.ident(),
                format!(
                    "an actor has one `#[{}]` hook and `{first}` is it already; merge `{}` into `{first}`",
                    m.role.name(),
                    m.ident(),
                ),
            );
            false
        }
        None => {
            hooks.push((m.role, m.ident().clone()));
            true
        }
    }
}

/// Handler names become variants; two handlers must not map to the same one. The first is
/// kept.
fn unique_variants(cx: &mut Ctxt, actor: &mut Actor) {
    let mut kept: Vec<(Ident, Ident)> = Vec::new();
    for item in &mut actor.items {
        let Item::Method(h) = item else { continue };
        if h.role != Role::Handle || h.verdict == Verdict::Dropped {
            continue;
        }
        match kept.iter().find(|(variant, _)| *variant == h.variant) {
            Some((_, first)) => {
                cx.error_spanned_by(
                    h.ident(),
                    format!(
                        "duplicate handler name: `{first}` and `{}` both become the message variant `{}`; rename one of them",
                        h.ident(),
                        h.variant
                    ),
                );
                h.verdict = Verdict::Dropped;
            }
            None => kept.push((h.variant.clone(), h.ident().clone())),
        }
    }
}

/// A type as the user would write it, for messages.
fn type_str(ty: &Type) -> String {
    tokens_str(ty.to_token_stream())
}
