//! # ergo
//!
//! Erlang/OTP-style actors for Rust: typed at compile time, self-healing under failure.
//!
//! An actor is a struct whose `impl` block is annotated with [`#[actor]`](macro@actor); each
//! `#[handle]` method becomes a message. The macro generates the message enum, the dispatch and a
//! trait on [`ActorRef`] whose methods are the handlers, so asking an actor for something it does
//! not handle is a compile error.
//!
//! Processes run as tokio tasks with a mailbox of two lanes (system signals first, then messages
//! in per-sender order). They can be linked and monitored; a panic ends only its own process,
//! with [`ExitReason::Panic`], and its links and monitors learn of it.
//!
//! # Examples
//!
//! ```
//! use ergo::prelude::*;
//!
//! #[derive(Default)]
//! struct Counter { n: u64 }
//!
//! #[actor]
//! impl Counter {
//!     /// Adds `by` (a cast: no reply).
//!     #[handle]
//!     fn add(&mut self, by: u64) { self.n += by }
//!
//!     /// Reads the count (a call: replies).
//!     #[handle]
//!     fn get(&self) -> u64 { self.n }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), ergo::Error> {
//!     let node = Node::builder("alpha@localhost").start().await?;
//!     let counter = node.spawn(Counter::default()).await?;
//!     counter.add(5).await?;
//!     assert_eq!(counter.get().await?, 5);
//!     Ok(())
//! }
//! ```
//!
//! # Modules
//!
//! The local runtime (always built), in layers from the bottom up (a module uses only the ones
//! below it; `docs/architecture.md` has the picture):
//!
//! - [`mod@pid`], [`mod@exit`], [`mod@error`]: process ids, exit reasons and signals, the error
//!   types;
//! - [`mod@node`]: [`Node`], the entry point and its API by concern; the process table, the
//!   names, the system lane of every process, and the transport seam to other nodes;
//! - [`mod@actor`]: the [`Actor`] trait and the lifecycle, [`ActorRef`] (the typed handle, local
//!   or remote), [`Ctx`] (links, monitors, timers, spawning), the mailbox (lanes, ordering,
//!   capacity: [`actor::mailbox`]) and spawning;
//! - [`mod@remote`]: what makes an actor reachable from other nodes (`#[actor(remote)]`);
//! - [`mod@call`]: request/reply and timeouts;
//! - [`mod@supervisor`]: supervisors, `supervisor!` trees, `SimpleSupervisor`;
//! - [`mod@app`]: applications with dependencies and modes;
//! - [`mod@events`]: named events with typed subscribers (pub/sub), local and across nodes;
//! - [`mod@pool`]: worker pools with routing strategies.
//!
//! Behind features (`net`, `meta` and `http` are on by default):
//!
//! - `net`: the node-to-node layer (`ergo::net`): cookie handshake, frames, discovery, remote
//!   spawn; `tls` adds mutual TLS, `etcd` the etcd registrar;
//! - `meta`: meta processes that feed TCP and UDP sockets into actors (`ergo::meta`); `http`
//!   adds HTTP and WebSocket servers.

// Without `net` nothing implements the transport seam (`transport.rs`), so the half of it that
// only a transport uses (delivering encoded messages, reply routes, node services) has no user
// in that build. The `net` build checks all of it.
#![cfg_attr(not(feature = "net"), allow(dead_code, unused_imports))]

#[allow(unused_extern_crates)]
extern crate self as ergo;

pub mod actor;
pub mod app;
mod boot;
pub mod call;
pub mod error;
pub mod events;
pub mod exit;
#[cfg(any(feature = "net", feature = "http"))]
mod log_limit;
#[cfg(feature = "meta")]
pub mod meta;
#[cfg(feature = "net")]
pub mod net;
pub mod node;
pub mod pid;
pub mod pool;
pub mod remote;
pub mod supervisor;

pub use crate::actor::{Actor, ActorRef, Ctx, InitResult, SpawnOptions, TimerRef};
pub use crate::call::{Call, ReplyTo};
pub use crate::error::{CallError, Error, RegisterError, SendError, SpawnError, TrySendError};
pub use crate::exit::{Down, ExitReason, MonitorRef};
pub use crate::node::{Node, NodeBuilder, DEFAULT_CALL_TIMEOUT};
pub use crate::pid::Pid;
pub use crate::remote::RemoteActor;

/// Turns an `impl` block into an actor (see the crate docs); `handle` and the hook attributes
/// mark its methods and are errors anywhere else.
pub use ergo_macros::{actor, handle, init, on_down, on_exit, supervisor, terminate};

/// Everything most programs need: `use ergo::prelude::*;`.
pub mod prelude {
    pub use crate::supervisor::{SupervisorApi, SupervisorMsg};
    pub use crate::{
        actor, handle, supervisor, Actor, ActorRef, CallError, Ctx, Down, ExitReason, MonitorRef,
        Node, Pid, RemoteActor, SendError, SpawnError, SpawnOptions, TimerRef, TrySendError,
    };
}

/// The bodies of the fuzz targets (`fuzz/`). Not public API: may change in any release.
#[cfg(feature = "net")]
#[doc(hidden)]
pub use crate::net::fuzz as __fuzz;

/// Paths the generated code names. Not public API: may change in any release.
#[doc(hidden)]
pub mod __private {
    /// `supervisor!` writes a tree's `Actor` impl with it.
    pub use crate::__supervisor_actor as supervisor_actor;
    pub use crate::actor::InitResult;
    pub use crate::remote::{
        PendingReply, RemoteActor, RemoteMessage, RemoteProbe, RemoteVTable, ReplyRoute, ViaLocal,
        ViaRemote,
    };
    pub use crate::supervisor::{
        AutoShutdown, ChildSpec, HostsSupervisor, Restart, Shutdown, Strategy, Supervisor,
    };
    pub use crate::{Actor, ActorRef, Call, Ctx, Down, ExitReason, Pid, ReplyTo, SendError};
    pub use core::future::Future;
    pub use serde;

    /// Proves at compile time that a handler argument or reply of a remote actor can cross the
    /// network.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be sent to a remote actor",
        label = "arguments and replies of `#[actor(remote)]` handlers must implement `Serialize` and `Deserialize`",
        note = "derive them with `#[derive(serde::Serialize, serde::Deserialize)]`, or drop `remote` from `#[actor(...)]`",
        note = "an `ActorRef<A>` is serializable when `A` is declared `#[actor(remote)]`"
    )]
    pub trait RemoteArg {}
    #[diagnostic::do_not_recommend]
    impl<T: serde::Serialize + serde::de::DeserializeOwned> RemoteArg for T {}

    /// Used by generated code: `assert_remote_arg::<T>()` fails to compile unless `T` is
    /// serializable.
    pub const fn assert_remote_arg<T: RemoteArg + ?Sized>() {}
}
