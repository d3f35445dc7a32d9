//! Text for error messages: tokens written back as source, suggestions for misspelled words,
//! and word lists.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// Tokens as the user would write them: `& 'a mut Vec < u8 >` → `&'a mut Vec<u8>`,
/// `Worker :: new (1)` → `Worker::new(1)`.
///
/// The spacing follows rustfmt's for types and paths; `<` after a word is read as generics
/// (`a < b` in an expression comes out as `a<b`).
pub(crate) fn tokens_str(tokens: TokenStream) -> String {
    let mut out = String::new();
    write_tokens(tokens, &mut out, &mut Prev::Start);
    out
}

/// What was written last, which decides the space before the next token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Nothing yet, or an opening delimiter.
    Start,
    /// An identifier that is used like a name (`self`, `Self`, `crate`, `fn` included).
    Word,
    /// A keyword followed by a space (`mut`, `dyn`, `impl`, ...).
    Keyword,
    Literal,
    /// A closing delimiter.
    Close,
    /// The second `:` of `::`.
    PathSep,
    Punct(char, Spacing),
}

/// Keywords that keep a space before `(` or `[` (unlike `fn(u8)` or `self.0`).
const SPACED_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "static", "struct", "trait", "type", "unsafe", "use", "where", "while", "yield",
];

fn write_tokens(tokens: TokenStream, out: &mut String, prev: &mut Prev) {
    for tt in tokens {
        match tt {
            TokenTree::Group(g) if g.delimiter() == Delimiter::None => {
                write_tokens(g.stream(), out, prev);
            }
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    _ => ("{", "}"),
                };
                let tight = match g.delimiter() {
                    // `f(x)`, `Fn(u8)`, `fn(u8)`, `vec![..]`, `a[0]`, `&[u8]`.
                    Delimiter::Parenthesis | Delimiter::Bracket => {
                        matches!(*prev, Prev::Word | Prev::Close) || tight_after(*prev)
                    }
                    _ => !matches!(*prev, Prev::Start) && tight_after(*prev),
                };
                if !tight && *prev != Prev::Start {
                    out.push(' ');
                }
                out.push_str(open);
                let inner = g.stream();
                let braces = g.delimiter() == Delimiter::Brace && !inner.is_empty();
                if braces {
                    out.push(' ');
                }
                write_tokens(inner, out, &mut Prev::Start);
                if braces {
                    out.push(' ');
                }
                out.push_str(close);
                *prev = Prev::Close;
            }
            TokenTree::Ident(i) => {
                if *prev != Prev::Start && !tight_after(*prev) {
                    out.push(' ');
                }
                let text = i.to_string();
                *prev = if SPACED_KEYWORDS.contains(&text.as_str()) {
                    Prev::Keyword
                } else {
                    Prev::Word
                };
                out.push_str(&text);
            }
            TokenTree::Literal(l) => {
                if *prev != Prev::Start && !tight_after(*prev) {
                    out.push(' ');
                }
                out.push_str(&l.to_string());
                *prev = Prev::Literal;
            }
            TokenTree::Punct(p) => {
                let ch = p.as_char();
                let tight = match ch {
                    ',' | ';' | '.' | '?' | ':' | '>' => true,
                    // Generics: `Vec<u8>`, `Vec::<u8>`, `impl<T>`.
                    '<' => matches!(*prev, Prev::Word | Prev::PathSep | Prev::Keyword),
                    // A macro call: `vec!`.
                    '!' => *prev == Prev::Word,
                    _ => false,
                };
                if !tight && *prev != Prev::Start && !tight_after(*prev) {
                    out.push(' ');
                }
                out.push(ch);
                *prev = if ch == ':' && *prev == Prev::Punct(':', Spacing::Joint) {
                    Prev::PathSep
                } else {
                    Prev::Punct(ch, p.spacing())
                };
            }
        }
    }
}

/// Whether nothing is written between `prev` and the next token: inside `::`, `->`, `'a`, and
/// after `&`, `.`, `#`, `!`, `<`, `::`.
fn tight_after(prev: Prev) -> bool {
    match prev {
        Prev::Start | Prev::PathSep => true,
        Prev::Punct(_, Spacing::Joint) => true,
        Prev::Punct(ch, Spacing::Alone) => matches!(ch, '&' | '.' | '#' | '!' | '<' | '$'),
        _ => false,
    }
}

/// `` (did you mean `x`?)`` when `word` is close to one of `candidates`, or nothing.
///
/// Case and underscores are ignored (`OneForOne` is close to `one_for_one`); close means at most
/// two edits, or a quarter of the word's length for long words.
pub(crate) fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates).map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
}

/// The candidate closest to `word`, if any is close enough (see [`did_you_mean`]).
pub(crate) fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let norm = |s: &str| s.trim_start_matches("r#").to_lowercase().replace('_', "");
    let word_n = norm(word);
    candidates
        .iter()
        .map(|c| (*c, edit_distance(&word_n, &norm(c))))
        .filter(|&(_, d)| d <= 2.max(word_n.chars().count() / 4))
        .min_by_key(|&(_, d)| d)
        .map(|(c, _)| c)
}

/// Levenshtein distance: the fewest insertions, deletions and substitutions from `a` to `b`.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// `["a", "b", "c"]` → `` `a`, `b` or `c` ``, for messages.
pub(crate) fn one_of(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|w| format!("`{w}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn tokens_read_like_source() {
        let cases = [
            (quote!(&'a mut Vec<u8>), "&'a mut Vec<u8>"),
            (quote!(self: Box<Self>), "self: Box<Self>"),
            (quote!(mut self), "mut self"),
            (quote!(extern "C"), "extern \"C\""),
            (quote!(Worker::default()), "Worker::default()"),
            (
                quote!(Box<dyn Fn(u8) -> u8 + Send>),
                "Box<dyn Fn(u8) -> u8 + Send>",
            ),
            (quote!(Option<Vec<(u8, u16)>>), "Option<Vec<(u8, u16)>>"),
            (quote!(&mut (u8, u16)), "&mut (u8, u16)"),
            (quote!(&[u8]), "&[u8]"),
            (quote!(fn(u8) -> ()), "fn(u8) -> ()"),
            (quote!(Ctx<'_, Self>), "Ctx<'_, Self>"),
            (
                quote!(Cache::new(vec![1, 2]).size(3)?),
                "Cache::new(vec![1, 2]).size(3)?",
            ),
            (quote!(Point { x: 1 }), "Point { x: 1 }"),
            (quote!(::ergo::Actor), "::ergo::Actor"),
        ];
        for (tokens, want) in cases {
            assert_eq!(tokens_str(tokens), want);
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("remot", &["remote", "mailbox"]),
            " (did you mean `remote`?)"
        );
        assert_eq!(
            did_you_mean("OneForAll", &["one_for_one", "one_for_all"]),
            " (did you mean `one_for_all`?)"
        );
        assert_eq!(
            did_you_mean("capacity", &["remote", "mailbox", "msg", "api"]),
            ""
        );
        assert_eq!(closest("sec", &["ms", "s", "m"]), Some("s"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn word_lists() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
