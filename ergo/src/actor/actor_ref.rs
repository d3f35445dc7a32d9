//! [`ActorRef`]: the typed handle to a process.
//!
//! A ref is what you send to. It is cheap to clone (one reference count) and typed by its actor:
//! the methods `#[actor]` generates for the actor's handlers (through its `…Api` trait) are the
//! only messages it accepts, so sending a message an actor does not handle does not compile.
//!
//! # Ordering
//!
//! Messages from one sender arrive in the order they were sent. System signals (stop, kill, exit
//! signals) overtake queued messages.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
//! use ergo::prelude::*;
//!
//! #[derive(Default)]
//! struct Counter { n: u64 }
//!
//! #[actor]
//! impl Counter {
//!     #[handle]
//!     fn add(&mut self, by: u64) { self.n += by }
//!     #[handle]
//!     fn get(&self) -> u64 { self.n }
//! }
//!
//! let node = Node::builder("ref-doc@localhost").start().await?;
//! let counter = node.spawn(Counter::default()).await?;
//! counter.add(2).await?;                         // cast: returns once enqueued
//! counter.cast(CounterMsg::Add { by: 3 }).await?; // the same, with the raw enum
//! assert_eq!(counter.get().await?, 5);             // call: waits for the reply
//! # Ok(()) }
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::actor::mailbox::Mailbox;
use crate::exit::ExitReason;
use crate::node::transport::RemoteRef;
use crate::node::{AnyProcess, Sys};
use crate::{Actor, Pid, SendError, TrySendError};

/// A typed reference to a process running actor `A`, on this node or (for `#[actor(remote)]`
/// actors) on another one: the same methods work on both.
pub struct ActorRef<A: Actor> {
    inner: Inner<A>,
}

enum Inner<A: Actor> {
    Local(Arc<Mailbox<A>>),
    Remote(Arc<RemoteRef<A::Msg>>),
}

impl<A: Actor> Clone for ActorRef<A> {
    #[inline]
    fn clone(&self) -> Self {
        ActorRef {
            inner: match &self.inner {
                Inner::Local(m) => Inner::Local(m.clone()),
                Inner::Remote(r) => Inner::Remote(r.clone()),
            },
        }
    }
}

impl<A: Actor> ActorRef<A> {
    pub(crate) fn from_mailbox(mailbox: Arc<Mailbox<A>>) -> Self {
        ActorRef {
            inner: Inner::Local(mailbox),
        }
    }

    pub(crate) fn from_remote(remote: Arc<RemoteRef<A::Msg>>) -> Self {
        ActorRef {
            inner: Inner::Remote(remote),
        }
    }

    /// The mailbox of a process of this node (`None` for a remote process).
    #[inline]
    pub(crate) fn local(&self) -> Option<&Arc<Mailbox<A>>> {
        match &self.inner {
            Inner::Local(m) => Some(m),
            Inner::Remote(_) => None,
        }
    }

    /// The remote half of a ref to a process of another node.
    #[inline]
    pub(crate) fn remote(&self) -> Option<&Arc<RemoteRef<A::Msg>>> {
        match &self.inner {
            Inner::Local(_) => None,
            Inner::Remote(r) => Some(r),
        }
    }

    /// The mailbox of a ref the runtime knows to be local (its own processes: `ctx.myself()`,
    /// children it spawned).
    #[inline]
    pub(crate) fn mailbox(&self) -> &Arc<Mailbox<A>> {
        match &self.inner {
            Inner::Local(m) => m,
            Inner::Remote(_) => unreachable!("the runtime asked for the mailbox of a remote ref"),
        }
    }

    pub(crate) fn handle(&self) -> Arc<dyn AnyProcess> {
        self.mailbox().clone()
    }

    /// Whether the process runs on this node.
    #[inline]
    pub fn is_local(&self) -> bool {
        matches!(self.inner, Inner::Local(_))
    }

    /// The pid of the process.
    #[inline]
    pub fn pid(&self) -> Pid {
        match &self.inner {
            Inner::Local(m) => m.core().pid(),
            Inner::Remote(r) => r.pid(),
        }
    }

    /// Sends a message without waiting for a reply. On an unbounded mailbox it returns at once;
    /// on a bounded one it waits for room. To a remote process it returns once the message is
    /// queued on the connection to its node (waiting if that queue is full).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message when the process has ended, or for a remote process when
    /// its node cannot be reached (no route, connection refused or lost) or the message could
    /// not be encoded (logged).
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped while waiting for room, the message is dropped and not sent.
    #[inline]
    pub async fn cast(&self, msg: A::Msg) -> Result<(), SendError<A::Msg>> {
        match &self.inner {
            Inner::Local(m) => m.send(msg).await,
            Inner::Remote(r) => r.cast(msg).await,
        }
    }

    /// Sends a message if it can be done without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when a bounded mailbox (or the queue of the connection to a remote
    /// process's node) has no room, [`TrySendError::Closed`] when the process has ended or its
    /// node cannot be reached; both hand the message back.
    #[inline]
    pub fn try_cast(&self, msg: A::Msg) -> Result<(), TrySendError<A::Msg>> {
        match &self.inner {
            Inner::Local(m) => m.try_send(msg),
            Inner::Remote(r) => r.try_cast(msg),
        }
    }

    /// Asks the process to stop: it finishes the message it is handling, runs its `terminate`
    /// hook and ends with `reason`. Returns `false` if it had already ended (for a remote
    /// process: if its node cannot be reached).
    pub fn stop(&self, reason: ExitReason) -> bool {
        self.signal(Sys::Stop(reason))
    }

    /// Kills the process: it ends with [`ExitReason::Killed`] without running `terminate`, even
    /// if it traps exits. Returns `false` if it had already ended (for a remote process: if its
    /// node cannot be reached).
    pub fn kill(&self) -> bool {
        match &self.inner {
            Inner::Local(m) => m.core().kill(),
            Inner::Remote(_) => self.signal(Sys::Kill),
        }
    }

    /// Sends an exit signal, as if from a linked process that ended with `reason`: the process
    /// ends with it unless it traps exits (then `#[on_exit]` receives it) or `reason` is
    /// [`ExitReason::Normal`].
    pub fn exit(&self, from: Pid, reason: ExitReason) -> bool {
        self.signal(Sys::Exit {
            from,
            reason,
            linked: false,
        })
    }

    fn signal(&self, sys: Sys) -> bool {
        match &self.inner {
            Inner::Local(m) => AnyProcess::send_sys(&**m, sys).is_ok(),
            Inner::Remote(r) => r.signal(sys).is_ok(),
        }
    }

    /// Whether the process is still running. For a remote process: whether the connection to
    /// its node is up (use a monitor, or [`ActorRef::wait`], to learn when it ends).
    pub fn is_alive(&self) -> bool {
        match &self.inner {
            Inner::Local(m) => !m.core().is_closed(),
            Inner::Remote(r) => r.is_reachable(),
        }
    }

    /// Waits until the process has ended (its name released, its links and monitors notified)
    /// and returns why. For a remote process this monitors it; the connection to its node
    /// being lost ends the wait with [`ExitReason::NoConnection`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn wait(&self) -> ExitReason {
        match &self.inner {
            Inner::Local(m) => m.core().wait().await,
            Inner::Remote(r) => r.wait().await,
        }
    }

    /// The number of normal messages waiting in the mailbox (0 for a remote process: its
    /// mailbox is not visible from here).
    pub fn mailbox_len(&self) -> usize {
        match &self.inner {
            Inner::Local(m) => m.len(),
            Inner::Remote(_) => 0,
        }
    }
}

impl<A: Actor> PartialEq for ActorRef<A> {
    fn eq(&self, other: &Self) -> bool {
        self.pid() == other.pid()
    }
}

impl<A: Actor> Eq for ActorRef<A> {}

impl<A: Actor> Hash for ActorRef<A> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.pid().hash(state)
    }
}

impl<A: Actor> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef<{}>({})", A::NAME, self.pid())
    }
}
