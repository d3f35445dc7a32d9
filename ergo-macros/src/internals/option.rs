//! The option syntax both macros share: comma-separated `key = value` or `flag` items
//! (`#[actor(remote, mailbox = 64)]`, a supervisor's `intensity = 3, period = 5s`, a child's
//! `shutdown = 2s, significant`), and the `crate = "path"` option.
//!
//! Parsing only cuts the tokens: a key and the tokens of its value, whatever they are. What the
//! keys and values mean is for each macro's `check`.

use proc_macro2::{Punct, Spacing, TokenStream, TokenTree};
use syn::Ident;

use super::ctxt::Ctxt;
use super::text::tokens_str;

/// `key` or `key = value`.
pub(crate) struct RawOption {
    pub(crate) key: Ident,
    /// The `=` and the value's tokens (maybe none), or `None` for a bare `key`.
    pub(crate) value: Option<(Punct, Vec<TokenTree>)>,
}

impl RawOption {
    /// The value's tokens (empty for `key =`), or `None` for a bare `key`.
    pub(crate) fn value_tokens(&self) -> Option<&[TokenTree]> {
        self.value.as_ref().map(|(_, v)| v.as_slice())
    }

    /// The value's tokens, or the key when there are none (where a wrong value is reported).
    pub(crate) fn value_or_key(&self) -> TokenStream {
        match self.value_tokens() {
            Some(v) if !v.is_empty() => stream(v),
            _ => {
                let key = &self.key;
                quote::quote!(#key)
            }
        }
    }
}

/// The options written in `tokens` (the inside of `#[actor(...)]`). `what` says what an option
/// looks like, for the error on a piece that is not one.
pub(crate) fn parse_list(cx: &mut Ctxt, tokens: TokenStream, what: &str) -> Vec<RawOption> {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    parse_pieces(cx, &split_commas(&tokens), what)
}

/// The options in pieces already cut at their commas (see [`split_commas`]).
pub(crate) fn parse_pieces(
    cx: &mut Ctxt,
    pieces: &[(&[TokenTree], Option<&TokenTree>)],
    what: &str,
) -> Vec<RawOption> {
    let mut out = Vec::new();
    for (i, (piece, comma)) in pieces.iter().enumerate() {
        let Some(first) = piece.first() else {
            // A trailing comma is fine; two commas in a row are not.
            if i + 1 < pieces.len() {
                if let Some(comma) = comma {
                    cx.error_spanned_by(comma, "unexpected `,`; remove it");
                }
            }
            continue;
        };
        let TokenTree::Ident(key) = first else {
            cx.error_spanned_by(first, format!("expected {what}"));
            continue;
        };
        let value = match piece.get(1) {
            None => None,
            Some(TokenTree::Punct(eq)) if eq.as_char() == '=' && !is_fat_arrow(piece, 1) => {
                Some((eq.clone(), piece[2..].to_vec()))
            }
            Some(other) => {
                cx.error_spanned_by(other, format!("expected `=` or `,` after `{key}`"));
                continue;
            }
        };
        out.push(RawOption {
            key: key.clone(),
            value,
        });
    }
    out
}

/// Splits at every comma, keeping each piece's comma. Always returns at least one piece.
pub(crate) fn split_commas(tokens: &[TokenTree]) -> Vec<(&[TokenTree], Option<&TokenTree>)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        if is_punct(Some(t), ',') {
            out.push((&tokens[start..i], Some(t)));
            start = i + 1;
        }
    }
    out.push((&tokens[start..], None));
    out
}

/// How the `crate` option is written in one macro: `crate = "…"` in `#[actor(..)]`,
/// `#![crate = "…"]` in `supervisor!`.
pub(crate) struct CrateForm {
    pub(crate) before: &'static str,
    pub(crate) after: &'static str,
}

impl CrateForm {
    fn written(&self, path: &str) -> String {
        format!("{}crate = \"{path}\"{}", self.before, self.after)
    }
}

/// The `crate = "path"` option: the path, in quotes, of the runtime crate or of a re-export of
/// it, that generated code names instead of `::ergo`. `value` is what follows `crate =` (`None`:
/// nothing); `whole` is where to report a missing value.
pub(crate) fn crate_path(
    cx: &mut Ctxt,
    form: &CrateForm,
    value: Option<&[TokenTree]>,
    whole: TokenStream,
) -> Option<syn::Path> {
    let expected = format!(
        "`crate` takes a path in quotes: `{}`",
        form.written("::my_reexport::ergo")
    );
    let v = match value {
        Some(v) if !v.is_empty() => v,
        _ => {
            cx.error_spanned_by(whole, expected);
            return None;
        }
    };
    if let [TokenTree::Literal(l)] = v {
        if let syn::Lit::Str(s) = syn::Lit::new(l.clone()) {
            return match s.parse::<syn::Path>() {
                Ok(p) => Some(p),
                Err(_) => {
                    cx.error_spanned_by(&s, expected);
                    None
                }
            };
        }
    }
    let tokens = stream(v);
    if syn::parse2::<syn::Path>(tokens.clone()).is_ok() {
        let path = tokens_str(tokens.clone());
        cx.error_spanned_by(
            tokens,
            format!(
                "`crate` takes its path in quotes: `{}`",
                form.written(&path)
            ),
        );
    } else {
        cx.error_spanned_by(tokens, expected);
    }
    None
}

pub(crate) fn stream(tokens: &[TokenTree]) -> TokenStream {
    tokens.iter().cloned().collect()
}

pub(crate) fn is_punct(t: Option<&TokenTree>, ch: char) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ch)
}

/// `=>` at `i`.
pub(crate) fn is_fat_arrow(tokens: &[TokenTree], i: usize) -> bool {
    matches!(tokens.get(i), Some(TokenTree::Punct(p)) if p.as_char() == '=' && p.spacing() == Spacing::Joint)
        && is_punct(tokens.get(i + 1), '>')
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Vec<RawOption>, syn::Result<()>) {
        let mut cx = Ctxt::new();
        let out = parse_list(&mut cx, tokens, "an option");
        (out, cx.check())
    }

    #[test]
    fn keys_and_values() {
        let (opts, errors) = parse(quote!(remote, mailbox = 64, crate = "a::b",));
        assert!(errors.is_ok());
        let keys: Vec<String> = opts.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(keys, ["remote", "mailbox", "crate"]);
        assert!(opts[0].value.is_none());
        assert_eq!(tokens_str(opts[1].value_or_key()), "64");
        assert_eq!(tokens_str(opts[0].value_or_key()), "remote");
    }

    #[test]
    fn malformed_pieces_are_reported_and_skipped() {
        let (opts, errors) = parse(quote!(remote mailbox = 1, , 3, msg = A));
        let messages: Vec<String> = errors
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            messages,
            [
                "expected `=` or `,` after `remote`",
                "unexpected `,`; remove it",
                "expected an option"
            ]
        );
        assert_eq!(opts.len(), 1);
    }

    #[test]
    fn crate_paths() {
        let form = CrateForm {
            before: "",
            after: "",
        };
        let mut cx = Ctxt::new();
        let v: Vec<TokenTree> = quote!("::x::ergo").into_iter().collect();
        assert!(crate_path(&mut cx, &form, Some(&v), quote!(crate)).is_some());
        let v: Vec<TokenTree> = quote!(x::ergo).into_iter().collect();
        assert!(crate_path(&mut cx, &form, Some(&v), quote!(crate)).is_none());
        let err = cx.check().unwrap_err().to_string();
        assert_eq!(
            err,
            "`crate` takes its path in quotes: `crate = \"x::ergo\"`"
        );
    }
}
