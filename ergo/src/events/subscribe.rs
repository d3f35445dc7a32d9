//! The entry points on [`Node`] and [`Ctx`]: registering an event and subscribing to one by
//! monitor or by link, and how a subscriber is handed values and the end.

use std::any::TypeId;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::channel::{Alive, AnyChannel, Channel, Deliver, End, Entry, Outcome, Owner};
use super::event::{Event, EventDown, EventOptions};
use super::handles::{EventToken, Subscription};
use crate::error::{RegisterEventError, SubscribeError};
use crate::{Actor, ActorRef, Ctx, Node, Pid, TrySendError};

/// The end notice of a subscription by monitor: `on_down(EventDown)` into the subscriber's
/// mailbox, never dropped (a full mailbox gets it from a task that waits for room).
pub(super) fn monitor_end<A, D>(subscriber: &ActorRef<A>, on_down: D) -> End
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
pub(super) fn link_end<A: Actor>(subscriber: &ActorRef<A>) -> End {
    let target = subscriber.clone();
    Box::new(move |down: &EventDown| {
        target.exit(down.producer, down.reason.clone());
    })
}

/// Hands each value to the subscriber as `on_value(v)`, without waiting.
pub(super) fn deliver_to<T, A, V>(subscriber: &ActorRef<A>, on_value: V) -> Deliver<T>
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
        let channel = Arc::new(Channel::new(
            name.clone(),
            Owner::Process(owner.clone()),
            self.clone(),
            event.encoder(),
            options.buffer,
        ));
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

    pub(super) fn subscribe<T, A, V>(
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
