//! Compile-only: the code `#[actor]` generates, with every option and hook, is clean under
//! `deny(warnings)` and the workspace's stricter lints, documented items included.

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

pub mod shop {
    //! A shop that keeps stock, as a remote actor with every option and hook.

    use ergo::prelude::*;
    use serde::{Deserialize, Serialize};

    /// Re-exports the runtime, for `crate = "..."`.
    pub mod rt {
        pub use ::ergo;
    }

    /// One line of stock.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct Item {
        /// What it is.
        pub name: String,
        /// How many are left.
        pub count: u32,
    }

    /// The shop's state.
    #[derive(Debug, Default)]
    pub struct Shop {
        stock: Vec<Item>,
        closed: bool,
    }

    #[actor(
        remote,
        mailbox = 32,
        msg = ShopRequest,
        api = ShopClient,
        crate = "crate::shop::rt::ergo"
    )]
    impl Shop {
        /// Opens the shop.
        #[init]
        async fn open(&mut self, ctx: &mut Ctx<Self>) -> Result<(), String> {
            ctx.trap_exit(true);
            self.closed = false;
            Ok(())
        }

        /// Adds stock (a cast).
        #[handle]
        fn restock(&mut self, item: Item) {
            self.stock.push(item);
        }

        /// Sells one of `name` if there is one left.
        #[handle]
        async fn sell(&mut self, name: String, ctx: &mut Ctx<Self>) -> Result<u32, String> {
            let _ = ctx.pid();
            let item = self
                .stock
                .iter_mut()
                .find(|i| i.name == name && i.count > 0)
                .ok_or_else(|| format!("out of {name}"))?;
            item.count -= 1;
            Ok(item.count)
        }

        /// Lists the stock.
        #[handle]
        fn stock(&self) -> Vec<Item> {
            self.stock.clone()
        }

        /// Whether the shop is open.
        #[handle]
        fn is_open(&self) -> bool {
            !self.closed
        }

        /// Closes the shop.
        #[handle]
        fn close(&mut self, ctx: &mut Ctx<Self>) {
            self.closed = true;
            ctx.stop();
        }

        /// A linked process ended.
        #[on_exit]
        fn linked_exit(&mut self, from: Pid, reason: ExitReason, ctx: &mut Ctx<Self>) {
            let _ = (from, reason, ctx.pid());
        }

        /// A monitored process ended.
        #[on_down]
        async fn monitored_down(&mut self, ctx: &mut Ctx<Self>, down: Down) {
            let _ = (down, ctx.pid());
        }

        /// The shop stops.
        #[terminate]
        fn shut(&mut self, reason: &ExitReason) {
            let _ = reason;
            self.closed = true;
        }
    }
}

/// `T` has the generated API.
fn has_client_api<T: shop::ShopClient>() {}

fn main() {
    // Compile-only: name what was generated so nothing is unused.
    has_client_api::<ergo::ActorRef<shop::Shop>>();
    let _ = size_of::<shop::ShopRequest>();
}
