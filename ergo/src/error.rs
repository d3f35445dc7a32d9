//! Error types, one per operation family.
//!
//! Errors that concern a message hand the message back ([`SendError`], [`TrySendError`]) so
//! nothing is lost: the caller decides whether to retry, reroute or drop it.

use std::fmt;

use crate::ExitReason;

/// A cast could not be delivered because the process has ended; the message is handed back.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
/// use ergo::prelude::*;
/// struct Sink;
/// #[actor]
/// impl Sink {
///     #[handle]
///     fn put(&mut self, _v: u32) {}
/// }
/// let node = Node::builder("send-error@localhost").start().await?;
/// let sink = node.spawn(Sink).await?;
/// sink.kill();
/// sink.wait().await;
/// let err = sink.put(7).await.unwrap_err();
/// assert!(matches!(err.0, SinkMsg::Put { _v: 7 }));
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SendError<M>(pub M);

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the process has exited; message returned")
    }
}

impl<M> std::error::Error for SendError<M> {}

/// A non-waiting send failed; the message is handed back.
#[derive(Clone, PartialEq, Eq)]
pub enum TrySendError<M> {
    /// The bounded mailbox is full.
    Full(M),
    /// The process has ended.
    Closed(M),
}

impl<M> TrySendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            TrySendError::Full(m) | TrySendError::Closed(m) => m,
        }
    }
}

impl<M> fmt::Debug for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<M> fmt::Display for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the mailbox is full; message returned"),
            TrySendError::Closed(_) => f.write_str("the process has exited; message returned"),
        }
    }
}

impl<M> std::error::Error for TrySendError<M> {}

/// A call (request/reply) failed. The handler's own error, if it returns a `Result`, is not a
/// `CallError`: it arrives as the `Ok` value of the call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No reply within the call's timeout; a reply arriving later is dropped.
    #[error("call timed out")]
    Timeout,
    /// The process did not exist when the call was made.
    #[error("no such process")]
    NoProc,
    /// The process ended before it replied (it panicked, was killed or stopped).
    #[error("process exited before replying ({0})")]
    Exited(ExitReason),
    /// The node of the process could not be reached, or the connection to it was lost before
    /// the reply came.
    #[error("no connection to the node of the process")]
    NoConnection,
    /// The request or its reply could not cross the network: it did not encode or decode (the
    /// two nodes disagree on the message type), was above the maximum frame size, or went to
    /// an actor that does not accept remote messages.
    #[error("the call could not be carried: {0}")]
    BadMessage(String),
}

/// Starting a process failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The actor's `init` hook returned an error (or panicked); the process did not start.
    #[error("init failed: {0}")]
    Init(ExitReason),
    /// The name asked for in the spawn options is already registered.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// The node is shutting down and starts no new processes.
    #[error("the node is shutting down")]
    NodeDown,
}

/// Registering a name failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// Another live process holds the name.
    #[error("the name `{0}` is already registered")]
    NameTaken(String),
    /// The process already has a registered name (a process has at most one).
    #[error("the process is already registered as `{0}`")]
    AlreadyNamed(String),
    /// The process has ended.
    #[error("no such process")]
    NoProc,
    /// The ref is of a process of another node: a name is registered on the node of its
    /// process.
    #[error("{0} is not a process of this node")]
    NotLocal(crate::Pid),
}

/// The error of node-level operations, convertible from every error above so `?` works in
/// `main`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A spawn failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A registration failed.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// An application could not be loaded, started or stopped.
    #[error(transparent)]
    App(#[from] AppError),
    /// A supervisor could not start, stop or find a child.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// An event could not be registered.
    #[error(transparent)]
    RegisterEvent(#[from] RegisterEventError),
    /// A subscription failed.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// A publish failed because the event is not registered.
    #[error("the event is not registered; value dropped")]
    Publish,
    /// A meta process (socket) could not start.
    #[error(transparent)]
    Meta(#[from] StartError),
    /// A network operation (connect, lookup) failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A remote spawn or remote application start failed.
    #[error(transparent)]
    RemoteSpawn(#[from] RemoteSpawnError),
    /// A cast failed because the process has ended.
    #[error("the process has exited; message dropped")]
    Send,
    /// The node configuration is invalid.
    #[error("invalid node configuration: {0}")]
    Config(String),
}

impl<M> From<SendError<M>> for Error {
    fn from(_: SendError<M>) -> Self {
        Error::Send
    }
}

impl<T> From<PublishError<T>> for Error {
    fn from(_: PublishError<T>) -> Self {
        Error::Publish
    }
}

impl<M> From<TrySendError<M>> for Error {
    fn from(_: TrySendError<M>) -> Self {
        Error::Send
    }
}

/// Why a network operation of a node failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The node was started without a cookie, so it has no network.
    #[error("this node has no network (start it with a cookie)")]
    NotNetworked,
    /// No address is known for the node (add a route).
    #[error("no route to node `{0}`")]
    NoRoute(String),
    /// The node could not be reached, or the connection to it was lost.
    #[error("no connection to node `{node}`: {reason}")]
    NoConnection {
        /// The peer.
        node: String,
        /// What went wrong.
        reason: String,
    },
    /// The peer did not answer in time.
    #[error("node `{0}` did not answer in time")]
    Timeout(String),
    /// No process is registered under the name on that node.
    #[error("no process is registered as `{name}` on node `{node}`")]
    NotFound {
        /// The name looked up.
        name: String,
        /// The node asked.
        node: String,
    },
    /// The name is registered to a process of another actor type.
    #[error("`{name}` runs actor `{found}`, not `{expected}`")]
    WrongActor {
        /// The name looked up.
        name: String,
        /// The actor type asked for.
        expected: &'static str,
        /// The actor type it runs.
        found: String,
    },
    /// The address could not be parsed or bound.
    #[error("invalid address `{0}`")]
    Address(String),
}

/// Why a remote spawn or a remote application start failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteSpawnError {
    /// The peer does not allow that factory or application name.
    #[error("node `{node}` does not allow starting `{name}`")]
    NotAllowed {
        /// The peer.
        node: String,
        /// The name asked for.
        name: String,
    },
    /// The factory makes another actor type than the one asked for.
    #[error("`{name}` makes actor `{found}`, not `{expected}`")]
    WrongActor {
        /// The name asked for.
        name: String,
        /// The actor type asked for.
        expected: &'static str,
        /// The actor type the factory makes.
        found: String,
    },
    /// The arguments did not decode as the factory's argument type.
    #[error("the arguments do not fit `{name}`: {reason}")]
    BadArgs {
        /// The name asked for.
        name: String,
        /// The decoding error.
        reason: String,
    },
    /// The process's `init` failed, or the application did not start.
    #[error("`{name}` failed to start: {reason}")]
    Failed {
        /// The name asked for.
        name: String,
        /// Why.
        reason: String,
    },
    /// The peer could not be reached or did not answer.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// Starting a meta process (a TCP or UDP socket, an HTTP server) failed.
///
/// ```
/// use ergo::meta::StartError;
/// let err = StartError::from(std::io::Error::from(std::io::ErrorKind::AddrInUse));
/// assert!(err.to_string().starts_with("socket error"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Binding or connecting the socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// Spawning the supervisor or the actor failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// Why an application operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// No application of this name is loaded.
    #[error("no application `{0}` is loaded")]
    NotLoaded(String),
    /// An application of this name is already loaded.
    #[error("an application `{0}` is already loaded")]
    AlreadyLoaded(String),
    /// The dependencies form a cycle (the names along it).
    #[error("applications depend on each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// The root of `app` failed to start.
    #[error("application `{app}` failed to start: {error}")]
    Start {
        /// The application whose root failed.
        app: String,
        /// Why.
        error: SpawnError,
    },
    /// The application is not running.
    #[error("application `{0}` is not running")]
    NotRunning(String),
}

/// Why a supervisor operation on a child failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// No child has this id.
    #[error("no child with id `{0}`")]
    NotFound(String),
    /// The child is running (it must be terminated first).
    #[error("child `{0}` is running")]
    Running(String),
    /// A child with this id already exists.
    #[error("a child with id `{0}` already exists")]
    AlreadyPresent(String),
    /// Starting the child failed.
    #[error("child failed to start: {0}")]
    Start(SpawnError),
}

// The errors of registering, subscribing to and publishing events.

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
