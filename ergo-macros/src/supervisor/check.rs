//! Validation: [`check`] enforces every rule of `supervisor!`, one small function per rule,
//! each recording its errors in the [`Ctxt`] on the exact token and saying the fix.
//!
//! A mistake costs only its own part: the type is generated whenever its name parsed, with the
//! header's valid settings and the children that passed every check, so the user's code that
//! spawns, nests or calls the tree adds no follow-on errors.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Expr, Ident, Lit, LitStr};

use super::model::{AutoShutdown, Child, Duration, Restart, Shutdown, Spec, Start, Strategy, Tree};
use crate::internals::option::{crate_path, stream, CrateForm, RawOption};
use crate::internals::text::{closest, did_you_mean, one_of, tokens_str};
use crate::internals::Ctxt;

/// Checks the tree, recording every mistake, and makes its model the validated one: the
/// words' and options' values go to the model's "set by `check`" fields, and each child that
/// passes every rule is marked [`Child::valid`].
///
/// The rules, checked in this order so that errors come in source order:
///
/// - **The invocation**:
///   - [`crate_attr`]: the only inner attribute is `#![crate = "path"]`, given once, with a
///     path in quotes ([`crate_path`], shared with `#[actor]`).
///   - [`known_attrs`]: the outer attributes are doc comments and lint attributes.
/// - **Each supervisor's header** (the root's, then each inline one's as its child is reached):
///   - [`strategy`]: `one_for_one`, `one_for_all` or `rest_for_one` (a misspelled one gets a
///     suggestion; `simple_one_for_one` gets its own explanation).
///   - [`option_once`]: a setting is given at most once.
///   - [`known_header_key`]: the keys are `intensity`, `period` and `auto_shutdown` (with a
///     suggestion, and OTP's `MaxR`/`MaxT` names translated).
///   - [`has_value`]: a setting has a value after `=`.
///   - [`intensity`]: a plain whole number.
///   - [`duration`] for `period`: a whole number with the unit `ms`, `s` or `m` (a misspelled
///     unit gets a suggestion).
///   - [`auto_shutdown`]: `never`, `any_significant` or `all_significant` (with a suggestion).
///   - [`period_not_zero`]: the period is longer than zero.
///   - [`auto_shutdown_needs_significant`]: `auto_shutdown` other than `never` has a
///     significant child to watch.
/// - **Each child**, in order (after the syntax errors parsing found in it):
///   - [`unique_id`]: ids are unique within their supervisor.
///   - [`constructor_not_closure`]: the constructor is the expression itself.
///   - an inline supervisor's header and children, as above.
///   - [`restart`]: `permanent`, `transient` or `temporary` (with a suggestion).
///   - [`option_once`] and [`known_child_option`]: `shutdown`, `name` and `significant`, each
///     at most once (with a suggestion).
///   - [`shutdown_option`]: a duration, `brutal_kill` or `infinity` (with a suggestion).
///   - [`register_name`]: a non-empty string, unique in the whole tree.
///   - [`flag`]: `significant` takes no value.
///   - [`significant_child`]: only transient and temporary children of a supervisor with
///     `auto_shutdown` are significant.
///
/// What a failing rule costs: a wrong header setting is ignored (its default applies); a child
/// with any error is left out of the generated tree.
pub(crate) fn check(cx: &mut Ctxt, tree: &mut Tree) {
    tree.krate = crate_attr(cx, &tree.inner);
    known_attrs(cx, &tree.other_attrs);
    let mut names = HashMap::new();
    spec(cx, &mut tree.spec, &mut names);
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

fn spec(cx: &mut Ctxt, spec: &mut Spec, names: &mut Names) {
    if let Some(s) = spec
        .strategy_word
        .as_ref()
        .and_then(|word| strategy(cx, word))
    {
        spec.strategy = s;
    }
    let header = header(cx, &spec.options);
    period_not_zero(cx, &header);
    auto_shutdown_needs_significant(cx, &header, &spec.children);
    let mut ids = Vec::new();
    for c in &mut spec.children {
        unique_id(cx, &c.id, &mut ids);
        child(cx, c, &header, names);
    }
    spec.intensity = header.intensity;
    spec.period = header.period.map(|(d, _)| d);
    spec.auto_shutdown = header.auto_shutdown.map(|(a, _)| a);
}

/// `#![crate = "path"]`, the only inner attribute, given once.
fn crate_attr(cx: &mut Ctxt, inner: &[syn::Attribute]) -> Option<syn::Path> {
    let form = CrateForm {
        before: "#![",
        after: "]",
    };
    let mut krate = None;
    for attr in inner {
        if !attr.path().is_ident("crate") {
            cx.error_spanned_by(
                attr,
                "`supervisor!` takes one inner attribute, `#![crate = \"path::to::ergo\"]`; remove this one",
            );
            continue;
        }
        let value: Option<Vec<TokenTree>> = match &attr.meta {
            syn::Meta::NameValue(nv) => Some(nv.value.to_token_stream().into_iter().collect()),
            _ => None,
        };
        let given_before = krate.is_some();
        let Some(path) = crate_path(cx, &form, value.as_deref(), attr.to_token_stream()) else {
            continue;
        };
        if given_before {
            cx.error_spanned_by(attr, "`#![crate = ..]` is given twice; keep one");
        } else {
            krate = Some(path);
        }
    }
    krate
}

/// Doc comments and lint attributes go on the type; anything else is an error.
fn known_attrs(cx: &mut Ctxt, other: &[syn::Attribute]) {
    for attr in other {
        cx.error_spanned_by(
            attr,
            "a `supervisor!` tree takes doc comments and lint attributes (`#[allow(..)]`); remove this attribute",
        );
    }
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
    for opt in option_once(cx, options, "the supervisor") {
        match opt.key.to_string().as_str() {
            "intensity" => out.intensity = intensity(cx, opt),
            "period" => {
                out.period = has_value(cx, opt, "period = 5s")
                    .and_then(|v| duration(cx, "period", v).map(|d| (d, stream(v))))
            }
            "auto_shutdown" => {
                out.auto_shutdown = auto_shutdown(cx, opt);
                out.auto_shutdown_broken = out.auto_shutdown.is_none();
            }
            _ => known_header_key(cx, opt),
        }
    }
    out
}

/// Reports a header key that is none of [`HEADER_KEYS`] (only called for those).
fn known_header_key(cx: &mut Ctxt, opt: &RawOption) {
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
fn option_once<'o>(cx: &mut Ctxt, options: &'o [RawOption], whose: &str) -> Vec<&'o RawOption> {
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
fn has_value<'o>(cx: &mut Ctxt, opt: &'o RawOption, form: &str) -> Option<&'o [TokenTree]> {
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
    let v = has_value(cx, opt, "intensity = 3")?;
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
            unknown_unit(cx, &lit, other, digits);
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

/// Reports a duration's unknown unit, with the unit it most likely means.
fn unknown_unit(cx: &mut Ctxt, lit: &syn::LitInt, unit: &str, digits: &str) {
    const UNITS: &[(&str, &[&str])] = &[
        (
            "ms",
            &[
                "msec",
                "msecs",
                "milli",
                "millis",
                "millisecond",
                "milliseconds",
            ],
        ),
        ("s", &["sec", "secs", "second", "seconds"]),
        ("m", &["min", "mins", "minute", "minutes"]),
    ];
    let lower = unit.to_lowercase();
    let meant = UNITS
        .iter()
        .find(|(_, aliases)| aliases.contains(&lower.as_str()))
        .map(|(u, _)| *u)
        // Edit distance on one- and two-letter units suggests nonsense (`h` → `s`); only
        // longer misspellings (`secnds`) get one.
        .or_else(|| {
            let words: Vec<&str> = UNITS.iter().flat_map(|(_, a)| a.iter().copied()).collect();
            let word = closest(unit, &words).filter(|_| unit.len() > 2)?;
            UNITS
                .iter()
                .find(|(_, a)| a.contains(&word))
                .map(|(u, _)| *u)
        });
    let hours = matches!(lower.as_str(), "h" | "hr" | "hrs" | "hour" | "hours");
    let msg = match (meant, digits.parse::<u64>()) {
        (Some(u), _) => format!(
            "unknown duration unit `{unit}` (did you mean `{u}`?); write `ms`, `s` or `m`, like `{digits}{u}`"
        ),
        (None, Ok(n)) if hours => match n.checked_mul(60) {
            Some(minutes) => format!(
                "unknown duration unit `{unit}`; hours are written in minutes, like `{minutes}m`"
            ),
            None => format!("unknown duration unit `{unit}`; write `ms`, `s` or `m`"),
        },
        _ => format!("unknown duration unit `{unit}`; write `ms`, `s` or `m`, like `{digits}s`"),
    };
    cx.error_spanned_by(lit, msg);
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
    let v = has_value(cx, opt, "auto_shutdown = any_significant")?;
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
fn auto_shutdown_needs_significant(cx: &mut Ctxt, header: &Header, children: &[Child]) {
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

fn child(cx: &mut Ctxt, c: &mut Child, header: &Header, names: &mut Names) {
    let errors = cx.error_count();
    cx.append(std::mem::take(&mut c.parse_errors));
    let id = c.id();
    match &mut c.start {
        Some(Start::Expr(e)) => constructor_not_closure(cx, &id, e),
        Some(Start::Inline(s)) => spec(cx, s, names),
        None => {}
    }
    c.restart = c.restart_word.as_ref().and_then(|word| restart(cx, word));
    let whose = format!("child `{id}`");
    for opt in option_once(cx, &c.options, &whose) {
        match opt.key.to_string().as_str() {
            "shutdown" => c.shutdown = shutdown_option(cx, opt),
            "name" => c.name = register_name(cx, opt, &id, names),
            "significant" => c.significant = flag(cx, opt),
            _ => known_child_option(cx, opt),
        }
    }
    if let (Some(at), Some(restart)) = (c.significant, c.restart) {
        significant_child(cx, at, restart, header);
    }
    c.valid = cx.error_count() == errors && c.start.is_some() && c.restart.is_some();
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

/// Reports a child option that is none of [`CHILD_KEYS`] (only called for those).
fn known_child_option(cx: &mut Ctxt, opt: &RawOption) {
    let key = opt.key.to_string();
    let msg = if key == "restart" || Restart::from_word(&key).is_some() {
        "a child has one restart type, written right after `=>`: `id: MyActor::new() => transient`"
            .to_owned()
    } else {
        let hint = match key.as_str() {
            "register" => " (a child is registered with `name = \"..\"`)".to_owned(),
            "timeout" | "shutdown_timeout" => {
                " (the time a child gets to stop is `shutdown = ..`)".to_owned()
            }
            "intensity" | "period" | "auto_shutdown" => format!(
                " (`{key}` is a supervisor setting, written in the header after the strategy)"
            ),
            _ => did_you_mean(&key, CHILD_KEYS),
        };
        format!("unknown child option `{key}`{hint}; expected {CHILD_FORMS}")
    };
    cx.error_spanned_by(&opt.key, msg);
}

/// `shutdown = <duration> | brutal_kill | infinity`.
fn shutdown_option(cx: &mut Ctxt, opt: &RawOption) -> Option<Shutdown> {
    let v = has_value(cx, opt, "shutdown = 5s")?;
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
    let v = has_value(cx, opt, "name = \"cache\"")?;
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
