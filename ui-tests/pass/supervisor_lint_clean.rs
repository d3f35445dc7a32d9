//! Compile-only: the code `supervisor!` generates, with every option, is clean under
//! `deny(warnings)` and the workspace's stricter lints: documented (with or without the user's
//! doc comments), `Debug`, no redundant qualification even where the runtime's names are
//! imported, `pub` inside a private module, and the `#![crate = ".."]` override.

#![deny(warnings, missing_docs, rust_2018_idioms, unreachable_pub, unsafe_code)]
#![deny(
    missing_debug_implementations,
    unused_qualifications,
    single_use_lifetimes,
    unused_lifetimes,
    trivial_casts,
    trivial_numeric_casts,
    unused_import_braces
)]

pub mod trees {
    //! Trees with every option, declared where the runtime's names are imported.
    use std::time::Duration;

    use ergo::prelude::*;
    use ergo::supervisor::{ChildSpec, Restart, Shutdown, Strategy, Supervisor};

    /// Re-exports the runtime, for `#![crate = ".."]`.
    pub mod rt {
        pub use ::ergo;
    }

    /// A worker.
    #[derive(Debug, Default)]
    pub struct Worker;

    #[actor]
    impl Worker {
        /// Answers.
        #[handle]
        fn ping(&self) -> bool {
            true
        }
    }

    supervisor! {
        /// Every option.
        pub Full: rest_for_one, intensity = 3, period = 1m, auto_shutdown = all_significant {
            /// A documented child.
            worker: Worker => permanent, name = "lint-worker", shutdown = 500ms,
            job: Worker::default() => transient, significant, shutdown = brutal_kill,
            once: Worker => temporary, shutdown = infinity,
            inner: one_for_all, intensity = 0, period = 1s {
                leaf: Worker::default() => permanent,
            } => permanent,
            nested: Bare::new() => transient,
        }
    }

    supervisor! {
        #![crate = "crate::trees::rt::ergo"]
        pub Bare: one_for_one {}
    }

    supervisor! {
        pub(crate) Private: one_for_all {
            worker: Worker => permanent,
        }
    }

    /// The same kind of tree by hand, so the imported names are used.
    pub fn by_hand() -> Supervisor {
        Supervisor::new(Strategy::OneForOne)
            .intensity(1, Duration::from_secs(5))
            .child(
                ChildSpec::new("worker", Worker::default)
                    .restart(Restart::Permanent)
                    .shutdown(Shutdown::BrutalKill),
            )
    }

    pub(crate) fn make() -> (Full, Bare, Private) {
        (Full::new(), Bare::default(), Private::new())
    }
}

fn main() {
    let (full, bare, private) = trees::make();
    let _ = format!("{full:?} {bare:?} {private:?}");
    let _ = trees::by_hand();
}
