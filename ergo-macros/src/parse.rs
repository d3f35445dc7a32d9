//! Parsing: the `#[actor(...)]` options and the attributes inside the impl block.

use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitInt, LitStr, Token};

use crate::ctxt::Ctxt;

/// One `key` or `key = value` inside `#[actor(...)]`.
pub(crate) struct RawOption {
    pub(crate) key: Ident,
    pub(crate) value: Option<syn::Expr>,
}

impl Parse for RawOption {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = if input.peek(Token![crate]) {
            let tok: Token![crate] = input.parse()?;
            Ident::new("crate", tok.span)
        } else {
            input.parse()?
        };
        let value = if input.peek(Token![=]) {
            let _: Token![=] = input.parse()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(RawOption { key, value })
    }
}

/// The options of `#[actor(...)]`, each checked for its form.
#[derive(Default)]
pub(crate) struct ActorArgs {
    pub(crate) remote: bool,
    pub(crate) krate: Option<syn::Path>,
    pub(crate) mailbox: Option<LitInt>,
    pub(crate) msg: Option<Ident>,
    pub(crate) api: Option<Ident>,
}

const KEYS: &str = "`remote`, `mailbox = N`, `msg = Name`, `api = Name`, `crate = \"path\"`";

pub(crate) fn actor_args(cx: &mut Ctxt, args: proc_macro2::TokenStream) -> ActorArgs {
    let mut out = ActorArgs::default();
    let parser = Punctuated::<RawOption, Token![,]>::parse_terminated;
    let options = match syn::parse::Parser::parse2(parser, args) {
        Ok(o) => o,
        Err(e) => {
            cx.syn_error(syn::Error::new(
                e.span(),
                format!("malformed `#[actor]` options: {e}; expected {KEYS}"),
            ));
            return out;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for opt in options {
        let key = opt.key.to_string();
        if seen.contains(&key) {
            cx.error_spanned_by(
                &opt.key,
                format!("the `#[actor]` option `{key}` is given twice; keep one"),
            );
            continue;
        }
        seen.push(key.clone());
        match (key.as_str(), opt.value) {
            ("remote", None) => out.remote = true,
            ("remote", Some(v)) => cx.error_spanned_by(
                v,
                "`remote` takes no value; write `#[actor(remote)]` for a remote actor, or leave it out",
            ),
            ("mailbox", Some(Expr::Lit(ExprLit { lit: Lit::Int(n), .. }))) => {
                match n.base10_parse::<usize>() {
                    Ok(0) => cx.error_spanned_by(
                        &n,
                        "`mailbox` must be at least 1; leave it out for an unbounded mailbox",
                    ),
                    Ok(_) => out.mailbox = Some(n),
                    Err(e) => cx.error_spanned_by(&n, e),
                }
            }
            ("mailbox", v) => cx.error_spanned_by(
                v.map(ToTokens::into_token_stream)
                    .unwrap_or_else(|| opt.key.clone().into_token_stream()),
                "`mailbox` takes a capacity: `mailbox = 64`",
            ),
            ("msg" | "api", Some(Expr::Path(p))) if p.path.get_ident().is_some() => {
                let ident = p.path.get_ident().cloned();
                if key == "msg" {
                    out.msg = ident;
                } else {
                    out.api = ident;
                }
            }
            ("msg" | "api", Some(Expr::Lit(ExprLit { lit: Lit::Str(s), .. })))
                if s.parse::<Ident>().is_ok() =>
            {
                cx.error_spanned_by(
                    &s,
                    format!(
                        "`{key}` takes a type name without quotes: `{key} = {}`",
                        s.value()
                    ),
                )
            }
            ("msg" | "api", v) => cx.error_spanned_by(
                v.map(ToTokens::into_token_stream)
                    .unwrap_or_else(|| opt.key.clone().into_token_stream()),
                format!("`{key}` takes a type name: `{key} = Name`"),
            ),
            ("crate", Some(Expr::Lit(ExprLit { lit: Lit::Str(s), .. }))) => {
                match s.parse::<syn::Path>() {
                    Ok(p) => out.krate = Some(p),
                    Err(_) => cx.error_spanned_by(
                        &s,
                        "`crate` takes a path in quotes: `crate = \"::my_reexport::ergo\"`",
                    ),
                }
            }
            ("crate", Some(Expr::Path(p))) => {
                let path = p.path.to_token_stream().to_string().replace(' ', "");
                cx.error_spanned_by(
                    &p,
                    format!("`crate` takes its path in quotes: `crate = \"{path}\"`"),
                )
            }
            ("crate", v) => cx.error_spanned_by(
                v.map(ToTokens::into_token_stream)
                    .unwrap_or_else(|| opt.key.clone().into_token_stream()),
                "`crate` takes a path in quotes: `crate = \"::my_reexport::ergo\"`",
            ),
            _ => cx.error_spanned_by(
                &opt.key,
                format!("unknown `#[actor]` option `{key}`; expected one of {KEYS}"),
            ),
        }
    }
    out
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

    fn from_attr(attr: &syn::Attribute) -> Option<Role> {
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
}

/// Removes our attributes from a method and returns the roles found (with their attributes).
pub(crate) fn take_roles(attrs: &mut Vec<syn::Attribute>) -> Vec<(Role, syn::Attribute)> {
    let mut roles = Vec::new();
    attrs.retain(|a| match Role::from_attr(a) {
        Some(role) => {
            roles.push((role, a.clone()));
            false
        }
        None => true,
    });
    roles
}

/// The doc comments of an item, to copy onto generated items.
pub(crate) fn docs(attrs: &[syn::Attribute]) -> Vec<LitStr> {
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
