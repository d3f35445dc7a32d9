//! The description of a supervision tree, built from the parsed invocation with the user's
//! spans, and made the validated one by [`check`](super::check::check): check records what the
//! words and options say (the fields marked "set by `check`") and which children are
//! [`Child::valid`]. A child with a mistake stays here but is left out of the generated tree
//! (its error is reported), so the rest of the tree is still generated. Expand only reads it.
//!
//! Building it applies no rule: the attributes are sorted by kind, everything else is kept as
//! written.

use proc_macro2::Span;
use syn::{Attribute, Expr, Ident, LitStr, Path, Visibility};

use super::parse::{RawChild, RawSpec, RawStart, RawTree};
use crate::internals::option::RawOption;
use crate::internals::Ctxt;

/// One `supervisor!` invocation: the generated type and the tree it builds.
pub(crate) struct Tree {
    /// The inner attributes (`#![crate = "path"]`).
    pub(crate) inner: Vec<Attribute>,
    /// Doc comments, copied onto the type.
    pub(crate) docs: Vec<Attribute>,
    /// Lint attributes (`#[allow(..)]` and the like), copied onto the type.
    pub(crate) lints: Vec<Attribute>,
    /// Any other outer attribute (an error).
    pub(crate) other_attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) name: Ident,
    pub(crate) spec: Spec,
    /// Set by `check`: `#![crate = ".."]`'s path, when given and valid.
    pub(crate) krate: Option<Path>,
}

/// One supervisor of the tree (the root, or one declared inline as a child).
pub(crate) struct Spec {
    /// The strategy as written; `None` when missing or malformed (already reported).
    pub(crate) strategy_word: Option<Ident>,
    /// The header's settings as written.
    pub(crate) options: Vec<RawOption>,
    pub(crate) children: Vec<Child>,
    /// Set by `check` (`one_for_one` when the word is wrong).
    pub(crate) strategy: Strategy,
    /// Set by `check`: `intensity = N` when given (the runtime's default is 1).
    pub(crate) intensity: Option<u32>,
    /// Set by `check`: `period = ..` when given (the runtime's default is 5 s).
    pub(crate) period: Option<Duration>,
    /// Set by `check`: `auto_shutdown = ..` when given.
    pub(crate) auto_shutdown: Option<AutoShutdown>,
}

/// One child: `id: <constructor> => <restart>, <options>`.
pub(crate) struct Child {
    pub(crate) id: Ident,
    /// `None` when missing or malformed (already reported).
    pub(crate) start: Option<Start>,
    /// The restart type as written; `None` when missing (already reported).
    pub(crate) restart_word: Option<Ident>,
    pub(crate) options: Vec<RawOption>,
    /// The errors parsing found in this child, reported when `check` reaches it so that all
    /// errors come in source order.
    pub(crate) parse_errors: Ctxt,
    /// Set by `check`.
    pub(crate) restart: Option<Restart>,
    /// Set by `check`; `None`: the runtime's default (5 s for workers, `infinity` for
    /// supervisors).
    pub(crate) shutdown: Option<Shutdown>,
    /// Set by `check`: `name = ".."`, the name every incarnation is registered under.
    pub(crate) name: Option<LitStr>,
    /// Set by `check`: where `significant` is written.
    pub(crate) significant: Option<Span>,
    /// Set by `check`: the child passed every rule and is generated.
    pub(crate) valid: bool,
}

/// How a child is made at every (re)start.
pub(crate) enum Start {
    /// An expression whose value is an actor (run in a closure at each start).
    Expr(Box<Expr>),
    /// A supervisor declared inline.
    Inline(Spec),
}

impl Tree {
    pub(crate) fn from_raw(raw: RawTree) -> Tree {
        const LINTS: &[&str] = &["allow", "expect", "warn", "deny", "forbid"];
        let (mut docs, mut lints, mut other_attrs) = (Vec::new(), Vec::new(), Vec::new());
        for attr in raw.attrs {
            if attr.path().is_ident("doc") {
                docs.push(attr);
            } else if LINTS.iter().any(|l| attr.path().is_ident(l)) {
                lints.push(attr);
            } else {
                other_attrs.push(attr);
            }
        }
        Tree {
            inner: raw.inner,
            docs,
            lints,
            other_attrs,
            vis: raw.vis,
            name: raw.name,
            spec: Spec::from_raw(raw.spec),
            krate: None,
        }
    }

    /// The runtime's path: `::ergo`, or `#![crate = ".."]`'s.
    pub(crate) fn krate(&self) -> Path {
        self.krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::ergo))
    }
}

impl Spec {
    fn from_raw(raw: RawSpec) -> Spec {
        Spec {
            strategy_word: raw.strategy,
            options: raw.options,
            children: raw.children.into_iter().map(Child::from_raw).collect(),
            strategy: Strategy::OneForOne,
            intensity: None,
            period: None,
            auto_shutdown: None,
        }
    }

    /// The children that are generated.
    pub(crate) fn valid_children(&self) -> impl Iterator<Item = &Child> {
        self.children.iter().filter(|c| c.valid)
    }
}

impl Child {
    fn from_raw(raw: RawChild) -> Child {
        Child {
            id: raw.id,
            start: raw.start.map(|s| match s {
                RawStart::Expr(e) => Start::Expr(e),
                RawStart::Inline(spec) => Start::Inline(Spec::from_raw(spec)),
            }),
            restart_word: raw.restart,
            options: raw.options,
            parse_errors: raw.errors,
            restart: None,
            shutdown: None,
            name: None,
            significant: None,
            valid: false,
        }
    }

    /// The id as written, without `r#`.
    pub(crate) fn id(&self) -> String {
        syn::ext::IdentExt::unraw(&self.id).to_string()
    }
}

/// A duration as milliseconds, with the text the user wrote (for docs).
#[derive(Clone)]
pub(crate) struct Duration {
    pub(crate) millis: u64,
    pub(crate) text: String,
}

/// The words of the grammar and the runtime variants they stand for.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $word:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name { $($variant,)* }

        impl $name {
            /// Every word, in the order they are listed in messages.
            pub(crate) const WORDS: &'static [&'static str] = &[$($word),*];

            pub(crate) fn from_word(word: &str) -> Option<Self> {
                match word {
                    $($word => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The word as written in `supervisor!`.
            pub(crate) fn word(self) -> &'static str {
                match self { $($name::$variant => $word,)* }
            }

            /// The runtime enum's variant.
            pub(crate) fn variant(self) -> Ident {
                let name = match self { $($name::$variant => stringify!($variant),)* };
                Ident::new(name, Span::call_site())
            }
        }
    };
}

words! {
    /// `ergo::supervisor::Strategy`.
    Strategy {
        OneForOne = "one_for_one",
        OneForAll = "one_for_all",
        RestForOne = "rest_for_one",
    }
}

words! {
    /// `ergo::supervisor::Restart`.
    Restart {
        Permanent = "permanent",
        Transient = "transient",
        Temporary = "temporary",
    }
}

words! {
    /// `ergo::supervisor::AutoShutdown`.
    AutoShutdown {
        Never = "never",
        AnySignificant = "any_significant",
        AllSignificant = "all_significant",
    }
}

/// `ergo::supervisor::Shutdown`.
pub(crate) enum Shutdown {
    Timeout(Duration),
    BrutalKill,
    Infinity,
}
