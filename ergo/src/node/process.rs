//! A process as the node core sees it, whatever actor it runs: [`ProcCore`] (its pid, its system
//! lane, its exit), [`AnyProcess`] (the type-erased handle the process table holds), [`Sys`] (the
//! system lane's messages) and [`Target`] (where a signal goes: a process here or one behind a
//! [`Peer`]).
//!
//! The typed half, the normal lane of one actor's messages, is `actor/mailbox.rs`; the lane
//! semantics are documented there.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::transport::{DeliverError, Peer, ReplyRoute};
use crate::exit::{Down, ExitReason, MonitorRef};
use crate::{Node, Pid};

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
    pub(crate) fn is_notice(&self) -> bool {
        matches!(self, Sys::Down(_) | Sys::Exit { .. })
    }
}

struct SysLane {
    /// The messages, each with whether it left a mark in the normal lane.
    queue: VecDeque<(Sys, bool)>,
    closed: bool,
    /// Whether the process traps exits (kept by the process; read here to tell, while a
    /// handler runs, whether a queued exit signal ends it).
    traps: bool,
    name: Option<Arc<str>>,
    /// The processes linked to this one; allocated on the first link. Kept here, not in the
    /// process's own state, so that whether a queued exit signal still comes from a link can
    /// be told while a handler runs.
    #[allow(clippy::box_collection)]
    links: Option<Box<std::collections::HashMap<Pid, Target>>>,
}

impl SysLane {
    /// Whether `msg` ends the process when served now (a kill, or an exit signal it does not
    /// trap from a live link or an `exit` call).
    fn ends_process(&self, msg: &Sys) -> bool {
        match msg {
            Sys::Kill => true,
            Sys::Exit {
                from,
                reason,
                linked,
            } => {
                !self.traps
                    && *reason != ExitReason::Normal
                    && (!linked || self.links.as_ref().is_some_and(|l| l.contains_key(from)))
            }
            _ => false,
        }
    }
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
    pub(crate) node: Node,
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
    /// The core of a new process `pid` of `node`: awake, nothing queued.
    pub(crate) fn new(node: Node, pid: Pid) -> ProcCore {
        ProcCore {
            pid,
            state: AtomicU8::new(AWAKE),
            has_sys: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            sys: Mutex::new(SysLane {
                queue: VecDeque::new(),
                closed: false,
                traps: false,
                name: None,
                links: None,
            }),
            exit: OnceLock::new(),
            done: AtomicBool::new(false),
            exited: Notify::new(),
            task: OnceLock::new(),
            kill_requested: AtomicBool::new(false),
            node,
        }
    }

    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether the process has closed its mailbox, read without ordering (a sender's re-check
    /// right after its push: `notify`'s fence orders it).
    #[inline]
    pub(crate) fn closed_relaxed(&self) -> bool {
        self.state.load(Ordering::Relaxed) == CLOSED
    }

    /// Ready when the normal lane has something (`pending`) or the system lane does; otherwise
    /// registers the waker and sleeps (receiver side).
    #[inline]
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, pending: impl Fn() -> bool) -> Poll<()> {
        if pending() || self.has_sys() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        self.state.store(SLEEPING, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if pending() || self.has_sys() {
            let _ =
                self.state
                    .compare_exchange(SLEEPING, AWAKE, Ordering::AcqRel, Ordering::Relaxed);
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Wakes the receiver if it sleeps. Called after every push, on either lane.
    #[inline]
    pub(crate) fn notify(&self) {
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
    pub(crate) fn push_sys(&self, msg: Sys, mark: Option<&dyn Fn()>) -> Result<(), Sys> {
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

    /// Links this process to `pid` (this side of the link); `false` if it already was.
    pub(crate) fn add_link(&self, pid: Pid, other: Target) -> bool {
        let mut lane = self.sys.lock();
        let links = lane.links.get_or_insert_with(Default::default);
        match links.entry(pid) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(other);
                true
            }
        }
    }

    /// Removes this side of the link to `pid`, if there is one.
    pub(crate) fn remove_link(&self, pid: Pid) -> Option<Target> {
        self.sys.lock().links.as_mut()?.remove(&pid)
    }

    /// Whether this process is linked to `pid`.
    pub(crate) fn is_linked(&self, pid: Pid) -> bool {
        self.sys
            .lock()
            .links
            .as_ref()
            .is_some_and(|l| l.contains_key(&pid))
    }

    /// The pids this process is linked to.
    pub(crate) fn link_pids(&self) -> Vec<Pid> {
        let lane = self.sys.lock();
        lane.links
            .as_ref()
            .map(|l| l.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Takes every link (the process is ending).
    pub(crate) fn take_links(&self) -> Vec<Target> {
        let links = self.sys.lock().links.take();
        links.map(|l| l.into_values().collect()).unwrap_or_default()
    }

    /// Records whether the process traps exits.
    pub(crate) fn set_traps(&self, on: bool) {
        self.sys.lock().traps = on;
    }

    /// Called by the process while one of its handlers waits: makes any push wake it, and
    /// tells whether the system lane holds a message that ends the process (a kill, or an
    /// exit signal it does not trap), so the handler is ended at this await point.
    pub(crate) fn poll_doomed(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        let _ = self
            .state
            .compare_exchange(AWAKE, SLEEPING, Ordering::SeqCst, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !self.has_sys() {
            return false;
        }
        let doomed = {
            let lane = self.sys.lock();
            lane.queue.iter().any(|(msg, _)| lane.ends_process(msg))
        };
        if doomed {
            let _ =
                self.state
                    .compare_exchange(SLEEPING, AWAKE, Ordering::AcqRel, Ordering::Relaxed);
        }
        doomed
    }

    /// Whether a kill is queued on the system lane.
    pub(crate) fn kill_queued(&self) -> bool {
        self.sys
            .lock()
            .queue
            .iter()
            .any(|(msg, _)| matches!(msg, Sys::Kill))
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
