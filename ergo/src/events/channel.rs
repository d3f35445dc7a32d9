//! The registry of a node's events, and the channel behind one registration: its
//! subscribers, its buffer, its owner, and how a publish reaches each subscriber.

use std::any::{Any, TypeId};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;

use super::event::{EncodeFn, EventDown};
use super::remote::{RemoteSink, RemoteTables};
use crate::error::PublishError;
use crate::node::ProcHandle;
use crate::{ExitReason, Node, Pid};

/// The events registered on a node, by name.
#[derive(Default)]
pub(crate) struct EventTable {
    pub(super) events: DashMap<Arc<str>, Entry>,
    /// What this node keeps for subscriptions across nodes.
    pub(super) remote: RemoteTables,
}

impl crate::Node {
    /// This node's events (kept by the node core as an extension).
    #[inline]
    pub(crate) fn event_table(&self) -> &EventTable {
        self.extension()
    }
}

/// A registration, type-erased: the payload's identity and the typed channel behind it.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) type_id: TypeId,
    pub(super) type_name: &'static str,
    pub(super) channel: Arc<dyn AnyChannel>,
    pub(super) typed: Arc<dyn Any + Send + Sync>,
}

/// What the registry and a [`Subscription`] need from a channel of any payload type.
pub(crate) trait AnyChannel: Send + Sync + 'static {
    fn id(&self) -> u64;
    /// The owner's pid.
    fn owner_pid(&self) -> Pid;
    /// Adds a subscribing node: one subscriber standing for all of that node's, fed over the
    /// connection to it. `None` if the registration has ended; `Err` if it is not remote.
    fn subscribe_remote(&self, sink: RemoteSink) -> Result<Option<u64>, ()>;
    /// Closes the channel if its owner has ended; `true` if it is (now) closed.
    fn reap(&self) -> bool;
    fn close(&self, reason: ExitReason);
    fn remove_subscriber(&self, id: u64) -> bool;
}

pub(super) static NEXT_CHANNEL: AtomicU64 = AtomicU64::new(1);

/// What a publish did for one subscriber.
pub(crate) enum Outcome {
    Queued,
    Full,
    Closed,
}

pub(super) type Deliver<T> = Box<dyn Fn(T) -> Outcome + Send + Sync>;
pub(super) type End = Box<dyn FnOnce(&EventDown) + Send>;

/// One subscriber: how to hand it a value and how to tell it the event ended.
pub(super) struct Sub<T> {
    pub(super) id: u64,
    pub(super) alive: Alive,
    pub(super) deliver: Deliver<T>,
    pub(super) end: End,
}

/// Whether a subscriber is still there: a local process, or (feature `net`) a subscribing
/// node's connection.
pub(super) enum Alive {
    Process(ProcHandle),
    Node(RemoteSink),
}

impl Alive {
    pub(super) fn is_gone(&self) -> bool {
        match self {
            Alive::Process(p) => p.core().is_closed(),
            Alive::Node(sink) => sink.is_closed(),
        }
    }
}

/// Who owns a registration: a process of this node, or, for the mirror of another node's
/// event, that node's owner (known once the subscription is confirmed).
pub(super) enum Owner {
    Process(ProcHandle),
    Remote(std::sync::OnceLock<Pid>),
}

impl Owner {
    pub(super) fn pid(&self) -> Option<Pid> {
        match self {
            Owner::Process(p) => Some(p.core().pid()),
            Owner::Remote(pid) => pid.get().copied(),
        }
    }
}

pub(super) struct State<T> {
    pub(super) subs: Vec<Sub<T>>,
    pub(super) buffer: VecDeque<T>,
    pub(super) closed: bool,
}

/// One registration of an event with payload `T`.
pub(crate) struct Channel<T> {
    pub(super) id: u64,
    pub(super) name: Arc<str>,
    pub(super) owner: Owner,
    pub(super) node: Node,
    pub(super) encode: Option<EncodeFn<T>>,
    pub(super) buffer: usize,
    /// Mirrors `state.closed` for the lock-free publish path.
    pub(super) closed: AtomicBool,
    /// Mirrors `state.subs.len()` for the lock-free publish path.
    pub(super) subscribers: AtomicUsize,
    pub(super) dropped: AtomicU64,
    pub(super) next_sub: AtomicU64,
    pub(super) watcher: Mutex<Option<tokio::task::AbortHandle>>,
    pub(super) state: Mutex<State<T>>,
}

impl<T: Clone + Send + 'static> Channel<T> {
    /// A new, open registration with no subscribers.
    pub(super) fn new(
        name: Arc<str>,
        owner: Owner,
        node: Node,
        encode: Option<EncodeFn<T>>,
        buffer: usize,
    ) -> Channel<T> {
        Channel {
            id: NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed),
            name,
            owner,
            node,
            encode,
            buffer,
            closed: AtomicBool::new(false),
            subscribers: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            next_sub: AtomicU64::new(1),
            watcher: Mutex::new(None),
            state: Mutex::new(State {
                subs: Vec::new(),
                buffer: VecDeque::with_capacity(buffer.min(1024)),
                closed: false,
            }),
        }
    }

    /// Closes the registration when its owner is found dead; `true` if it is closed.
    pub(super) fn check_owner(&self) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return true;
        }
        let Owner::Process(owner) = &self.owner else {
            return false;
        };
        let core = owner.core();
        if core.is_closed() {
            let reason = core.exit_reason().cloned().unwrap_or(ExitReason::NoProc);
            self.close(reason);
            return true;
        }
        false
    }

    pub(super) fn publish(&self, value: T) -> Result<usize, PublishError<T>> {
        if self.check_owner() {
            return Err(PublishError::Unregistered(value));
        }
        if self.buffer == 0 && self.subscribers.load(Ordering::Acquire) == 0 {
            return Ok(0);
        }
        let mut state = self.state.lock();
        if state.closed {
            return Err(PublishError::Unregistered(value));
        }
        let n = state.subs.len();
        if self.buffer > 0 {
            if state.buffer.len() == self.buffer {
                state.buffer.pop_front();
            }
            if n == 0 {
                state.buffer.push_back(value);
                return Ok(0);
            }
            state.buffer.push_back(value.clone());
        }
        let mut value = Some(value);
        let (mut queued, mut full, mut dead) = (0, 0, false);
        for (i, sub) in state.subs.iter().enumerate() {
            let v = if i + 1 == n {
                value.take()
            } else {
                value.clone()
            };
            let Some(v) = v else { break };
            match (sub.deliver)(v) {
                Outcome::Queued => queued += 1,
                Outcome::Full => full += 1,
                Outcome::Closed => dead = true,
            }
        }
        if dead {
            state.subs.retain(|s| !s.alive.is_gone());
            self.subscribers.store(state.subs.len(), Ordering::Release);
        }
        if full > 0 {
            self.dropped.fetch_add(full, Ordering::Relaxed);
        }
        Ok(queued)
    }

    pub(super) fn subscribe(&self, alive: Alive, deliver: Deliver<T>, end: End) -> Option<u64> {
        let mut state = self.state.lock();
        if state.closed {
            return None;
        }
        for v in &state.buffer {
            deliver(v.clone());
        }
        state.subs.retain(|s| !s.alive.is_gone());
        let id = self.next_sub.fetch_add(1, Ordering::Relaxed);
        state.subs.push(Sub {
            id,
            alive,
            deliver,
            end,
        });
        self.subscribers.store(state.subs.len(), Ordering::Release);
        Some(id)
    }
}

impl<T: Clone + Send + 'static> AnyChannel for Channel<T> {
    fn id(&self) -> u64 {
        self.id
    }

    fn owner_pid(&self) -> Pid {
        self.owner
            .pid()
            .unwrap_or_else(|| Pid::new(self.node.atom(), 0, 0))
    }

    fn subscribe_remote(&self, sink: RemoteSink) -> Result<Option<u64>, ()> {
        let encode = self.encode.ok_or(())?;
        let publish = sink.clone();
        let deliver: Deliver<T> = Box::new(move |v: T| publish.publish(&mut |w| encode(&v, w)));
        let (down, node) = (sink.clone(), self.node.clone());
        let end: End = Box::new(move |d: &EventDown| down.down(&node, &d.reason));
        Ok(self.subscribe(Alive::Node(sink), deliver, end))
    }

    fn reap(&self) -> bool {
        self.check_owner()
    }

    fn close(&self, reason: ExitReason) {
        // Everything under the state lock, so that whoever sees the registration closed (a
        // publish, a subscribe) also sees every end notice already sent.
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        state.closed = true;
        state.buffer.clear();
        let subs = std::mem::take(&mut state.subs);
        self.subscribers.store(0, Ordering::Release);
        // The name is free before any subscriber hears of the end.
        self.node
            .event_table()
            .events
            .remove_if(&self.name, |_, e| e.channel.id() == self.id);
        if let Some(watcher) = self.watcher.lock().take() {
            watcher.abort();
        }
        let down = EventDown {
            event: self.name.to_string(),
            producer: self.owner_pid(),
            reason,
        };
        for sub in subs {
            (sub.end)(&down);
        }
        self.closed.store(true, Ordering::Release);
    }

    fn remove_subscriber(&self, id: u64) -> bool {
        let mut state = self.state.lock();
        let before = state.subs.len();
        state.subs.retain(|s| s.id != id);
        self.subscribers.store(state.subs.len(), Ordering::Release);
        state.subs.len() != before
    }
}
