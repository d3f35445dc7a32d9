//! Events: typed publish/subscribe between the processes of a node.
//!
//! A producer process registers an [`Event<T>`] (a name plus the payload type `T`) and gets an
//! [`EventToken<T>`] to publish with. Other processes subscribe to the event by name, either by
//! monitor ([`Node::monitor_event`](crate::Node::monitor_event), [`Ctx::monitor_event`](crate::Ctx::monitor_event)) or by link ([`Node::link_event`](crate::Node::link_event),
//! [`Ctx::link_event`](crate::Ctx::link_event)), and receive every value published after they subscribed.
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
//!   reason is [`ExitReason::Normal`](crate::ExitReason::Normal) or it traps exits (then its `#[on_exit]` hook receives the
//!   signal). An explicit [`EventToken::unregister`] sends [`ExitReason::Normal`](crate::ExitReason::Normal). The link is
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
//! with [`ActorRef::try_cast`](crate::ActorRef::try_cast). A subscriber with a full bounded mailbox misses the value; misses
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
//! # Across nodes
//!
//! An event declared with [`Event::remote`] can be subscribed from other nodes (nodes with a
//! network: feature `net` and a cookie)
//! ([`Node::monitor_event_at`](crate::Node::monitor_event_at), [`Node::link_event_at`](crate::Node::link_event_at)). A subscribing node asks the producer's
//! node once, however many of its processes subscribe, and receives one network copy of each
//! value, which it fans out to its local subscribers in order. The end of the registration, or
//! the loss of the connection (with [`ExitReason::NoConnection`](crate::ExitReason::NoConnection)), reaches every subscriber
//! once. Publishing still never waits: a value for a node whose connection has 4 MiB queued is
//! dropped for that node (counted by [`EventToken::dropped`]); a producer that must not lose
//! values paces itself (for example, by a window of values acknowledged by its subscribers).

mod channel;
mod event;
mod handles;
mod remote;
mod subscribe;

pub use crate::error::{PublishError, RegisterEventError, SubscribeError};
pub use event::{Event, EventDown, EventOptions};
pub use handles::{EventToken, Subscription};
pub(crate) use remote::node_service;
