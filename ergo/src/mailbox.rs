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
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crossbeam_queue::SegQueue;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::exit::{Down, ExitReason, MonitorRef};
use crate::transport::{DeliverError, Peer, ReplyRoute};
use crate::{Actor, Pid};

const AWAKE: u8 = 0;
const SLEEPING: u8 = 1;
const CLOSED: u8 = 2;

/// A message of the system lane.
pub(crate) enum Sys {
    /// An exit signal. `linked` signals come from a linked process and are ignored once the link
    /// is gone; others come from `exit(pid, reason)`.
    Exit {
        from: Pid,
        reason: ExitReason,
        linked: bool,
    },
    /// An untrappable kill.
    Kill,
    /// A request to stop gracefully (the `terminate` hook runs).
    Stop(ExitReason),
    /// The other end of a link made by `from`.
    Link(Target),
    /// `from` removed its link to this process.
    Unlink(Pid),
    /// `by` monitors this process.
    Monitor { by: Target, monitor: MonitorRef },
    /// `by` no longer monitors this process.
    Demonitor { by: Pid, monitor: MonitorRef },
    /// A monitored process ended.
    Down(Down),
}

impl Sys {
    /// Whether this is a notice (see the module docs): a down notice or an exit signal.
    fn is_notice(&self) -> bool {
        matches!(self, Sys::Down(_) | Sys::Exit { .. })
    }
}

/// An entry of the normal lane: a message, or the place of a notice (see the module docs).
pub(crate) enum Slot<M> {
    Msg(M),
    Mark,
}

struct SysLane {
    /// The messages, each with whether it left a mark in the normal lane.
    queue: VecDeque<(Sys, bool)>,
    closed: bool,
    name: Option<Arc<str>>,
}

/// The non-generic half of a mailbox: what any process can reach knowing only a pid.
pub(crate) struct ProcCore {
    pid: Pid,
    state: AtomicU8,
    has_sys: AtomicBool,
    waker: AtomicWaker,
    sys: Mutex<SysLane>,
    exit: OnceLock<ExitReason>,
    done: AtomicBool,
    exited: Notify,
    task: OnceLock<tokio::task::AbortHandle>,
    kill_requested: AtomicBool,
    pub(crate) node: crate::Node,
}

/// A type-erased process: its core, and a way back to its typed mailbox.
pub(crate) trait AnyProcess: Send + Sync + 'static {
    fn core(&self) -> &ProcCore;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    /// The actor type's name.
    fn actor_name(&self) -> &'static str;
    /// Whether the actor accepts messages from other nodes (`#[actor(remote)]`).
    fn is_remote(&self) -> bool;
    /// Pushes onto the system lane, a notice with its mark in the normal lane (see the module
    /// docs); hands the message back if the process has ended.
    fn send_sys(&self, msg: Sys) -> Result<(), Sys>;
    /// Decodes a message that came from another node and queues it (with the route of its
    /// reply if it is a call).
    fn deliver_encoded(
        self: Arc<Self>,
        payload: &[u8],
        route: Option<ReplyRoute>,
    ) -> Result<(), DeliverError>;
}

pub(crate) type ProcHandle = Arc<dyn AnyProcess>;

/// Where a signal goes: a process of this node, or one of another node, reached over one
/// link to it (a signal for a process of a later run of that node is not sent over a newer
/// link).
#[derive(Clone)]
pub(crate) enum Target {
    Local(ProcHandle),
    Remote { pid: Pid, peer: Arc<dyn Peer> },
}

impl Target {
    pub(crate) fn pid(&self) -> Pid {
        match self {
            Target::Local(p) => p.core().pid(),
            Target::Remote { pid, .. } => *pid,
        }
    }

    /// Sends a signal; hands it back if the process has ended (or its node is unreachable).
    pub(crate) fn send_sys(&self, msg: Sys) -> Result<(), Sys> {
        match self {
            Target::Local(p) => p.send_sys(msg),
            Target::Remote { pid, peer } => peer.signal(*pid, msg),
        }
    }

    pub(crate) fn is_remote(&self) -> bool {
        !matches!(self, Target::Local(_))
    }
}

impl ProcCore {
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// Wakes the receiver if it sleeps. Called after every push, on either lane.
    #[inline]
    fn notify(&self) {
        // Pairs with the fence in `poll_ready`: either the receiver sees our push, or we see it
        // asleep and wake it.
        fence(Ordering::SeqCst);
        if self.state.load(Ordering::Relaxed) == SLEEPING
            && self
                .state
                .compare_exchange(SLEEPING, AWAKE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.waker.wake();
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }

    /// Pushes onto the system lane without a mark: the message is served before every normal
    /// message, whatever it is. Notices go through `AnyProcess::send_sys`.
    pub(crate) fn send_sys(&self, msg: Sys) -> Result<(), Sys> {
        self.push_sys(msg, None)
    }

    /// Pushes onto the system lane and, still under its lock, runs `mark` (which pushes the
    /// message's mark in the normal lane).
    fn push_sys(&self, msg: Sys, mark: Option<&dyn Fn()>) -> Result<(), Sys> {
        {
            let mut lane = self.sys.lock();
            if lane.closed {
                return Err(msg);
            }
            lane.queue.push_back((msg, mark.is_some()));
            self.has_sys.store(true, Ordering::Release);
            if let Some(mark) = mark {
                mark();
            }
        }
        self.notify();
        Ok(())
    }

    #[inline]
    pub(crate) fn has_sys(&self) -> bool {
        self.has_sys.load(Ordering::Acquire)
    }

    /// Takes the next message of the system lane, in arrival order, with whether it left a
    /// mark in the normal lane.
    pub(crate) fn pop_sys(&self) -> Option<(Sys, bool)> {
        let mut lane = self.sys.lock();
        let msg = lane.queue.pop_front();
        if lane.queue.is_empty() {
            self.has_sys.store(false, Ordering::Relaxed);
        }
        msg
    }

    /// Registers `name` for this process unless it has ended or already has one.
    pub(crate) fn set_name(
        &self,
        name: &Arc<str>,
        insert: impl FnOnce() -> Result<(), crate::RegisterError>,
    ) -> Result<(), crate::RegisterError> {
        let mut lane = self.sys.lock();
        if lane.closed {
            return Err(crate::RegisterError::NoProc);
        }
        if let Some(old) = &lane.name {
            return Err(crate::RegisterError::AlreadyNamed(old.to_string()));
        }
        insert()?;
        lane.name = Some(name.clone());
        Ok(())
    }

    /// Forgets the registered name if it is `name`.
    pub(crate) fn clear_name(&self, name: &str) -> bool {
        let mut lane = self.sys.lock();
        if lane.name.as_deref() == Some(name) {
            lane.name = None;
            true
        } else {
            false
        }
    }

    /// Records the exit reason and closes the system lane. Returns the registered name (to
    /// release) and whatever was still queued on the lane.
    pub(crate) fn close(&self, reason: &ExitReason) -> (Option<Arc<str>>, VecDeque<Sys>) {
        let _ = self.exit.set(reason.clone());
        let closed = {
            let mut lane = self.sys.lock();
            lane.closed = true;
            self.state.store(CLOSED, Ordering::SeqCst);
            self.has_sys.store(false, Ordering::Relaxed);
            let queued = std::mem::take(&mut lane.queue);
            (
                lane.name.take(),
                queued.into_iter().map(|(m, _)| m).collect(),
            )
        };
        // Callers whose reply slot was dropped wait for the reason (`wait_reason`).
        self.exited.notify_waiters();
        closed
    }

    /// Wakes everyone waiting for this process to end. Called once the exit is fully processed
    /// (name released, links and monitors notified).
    pub(crate) fn announce_exit(&self) {
        self.done.store(true, Ordering::Release);
        self.exited.notify_waiters();
    }

    /// Remembers the task running this process, so a kill can abort it mid-handler.
    pub(crate) fn set_task(&self, task: tokio::task::AbortHandle) {
        let _ = self.task.set(task);
        fence(Ordering::SeqCst);
        if self.kill_requested.load(Ordering::Relaxed) {
            // A kill came before the task was known: abort it now.
            if let Some(task) = self.task.get() {
                task.abort();
            }
        }
    }

    /// Kills the process: queues a kill (for a process between messages) and aborts its task (for
    /// one stuck inside a handler). Returns `false` if it had already ended.
    pub(crate) fn kill(&self) -> bool {
        let queued = self.send_sys(Sys::Kill).is_ok();
        if queued {
            self.kill_requested.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if let Some(task) = self.task.get() {
                task.abort();
            }
        }
        queued
    }

    /// Waits until the exit reason is recorded (not for the exit to be fully processed).
    pub(crate) async fn wait_reason(&self) -> ExitReason {
        loop {
            let notified = self.exited.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(reason) = self.exit.get() {
                return reason.clone();
            }
            notified.await;
        }
    }

    pub(crate) fn exit_reason(&self) -> Option<&ExitReason> {
        self.exit.get()
    }

    /// Waits until the process has ended and returns why.
    pub(crate) async fn wait(&self) -> ExitReason {
        loop {
            let notified = self.exited.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.done.load(Ordering::Acquire) {
                if let Some(reason) = self.exit.get() {
                    return reason.clone();
                }
            }
            notified.await;
        }
    }
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
        let mut msg = crate::remote::decoding_with(&self.core.node, || (vtable.decode)(payload))
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
    pub(crate) fn new(node: crate::Node, pid: Pid, capacity: Option<usize>) -> Mailbox<A> {
        Mailbox {
            core: ProcCore {
                pid,
                state: AtomicU8::new(AWAKE),
                has_sys: AtomicBool::new(false),
                waker: AtomicWaker::new(),
                sys: Mutex::new(SysLane {
                    queue: VecDeque::new(),
                    closed: false,
                    name: None,
                }),
                exit: OnceLock::new(),
                done: AtomicBool::new(false),
                exited: Notify::new(),
                task: OnceLock::new(),
                kill_requested: AtomicBool::new(false),
                node,
            },
            queue: SegQueue::new(),
            bound: capacity.map(|n| Box::new(Bound::new(n))),
        }
    }

    /// The mailbox of a process that has already ended (a decoded ref to one of this node's
    /// pids that is no longer alive): every send to it fails.
    pub(crate) fn dead(node: crate::Node, pid: Pid) -> Mailbox<A> {
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
        if self.core.state.load(Ordering::Relaxed) == CLOSED {
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
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.queue.is_empty() || self.core.has_sys() {
            return Poll::Ready(());
        }
        self.core.waker.register(cx.waker());
        self.core.state.store(SLEEPING, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.queue.is_empty() || self.core.has_sys() {
            let _ = self.core.state.compare_exchange(
                SLEEPING,
                AWAKE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            return Poll::Ready(());
        }
        Poll::Pending
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
