//! Mailboxes: the lanes a process receives from.
//!
//! Every process owns one mailbox with two lanes:
//!
//! - the **system lane** carries exit signals, down notices, link and monitor requests and stop
//!   requests. It is drained completely before every normal message, so a stop, a kill or an exit
//!   signal that ends the process overtakes messages queued before it. System traffic is rare;
//!   the lane is a short critical section.
//! - the **normal lane** carries the actor's own message enum. It is a lock-free queue: a send is
//!   one push plus, only when the receiver sleeps, one wake-up. Messages keep their order per
//!   sender (a single queue keeps the order of every push). Local sends never serialize.
//!
//! # Notices keep their place
//!
//! A down notice and an exit signal are *notices*: the actor may handle them (`#[on_down]`, or
//! `#[on_exit]` when it traps exits). A notice sent through `AnyProcess::send_sys` also leaves a
//! `Slot::Mark` in the normal lane, pushed under the system lane's lock so marks and notices
//! keep one order. A notice the actor handles waits for its mark: everything queued before the
//! notice was sent — the last casts of the process whose end it reports, above all — is handled
//! first. A notice that ends the process (an untrapped exit signal) acts at once; its mark is
//! then skipped.
//!
//! # Capacity
//!
//! The normal lane is unbounded by default. A bounded mailbox (`#[actor(mailbox = N)]` or
//! [`crate::SpawnOptions::mailbox_capacity`]) holds at most `N` messages not yet taken by the
//! process: `try_cast` fails with [`crate::TrySendError::Full`] when it is full, `cast` and calls
//! wait for room.
//!
//! # Closing
//!
//! When a process ends it closes its mailbox: later sends fail with the message handed back, and
//! messages still queued are dropped (a pending call among them fails with
//! [`crate::CallError::Exited`]).

use std::any::Any;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use crossbeam_queue::SegQueue;
use tokio::sync::Notify;

use crate::exit::ExitReason;
use crate::node::transport::{DeliverError, ReplyRoute};
use crate::node::{AnyProcess, ProcCore, Sys};
use crate::{Actor, Node, Pid};

/// An entry of the normal lane: a message, or the place of a notice (see the module docs).
pub(crate) enum Slot<M> {
    Msg(M),
    Mark,
}
/// The mailbox of one process running actor `A`.
pub(crate) struct Mailbox<A: Actor> {
    core: ProcCore,
    queue: SegQueue<Slot<A::Msg>>,
    bound: Option<Box<Bound>>,
}

impl<A: Actor> AnyProcess for Mailbox<A> {
    fn core(&self) -> &ProcCore {
        &self.core
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn actor_name(&self) -> &'static str {
        A::NAME
    }

    fn is_remote(&self) -> bool {
        A::__remote_vtable().is_some()
    }

    fn send_sys(&self, msg: Sys) -> Result<(), Sys> {
        if !msg.is_notice() {
            return self.core.send_sys(msg);
        }
        // The mark goes in while the lane is locked: marks and notices keep one order. It
        // takes no place in a bounded mailbox.
        self.core
            .push_sys(msg, Some(&|| self.queue.push(Slot::Mark)))
    }

    fn deliver_encoded(
        self: Arc<Self>,
        payload: &[u8],
        route: Option<ReplyRoute>,
    ) -> Result<(), DeliverError> {
        let Some(vtable) = A::__remote_vtable() else {
            return Err(DeliverError::NotRemote(A::NAME));
        };
        if self.core.is_closed() {
            return Err(DeliverError::NoProc);
        }
        let mut msg =
            crate::node::codec::decoding_with(&self.core.node, || (vtable.decode)(payload))
                .map_err(DeliverError::Decode)?;
        if let Some(route) = route {
            (vtable.set_reply)(&mut msg, route);
        }
        // A bounded mailbox bounds the senders of this node. A message from another node is
        // queued even above the bound: making the connection's reader wait for room would hold
        // up every other frame on it (replies included: a bounded process calling the peer
        // could then wait on its own backlog). The remote sender is bounded by its
        // connection's buffer instead.
        if let Some(bound) = &self.bound {
            bound.queued.fetch_add(1, Ordering::SeqCst);
        }
        self.push(msg);
        Ok(())
    }
}

impl<A: Actor> Mailbox<A> {
    pub(crate) fn new(node: Node, pid: Pid, capacity: Option<usize>) -> Mailbox<A> {
        Mailbox {
            core: ProcCore::new(node, pid),
            queue: SegQueue::new(),
            bound: capacity.map(|n| Box::new(Bound::new(n))),
        }
    }

    /// The mailbox of a process that has already ended (a decoded ref to one of this node's
    /// pids that is no longer alive): every send to it fails.
    pub(crate) fn dead(node: Node, pid: Pid) -> Mailbox<A> {
        let mailbox = Mailbox::new(node, pid, None);
        mailbox.core.close(&ExitReason::NoProc);
        mailbox.core.announce_exit();
        mailbox
    }

    #[inline]
    pub(crate) fn core(&self) -> &ProcCore {
        &self.core
    }

    /// Pushes a message that already holds its permit (or needs none).
    #[inline]
    fn push(&self, msg: A::Msg) {
        self.queue.push(Slot::Msg(msg));
        self.core.notify();
        if self.core.closed_relaxed() {
            // The process ended while we pushed: drop what it will never read, so pending calls
            // among it fail at once instead of waiting for their timeout.
            self.drain_dropped();
        }
    }

    /// Sends without waiting.
    #[inline]
    pub(crate) fn try_send(&self, msg: A::Msg) -> Result<(), crate::TrySendError<A::Msg>> {
        if self.core.is_closed() {
            return Err(crate::TrySendError::Closed(msg));
        }
        if let Some(bound) = &self.bound {
            if !bound.try_take() {
                return Err(crate::TrySendError::Full(msg));
            }
        }
        self.push(msg);
        Ok(())
    }

    /// Sends, waiting for room in a bounded mailbox.
    pub(crate) async fn send(&self, msg: A::Msg) -> Result<(), crate::SendError<A::Msg>> {
        match self.try_send(msg) {
            Ok(()) => Ok(()),
            Err(crate::TrySendError::Closed(msg)) => Err(crate::SendError(msg)),
            Err(crate::TrySendError::Full(msg)) => {
                let bound = self
                    .bound
                    .as_ref()
                    .expect("only bounded mailboxes are full");
                if bound.take(&self.core).await {
                    self.push(msg);
                    Ok(())
                } else {
                    Err(crate::SendError(msg))
                }
            }
        }
    }

    /// Pops one entry of the normal lane (receiver side); a message frees its place in a
    /// bounded mailbox.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Slot<A::Msg>> {
        let slot = self.queue.pop();
        if let (Some(Slot::Msg(_)), Some(bound)) = (&slot, &self.bound) {
            bound.give_back();
        }
        slot
    }

    /// Number of entries waiting in the normal lane (a notice's mark counts until it is
    /// reached).
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Ready when there is something on either lane; otherwise registers the waker and sleeps.
    #[inline]
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.core.poll_ready(cx, || !self.queue.is_empty())
    }

    /// Drops every queued normal message and wakes senders waiting for room (they then see
    /// the mailbox closed).
    pub(crate) fn drain_dropped(&self) {
        // Pairs with the fence in `notify`: a sender that pushed after the close either sees
        // CLOSED (and drains itself) or its message is seen here.
        fence(Ordering::SeqCst);
        while self.queue.pop().is_some() {}
        if let Some(bound) = &self.bound {
            bound.room.notify_waiters();
        }
    }
}

/// The places of a bounded mailbox: a count of queued messages and a wake-up for senders that
/// wait for room.
struct Bound {
    capacity: usize,
    queued: AtomicUsize,
    waiting: AtomicUsize,
    room: Notify,
}

impl Bound {
    fn new(capacity: usize) -> Bound {
        Bound {
            capacity: capacity.max(1),
            queued: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    /// Takes a place if one is free.
    #[inline]
    fn try_take(&self) -> bool {
        // A compare-exchange, not add-then-undo: a failed attempt must never make the count
        // look higher than it is, or a concurrent waiter could fail and sleep with room free.
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok()
    }

    /// Waits for a place; `false` if the process ends first.
    async fn take(&self, core: &ProcCore) -> bool {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Also undone if the sender gives up (its future is dropped) while waiting.
        let waiting = Waiting(&self.waiting);
        let taken = loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if core.is_closed() {
                break false;
            }
            if self.try_take() {
                break true;
            }
            notified.await;
        };
        drop(waiting);
        if taken
            && self.waiting.load(Ordering::SeqCst) > 0
            && self.queued.load(Ordering::SeqCst) < self.capacity
        {
            // Pass on a wake-up we may have absorbed while another place was free.
            self.room.notify_one();
        }
        taken
    }

    /// Frees a place (the receiver took a message).
    #[inline]
    fn give_back(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_one();
        }
    }
}
