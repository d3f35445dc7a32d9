//! Validation: one function per rule, each recording its errors in the [`Ctxt`] on the exact
//! token and saying the fix.
//!
//! A mistake costs only its own part: the type is generated whenever its name parsed, with the
//! header's valid settings and the children that passed every check, so the user's code that
//! spawns, nests or calls the tree adds no follow-on errors.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Attribute, Expr, Ident, Lit, LitStr};

use super::model::{
    one_of, AutoShutdown, Child, Duration, Restart, Shutdown, Spec, Start, Strategy, Tree,
};
use super::parse::{RawChild, RawOption, RawSpec, RawStart, RawTree};
use crate::ctxt::Ctxt;

/// Builds the model from the parsed tree.
pub(crate) fn tree(cx: &mut Ctxt, raw: RawTree) -> Tree {
    let (docs, lints) = tree_attrs(cx, raw.attrs);
    let mut names = HashMap::new();
    Tree {
        krate: raw.krate.unwrap_or_else(|| syn::parse_quote!(::ergo)),
        docs,
        lints,
        vis: raw.vis,
        name: raw.name,
        spec: spec(cx, raw.spec, &mut names),
    }
}

/// Registered names seen so far in the whole tree, with the id of the child that has each.
type Names = HashMap<String, String>;

/// The header's settings, as far as they are valid.
#[derive(Default)]
struct Header {
    intensity: Option<u32>,
    period: Option<(Duration, TokenStream)>,
    auto_shutdown: Option<(AutoShutdown, Ident)>,
    /// `auto_shutdown` was given but is wrong (already reported): its rules are skipped.
    auto_shutdown_broken: bool,
}

fn spec(cx: &mut Ctxt, raw: RawSpec, names: &mut Names) -> Spec {
    let strategy = raw
        .strategy
        .as_ref()
        .and_then(|word| strategy(cx, word))
        .unwrap_or(Strategy::OneForOne);
    let header = header(cx, &raw.options);
    period_not_zero(cx, &header);
    auto_shutdown_needs_significant(cx, &header, &raw.children);
    let mut ids = Vec::new();
    let mut children = Vec::new();
    for raw_child in raw.children {
        unique_id(cx, &raw_child.id, &mut ids);
        children.extend(child(cx, raw_child, &header, names));
    }
    Spec {
        strategy,
        intensity: header.intensity,
        period: header.period.map(|(d, _)| d),
        auto_shutdown: header.auto_shutdown.map(|(a, _)| a),
        children,
    }
}

/// Doc comments and lint attributes go on the type; anything else is an error.
fn tree_attrs(cx: &mut Ctxt, attrs: Vec<Attribute>) -> (Vec<Attribute>, Vec<Attribute>) {
    const LINTS: &[&str] = &["allow", "expect", "warn", "deny", "forbid"];
    let (mut docs, mut lints) = (Vec::new(), Vec::new());
    for attr in attrs {
        if attr.path().is_ident("doc") {
            docs.push(attr);
        } else if LINTS.iter().any(|l| attr.path().is_ident(l)) {
            lints.push(attr);
        } else {
            cx.error_spanned_by(
                &attr,
                "a `supervisor!` tree takes doc comments and lint attributes (`#[allow(..)]`); remove this attribute",
            );
        }
    }
    (docs, lints)
}

/// The strategy is one of the three words.
fn strategy(cx: &mut Ctxt, word: &Ident) -> Option<Strategy> {
    let text = word.unraw().to_string();
    if let Some(s) = Strategy::from_word(&text) {
        return Some(s);
    }
    let msg = if text == "simple_one_for_one" {
        "`simple_one_for_one` is not a `supervisor!` strategy, because a declared tree has fixed children; declare it `one_for_one` and add children at run time with `SupervisorApi::start_child`, or use `ergo::supervisor::SimpleSupervisor`".to_owned()
    } else {
        format!(
            "unknown strategy `{text}`{}; expected {} (children added at run time go through `SupervisorApi::start_child`)",
            did_you_mean(&text, Strategy::WORDS),
            one_of(Strategy::WORDS),
        )
    };
    cx.error_spanned_by(word, msg);
    None
}

const HEADER_KEYS: &[&str] = &["intensity", "period", "auto_shutdown"];
const HEADER_FORMS: &str =
    "`intensity = N`, `period = 5s` or `auto_shutdown = never | any_significant | all_significant`";

fn header(cx: &mut Ctxt, options: &[RawOption]) -> Header {
    let mut out = Header::default();
    for opt in no_duplicate_options(cx, options, "the supervisor") {
        match opt.key.to_string().as_str() {
            "intensity" => out.intensity = intensity(cx, opt),
            "period" => {
                out.period = value(cx, opt, "period = 5s")
                    .and_then(|v| duration(cx, "period", v).map(|d| (d, stream(v))))
            }
            "auto_shutdown" => {
                out.auto_shutdown = auto_shutdown(cx, opt);
                out.auto_shutdown_broken = out.auto_shutdown.is_none();
            }
            _ => unknown_header_key(cx, opt),
        }
    }
    out
}

fn unknown_header_key(cx: &mut Ctxt, opt: &RawOption) {
    let key = opt.key.to_string();
    let hint = match key.as_str() {
        "max_restarts" | "max_r" => " (OTP's `MaxR` is `intensity`)".to_owned(),
        "max_seconds" | "max_t" => " (OTP's `MaxT` is `period`)".to_owned(),
        "strategy" => {
            " (the strategy comes first, without a key: `MySup: one_for_all, ..`)".to_owned()
        }
        _ => did_you_mean(&key, HEADER_KEYS),
    };
    cx.error_spanned_by(
        &opt.key,
        format!("unknown supervisor option `{key}`{hint}; expected {HEADER_FORMS}"),
    );
}

/// Options are given at most once; returns the first of each key.
fn no_duplicate_options<'o>(
    cx: &mut Ctxt,
    options: &'o [RawOption],
    whose: &str,
) -> Vec<&'o RawOption> {
    let mut seen: Vec<&RawOption> = Vec::new();
    for opt in options {
        if seen.iter().any(|s| s.key == opt.key) {
            cx.error_spanned_by(
                &opt.key,
                format!("`{}` is given twice for {whose}; keep one", opt.key),
            );
        } else {
            seen.push(opt);
        }
    }
    seen
}

/// The tokens after `key =`; an error (with the form to write) when there are none.
fn value<'o>(cx: &mut Ctxt, opt: &'o RawOption, form: &str) -> Option<&'o [TokenTree]> {
    match &opt.value {
        Some((_, v)) if !v.is_empty() => Some(v),
        Some((eq, _)) => {
            cx.error_spanned_by(
                quote::quote!(#eq),
                format!("`{}` needs a value after `=`: `{form}`", opt.key),
            );
            None
        }
        None => {
            cx.error_spanned_by(&opt.key, format!("`{}` takes a value: `{form}`", opt.key));
            None
        }
    }
}

/// A word option (`significant`) takes no value.
fn flag(cx: &mut Ctxt, opt: &RawOption) -> Option<Span> {
    match &opt.value {
        None => Some(opt.key.span()),
        Some((eq, v)) => {
            cx.error_spanned_by(
                quote::quote!(#eq #(#v)*),
                format!(
                    "`{0}` takes no value; write `{0}` alone, or leave it out",
                    opt.key
                ),
            );
            None
        }
    }
}

/// The literal of a one-token value.
fn literal(v: &[TokenTree]) -> Option<Lit> {
    match v {
        [TokenTree::Literal(l)] => Some(Lit::new(l.clone())),
        _ => None,
    }
}

/// `intensity = N`: a plain whole number.
fn intensity(cx: &mut Ctxt, opt: &RawOption) -> Option<u32> {
    let v = value(cx, opt, "intensity = 3")?;
    match literal(v) {
        Some(Lit::Int(n)) if n.suffix().is_empty() => match n.base10_parse::<u32>() {
            Ok(n) => return Some(n),
            Err(_) => cx.error_spanned_by(
                &n,
                "`intensity` is too large; it counts restarts, like `intensity = 3`",
            ),
        },
        Some(Lit::Int(n)) if ["ms", "s", "m"].contains(&n.suffix()) => cx.error_spanned_by(
            &n,
            format!(
                "`intensity` counts restarts and takes a plain number; the time window is `period = {n}`"
            ),
        ),
        _ => cx.error_spanned_by(
            stream(v),
            "`intensity` takes the number of restarts allowed within the period: `intensity = 3`",
        ),
    }
    None
}

/// A duration: a whole number with the unit `ms`, `s` or `m`.
fn duration(cx: &mut Ctxt, key: &str, v: &[TokenTree]) -> Option<Duration> {
    let lit = match literal(v) {
        Some(Lit::Int(n)) => n,
        Some(Lit::Float(f)) => {
            cx.error_spanned_by(
                &f,
                format!(
                    "durations are whole numbers of `ms`, `s` or `m`; write `{key} = 1500ms` for 1.5 s"
                ),
            );
            return None;
        }
        _ => {
            let more = if key == "shutdown" {
                ", `brutal_kill` or `infinity`"
            } else {
                ""
            };
            cx.error_spanned_by(
                stream(v),
                format!("`{key}` takes a duration like `5s`, `500ms` or `1m`{more}"),
            );
            return None;
        }
    };
    let digits = lit.base10_digits();
    let per_unit: u64 = match lit.suffix() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "" => {
            cx.error_spanned_by(
                &lit,
                format!(
                    "`{key} = {digits}` needs a unit: `{digits}s`, `{digits}ms` or `{digits}m`"
                ),
            );
            return None;
        }
        other => {
            cx.error_spanned_by(
                &lit,
                format!(
                    "unknown duration unit `{other}`; write `ms`, `s` or `m`, like `{digits}s`"
                ),
            );
            return None;
        }
    };
    match digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
    {
        Some(millis) => Some(Duration {
            millis,
            text: lit.to_string(),
        }),
        None => {
            cx.error_spanned_by(&lit, format!("`{key} = {lit}` is too long"));
            None
        }
    }
}

/// A zero period counts no restarts, so it would lift the limit instead of setting one.
fn period_not_zero(cx: &mut Ctxt, header: &Header) {
    let Some((period, tokens)) = &header.period else {
        return;
    };
    if period.millis != 0 {
        return;
    }
    let msg = if header.intensity == Some(0) {
        format!(
            "`intensity = 0, period = {}` sets no limit, because a zero period counts no restarts; keep `intensity = 0` with a period longer than zero, like `period = 5s`, to give up at the first failure",
            period.text
        )
    } else {
        "`period` must be longer than zero, because a zero period counts no restarts and children would restart without limit; write a window like `period = 5s`".to_owned()
    };
    cx.error_spanned_by(tokens, msg);
}

/// `auto_shutdown = never | any_significant | all_significant`.
fn auto_shutdown(cx: &mut Ctxt, opt: &RawOption) -> Option<(AutoShutdown, Ident)> {
    let v = value(cx, opt, "auto_shutdown = any_significant")?;
    if let [TokenTree::Ident(word)] = v {
        let text = word.to_string();
        if let Some(a) = AutoShutdown::from_word(&text) {
            return Some((a, word.clone()));
        }
        cx.error_spanned_by(
            word,
            format!(
                "unknown `auto_shutdown` value `{text}`{}; expected {}",
                did_you_mean(&text, AutoShutdown::WORDS),
                one_of(AutoShutdown::WORDS)
            ),
        );
    } else {
        cx.error_spanned_by(
            stream(v),
            format!("`auto_shutdown` takes {}", one_of(AutoShutdown::WORDS)),
        );
    }
    None
}

/// `auto_shutdown` other than `never` needs a significant child to watch.
fn auto_shutdown_needs_significant(cx: &mut Ctxt, header: &Header, children: &[RawChild]) {
    let Some((auto, word)) = &header.auto_shutdown else {
        return;
    };
    let any_significant = children
        .iter()
        .any(|c| c.options.iter().any(|o| o.key == "significant"));
    if *auto != AutoShutdown::Never && !any_significant {
        cx.error_spanned_by(
            word,
            format!(
                "`auto_shutdown = {}` has no effect because no child is `significant`; mark a transient or temporary child `significant`, or remove `auto_shutdown`",
                auto.word()
            ),
        );
    }
}

/// Ids name children in `which_children`, `terminate_child` and the rest, so they are unique
/// within a supervisor. The error is on the second one.
fn unique_id(cx: &mut Ctxt, id: &Ident, seen: &mut Vec<String>) {
    let text = id.unraw().to_string();
    if seen.contains(&text) {
        cx.error_spanned_by(
            id,
            format!(
                "duplicate child id `{text}`; ids name children in `which_children` and `terminate_child`, so rename this one"
            ),
        );
    } else {
        seen.push(text);
    }
}

fn child(cx: &mut Ctxt, raw: RawChild, header: &Header, names: &mut Names) -> Option<Child> {
    let errors = cx.error_count();
    cx.append(raw.errors);
    let id = raw.id.unraw().to_string();
    let start = raw.start.map(|start| match start {
        RawStart::Expr(e) => {
            constructor_not_closure(cx, &id, &e);
            Start::Expr(e)
        }
        RawStart::Inline(s) => Start::Inline(spec(cx, s, names)),
    });
    let restart = raw.restart.as_ref().and_then(|word| restart(cx, word));
    let (mut shutdown, mut name, mut significant) = (None, None, None);
    let whose = format!("child `{id}`");
    for opt in no_duplicate_options(cx, &raw.options, &whose) {
        match opt.key.to_string().as_str() {
            "shutdown" => shutdown = shutdown_option(cx, opt),
            "name" => name = register_name(cx, opt, &id, names),
            "significant" => significant = flag(cx, opt),
            _ => unknown_child_option(cx, opt),
        }
    }
    if let (Some(at), Some(restart)) = (significant, restart) {
        significant_child(cx, at, restart, header);
    }
    if cx.error_count() > errors {
        return None;
    }
    Some(Child {
        id,
        id_span: raw.id.span(),
        start: start?,
        restart: restart?,
        shutdown,
        name,
        significant: significant.is_some(),
    })
}

/// The constructor is the expression itself; the macro runs it in a closure at every start.
fn constructor_not_closure(cx: &mut Ctxt, id: &str, e: &Expr) {
    if let Expr::Closure(c) = e {
        let (capture, or1, inputs, or2) = (&c.capture, &c.or1_token, &c.inputs, &c.or2_token);
        let body = tokens_str(c.body.to_token_stream());
        cx.error_spanned_by(
            quote::quote!(#capture #or1 #inputs #or2),
            format!(
                "write the constructor of `{id}` without a closure, `{id}: {body} => ..`, because `supervisor!` already runs it at every (re)start"
            ),
        );
    }
}

fn restart(cx: &mut Ctxt, word: &Ident) -> Option<Restart> {
    let text = word.unraw().to_string();
    if let Some(r) = Restart::from_word(&text) {
        return Some(r);
    }
    cx.error_spanned_by(
        word,
        format!(
            "unknown restart type `{text}`{}; expected {}",
            did_you_mean(&text, Restart::WORDS),
            one_of(Restart::WORDS)
        ),
    );
    None
}

const CHILD_KEYS: &[&str] = &["shutdown", "name", "significant"];
const CHILD_FORMS: &str =
    "`shutdown = 5s | brutal_kill | infinity`, `name = \"..\"` or `significant`";

fn unknown_child_option(cx: &mut Ctxt, opt: &RawOption) {
    let key = opt.key.to_string();
    let msg = if key == "restart" || Restart::from_word(&key).is_some() {
        "a child has one restart type, written right after `=>`: `id: MyActor::new() => transient`"
            .to_owned()
    } else {
        let hint = match key.as_str() {
            "register" => " (a child is registered with `name = \"..\"`)".to_owned(),
            _ => did_you_mean(&key, CHILD_KEYS),
        };
        format!("unknown child option `{key}`{hint}; expected {CHILD_FORMS}")
    };
    cx.error_spanned_by(&opt.key, msg);
}

/// `shutdown = <duration> | brutal_kill | infinity`.
fn shutdown_option(cx: &mut Ctxt, opt: &RawOption) -> Option<Shutdown> {
    let v = value(cx, opt, "shutdown = 5s")?;
    if let [TokenTree::Ident(word)] = v {
        return match word.to_string().as_str() {
            "brutal_kill" => Some(Shutdown::BrutalKill),
            "infinity" => Some(Shutdown::Infinity),
            text => {
                cx.error_spanned_by(
                    word,
                    format!(
                        "unknown shutdown `{text}`{}; expected a duration like `5s`, `brutal_kill` or `infinity`",
                        did_you_mean(text, &["brutal_kill", "infinity"])
                    ),
                );
                None
            }
        };
    }
    duration(cx, "shutdown", v).map(Shutdown::Timeout)
}

/// `name = ".."`: a non-empty string, unique in the whole tree (names are node-wide).
fn register_name(cx: &mut Ctxt, opt: &RawOption, id: &str, names: &mut Names) -> Option<LitStr> {
    let v = value(cx, opt, "name = \"cache\"")?;
    let s = match (literal(v), v) {
        (Some(Lit::Str(s)), _) => s,
        (_, [TokenTree::Ident(word)]) => {
            cx.error_spanned_by(
                word,
                format!("`name` takes a string; write `name = \"{word}\"`"),
            );
            return None;
        }
        _ => {
            cx.error_spanned_by(stream(v), "`name` takes a string: `name = \"cache\"`");
            return None;
        }
    };
    let text = s.value();
    if text.is_empty() {
        cx.error_spanned_by(
            &s,
            "a registered name cannot be empty; write `name = \"cache\"`",
        );
        return None;
    }
    if let Some(first) = names.get(&text) {
        cx.error_spanned_by(
            &s,
            format!(
                "the name \"{text}\" is already registered by child `{first}`, and names are unique on a node; pick another name"
            ),
        );
        return None;
    }
    names.insert(text, id.to_owned());
    Some(s)
}

/// `significant` is for transient and temporary children (OTP rejects it on permanent ones,
/// which are always restarted) of a supervisor with `auto_shutdown` (OTP rejects it under
/// `auto_shutdown = never`).
fn significant_child(cx: &mut Ctxt, at: Span, restart: Restart, header: &Header) {
    if restart == Restart::Permanent {
        cx.syn_error(syn::Error::new(
            at,
            "a permanent child cannot be `significant`, because it is always restarted; make it `transient` or `temporary`, or remove `significant`",
        ));
        return;
    }
    if header.auto_shutdown_broken {
        return;
    }
    if matches!(header.auto_shutdown, None | Some((AutoShutdown::Never, _))) {
        cx.syn_error(syn::Error::new(
            at,
            "`significant` needs `auto_shutdown = any_significant` or `auto_shutdown = all_significant` in the supervisor's header, as OTP rejects significant children under `auto_shutdown = never`",
        ));
    }
}

/// ` (did you mean `x`?)` when `word` is close to one of `candidates`.
fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    let norm = |s: &str| s.to_lowercase().replace('_', "");
    let word_n = norm(word);
    candidates
        .iter()
        .map(|c| (c, edit_distance(&word_n, &norm(c))))
        .filter(|&(_, d)| d <= 2.max(word_n.len() / 4))
        .min_by_key(|&(_, d)| d)
        .map_or_else(String::new, |(c, _)| format!(" (did you mean `{c}`?)"))
}

fn edit_distance(a: &str, b: &str) -> usize {
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

fn stream(tokens: &[TokenTree]) -> TokenStream {
    tokens.iter().cloned().collect()
}

/// Tokens as the user would write them (no spaces around `::` and the like).
fn tokens_str(tokens: TokenStream) -> String {
    tokens
        .to_string()
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" .", ".")
}
