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

use crate::exit::ExitReason;
use crate::mailbox::{Mailbox, Process, Sys};
use crate::{Actor, Pid, SendError, TrySendError};

/// A typed reference to a process running actor `A`.
pub struct ActorRef<A: Actor> {
    mailbox: Arc<Mailbox<A>>,
}

impl<A: Actor> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        ActorRef {
            mailbox: self.mailbox.clone(),
        }
    }
}

impl<A: Actor> ActorRef<A> {
    pub(crate) fn from_mailbox(mailbox: Arc<Mailbox<A>>) -> Self {
        ActorRef { mailbox }
    }

    #[inline]
    pub(crate) fn mailbox(&self) -> &Arc<Mailbox<A>> {
        &self.mailbox
    }

    pub(crate) fn handle(&self) -> Arc<dyn Process> {
        self.mailbox.clone()
    }

    /// The pid of the process.
    #[inline]
    pub fn pid(&self) -> Pid {
        self.mailbox.core().pid()
    }

    /// Sends a message without waiting for a reply. On an unbounded mailbox it returns at once;
    /// on a bounded one it waits for room.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message when the process has ended.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped while waiting for room, the message is dropped and not sent.
    #[inline]
    pub async fn cast(&self, msg: A::Msg) -> Result<(), SendError<A::Msg>> {
        self.mailbox.send(msg).await
    }

    /// Sends a message if it can be done without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when a bounded mailbox has no room, [`TrySendError::Closed`] when
    /// the process has ended; both hand the message back.
    #[inline]
    pub fn try_cast(&self, msg: A::Msg) -> Result<(), TrySendError<A::Msg>> {
        self.mailbox.try_send(msg)
    }

    /// Asks the process to stop: it finishes the message it is handling, runs its `terminate`
    /// hook and ends with `reason`. Returns `false` if it had already ended.
    pub fn stop(&self, reason: ExitReason) -> bool {
        self.mailbox.core().send_sys(Sys::Stop(reason)).is_ok()
    }

    /// Kills the process: it ends with [`ExitReason::Killed`] without running `terminate`, even
    /// if it traps exits. Returns `false` if it had already ended.
    pub fn kill(&self) -> bool {
        self.mailbox.core().kill()
    }

    /// Sends an exit signal, as if from a linked process that ended with `reason`: the process
    /// ends with it unless it traps exits (then `#[on_exit]` receives it) or `reason` is
    /// [`ExitReason::Normal`].
    pub fn exit(&self, from: Pid, reason: ExitReason) -> bool {
        self.mailbox
            .core()
            .send_sys(Sys::Exit {
                from,
                reason,
                linked: false,
            })
            .is_ok()
    }

    /// Whether the process is still running.
    pub fn is_alive(&self) -> bool {
        !self.mailbox.core().is_closed()
    }

    /// Waits until the process has ended (its name released, its links and monitors notified)
    /// and returns why.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn wait(&self) -> ExitReason {
        self.mailbox.core().wait().await
    }

    /// The number of normal messages waiting in the mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.mailbox.len()
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
