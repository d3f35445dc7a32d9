//! Events: typed publish/subscribe between the processes of a node.
//!
//! A producer process registers an [`Event<T>`] (a name plus the payload type `T`) and gets an
//! [`EventToken<T>`] to publish with. Other processes subscribe to the event by name, either by
//! monitor ([`Node::monitor_event`], [`Ctx::monitor_event`]) or by link ([`Node::link_event`],
//! [`Ctx::link_event`]), and receive every value published after they subscribed.
//!
//! # Delivering to an actor
//!
//! A subscriber is an ordinary actor: its message enum needs no knowledge of events. It
//! subscribes with a closure that turns each value into one of its own messages (typically the
//! variant of a `#[handle]` method, `|order| AuditMsg::Order { order }`), and, when subscribing by
//! monitor, a second closure for the [`EventDown`] notice. Both run on the publisher's side, so
//! keep them cheap: build a message and nothing else.
//!
//! # Ownership
//!
//! A registration belongs to the process that registered it (its owner). It ends when the owner
//! ends, or when [`EventToken::unregister`] is called; the name can then be registered again. The
//! token can be cloned and handed to another process (or task) to publish on the owner's behalf,
//! but it publishes only while the registration lasts. The end is noticed by a watcher task per
//! registration that waits for the owner's exit: nothing is added to any mailbox's hot path.
//!
//! # Subscribing by monitor or by link
//!
//! - **monitor**: the subscriber receives every value, then one [`EventDown`] message (built by
//!   its `on_down` closure) when the registration ends; the subscriber keeps running.
//! - **link**: the subscriber receives every value, then an exit signal from the owner's pid with
//!   the owner's exit reason, exactly as from a linked process: it ends with that reason unless the
//!   reason is [`ExitReason::Normal`] or it traps exits (then its `#[on_exit]` hook receives the
//!   signal). An explicit [`EventToken::unregister`] sends [`ExitReason::Normal`]. The link is
//!   one-way: a subscriber's end never affects the producer.
//!
//! A subscription lasts until the subscriber ends, the registration ends, or
//! [`Subscription::unsubscribe`] is called; dropping the [`Subscription`] handle keeps it.
//!
//! # Ordering
//!
//! Values of one event reach every subscriber in the order they were published (publishing
//! serializes on the event, whichever token clone publishes), and the end notice comes after the
//! last value. A subscriber that subscribes to several events sees each event's values in order,
//! with no order between events.
//!
//! # Buffer
//!
//! An event registered with [`EventOptions::buffer`]`(n)` keeps its last `n` values; a new
//! subscriber receives them first, before any value published after it subscribed.
//!
//! # Delivery
//!
//! At most once, and publishing never waits: each value is put in every subscriber's mailbox
//! with [`ActorRef::try_cast`]. A subscriber with a full bounded mailbox misses the value; misses
//! are counted ([`EventToken::dropped`]). A subscriber that has ended is removed. The end notice
//! ([`EventDown`]) is never dropped: if the mailbox is full it is sent by a task that waits for
//! room. Publishing when nobody subscribes (and without a buffer) costs two atomic loads.
//!
//! # Types
//!
//! `Event<T>` carries its payload type, so producer and subscriber are checked at compile time
//! against the `Event<T>` they name; declaring the event once as a constant shared by both sides
//! (`const ORDERS: Event<Order> = Event::new("orders");`) makes a mismatch impossible. When the two
//! sides name the same event with different types, subscribing fails with
//! [`SubscribeError::TypeMismatch`] naming both types.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::prelude::*;
//! use ergo::events::{Event, EventDown, EventOptions};
//!
//! const TICKS: Event<u64> = Event::new("ticks");
//!
//! struct Clock;
//! #[actor]
//! impl Clock {
//!     #[handle]
//!     fn quit(&mut self, ctx: &mut Ctx<Self>) { ctx.stop() }
//! }
//!
//! #[derive(Default)]
//! struct Listener { seen: Vec<u64>, down: Option<EventDown> }
//! #[actor]
//! impl Listener {
//!     #[handle]
//!     fn tick(&mut self, n: u64) { self.seen.push(n) }
//!     #[handle]
//!     fn gone(&mut self, down: EventDown) { self.down = Some(down) }
//!     #[handle]
//!     fn report(&self) -> (Vec<u64>, bool) { (self.seen.clone(), self.down.is_some()) }
//! }
//!
//! let node = Node::builder("events-doc@localhost").start().await?;
//! let clock = node.spawn(Clock).await?;
//! let token = node.register_event(&TICKS, clock.pid(), EventOptions::new())?;
//! let listener = node.spawn(Listener::default()).await?;
//! node.monitor_event(
//!     &TICKS,
//!     &listener,
//!     |n| ListenerMsg::Tick { n },
//!     |down| ListenerMsg::Gone { down },
//! )?;
//! for n in 0..3 {
//!     token.publish(n)?;
//! }
//! clock.quit().await?;           // the owner ends: so does the registration
//! clock.wait().await;
//! assert!(token.publish(3).is_err()); // and the listener has its `EventDown` queued
//! assert_eq!(listener.report().await?, (vec![0, 1, 2], true));
//! # Ok(()) }
//! ```
//!
//! # Across nodes (feature `net`)
//!
//! An event declared with [`Event::remote`] can be subscribed from other nodes
//! ([`Node::monitor_event_at`], [`Node::link_event_at`]). A subscribing node asks the producer's
//! node once, however many of its processes subscribe, and receives one network copy of each
//! value, which it fans out to its local subscribers in order. The end of the registration, or
//! the loss of the connection (with [`ExitReason::NoConnection`]), reaches every subscriber
//! once. Publishing still never waits: a value for a node whose connection has 4 MiB queued is
//! dropped for that node (counted by [`EventToken::dropped`]); a producer that must not lose
//! values paces itself (for example, by a window of values acknowledged by its subscribers).

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;

use crate::mailbox::ProcHandle;
use crate::{Actor, ActorRef, Ctx, ExitReason, Node, Pid, TrySendError};

/// A named event whose values are of type `T`.
///
/// Cheap to clone; usually declared once as a constant that producer and subscribers share.
///
/// ```
/// use ergo::events::Event;
///
/// #[derive(Clone, Debug)]
/// struct OrderPlaced { id: u64 }
///
/// const ORDERS: Event<OrderPlaced> = Event::new("orders");
/// assert_eq!(ORDERS.name(), "orders");
/// let per_shard: Event<OrderPlaced> = Event::named(format!("orders-{}", 3));
/// assert_eq!(per_shard.name(), "orders-3");
/// ```
pub struct Event<T> {
    name: Cow<'static, str>,
    encode: Option<EncodeFn<T>>,
    _payload: PhantomData<fn() -> T>,
}

/// Writes an event's value as CBOR.
type EncodeFn<T> = fn(&T, &mut dyn std::io::Write) -> Result<(), String>;

impl<T> Event<T> {
    /// An event called `name` (usable in a `const`), for subscribers of this node only.
    pub const fn new(name: &'static str) -> Self {
        Event {
            name: Cow::Borrowed(name),
            encode: None,
            _payload: PhantomData,
        }
    }

    /// An event whose name is computed at run time, for subscribers of this node only.
    pub fn named(name: impl Into<String>) -> Self {
        Event {
            name: Cow::Owned(name.into()),
            encode: None,
            _payload: PhantomData,
        }
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether processes of other nodes can subscribe to it (declared with [`Event::remote`]).
    pub fn is_remote(&self) -> bool {
        self.encode.is_some()
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Event<T> {
    /// An event called `name` (usable in a `const`) that processes of other nodes can also
    /// subscribe to (feature `net`): its values cross the network as CBOR, one copy per
    /// subscribing node.
    ///
    /// ```
    /// use ergo::events::Event;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Debug, Serialize, Deserialize)]
    /// struct OrderPlaced { id: u64 }
    ///
    /// const ORDERS: Event<OrderPlaced> = Event::remote("orders");
    /// assert!(ORDERS.is_remote());
    /// ```
    pub const fn remote(name: &'static str) -> Self {
        Event {
            name: Cow::Borrowed(name),
            encode: Some(crate::remote::encode_cbor::<T>),
            _payload: PhantomData,
        }
    }

    /// [`Event::remote`] with a name computed at run time.
    pub fn named_remote(name: impl Into<String>) -> Self {
        Event {
            name: Cow::Owned(name.into()),
            encode: Some(crate::remote::encode_cbor::<T>),
            _payload: PhantomData,
        }
    }
}

impl<T> Event<T> {
    fn encoder(&self) -> Option<EncodeFn<T>> {
        self.encode
    }
}

impl<T> Clone for Event<T> {
    fn clone(&self) -> Self {
        Event {
            name: self.name.clone(),
            encode: self.encode,
            _payload: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Event<{}>({:?})", std::any::type_name::<T>(), self.name)
    }
}

/// How an event is registered.
///
/// ```
/// use ergo::events::EventOptions;
/// let opts = EventOptions::new().buffer(16);
/// assert_eq!(opts.buffer_len(), 16);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct EventOptions {
    buffer: usize,
}

impl EventOptions {
    /// The defaults: no buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the last `n` values; a new subscriber receives them first.
    pub fn buffer(mut self, n: usize) -> Self {
        self.buffer = n;
        self
    }

    /// The number of values kept for new subscribers.
    pub fn buffer_len(&self) -> usize {
        self.buffer
    }
}

/// The notice a monitoring subscriber receives when an event's registration ends.
///
/// ```
/// use ergo::events::EventDown;
/// use ergo::ExitReason;
/// fn describe(down: &EventDown) -> String {
///     format!("`{}` from {} ended: {}", down.event, down.producer, down.reason)
/// }
/// # let _ = describe;
/// # let _ = ExitReason::Normal;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDown {
    /// The event's name.
    pub event: String,
    /// The process that owned the registration.
    pub producer: Pid,
    /// Why it ended: the owner's exit reason, or [`ExitReason::Normal`] after
    /// [`EventToken::unregister`].
    pub reason: ExitReason,
}

/// Registering an event failed.
///
/// ```
/// use ergo::events::RegisterEventError;
/// let e = RegisterEventError::Taken("orders".into());
/// assert_eq!(e.to_string(), "the event `orders` is already registered");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterEventError {
    /// A live process has registered an event of this name.
    #[error("the event `{0}` is already registered")]
    Taken(String),
    /// The owner is not a live process of this node.
    #[error("no such process")]
    NoProc,
}

/// Subscribing to an event failed.
///
/// ```
/// use ergo::events::SubscribeError;
/// let e = SubscribeError::NotRegistered("orders".into());
/// assert_eq!(e.to_string(), "no event `orders` is registered");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// No live registration of this name.
    #[error("no event `{0}` is registered")]
    NotRegistered(String),
    /// The event is registered with another payload type than the subscriber's.
    #[error("the event `{event}` carries `{registered}`, not `{requested}`")]
    TypeMismatch {
        /// The event's name.
        event: String,
        /// The producer's payload type.
        registered: String,
        /// The subscriber's payload type.
        requested: String,
    },
    /// The subscriber has ended.
    #[error("the subscriber has exited")]
    NoProc,
    /// The subscriber is a process of another node; it subscribes on its own node.
    #[error("the subscriber {0} is a process of another node")]
    NotLocal(crate::Pid),
    /// The event was registered with [`Event::new`]: only processes of its own node can
    /// subscribe. Declare it with [`Event::remote`].
    #[error(
        "the event `{0}` is not declared remote (`Event::remote`): only its own node can subscribe"
    )]
    NotRemote(String),
    /// The producer's node could not be reached or did not answer.
    #[cfg(feature = "net")]
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
}

/// Publishing failed; the value is handed back.
///
/// ```
/// use ergo::events::PublishError;
/// let e = PublishError::Unregistered(7u32);
/// assert_eq!(e.to_string(), "the event is no longer registered; value returned");
/// assert_eq!(e.into_inner(), 7);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError<T> {
    /// The registration has ended (its owner exited, or it was unregistered).
    Unregistered(T),
}

impl<T> PublishError<T> {
    /// The value that was not published.
    pub fn into_inner(self) -> T {
        match self {
            PublishError::Unregistered(v) => v,
        }
    }
}

impl<T> fmt::Debug for PublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Unregistered(_) => f.write_str("Unregistered(..)"),
        }
    }
}

impl<T> fmt::Display for PublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Unregistered(_) => {
                f.write_str("the event is no longer registered; value returned")
            }
        }
    }
}

impl<T> std::error::Error for PublishError<T> {}

// ---------------------------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------------------------

/// The events registered on a node, by name.
#[derive(Default)]
pub(crate) struct EventTable {
    events: DashMap<Arc<str>, Entry>,
}

/// A registration, type-erased: the payload's identity and the typed channel behind it.
#[derive(Clone)]
struct Entry {
    type_id: TypeId,
    type_name: &'static str,
    channel: Arc<dyn Registration>,
    typed: Arc<dyn Any + Send + Sync>,
}

/// What the registry and a [`Subscription`] need from a channel of any payload type.
pub(crate) trait Registration: Send + Sync + 'static {
    fn id(&self) -> u64;
    /// The owner's pid.
    fn owner_pid(&self) -> Pid;
    /// Adds a subscribing node: one subscriber standing for all of that node's, fed over the
    /// connection to it. `None` if the registration has ended; `Err` if it is not remote.
    #[cfg(feature = "net")]
    fn subscribe_remote(&self, sink: crate::net::node::RemoteSink) -> Result<Option<u64>, ()>;
    /// Closes the channel if its owner has ended; `true` if it is (now) closed.
    fn reap(&self) -> bool;
    fn close(&self, reason: ExitReason);
    fn remove_subscriber(&self, id: u64) -> bool;
}

static NEXT_CHANNEL: AtomicU64 = AtomicU64::new(1);

/// What a publish did for one subscriber.
pub(crate) enum Outcome {
    Queued,
    Full,
    Closed,
}

type Deliver<T> = Box<dyn Fn(T) -> Outcome + Send + Sync>;
type End = Box<dyn FnOnce(&EventDown) + Send>;

/// One subscriber: how to hand it a value and how to tell it the event ended.
struct Sub<T> {
    id: u64,
    alive: Alive,
    deliver: Deliver<T>,
    end: End,
}

/// Whether a subscriber is still there: a local process, or (feature `net`) a subscribing
/// node's connection.
enum Alive {
    Process(ProcHandle),
    #[cfg(feature = "net")]
    Node(crate::net::node::RemoteSink),
}

impl Alive {
    fn is_gone(&self) -> bool {
        match self {
            Alive::Process(p) => p.core().is_closed(),
            #[cfg(feature = "net")]
            Alive::Node(sink) => sink.is_closed(),
        }
    }
}

/// Who owns a registration: a process of this node, or, for the mirror of another node's
/// event, that node's owner (known once the subscription is confirmed).
enum Owner {
    Process(ProcHandle),
    #[cfg_attr(not(feature = "net"), allow(dead_code))]
    Remote(std::sync::OnceLock<Pid>),
}

impl Owner {
    fn pid(&self) -> Option<Pid> {
        match self {
            Owner::Process(p) => Some(p.core().pid()),
            Owner::Remote(pid) => pid.get().copied(),
        }
    }
}

struct State<T> {
    subs: Vec<Sub<T>>,
    buffer: VecDeque<T>,
    closed: bool,
}

/// One registration of an event with payload `T`.
pub(crate) struct Channel<T> {
    id: u64,
    name: Arc<str>,
    owner: Owner,
    node: Node,
    encode: Option<EncodeFn<T>>,
    buffer: usize,
    /// Mirrors `state.closed` for the lock-free publish path.
    closed: AtomicBool,
    /// Mirrors `state.subs.len()` for the lock-free publish path.
    subscribers: AtomicUsize,
    dropped: AtomicU64,
    next_sub: AtomicU64,
    watcher: Mutex<Option<tokio::task::AbortHandle>>,
    state: Mutex<State<T>>,
}

impl<T: Clone + Send + 'static> Channel<T> {
    /// Closes the registration when its owner is found dead; `true` if it is closed.
    fn check_owner(&self) -> bool {
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

    fn publish(&self, value: T) -> Result<usize, PublishError<T>> {
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

    fn subscribe(&self, alive: Alive, deliver: Deliver<T>, end: End) -> Option<u64> {
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

impl<T: Clone + Send + 'static> Registration for Channel<T> {
    fn id(&self) -> u64 {
        self.id
    }

    fn owner_pid(&self) -> Pid {
        self.owner
            .pid()
            .unwrap_or_else(|| Pid::new(self.node.atom(), 0, 0))
    }

    #[cfg(feature = "net")]
    fn subscribe_remote(&self, sink: crate::net::node::RemoteSink) -> Result<Option<u64>, ()> {
        let encode = self.encode.ok_or(())?;
        let publish = sink.clone();
        let deliver: Deliver<T> = Box::new(move |v: T| publish.publish(&mut |w| encode(&v, w)));
        let down = sink.clone();
        let end: End = Box::new(move |d: &EventDown| down.down(&d.reason));
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

// ---------------------------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------------------------

/// The right to publish on a registered event; cheap to clone and hand to another process.
///
/// Dropping every token does not end the registration (its owner's exit does, or
/// [`EventToken::unregister`]).
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ergo::prelude::*;
/// use ergo::events::{Event, EventOptions};
///
/// struct Owner;
/// #[actor]
/// impl Owner {
///     #[handle]
///     fn ping(&self) {}
/// }
///
/// let node = Node::builder("token-doc@localhost").start().await?;
/// let owner = node.spawn(Owner).await?;
/// let token = node.register_event(&Event::<String>::new("log"), owner.pid(), EventOptions::new())?;
/// assert_eq!(token.publish("nobody listens".into())?, 0);
/// token.unregister();
/// assert!(token.publish("too late".into()).is_err());
/// # Ok(()) }
/// ```
pub struct EventToken<T> {
    channel: Arc<Channel<T>>,
}

impl<T> Clone for EventToken<T> {
    fn clone(&self) -> Self {
        EventToken {
            channel: self.channel.clone(),
        }
    }
}

impl<T> fmt::Debug for EventToken<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventToken")
            .field("event", &self.channel.name)
            .field("owner", &self.channel.owner.pid())
            .finish()
    }
}

impl<T: Clone + Send + 'static> EventToken<T> {
    /// Publishes `value` to every subscriber (and the buffer, if any) without waiting, and
    /// returns how many subscribers it was queued for. Subscribers with a full bounded mailbox
    /// miss it (counted by [`EventToken::dropped`]).
    ///
    /// # Errors
    ///
    /// [`PublishError::Unregistered`] with the value once the registration has ended.
    pub fn publish(&self, value: T) -> Result<usize, PublishError<T>> {
        self.channel.publish(value)
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.channel.name
    }

    /// The owner of the registration.
    pub fn owner(&self) -> Pid {
        self.channel.owner_pid()
    }

    /// Whether the registration lasts (publishing can succeed).
    pub fn is_registered(&self) -> bool {
        !self.channel.check_owner()
    }

    /// The number of current subscribers (ended ones are counted until the next publish).
    pub fn subscribers(&self) -> usize {
        self.channel.subscribers.load(Ordering::Acquire)
    }

    /// Values not delivered because a subscriber's bounded mailbox was full, since
    /// registration.
    pub fn dropped(&self) -> u64 {
        self.channel.dropped.load(Ordering::Relaxed)
    }

    /// Ends the registration now: the name is free again, subscribers by monitor receive
    /// [`EventDown`] with [`ExitReason::Normal`], and subscribers by link an exit signal with
    /// `Normal` (which stops none of them; those that trap exits see it in `#[on_exit]`).
    pub fn unregister(&self) {
        self.channel.close(ExitReason::Normal);
    }
}

/// A subscription to an event; [`Subscription::unsubscribe`] ends it. Dropping the handle keeps
/// the subscription (it ends with the subscriber or the registration).
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ergo::prelude::*;
/// use ergo::events::{Event, EventOptions};
///
/// #[derive(Default)]
/// struct Sink { got: Vec<u8> }
/// #[actor]
/// impl Sink {
///     #[handle]
///     fn got(&mut self, v: u8) { self.got.push(v) }
///     #[handle]
///     fn all(&self) -> Vec<u8> { self.got.clone() }
/// }
///
/// const BYTES: Event<u8> = Event::new("bytes");
/// let node = Node::builder("subscription-doc@localhost").start().await?;
/// let sink = node.spawn(Sink::default()).await?;
/// let token = node.register_event(&BYTES, sink.pid(), EventOptions::new())?;
/// let sub = node.link_event(&BYTES, &sink, |v| SinkMsg::Got { v })?;
/// token.publish(1)?;
/// assert!(sub.unsubscribe());
/// token.publish(2)?;
/// assert_eq!(sink.all().await?, vec![1]);
/// # Ok(()) }
/// ```
pub struct Subscription {
    channel: Arc<dyn Registration>,
    id: u64,
    event: Arc<str>,
}

impl Subscription {
    /// Ends the subscription: no value published after this reaches the subscriber, nor the end
    /// notice. Returns `false` if it had already ended.
    pub fn unsubscribe(&self) -> bool {
        self.channel.remove_subscriber(self.id)
    }

    /// The event's name.
    pub fn event(&self) -> &str {
        &self.event
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("event", &self.event)
            .field("id", &self.id)
            .finish()
    }
}

/// The end notice of a subscription by monitor: `on_down(EventDown)` into the subscriber's
/// mailbox, never dropped (a full mailbox gets it from a task that waits for room).
fn monitor_end<A, D>(subscriber: &ActorRef<A>, on_down: D) -> End
where
    A: Actor,
    D: FnOnce(EventDown) -> A::Msg + Send + 'static,
{
    let target = subscriber.clone();
    Box::new(move |down: &EventDown| {
        match target.try_cast(on_down(down.clone())) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(msg)) => {
                // Never dropped: wait for room off the publisher's path.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = target.cast(msg).await;
                    });
                }
            }
        }
    })
}

/// The end notice of a subscription by link: an exit signal from the owner.
fn link_end<A: Actor>(subscriber: &ActorRef<A>) -> End {
    let target = subscriber.clone();
    Box::new(move |down: &EventDown| {
        target.exit(down.producer, down.reason.clone());
    })
}

/// Hands each value to the subscriber as `on_value(v)`, without waiting.
fn deliver_to<T, A, V>(subscriber: &ActorRef<A>, on_value: V) -> Deliver<T>
where
    A: Actor,
    V: Fn(T) -> A::Msg + Send + Sync + 'static,
{
    let target = subscriber.clone();
    Box::new(move |v| match target.try_cast(on_value(v)) {
        Ok(()) => Outcome::Queued,
        Err(TrySendError::Full(_)) => Outcome::Full,
        Err(TrySendError::Closed(_)) => Outcome::Closed,
    })
}

// ---------------------------------------------------------------------------------------------
// Node and Ctx entry points
// ---------------------------------------------------------------------------------------------

impl Node {
    /// Registers `event` on this node, owned by the live process `owner`; returns the token to
    /// publish with. The registration ends when `owner` ends (or at
    /// [`EventToken::unregister`]); see [the module docs](crate::events).
    ///
    /// # Errors
    ///
    /// [`RegisterEventError::Taken`] if a live registration has the name,
    /// [`RegisterEventError::NoProc`] if `owner` is not a live process of this node.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (a task watches the owner).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ergo::prelude::*;
    /// use ergo::events::{Event, EventOptions, RegisterEventError};
    ///
    /// struct Owner;
    /// #[actor]
    /// impl Owner {
    ///     #[handle]
    ///     fn ping(&self) {}
    /// }
    ///
    /// const PRICES: Event<f64> = Event::new("prices");
    /// let node = Node::builder("register-event-doc@localhost").start().await?;
    /// let a = node.spawn(Owner).await?;
    /// let b = node.spawn(Owner).await?;
    /// let _token = node.register_event(&PRICES, a.pid(), EventOptions::new().buffer(1))?;
    /// let again = node.register_event(&PRICES, b.pid(), EventOptions::new());
    /// assert_eq!(again.unwrap_err(), RegisterEventError::Taken("prices".into()));
    /// # Ok(()) }
    /// ```
    pub fn register_event<T: Clone + Send + 'static>(
        &self,
        event: &Event<T>,
        owner: Pid,
        options: EventOptions,
    ) -> Result<EventToken<T>, RegisterEventError> {
        use dashmap::mapref::entry::Entry as Slot;
        let owner = self
            .process(owner)
            .filter(|p| !p.core().is_closed())
            .ok_or(RegisterEventError::NoProc)?;
        let name: Arc<str> = Arc::from(event.name());
        let channel = Arc::new(Channel::<T> {
            id: NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed),
            name: name.clone(),
            owner: Owner::Process(owner.clone()),
            node: self.clone(),
            encode: event.encoder(),
            buffer: options.buffer,
            closed: AtomicBool::new(false),
            subscribers: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            next_sub: AtomicU64::new(1),
            watcher: Mutex::new(None),
            state: Mutex::new(State {
                subs: Vec::new(),
                buffer: VecDeque::with_capacity(options.buffer.min(1024)),
                closed: false,
            }),
        });
        let table = &self.event_table().events;
        loop {
            let stale = match table.entry(name.clone()) {
                Slot::Vacant(slot) => {
                    slot.insert(Entry {
                        type_id: TypeId::of::<T>(),
                        type_name: std::any::type_name::<T>(),
                        channel: channel.clone(),
                        typed: channel.clone(),
                    });
                    break;
                }
                Slot::Occupied(slot) => slot.get().channel.clone(),
            };
            // Outside the map's lock: closing removes the entry.
            if !stale.reap() {
                return Err(RegisterEventError::Taken(name.to_string()));
            }
        }
        let watched = Arc::downgrade(&channel);
        let watcher = tokio::spawn(async move {
            let reason = owner.core().wait().await;
            if let Some(channel) = watched.upgrade() {
                channel.close(reason);
            }
        });
        *channel.watcher.lock() = Some(watcher.abort_handle());
        if channel.closed.load(Ordering::Acquire) {
            // Closed before the watcher was stored (say, unregistered at once): stop it.
            watcher.abort();
        }
        Ok(EventToken { channel })
    }

    /// Subscribes `subscriber` to `event` by monitor: it receives `on_value(v)` for every value
    /// `v` published from now on (after the buffered ones), then `on_down(EventDown)` once when
    /// the registration ends. See [the module docs](crate::events).
    ///
    /// # Errors
    ///
    /// [`SubscribeError::NotRegistered`], [`SubscribeError::TypeMismatch`] when the event was
    /// registered with another payload type, [`SubscribeError::NoProc`] if the subscriber has
    /// ended.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ergo::prelude::*;
    /// use ergo::events::{Event, EventDown, EventOptions, SubscribeError};
    ///
    /// #[derive(Default)]
    /// struct Audit { seen: u32 }
    /// #[actor]
    /// impl Audit {
    ///     #[handle]
    ///     fn order(&mut self, _id: u64) { self.seen += 1 }
    ///     #[handle]
    ///     fn down(&mut self, _down: EventDown) {}
    ///     #[handle]
    ///     fn seen(&self) -> u32 { self.seen }
    /// }
    ///
    /// let node = Node::builder("monitor-event-doc@localhost").start().await?;
    /// let audit = node.spawn(Audit::default()).await?;
    /// let orders: Event<u64> = Event::new("orders");
    /// let token = node.register_event(&orders, audit.pid(), EventOptions::new())?;
    /// node.monitor_event(&orders, &audit, |id| AuditMsg::Order { _id: id }, |d| AuditMsg::Down { _down: d })?;
    /// token.publish(42)?;
    /// assert_eq!(audit.seen().await?, 1);
    ///
    /// // The same name with another payload type is refused, naming both types.
    /// let wrong: Event<String> = Event::new("orders");
    /// let err = node.link_event(&wrong, &audit, |_s| AuditMsg::Order { _id: 0 }).unwrap_err();
    /// assert!(matches!(err, SubscribeError::TypeMismatch { ref registered, .. } if registered == "u64"));
    /// # Ok(()) }
    /// ```
    pub fn monitor_event<T, A, V, D>(
        &self,
        event: &Event<T>,
        subscriber: &ActorRef<A>,
        on_value: V,
        on_down: D,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + 'static,
        A: Actor,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
        D: FnOnce(EventDown) -> A::Msg + Send + 'static,
    {
        let end = monitor_end(subscriber, on_down);
        self.subscribe(event, subscriber, on_value, end)
    }

    /// Subscribes `subscriber` to `event` by link: it receives `on_value(v)` for every value
    /// `v` published from now on (after the buffered ones), then, when the registration ends, an
    /// exit signal from the owner with its exit reason (it ends with it, unless the reason is
    /// `Normal` or it traps exits). See [the module docs](crate::events).
    ///
    /// # Errors
    ///
    /// As [`Node::monitor_event`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ergo::prelude::*;
    /// use ergo::events::{Event, EventOptions};
    ///
    /// struct Feed;
    /// #[actor]
    /// impl Feed {
    ///     #[handle]
    ///     fn fail(&mut self, ctx: &mut Ctx<Self>) { ctx.stop_with(ExitReason::Error("feed lost".into())) }
    /// }
    /// struct Follower;
    /// #[actor]
    /// impl Follower {
    ///     #[handle]
    ///     fn item(&mut self, _v: u32) {}
    /// }
    ///
    /// const FEED: Event<u32> = Event::new("feed");
    /// let node = Node::builder("link-event-doc@localhost").start().await?;
    /// let feed = node.spawn(Feed).await?;
    /// let follower = node.spawn(Follower).await?;
    /// node.register_event(&FEED, feed.pid(), EventOptions::new())?;
    /// node.link_event(&FEED, &follower, |v| FollowerMsg::Item { _v: v })?;
    /// feed.fail().await?;
    /// assert_eq!(follower.wait().await, ExitReason::Error("feed lost".into()));
    /// # Ok(()) }
    /// ```
    pub fn link_event<T, A, V>(
        &self,
        event: &Event<T>,
        subscriber: &ActorRef<A>,
        on_value: V,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + 'static,
        A: Actor,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
    {
        self.subscribe(event, subscriber, on_value, link_end(subscriber))
    }

    fn subscribe<T, A, V>(
        &self,
        event: &Event<T>,
        subscriber: &ActorRef<A>,
        on_value: V,
        end: End,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + 'static,
        A: Actor,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
    {
        let not_registered = || SubscribeError::NotRegistered(event.name().to_owned());
        let entry = self
            .event_table()
            .events
            .get(event.name())
            .map(|e| e.clone())
            .ok_or_else(not_registered)?;
        if entry.type_id != TypeId::of::<T>() {
            return Err(SubscribeError::TypeMismatch {
                event: event.name().to_owned(),
                registered: entry.type_name.into(),
                requested: std::any::type_name::<T>().into(),
            });
        }
        if entry.channel.reap() {
            return Err(not_registered());
        }
        let channel: Arc<Channel<T>> =
            entry
                .typed
                .downcast()
                .map_err(|_| SubscribeError::TypeMismatch {
                    event: event.name().to_owned(),
                    registered: entry.type_name.into(),
                    requested: std::any::type_name::<T>().into(),
                })?;
        if !subscriber.is_local() {
            return Err(SubscribeError::NotLocal(subscriber.pid()));
        }
        if !subscriber.is_alive() {
            return Err(SubscribeError::NoProc);
        }
        let deliver = deliver_to(subscriber, on_value);
        let id = channel
            .subscribe(Alive::Process(subscriber.handle()), deliver, end)
            .ok_or_else(not_registered)?;
        Ok(Subscription {
            id,
            event: channel.name.clone(),
            channel,
        })
    }
}

impl<A: Actor> Ctx<A> {
    /// Registers `event` owned by this process (see [`Node::register_event`]).
    ///
    /// # Errors
    ///
    /// As [`Node::register_event`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ergo::prelude::*;
    /// use ergo::events::{Event, EventOptions, EventToken};
    ///
    /// const TEMPS: Event<i32> = Event::new("temps");
    ///
    /// #[derive(Default)]
    /// struct Sensor { token: Option<EventToken<i32>> }
    /// #[actor]
    /// impl Sensor {
    ///     #[init]
    ///     fn init(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ergo::events::RegisterEventError> {
    ///         self.token = Some(ctx.register_event(&TEMPS, EventOptions::new().buffer(1))?);
    ///         Ok(())
    ///     }
    ///     #[handle]
    ///     fn read(&mut self, celsius: i32) -> usize {
    ///         self.token.as_ref().map_or(0, |t| t.publish(celsius).unwrap_or(0))
    ///     }
    /// }
    ///
    /// let node = Node::builder("ctx-register-doc@localhost").start().await?;
    /// let sensor = node.spawn(Sensor::default()).await?;
    /// assert_eq!(sensor.read(21).await?, 0); // buffered, nobody subscribed yet
    /// # Ok(()) }
    /// ```
    pub fn register_event<T: Clone + Send + 'static>(
        &self,
        event: &Event<T>,
        options: EventOptions,
    ) -> Result<EventToken<T>, RegisterEventError> {
        self.node().register_event(event, self.pid(), options)
    }

    /// Subscribes this process to `event` by monitor (see [`Node::monitor_event`]).
    ///
    /// # Errors
    ///
    /// As [`Node::monitor_event`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ergo::prelude::*;
    /// use ergo::events::{Event, EventDown, EventOptions, SubscribeError};
    ///
    /// const NEWS: Event<String> = Event::new("news");
    ///
    /// #[derive(Default)]
    /// struct Reader { read: Vec<String> }
    /// #[actor]
    /// impl Reader {
    ///     #[handle]
    ///     fn follow(&mut self, ctx: &mut Ctx<Self>) -> Result<(), SubscribeError> {
    ///         ctx.monitor_event(&NEWS, |s| ReaderMsg::Item { s }, |down| ReaderMsg::Gone { down })?;
    ///         Ok(())
    ///     }
    ///     #[handle]
    ///     fn item(&mut self, s: String) { self.read.push(s) }
    ///     #[handle]
    ///     fn gone(&mut self, down: EventDown) { let _ = down; }
    ///     #[handle]
    ///     fn read(&self) -> Vec<String> { self.read.clone() }
    /// }
    ///
    /// let node = Node::builder("ctx-monitor-doc@localhost").start().await?;
    /// let reader = node.spawn(Reader::default()).await?;
    /// let token = node.register_event(&NEWS, reader.pid(), EventOptions::new())?;
    /// reader.follow().await??;
    /// token.publish("hello".into())?;
    /// assert_eq!(reader.read().await?, vec!["hello".to_owned()]);
    /// # Ok(()) }
    /// ```
    pub fn monitor_event<T, V, D>(
        &self,
        event: &Event<T>,
        on_value: V,
        on_down: D,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + 'static,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
        D: FnOnce(EventDown) -> A::Msg + Send + 'static,
    {
        self.node()
            .monitor_event(event, self.myself(), on_value, on_down)
    }

    /// Subscribes this process to `event` by link (see [`Node::link_event`]).
    ///
    /// # Errors
    ///
    /// As [`Node::monitor_event`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ergo::prelude::*;
    /// use ergo::events::{Event, EventOptions, SubscribeError};
    ///
    /// const JOBS: Event<u32> = Event::new("jobs");
    ///
    /// #[derive(Default)]
    /// struct Follower { n: u32 }
    /// #[actor]
    /// impl Follower {
    ///     #[handle]
    ///     fn follow(&mut self, ctx: &mut Ctx<Self>) -> Result<(), SubscribeError> {
    ///         ctx.link_event(&JOBS, |n| FollowerMsg::Job { n }).map(|_| ())
    ///     }
    ///     #[handle]
    ///     fn job(&mut self, n: u32) { self.n += n }
    ///     #[handle]
    ///     fn total(&self) -> u32 { self.n }
    /// }
    ///
    /// let node = Node::builder("ctx-link-doc@localhost").start().await?;
    /// let follower = node.spawn(Follower::default()).await?;
    /// let token = node.register_event(&JOBS, follower.pid(), EventOptions::new())?;
    /// follower.follow().await??;
    /// token.publish(5)?;
    /// assert_eq!(follower.total().await?, 5);
    /// # Ok(()) }
    /// ```
    pub fn link_event<T, V>(
        &self,
        event: &Event<T>,
        on_value: V,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + 'static,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
    {
        self.node().link_event(event, self.myself(), on_value)
    }
}

// ---------------------------------------------------------------------------------------------
// Across nodes (feature `net`)
// ---------------------------------------------------------------------------------------------

/// What a subscribing node asks the producer's node.
#[cfg(feature = "net")]
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SubRequest {
    pub(crate) name: String,
    pub(crate) type_name: String,
    pub(crate) sub: u64,
}

/// The producer's node's answer.
#[cfg(feature = "net")]
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum SubAnswer {
    Subscribed(Pid),
    NotRegistered,
    TypeMismatch(String),
    NotRemote,
}

/// A subscribing node's subscription of a local event: the registration and the id of the
/// subscriber standing for the node.
#[cfg(feature = "net")]
pub(crate) type RemoteSub = (Arc<dyn Registration>, u64);

/// Producer side: adds the subscribing node behind `sink` to the event `name`.
#[cfg(feature = "net")]
pub(crate) fn subscribe_for_node(
    node: &Node,
    request: &SubRequest,
    sink: crate::net::node::RemoteSink,
) -> (SubAnswer, Option<RemoteSub>) {
    let Some(entry) = node
        .event_table()
        .events
        .get(request.name.as_str())
        .map(|e| e.clone())
    else {
        return (SubAnswer::NotRegistered, None);
    };
    if entry.type_name != request.type_name {
        return (SubAnswer::TypeMismatch(entry.type_name.to_string()), None);
    }
    if entry.channel.reap() {
        return (SubAnswer::NotRegistered, None);
    }
    match entry.channel.subscribe_remote(sink) {
        Err(()) => (SubAnswer::NotRemote, None),
        Ok(None) => (SubAnswer::NotRegistered, None),
        Ok(Some(id)) => (
            SubAnswer::Subscribed(entry.channel.owner_pid()),
            Some((entry.channel.clone(), id)),
        ),
    }
}

/// Subscriber side: what the connection hands a mirror.
#[cfg(feature = "net")]
pub(crate) trait MirrorSink: Send + Sync + 'static {
    /// Decodes one value and publishes it to the local subscribers; `Ok(false)` when none is
    /// left (the subscription can end).
    fn publish_bytes(&self, node: &Node, bytes: &[u8]) -> Result<bool, String>;
    /// The producer's registration ended (or the connection was lost).
    fn close(&self, reason: ExitReason);
}

/// The local stand-in of another node's event: one subscription of this node, fanned out to
/// the local subscribers.
#[cfg(feature = "net")]
pub(crate) struct Mirror<T> {
    channel: Arc<Channel<T>>,
    /// The outcome of the remote subscription, set once by the first local subscriber.
    ready: tokio::sync::OnceCell<Result<(), SubscribeError>>,
    /// Whether the producer confirmed, and an end that came before the confirmation was seen
    /// (it is delivered once the subscription is confirmed).
    confirmed: Mutex<(bool, Option<ExitReason>)>,
    pub(crate) sub: u64,
}

#[cfg(feature = "net")]
impl<T: Clone + Send + serde::de::DeserializeOwned + 'static> Mirror<T> {
    pub(crate) fn new(node: &Node, name: &str, sub: u64) -> Arc<Mirror<T>> {
        Arc::new(Mirror {
            channel: Arc::new(Channel::<T> {
                id: NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed),
                name: Arc::from(name),
                owner: Owner::Remote(std::sync::OnceLock::new()),
                node: node.clone(),
                encode: None,
                buffer: 0,
                closed: AtomicBool::new(false),
                subscribers: AtomicUsize::new(0),
                dropped: AtomicU64::new(0),
                next_sub: AtomicU64::new(1),
                watcher: Mutex::new(None),
                state: Mutex::new(State {
                    subs: Vec::new(),
                    buffer: VecDeque::new(),
                    closed: false,
                }),
            }),
            ready: tokio::sync::OnceCell::new(),
            confirmed: Mutex::new((false, None)),
            sub,
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.channel.closed.load(Ordering::Acquire) || self.channel.state.lock().closed
    }
}

#[cfg(feature = "net")]
impl<T: Clone + Send + serde::de::DeserializeOwned + 'static> MirrorSink for Mirror<T> {
    fn publish_bytes(&self, node: &Node, bytes: &[u8]) -> Result<bool, String> {
        let value = crate::remote::decoding_with(node, || crate::remote::decode_cbor::<T>(bytes))?;
        let _ = self.channel.publish(value);
        Ok(self.channel.subscribers.load(Ordering::Acquire) > 0)
    }

    fn close(&self, reason: ExitReason) {
        let mut confirmed = self.confirmed.lock();
        if confirmed.0 {
            drop(confirmed);
            self.channel.close(reason);
        } else {
            // Not confirmed yet: the subscribe call delivers it once it is (or fails).
            confirmed.1.get_or_insert(reason);
        }
    }
}

#[cfg(feature = "net")]
impl Node {
    /// Subscribes `subscriber` (a process of this node) by monitor to `event` registered on
    /// node `node` (declared there with [`Event::remote`]): as [`Node::monitor_event`], and the
    /// registration also ends, with [`ExitReason::NoConnection`], when the connection to that
    /// node is lost. This node receives one copy of each value however many of its processes
    /// subscribe, and hands it to them in order. Naming this node subscribes locally.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::NotRegistered`], [`SubscribeError::TypeMismatch`] (the types' names
    /// differ on the two nodes), [`SubscribeError::NotRemote`] (registered with
    /// [`Event::new`]), [`SubscribeError::Net`] when the node cannot be reached, and the local
    /// errors of [`Node::monitor_event`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ergo::prelude::*;
    /// use ergo::events::{Event, EventDown, EventOptions};
    ///
    /// const PRICES: Event<u32> = Event::remote("prices");
    ///
    /// struct Feed;
    /// #[actor]
    /// impl Feed {
    ///     #[handle]
    ///     fn ping(&self) {}
    /// }
    /// #[derive(Default)]
    /// struct Chart { seen: Vec<u32> }
    /// #[actor]
    /// impl Chart {
    ///     #[handle]
    ///     fn price(&mut self, p: u32) { self.seen.push(p) }
    ///     #[handle]
    ///     fn gone(&mut self, _d: EventDown) {}
    ///     #[handle]
    ///     fn seen(&self) -> Vec<u32> { self.seen.clone() }
    /// }
    ///
    /// let a = Node::builder("prices-a@localhost").cookie("secret cookie").start().await?;
    /// let feed = a.spawn(Feed).await?;
    /// let token = a.register_event(&PRICES, feed.pid(), EventOptions::new())?;
    ///
    /// let b = Node::builder("prices-b@localhost")
    ///     .cookie("secret cookie")
    ///     .route("prices-a@localhost", a.listen_addr().unwrap().to_string())
    ///     .start()
    ///     .await?;
    /// let chart = b.spawn(Chart::default()).await?;
    /// b.monitor_event_at(&PRICES, "prices-a@localhost", &chart,
    ///     |p| ChartMsg::Price { p }, |d| ChartMsg::Gone { _d: d }).await?;
    /// token.publish(10)?;
    /// token.publish(11)?;
    /// # tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    /// assert_eq!(chart.seen().await?, vec![10, 11]);
    /// # Ok(()) }
    /// ```
    pub async fn monitor_event_at<T, A, V, D>(
        &self,
        event: &Event<T>,
        node: &str,
        subscriber: &ActorRef<A>,
        on_value: V,
        on_down: D,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + serde::de::DeserializeOwned + 'static,
        A: Actor,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
        D: FnOnce(EventDown) -> A::Msg + Send + 'static,
    {
        if node == self.name() {
            return self.monitor_event(event, subscriber, on_value, on_down);
        }
        let end = monitor_end(subscriber, on_down);
        self.subscribe_at(event, node, subscriber, on_value, end)
            .await
    }

    /// Subscribes `subscriber` by link to `event` registered on node `node`: as
    /// [`Node::link_event`], and the subscriber also receives an exit signal with
    /// [`ExitReason::NoConnection`] from the owner when the connection is lost.
    ///
    /// # Errors
    ///
    /// As [`Node::monitor_event_at`].
    pub async fn link_event_at<T, A, V>(
        &self,
        event: &Event<T>,
        node: &str,
        subscriber: &ActorRef<A>,
        on_value: V,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + serde::de::DeserializeOwned + 'static,
        A: Actor,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
    {
        if node == self.name() {
            return self.link_event(event, subscriber, on_value);
        }
        self.subscribe_at(event, node, subscriber, on_value, link_end(subscriber))
            .await
    }

    async fn subscribe_at<T, A, V>(
        &self,
        event: &Event<T>,
        node: &str,
        subscriber: &ActorRef<A>,
        on_value: V,
        end: End,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + serde::de::DeserializeOwned + 'static,
        A: Actor,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
    {
        let net = self
            .net()
            .ok_or(SubscribeError::Net(crate::net::NetError::NotNetworked))?
            .clone();
        if !subscriber.is_local() {
            return Err(SubscribeError::NotLocal(subscriber.pid()));
        }
        if !subscriber.is_alive() {
            return Err(SubscribeError::NoProc);
        }
        let atom = crate::pid::NodeAtom::intern(node);
        let mirror: Arc<Mirror<T>> = net.mirror_for(self, atom, event.name())?;
        let deliver = deliver_to(subscriber, on_value);
        let not_registered = || SubscribeError::NotRegistered(event.name().to_owned());
        let id = mirror
            .channel
            .subscribe(Alive::Process(subscriber.handle()), deliver, end)
            .ok_or_else(not_registered)?;
        // If this call is dropped before it answers, the subscriber leaves the mirror (nobody
        // would hold its `Subscription`).
        struct Leave<'a, T: Clone + Send + 'static>(&'a Channel<T>, Option<u64>);
        impl<T: Clone + Send + 'static> Drop for Leave<'_, T> {
            fn drop(&mut self) {
                if let Some(id) = self.1 {
                    self.0.remove_subscriber(id);
                }
            }
        }
        let mut leave = Leave(&mirror.channel, Some(id));
        let ready = mirror
            .ready
            .get_or_init(|| {
                let (net, node, mirror) = (net.clone(), self.clone(), mirror.clone());
                async move {
                    let sink: Arc<dyn MirrorSink> = mirror.clone();
                    let request = SubRequest {
                        name: mirror.channel.name.to_string(),
                        type_name: std::any::type_name::<T>().to_string(),
                        sub: mirror.sub,
                    };
                    let answer = net.event_subscribe(&node, atom, &request, sink).await;
                    match answer {
                        Ok(SubAnswer::Subscribed(owner)) => {
                            if let Owner::Remote(pid) = &mirror.channel.owner {
                                let _ = pid.set(owner);
                            }
                            let early = {
                                let mut confirmed = mirror.confirmed.lock();
                                confirmed.0 = true;
                                confirmed.1.take()
                            };
                            if let Some(reason) = early {
                                // It ended before we saw the confirmation: tell everyone now.
                                mirror.channel.close(reason);
                            }
                            Ok(())
                        }
                        other => {
                            net.drop_mirror(atom, &request.name, mirror.sub);
                            Err(match other {
                                Ok(SubAnswer::TypeMismatch(registered)) => {
                                    SubscribeError::TypeMismatch {
                                        event: request.name.clone(),
                                        registered,
                                        requested: request.type_name.clone(),
                                    }
                                }
                                Ok(SubAnswer::NotRemote) => {
                                    SubscribeError::NotRemote(request.name.clone())
                                }
                                Ok(_) => SubscribeError::NotRegistered(request.name.clone()),
                                Err(e) => SubscribeError::Net(e),
                            })
                        }
                    }
                }
            })
            .await;
        match ready {
            Ok(()) => {
                leave.1 = None;
                Ok(Subscription {
                    id,
                    event: mirror.channel.name.clone(),
                    channel: mirror.channel.clone(),
                })
            }
            // `leave` removes the subscriber.
            Err(e) => Err(e.clone()),
        }
    }
}
