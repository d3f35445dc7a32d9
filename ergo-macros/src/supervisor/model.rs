//! The validated description of a supervision tree, with the user's spans kept for generated
//! code. Only what passed every check is here: a child with a mistake is left out (its error is
//! reported), so the rest of the tree is still generated.

use proc_macro2::Span;
use syn::{Attribute, Expr, Ident, LitStr, Path, Visibility};

/// One `supervisor!` invocation: the generated type and the tree it builds.
pub(crate) struct Tree {
    /// The path of the runtime crate (`::ergo`, or `#![crate = "..."]`).
    pub(crate) krate: Path,
    /// Doc comments, copied onto the type.
    pub(crate) docs: Vec<Attribute>,
    /// Lint attributes (`#[allow(..)]` and the like), copied onto the type.
    pub(crate) lints: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) name: Ident,
    pub(crate) spec: Spec,
}

/// One supervisor of the tree (the root, or one declared inline as a child).
pub(crate) struct Spec {
    pub(crate) strategy: Strategy,
    /// `intensity = N` when given (the runtime's default is 1).
    pub(crate) intensity: Option<u32>,
    /// `period = ..` when given (the runtime's default is 5 s).
    pub(crate) period: Option<Duration>,
    pub(crate) auto_shutdown: Option<AutoShutdown>,
    pub(crate) children: Vec<Child>,
}

/// One child: `id: <constructor> => <restart>, <options>`.
pub(crate) struct Child {
    /// The id as written, without `r#`.
    pub(crate) id: String,
    pub(crate) id_span: Span,
    pub(crate) start: Start,
    pub(crate) restart: Restart,
    /// `None`: the runtime's default (5 s for workers, `infinity` for supervisors).
    pub(crate) shutdown: Option<Shutdown>,
    /// `name = ".."`: the name every incarnation is registered under.
    pub(crate) name: Option<LitStr>,
    pub(crate) significant: bool,
}

/// How a child is made at every (re)start.
pub(crate) enum Start {
    /// An expression whose value is an actor (run in a closure at each start).
    Expr(Box<Expr>),
    /// A supervisor declared inline.
    Inline(Spec),
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
