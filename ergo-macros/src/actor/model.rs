//! The description of an actor, built from the syn syntax of the impl block with the user's
//! spans, and made the validated one by [`check`](super::check::check): check records what the
//! options say in [`Actor::settings`], whether an `Actor` impl can be generated in
//! [`Actor::generates`], and each method's [`Verdict`]. Expand only reads it.
//!
//! Building it applies no rule: every method with one of our attributes is here, as written,
//! with what generated code needs (its variant name, its carried arguments) derived from it.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, ImplItem, ItemImpl, LitStr, Pat, ReturnType, Signature, Type};

use super::parse::{RawActor, RawInput};
use crate::internals::option::RawOption;

/// One `#[actor(options)]` invocation.
pub(crate) struct Actor {
    pub(crate) options: Vec<RawOption>,
    pub(crate) target: Target,
    /// The items of the impl block that carry our attributes, in source order.
    pub(crate) items: Vec<Item>,
    /// Set by `check`: the options' values, as far as they are valid.
    pub(crate) settings: Settings,
    /// Set by `check`: whether the target is an impl an `Actor` impl can be generated for (an
    /// inherent, non-generic impl of a named type).
    pub(crate) generates: bool,
}

/// What `#[actor]` is on.
pub(crate) enum Target {
    /// The impl block, without our attributes (emitted as the user's code).
    Impl(Box<ItemImpl>),
    /// Another item (or tokens that are no item), emitted as written.
    NotImpl(NotImpl),
}

/// An item that is not an impl block, with what the error says about it.
pub(crate) struct NotImpl {
    pub(crate) tokens: TokenStream,
    /// `a struct`, `an enum`, `a trait`, `a function` or `this item`.
    pub(crate) what: &'static str,
    /// The item's keyword and name, where the error goes (the whole input when unknown).
    pub(crate) head: TokenStream,
    /// The type's name for the suggested `impl` (structs and enums).
    pub(crate) name: Option<Ident>,
}

/// The options' values.
#[derive(Default)]
pub(crate) struct Settings {
    pub(crate) remote: bool,
    pub(crate) mailbox: Option<syn::LitInt>,
    pub(crate) msg: Option<Ident>,
    pub(crate) api: Option<Ident>,
    pub(crate) krate: Option<syn::Path>,
}

/// An item of the impl block with our attributes.
pub(crate) enum Item {
    Method(Box<Method>),
    /// A const, type or macro item: our attributes do not belong there.
    NotMethod(Vec<(Role, Attribute)>),
}

/// Which of our attributes sits on a method.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    Handle,
    Init,
    Terminate,
    OnExit,
    OnDown,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Handle => "handle",
            Role::Init => "init",
            Role::Terminate => "terminate",
            Role::OnExit => "on_exit",
            Role::OnDown => "on_down",
        }
    }

    /// The role of an attribute, by its last path segment (`#[handle]`, `#[ergo::handle]`).
    pub(crate) fn of_attr(attr: &Attribute) -> Option<Role> {
        let last = attr.path().segments.last()?.ident.to_string();
        Some(match last.as_str() {
            "handle" => Role::Handle,
            "init" => Role::Init,
            "terminate" => Role::Terminate,
            "on_exit" => Role::OnExit,
            "on_down" => Role::OnDown,
            _ => return None,
        })
    }

    /// What a hook receives from the runtime: (name, type, by reference?).
    pub(crate) fn provided(self) -> &'static [(&'static str, &'static str, bool)] {
        match self {
            Role::Init | Role::Handle => &[],
            Role::Terminate => &[("reason", "ExitReason", true)],
            Role::OnExit => &[("from", "Pid", false), ("reason", "ExitReason", false)],
            Role::OnDown => &[("down", "Down", false)],
        }
    }
}

/// A method with one of our attributes (the first; any more are an error).
pub(crate) struct Method {
    pub(crate) role: Role,
    pub(crate) attr: Attribute,
    /// Our other attributes on the same method.
    pub(crate) extra_roles: Vec<(Role, Attribute)>,
    pub(crate) sig: Signature,
    pub(crate) docs: Vec<LitStr>,
    /// The message variant of a handler: `add_item` → `AddItem`.
    pub(crate) variant: Ident,
    /// The typed parameters after the receiver, as written.
    pub(crate) inputs: Vec<Input>,
    /// The values carried in the message (for hooks: the runtime-provided ones), in order. A
    /// destructured one gets a made-up name.
    pub(crate) args: Vec<Arg>,
    /// How to call the method: each typed parameter is an argument or the context.
    pub(crate) params: Vec<Param>,
    /// The declared return type, `None` for none or `()`: a handler's reply type (`None`
    /// for a cast).
    pub(crate) output: Option<Type>,
    /// Set by `check`.
    pub(crate) verdict: Verdict,
}

/// What `check` decided about a method.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verdict {
    /// Right: generated as written.
    Valid,
    /// A handler with an error, already reported. It still gets its variant (without fields)
    /// and its `ActorRef` method (the user's signature, with `Self` spelled out), so the user's
    /// calls to it add no follow-on errors; nothing of it ever runs.
    Stub,
    /// Left out of the generated code.
    Dropped,
}

/// A typed parameter.
pub(crate) struct Input {
    pub(crate) pat: Pat,
    pub(crate) ty: Type,
    /// How the context is taken, when the parameter is the context (its type names `Ctx`).
    pub(crate) ctx: Option<CtxForm>,
}

/// How a `Ctx` parameter is taken.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CtxForm {
    /// `&mut Ctx<..>`, the right way.
    MutRef,
    /// `&Ctx<..>`.
    SharedRef,
    /// `Ctx<..>`.
    ByValue,
}

/// A carried argument (of a stub: the parameter as written, `Self` spelled out).
pub(crate) struct Arg {
    pub(crate) name: Ident,
    pub(crate) ty: Type,
}

/// One typed parameter of a handler or hook.
#[derive(Clone, Copy)]
pub(crate) enum Param {
    /// The `i`-th carried argument (for hooks: the `i`-th runtime-provided value).
    Arg(usize),
    /// The `ctx: &mut Ctx<Self>` parameter.
    Ctx,
}

impl Actor {
    pub(crate) fn from_raw(raw: RawActor) -> Actor {
        let (target, items) = match raw.input {
            RawInput::Impl { item, roles } => {
                let items = item
                    .items
                    .iter()
                    .zip(roles)
                    .filter(|(_, roles)| !roles.is_empty())
                    .map(|(impl_item, roles)| match impl_item {
                        ImplItem::Fn(f) => {
                            Item::Method(Box::new(Method::new(&f.attrs, &f.sig, roles)))
                        }
                        _ => Item::NotMethod(roles),
                    })
                    .collect();
                (Target::Impl(item), items)
            }
            RawInput::Other(tokens) => (Target::NotImpl(NotImpl::new(tokens)), Vec::new()),
        };
        Actor {
            options: raw.options,
            target,
            items,
            settings: Settings::default(),
            generates: false,
        }
    }

    /// The impl block, when the target is one.
    pub(crate) fn item(&self) -> Option<&ItemImpl> {
        match &self.target {
            Target::Impl(item) => Some(item),
            Target::NotImpl(_) => None,
        }
    }

    /// The type's name: the last segment of the impl's self type (`Counter` in
    /// `impl a::Counter`).
    pub(crate) fn type_ident(&self) -> Option<&Ident> {
        match &*self.item()?.self_ty {
            Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| &s.ident),
            _ => None,
        }
    }

    /// The type's name for messages (`MyActor` when it has none).
    pub(crate) fn type_name(&self) -> String {
        self.type_ident()
            .map_or_else(|| "MyActor".to_owned(), Ident::to_string)
    }

    pub(crate) fn methods(&self) -> impl Iterator<Item = &Method> {
        self.items.iter().filter_map(|i| match i {
            Item::Method(m) => Some(&**m),
            Item::NotMethod(_) => None,
        })
    }

    /// The handlers that are generated (valid ones and stubs), in order.
    pub(crate) fn handlers(&self) -> impl Iterator<Item = &Method> {
        self.methods()
            .filter(|m| m.role == Role::Handle && m.verdict != Verdict::Dropped)
    }

    /// The valid hook of a role.
    pub(crate) fn hook(&self, role: Role) -> Option<&Method> {
        self.methods()
            .find(|m| m.role == role && m.verdict == Verdict::Valid)
    }

    /// The runtime's path: `::ergo`, or the `crate = ".."` option's.
    pub(crate) fn krate(&self) -> syn::Path {
        self.settings
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::ergo))
    }

    /// The message enum's name: `msg = ..`, or `{Type}Msg`.
    pub(crate) fn msg(&self, name: &Ident) -> Ident {
        self.settings
            .msg
            .clone()
            .unwrap_or_else(|| Ident::new(&format!("{name}Msg"), name.span()))
    }

    /// The API trait's name: `api = ..`, or `{Type}Api`.
    pub(crate) fn api(&self, name: &Ident) -> Ident {
        self.settings
            .api
            .clone()
            .unwrap_or_else(|| Ident::new(&format!("{name}Api"), name.span()))
    }
}

impl NotImpl {
    fn new(tokens: TokenStream) -> NotImpl {
        let (what, head, name) = match syn::parse2::<syn::Item>(tokens.clone()) {
            Ok(syn::Item::Struct(s)) => {
                let (kw, ident) = (s.struct_token, s.ident);
                ("a struct", quote!(#kw #ident), Some(ident))
            }
            Ok(syn::Item::Enum(e)) => {
                let (kw, ident) = (e.enum_token, e.ident);
                ("an enum", quote!(#kw #ident), Some(ident))
            }
            Ok(syn::Item::Trait(t)) => {
                let (kw, ident) = (t.trait_token, t.ident);
                ("a trait", quote!(#kw #ident), None)
            }
            Ok(syn::Item::Fn(f)) => {
                let (kw, ident) = (f.sig.fn_token, f.sig.ident);
                ("a function", quote!(#kw #ident), None)
            }
            _ => ("this item", tokens.clone(), None),
        };
        NotImpl {
            tokens,
            what,
            head,
            name,
        }
    }
}

impl Method {
    fn new(attrs: &[Attribute], sig: &Signature, roles: Vec<(Role, Attribute)>) -> Method {
        let mut roles = roles.into_iter();
        let (role, attr) = roles.next().expect("a method with at least one role");
        let mut inputs = Vec::new();
        let mut args = Vec::new();
        let mut params = Vec::new();
        for input in &sig.inputs {
            let FnArg::Typed(pt) = input else { continue };
            let input = Input {
                pat: (*pt.pat).clone(),
                ty: (*pt.ty).clone(),
                ctx: ctx_form(&pt.ty),
            };
            if input.ctx.is_some() {
                params.push(Param::Ctx);
            } else {
                let name = input.plain_name(role).unwrap_or_else(|| {
                    Ident::new(&format!("__arg{}", args.len()), input.pat.span())
                });
                params.push(Param::Arg(args.len()));
                args.push(Arg {
                    name,
                    ty: input.ty.clone(),
                });
            }
            inputs.push(input);
        }
        let output = match &sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => match &**ty {
                Type::Tuple(t) if t.elems.is_empty() => None,
                ty => Some(ty.clone()),
            },
        };
        Method {
            role,
            attr,
            extra_roles: roles.collect(),
            sig: sig.clone(),
            docs: docs(attrs),
            variant: variant_name(&sig.ident),
            inputs,
            args,
            params,
            output,
            verdict: Verdict::Valid,
        }
    }

    pub(crate) fn ident(&self) -> &Ident {
        &self.sig.ident
    }

    pub(crate) fn is_stub(&self) -> bool {
        self.verdict == Verdict::Stub
    }

    pub(crate) fn is_async(&self) -> bool {
        self.sig.asyncness.is_some()
    }

    /// Where a hook's call is spanned.
    pub(crate) fn span(&self) -> Span {
        self.sig.span()
    }

    /// Makes the method a stub: its types are spelled without `Self`, so its `ActorRef`
    /// method can be written outside the impl block.
    pub(crate) fn make_stub(&mut self, self_ty: &Type) {
        self.verdict = Verdict::Stub;
        for arg in &mut self.args {
            arg.ty = spell_out_self(&arg.ty, self_ty);
        }
        self.output = self.output.take().map(|r| spell_out_self(&r, self_ty));
    }
}

impl Input {
    /// The parameter's name when it is a plain one (`value: T`); for hooks, whose values
    /// generated code never names, `_` too.
    pub(crate) fn plain_name(&self, role: Role) -> Option<Ident> {
        match &self.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(p.ident.clone()),
            Pat::Wild(w) if role != Role::Handle => Some(Ident::new("_", w.span())),
            _ => None,
        }
    }
}

/// How a parameter takes the context, if its type names `Ctx`.
fn ctx_form(ty: &Type) -> Option<CtxForm> {
    fn names_ctx(ty: &Type) -> bool {
        matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Ctx"))
    }
    match ty {
        Type::Reference(r) if names_ctx(&r.elem) && r.mutability.is_some() => Some(CtxForm::MutRef),
        Type::Reference(r) if names_ctx(&r.elem) => Some(CtxForm::SharedRef),
        t if names_ctx(t) => Some(CtxForm::ByValue),
        _ => None,
    }
}

/// The doc comments of an item, to copy onto generated items.
fn docs(attrs: &[Attribute]) -> Vec<LitStr> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
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

/// `ty` with every `Self` replaced by the actor's type.
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

/// The first `ident` in `tokens`, at any depth.
pub(crate) fn find_ident(tokens: TokenStream, name: &str) -> Option<Span> {
    for tt in tokens {
        match tt {
            TokenTree::Ident(i) if i == name => return Some(i.span()),
            TokenTree::Group(g) => {
                if let Some(s) = find_ident(g.stream(), name) {
                    return Some(s);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names() {
        let name = |s: &str| variant_name(&Ident::new(s, Span::call_site())).to_string();
        assert_eq!(name("add_item"), "AddItem");
        assert_eq!(name("get"), "Get");
        assert_eq!(name("_"), "Msg");
    }
}
