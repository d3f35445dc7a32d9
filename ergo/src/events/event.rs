//! [`Event`]: a named event and its payload type, with how it is registered
//! ([`EventOptions`]) and how its end is told ([`EventDown`]).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use crate::{ExitReason, Pid};

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
    pub(super) name: Cow<'static, str>,
    pub(super) encode: Option<EncodeFn<T>>,
    pub(super) _payload: PhantomData<fn() -> T>,
}

/// Writes an event's value as CBOR.
pub(super) type EncodeFn<T> = fn(&T, &mut dyn std::io::Write) -> Result<(), String>;

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
            encode: Some(crate::node::codec::encode_cbor::<T>),
            _payload: PhantomData,
        }
    }

    /// [`Event::remote`] with a name computed at run time.
    pub fn named_remote(name: impl Into<String>) -> Self {
        Event {
            name: Cow::Owned(name.into()),
            encode: Some(crate::node::codec::encode_cbor::<T>),
            _payload: PhantomData,
        }
    }
}

impl<T> Event<T> {
    pub(super) fn encoder(&self) -> Option<EncodeFn<T>> {
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
    pub(super) buffer: usize,
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
    /// [`EventToken::unregister`](crate::events::EventToken::unregister).
    pub reason: ExitReason,
}
