//! The errors of registering, subscribing and publishing.

use std::fmt;

use crate::error::NetError;

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
    /// The event was registered with [`Event::new`](crate::events::Event::new): only processes of its own node can
    /// subscribe. Declare it with [`Event::remote`](crate::events::Event::remote).
    #[error(
        "the event `{0}` is not declared remote (`Event::remote`): only its own node can subscribe"
    )]
    NotRemote(String),
    /// The producer's node could not be reached or did not answer.
    #[error(transparent)]
    Net(#[from] NetError),
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
