//! The handles a producer and a subscriber hold: [`EventToken`] and [`Subscription`].

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::channel::{AnyChannel, Channel};
use crate::error::PublishError;
use crate::{ExitReason, Pid};

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
    pub(super) channel: Arc<Channel<T>>,
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
    /// [`EventDown`](crate::events::EventDown) with [`ExitReason::Normal`], and subscribers by link an exit signal with
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
    pub(super) channel: Arc<dyn AnyChannel>,
    pub(super) id: u64,
    pub(super) event: Arc<str>,
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
