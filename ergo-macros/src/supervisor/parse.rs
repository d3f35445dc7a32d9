//! Parsing: the tokens of `supervisor! { ... }` into raw parts (header, options, children) that
//! keep the user's tokens for spans. Only the shape is checked here; what the words mean is
//! `check`'s job.
//!
//! The input is cut at the token level before anything is parsed, so one malformed child or
//! option is reported and the rest is still read: a child starts at `id:` after a top-level
//! comma, its constructor runs to the first top-level `=>`, and its restart type and options
//! are the comma-separated pieces after it.

use proc_macro2::{Delimiter, Ident, Spacing, Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Expr, Visibility};

use crate::internals::option::{
    is_fat_arrow, is_punct, parse_pieces, split_commas, stream, RawOption,
};
use crate::internals::Ctxt;

/// The whole invocation, once its type name has parsed.
pub(crate) struct RawTree {
    /// The inner attributes (`#![crate = "path"]`).
    pub(crate) inner: Vec<Attribute>,
    /// The outer attributes (doc comments) before the name.
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) name: Ident,
    pub(crate) spec: RawSpec,
}

/// `strategy, key = value, ... { children }`.
#[derive(Default)]
pub(crate) struct RawSpec {
    /// The strategy word; `None` when missing or malformed (already reported).
    pub(crate) strategy: Option<Ident>,
    pub(crate) options: Vec<RawOption>,
    pub(crate) children: Vec<RawChild>,
}

/// `id: <constructor> => <restart>, <options>`, with whatever of it parsed.
pub(crate) struct RawChild {
    pub(crate) id: Ident,
    /// `None` when missing or malformed (already reported).
    pub(crate) start: Option<RawStart>,
    /// `None` when missing (already reported).
    pub(crate) restart: Option<Ident>,
    pub(crate) options: Vec<RawOption>,
    /// The errors parsing found in this child, reported when `check` reaches it so that all
    /// errors come in source order. A child with any error is still checked, but not generated.
    pub(crate) errors: Ctxt,
}

/// What makes a child.
pub(crate) enum RawStart {
    Expr(Box<Expr>),
    /// `strategy, options { children }`: a supervisor declared inline.
    Inline(RawSpec),
}

const CHILD_FORM: &str = "`id: MyActor::new() => permanent`";
const RESTARTS: &str = "`permanent`, `transient` or `temporary`";
/// The child options' keys (for `name: ..`, which reads as a new child).
const CHILD_OPTIONS: &[&str] = &["shutdown", "name", "significant"];
const STRATEGIES: &str = "`one_for_one`, `one_for_all` or `rest_for_one`";

/// Parses the invocation. `None` when not even the type name parsed (nothing can be generated).
pub(crate) fn tree(cx: &mut Ctxt, input: TokenStream) -> Option<RawTree> {
    let prefix = |input: ParseStream<'_>| {
        let inner = input.call(Attribute::parse_inner)?;
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        if input.peek(syn::Token![struct]) {
            let tok: syn::Token![struct] = input.parse()?;
            return Err(syn::Error::new(
                tok.span,
                "`supervisor!` declares the type itself; write the name without `struct`: `pub MySup: one_for_one { ... }`",
            ));
        }
        let name: Ident = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the supervisor's type name: `supervisor! { pub MySup: one_for_one { ... } }`",
            )
        })?;
        let rest: TokenStream = input.parse()?;
        Ok((inner, attrs, vis, name, rest))
    };
    let (inner, attrs, vis, name, rest) = match prefix.parse2(input) {
        Ok(parts) => parts,
        Err(e) => {
            cx.syn_error(e);
            return None;
        }
    };
    let tokens: Vec<TokenTree> = rest.into_iter().collect();
    let spec = if is_single_colon(&tokens, 0) {
        let (spec, rest) = spec(cx, &tokens[1..], tokens[0].span());
        if !rest.is_empty() {
            cx.error_spanned_by(
                stream(rest),
                "unexpected tokens after the tree's `{ ... }`; a `supervisor!` declares one tree",
            );
        }
        spec
    } else {
        let span = match tokens.first() {
            Some(TokenTree::Group(g)) => g.span_open(),
            Some(t) => t.span(),
            None => name.span(),
        };
        cx.syn_error(syn::Error::new(
            span,
            format!("expected `:` and a strategy after `{name}`: `{name}: one_for_one {{ ... }}`"),
        ));
        RawSpec::default()
    };
    Some(RawTree {
        inner,
        attrs,
        vis,
        name,
        spec,
    })
}

/// A supervisor after its name (or a child's `id:`): `strategy, options { children }`. Returns
/// the tokens after the `{ ... }`. `after` is the span of the `:` before it, for a missing
/// strategy.
fn spec<'t>(cx: &mut Ctxt, tokens: &'t [TokenTree], after: Span) -> (RawSpec, &'t [TokenTree]) {
    let mut out = RawSpec::default();
    let body_at = tokens.iter().position(is_brace);
    let header = &tokens[..body_at.unwrap_or(tokens.len())];
    let pieces = split_commas(header);
    let (first, _) = &pieces[0];
    match first.first() {
        Some(TokenTree::Ident(word)) => {
            out.strategy = Some(word.clone());
            expect_comma_before(cx, &first[1..]);
        }
        Some(other) => cx.error_spanned_by(other, format!("expected a strategy: {STRATEGIES}")),
        None => cx.syn_error(syn::Error::new(
            after,
            format!("expected a strategy after `:`: {STRATEGIES}"),
        )),
    }
    out.options = parse_pieces(
        cx,
        &pieces[1..],
        "a supervisor option: `intensity = N`, `period = 5s` or `auto_shutdown = ..`",
    );
    let Some(body_at) = body_at else {
        let span = tokens.last().map_or(after, TokenTree::span);
        cx.syn_error(syn::Error::new(
            span,
            format!(
                "expected the children in braces after the header: `{{ {} }}` (or `{{}}` for none)",
                &CHILD_FORM[1..CHILD_FORM.len() - 1]
            ),
        ));
        return (out, &[]);
    };
    let TokenTree::Group(body) = &tokens[body_at] else {
        unreachable!("`is_brace` matched")
    };
    out.children = children(cx, body.stream());
    (out, &tokens[body_at + 1..])
}

/// The children inside a supervisor's braces.
fn children(cx: &mut Ctxt, body: TokenStream) -> Vec<RawChild> {
    let tokens: Vec<TokenTree> = body.into_iter().collect();
    let mut segments = Vec::new();
    let mut start = 0;
    for i in 0..tokens.len() {
        if is_comma(&tokens[i]) && child_starts_at(&tokens, i + 1) {
            segments.push(&tokens[start..i]);
            start = i + 1;
        }
    }
    let mut last = &tokens[start..];
    if last.last().is_some_and(is_comma) {
        last = &last[..last.len() - 1];
    }
    segments.push(last);
    segments
        .into_iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let mut errors = Ctxt::default();
            match child(&mut errors, s) {
                Some(mut c) => {
                    c.errors = errors;
                    Some(c)
                }
                None => {
                    cx.append(errors);
                    None
                }
            }
        })
        .collect()
}

/// One child's tokens, from its first doc comment to before the comma that ends it.
fn child(cx: &mut Ctxt, tokens: &[TokenTree]) -> Option<RawChild> {
    let mut at = 0;
    while is_punct(tokens.get(at), '#') && tokens.get(at + 1).is_some_and(is_bracket) {
        let is_doc = matches!(&tokens[at + 1], TokenTree::Group(g)
            if matches!(g.stream().into_iter().next(), Some(TokenTree::Ident(i)) if i == "doc"));
        if !is_doc {
            cx.error_spanned_by(
                stream(&tokens[at..at + 2]),
                "only doc comments can annotate a child; remove this attribute",
            );
        }
        at += 2;
    }
    let (id, colon) = match (tokens.get(at), tokens.get(at + 1)) {
        (Some(TokenTree::Ident(id)), Some(colon)) if is_single_colon(tokens, at + 1) => {
            (id.clone(), colon.span())
        }
        (first, _) => {
            let first = first.unwrap_or(&tokens[0]);
            cx.error_spanned_by(first, format!("expected a child: {CHILD_FORM}"));
            return None;
        }
    };
    let rest = &tokens[at + 2..];
    let mut out = RawChild {
        id,
        start: None,
        restart: None,
        options: Vec::new(),
        errors: Ctxt::default(),
    };
    let id = &out.id;

    // The constructor: an inline supervisor ends at its `{ ... }`; an expression at `=>` (or,
    // when `=>` is missing, at the first comma).
    let inline = is_inline(rest);
    let ctor_end = if inline {
        rest.iter().position(is_brace).map_or(rest.len(), |i| i + 1)
    } else {
        (0..rest.len())
            .find(|&k| is_fat_arrow(rest, k))
            .or_else(|| rest.iter().position(is_comma))
            .unwrap_or(rest.len())
    };
    let (ctor, after) = rest.split_at(ctor_end);
    let has_arrow = is_fat_arrow(after, 0);

    if ctor.is_empty() {
        if has_arrow {
            cx.error_spanned_by(
                stream(&after[..2]),
                format!(
                    "child `{id}` has no constructor; write the expression that makes the actor before `=>`: `{id}: MyActor::new() => permanent`"
                ),
            );
        } else {
            cx.syn_error(syn::Error::new(
                colon,
                format!(
                    "child `{id}` needs a constructor and a restart type: `{id}: MyActor::new() => permanent`"
                ),
            ));
        }
    } else if inline {
        let (spec, _) = spec(cx, ctor, colon);
        out.start = Some(RawStart::Inline(spec));
    } else if has_arrow {
        match syn::parse2::<Expr>(stream(ctor)) {
            Ok(e) => out.start = Some(RawStart::Expr(Box::new(e))),
            Err(e) => {
                // syn spans "unexpected end of input" on the whole macro; point at the end of
                // the constructor instead.
                let span = if e.to_string().contains("end of input") {
                    ctor[ctor.len() - 1].span()
                } else {
                    e.span()
                };
                cx.syn_error(syn::Error::new(
                    span,
                    format!("the constructor of child `{id}` is not an expression: {e}"),
                ));
            }
        }
    }

    if !has_arrow {
        if CHILD_OPTIONS.contains(&id.to_string().as_str()) && !ctor.is_empty() {
            // `name: "cache"` after a child reads as a new child called `name`.
            cx.syn_error(syn::Error::new(
                colon,
                format!("`{id}:` starts a new child here; a child option is written `{id} = ..`"),
            ));
        } else if !ctor.is_empty() {
            // After an inline supervisor, point at what follows its `}` (or at the `}`).
            let span_on = match (inline, after.first()) {
                (true, Some(t)) if !is_comma(t) => stream(std::slice::from_ref(t)),
                (true, _) => stream(&ctor[ctor.len() - 1..]),
                (false, _) => stream(ctor),
            };
            cx.error_spanned_by(
                span_on,
                format!(
                    "child `{id}` needs a restart type after its constructor: `=> permanent`, `=> transient` or `=> temporary`"
                ),
            );
        }
        return Some(out);
    }

    let arrow = stream(&after[..2]);
    let pieces = split_commas(&after[2..]);
    let (first, _) = &pieces[0];
    match first.first() {
        Some(TokenTree::Ident(word)) if !is_punct(first.get(1), ':') => {
            out.restart = Some(word.clone());
            expect_comma_before(cx, &first[1..]);
        }
        Some(_) => {
            // `Restart::Permanent`, a literal, ...
            cx.error_spanned_by(
                stream(first),
                format!("expected a restart type, written as a word: {RESTARTS}"),
            );
        }
        None => {
            cx.error_spanned_by(
                arrow,
                format!("expected a restart type after `=>`: {RESTARTS}"),
            );
        }
    }
    out.options = parse_pieces(
        cx,
        &pieces[1..],
        "a child option: `shutdown = ..`, `name = \"..\"` or `significant` (or the next child, `id: ..`)",
    );
    Some(out)
}

/// Reports the first of `extra` (tokens after a complete word) as a missing comma.
fn expect_comma_before(cx: &mut Ctxt, extra: &[TokenTree]) {
    if let Some(t) = extra.first() {
        cx.error_spanned_by(t, format!("expected `,` before `{t}`"));
    }
}

/// Whether a child's constructor is a supervisor declared inline: `strategy, ... { .. }` or
/// `strategy { .. }` (a lower-case word, so `MyActor { field: 1 }` stays a struct literal).
fn is_inline(rest: &[TokenTree]) -> bool {
    const BLOCK_KEYWORDS: &[&str] = &["async", "unsafe", "loop", "const", "try"];
    match (rest.first(), rest.get(1)) {
        (Some(TokenTree::Ident(_)), Some(t)) if is_comma(t) => rest.iter().any(is_brace),
        (Some(TokenTree::Ident(word)), Some(t)) if is_brace(t) => {
            let word = word.to_string();
            word.starts_with(|c: char| c.is_lowercase()) && !BLOCK_KEYWORDS.contains(&&*word)
        }
        _ => false,
    }
}

/// Whether a child starts at `i`: doc comments, then `id:` (a single colon, not `::`).
fn child_starts_at(tokens: &[TokenTree], mut i: usize) -> bool {
    while is_punct(tokens.get(i), '#') && tokens.get(i + 1).is_some_and(is_bracket) {
        i += 2;
    }
    matches!(tokens.get(i), Some(TokenTree::Ident(_))) && is_single_colon(tokens, i + 1)
}

fn is_comma(t: &TokenTree) -> bool {
    is_punct(Some(t), ',')
}

fn is_brace(t: &TokenTree) -> bool {
    matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace)
}

fn is_bracket(t: &TokenTree) -> bool {
    matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Bracket)
}

/// A `:` that is not part of `::`.
fn is_single_colon(tokens: &[TokenTree], i: usize) -> bool {
    let joint_colon = |t: &TokenTree| matches!(t, TokenTree::Punct(p) if p.as_char() == ':' && p.spacing() == Spacing::Joint);
    matches!(tokens.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Alone)
        && !(i > 0 && joint_colon(&tokens[i - 1]))
}
