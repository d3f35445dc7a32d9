//! The transport seam: what the process core needs from another node, and nothing more.
//!
//! Mailboxes, refs, calls, links and monitors never name a socket or a frame. When a ref, a link
//! or a monitor points at a process of another node, the core goes through the traits of this
//! module:
//!
//! - [`Transport`]: a node's network as a whole: the [`Peer`] for a node name (made, and
//!   reached, on first use), call ids, the node services it carries (events across nodes),
//!   shutdown;
//! - [`Peer`]: one link to one other node: deliver an encoded message to a pid, send a signal,
//!   expect a call's reply, watch a process on behalf of the node itself, node-level requests
//!   and notices, and whether the link is up;
//! - [`ReplyChannel`]: the way back for the reply to a call that came from another node.
//!
//! `net` implements them over TCP (and TLS); a simulated network can implement them for tests.
//! A node is given its transport once, when it starts (`node/builder.rs`, the one place that
//! names `net`).
//!
//! # Bytes
//!
//! What crosses the seam is already encoded: a message by its actor's
//! [`RemoteVTable`] (CBOR), a reply likewise. A transport only
//! moves bytes; the receiving process decodes its own message type ([`crate::actor::mailbox`]'s
//! `deliver_encoded`), in the order the transport hands them over.
//!
//! # Order
//!
//! A transport keeps the order of everything this node sends to one pid of the peer: messages
//! and signals alike (an exit signal never overtakes an earlier message to the same process).
//!
//! # Failure
//!
//! A link that goes down stays down: [`Peer::is_down`] turns true, pending calls fail with
//! [`CallError::NoConnection`], and every link and monitor across it fires once with
//! [`ExitReason::NoConnection`]. The next [`Transport::peer`] makes a new link.

mod remote_ref;
mod reply;

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::NetError;
use crate::exit::{ExitReason, MonitorRef};
use crate::node::codec::{decode_cbor, encode_cbor_vec};
use crate::node::{Node, Sys};
use crate::pid::NodeAtom;
use crate::{CallError, Pid};

pub(crate) use remote_ref::{RemoteCall, RemoteRef};
pub use reply::ReplyRoute;
pub(crate) use reply::{RemoteReply, ReplyChannel};

/// A node's network, as the core sees it.
pub(crate) trait Transport: Send + Sync + 'static {
    /// The link to node `node`, made (and dialled in the background) if there is none or the
    /// last one went down.
    ///
    /// # Errors
    ///
    /// [`NetError`] when no link can be made now (no route, backoff after a failed attempt,
    /// shutting down).
    fn peer(&self, node: NodeAtom) -> Result<Arc<dyn Peer>, NetError>;

    /// A number unique among this node's calls, requests and subscriptions.
    fn next_correlation(&self) -> u64;

    /// Adds the handler of node-level service frames ([`ServiceFrame`]) from every peer, and of
    /// every peer link's end.
    fn add_service(&self, service: Arc<dyn NodeService>);

    /// Starts serving (accepting peers, registering with discovery) once the node exists.
    fn start(&self, node: &Node);

    /// Lets queued traffic go out (up to `grace`), then closes every link.
    fn shutdown(&self, grace: Duration) -> BoxFuture<'_, ()>;

    /// The transport itself, for the API of the module that implements it.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// How full a link's queue may be for a send to go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// Casts: refused with [`SendFailure::Full`] above the queue's high water mark (the
    /// sender waits, or `try_cast` reports it).
    Bounded,
    /// Published event values: refused above a larger mark (a publish never waits; a value
    /// over it is dropped and counted), so a burst of events has room a cast window does not.
    Events,
    /// Calls, replies, signals and node requests: queued whatever the backlog (a link whose
    /// peer does not read at all is given up by the transport).
    Always,
}

/// Why a transport did not queue something.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// The link is down (or closing).
    Closed,
    /// The queue is above its high water mark ([`Room::Bounded`] sends only).
    Full,
    /// The transport refused these bytes (larger than its frame limit, say).
    Refused(String),
}

impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendFailure::Closed => f.write_str("the connection is closed"),
            SendFailure::Full => f.write_str("the connection's buffer is full"),
            SendFailure::Refused(e) => f.write_str(e),
        }
    }
}

/// A call waiting for its reply from another node.
pub(crate) struct PendingCall {
    /// Decodes the reply and hands it to the waiting call.
    pub(crate) reply: PendingReply,
    /// Why the call failed, set before the reply slot is dropped without a value.
    pub(crate) error: Arc<OnceLock<CallError>>,
}

/// One link to one other node.
pub(crate) trait Peer: Send + Sync + 'static {
    /// Tells this link from every other, including later links to the same node.
    fn id(&self) -> u64;

    /// The peer node.
    fn node(&self) -> NodeAtom;

    /// Whether the link is down (for good: the next use makes a new one).
    fn is_down(&self) -> bool;

    /// Whether `pid` belongs to another run (creation) of the peer node than the one linked.
    fn is_stale(&self, pid: Pid) -> bool;

    /// Queues an encoded message for the peer's process `to`; `call` is the id of a call whose
    /// reply was filed with [`Peer::expect`].
    fn send(
        &self,
        to: Pid,
        call: Option<u64>,
        payload: &[u8],
        room: Room,
    ) -> Result<(), SendFailure>;

    /// Waits until a [`Room::Bounded`] send to `to` could go ahead, or the link is down.
    fn wait_room(&self, to: Pid) -> BoxFuture<'_, ()>;

    /// Files the reply slot of call `correlation`: its reply, its failure, or the link going
    /// down completes it.
    fn expect(&self, correlation: u64, call: PendingCall);

    /// Forgets the reply slot of call `correlation` (its caller gave up): a late reply is
    /// dropped.
    fn forget(&self, correlation: u64);

    /// Sends a signal to the peer's process `to`, and records links and monitors so that the
    /// link's loss fires them. Hands the signal back if it could not be sent.
    fn signal(&self, to: Pid, sys: Sys) -> Result<(), Sys>;

    /// Monitors the peer's process `pid` on behalf of this node itself (no local process):
    /// `down` receives the reason it ended with. `false` if the monitor could not be sent.
    fn watch(&self, pid: Pid, monitor: MonitorRef, down: oneshot::Sender<ExitReason>) -> bool;

    /// Removes a [`Peer::watch`] that has not fired (its waiter gave up).
    fn unwatch(&self, pid: Pid, monitor: MonitorRef);

    /// Sends a node-level request (`frame`, on the lane chosen by `route`) and waits up to
    /// `timeout` for its answer's bytes.
    fn request(
        self: Arc<Self>,
        frame: ServiceFrame,
        route: u64,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, NetError>>;

    /// Queues a node-level notice; `write` writes its payload. Notices with the same
    /// `correlation` keep their order.
    fn notify(
        &self,
        frame: ServiceFrame,
        correlation: u64,
        room: Room,
        write: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<(), String>,
    ) -> Result<(), SendFailure>;

    /// The error that says this link is down, and why.
    fn no_connection(&self) -> NetError;
}

/// The node-level traffic of a node service (today the one service is events across nodes),
/// besides messages, calls and signals: publish/subscribe between two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServiceFrame {
    /// A request to subscribe to something of the receiving node (answered).
    Subscribe,
    /// One published value of a subscription (`correlation`: the subscription).
    Publish,
    /// What a subscription was to ended (payload: the reason).
    Down,
    /// The subscribing node ends a subscription.
    Unsubscribe,
}

/// What a node service does with its frames, and with the end of a link.
pub(crate) trait NodeService: Send + Sync + 'static {
    /// Whether this service handles `frame`.
    fn handles(&self, frame: ServiceFrame) -> bool;

    /// A frame of this service came from `peer`; `answer` sends the answer to a request back
    /// on the connection it came on.
    ///
    /// # Errors
    ///
    /// A payload that does not decode: the transport takes the link down.
    fn on_frame(
        &self,
        node: &Node,
        peer: &Arc<dyn Peer>,
        frame: ServiceFrame,
        correlation: u64,
        payload: &[u8],
        answer: &mut dyn FnMut(&[u8]),
    ) -> Result<(), String>;

    /// The link `peer` (a [`Peer::id`]) went down: forget everything kept for it.
    fn on_peer_down(&self, node: &Node, peer: u64);
}

/// Why a message from another node could not be handed to a process.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliverError {
    /// The process has ended.
    #[error("no such process")]
    NoProc,
    /// The actor takes no messages from other nodes.
    #[error(
        "actor `{0}` does not accept messages from other nodes (declare it `#[actor(remote)]`)"
    )]
    NotRemote(&'static str),
    /// The bytes are not a message of the actor.
    #[error("the message did not decode: {0}")]
    Decode(String),
}

/// Why a call that came from another node failed, as its caller is told.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum CallFailure {
    /// No such process (or of another run).
    NoProc,
    /// The process ended before replying.
    Exited(ExitReason),
    /// The message or its reply could not be decoded, encoded or sent.
    BadMessage(String),
}

impl From<CallFailure> for CallError {
    fn from(f: CallFailure) -> Self {
        match f {
            CallFailure::NoProc => CallError::NoProc,
            CallFailure::Exited(reason) => CallError::Exited(reason),
            CallFailure::BadMessage(e) => CallError::BadMessage(e),
        }
    }
}

thread_local! {
    /// Where messages and replies are encoded before a transport copies them (reused: no
    /// allocation per message once it has grown to the usual size).
    static ENCODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Encodes with `encode` into a reused buffer, outside any lock, then hands the bytes to
/// `send`.
pub(crate) fn with_encoded(
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
    send: impl FnOnce(&[u8]) -> Result<(), SendFailure>,
) -> Result<(), SendFailure> {
    let run = |buf: &mut Vec<u8>| {
        buf.clear();
        encode(buf)
            .map_err(|e| SendFailure::Refused(format!("the message could not be encoded: {e}")))?;
        let sent = send(buf);
        if buf.capacity() > 64 * 1024 {
            // Do not keep a huge buffer after an exceptional message.
            *buf = Vec::new();
        }
        sent
    };
    ENCODE_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        // Re-entered (a serializer that sends?): use a fresh buffer.
        Err(_) => run(&mut Vec::new()),
    })
}

/// A call's reply as the caller's node waits for it: decodes the reply's bytes and hands the
/// value to the waiting call.
#[doc(hidden)]
pub struct PendingReply {
    pub(crate) deliver: DeliverReply,
}

/// Decodes a reply's bytes into the waiting call's slot; on a decoding error it records the
/// error in the given slot before giving the call up.
pub(crate) type DeliverReply =
    Box<dyn FnOnce(&[u8], &std::sync::OnceLock<crate::CallError>) -> Result<(), String> + Send>;

impl std::fmt::Debug for PendingReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingReply")
    }
}

/// The transport's view of a remote actor's message type. Not public API.
#[doc(hidden)]
pub struct RemoteVTable<M> {
    pub(crate) encode: fn(&M, &mut Vec<u8>) -> Result<(), String>,
    pub(crate) decode: fn(&[u8]) -> Result<M, String>,
    pub(crate) take_reply: fn(&mut M) -> Option<PendingReply>,
    pub(crate) set_reply: fn(&mut M, ReplyRoute),
}

impl<M> Clone for RemoteVTable<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for RemoteVTable<M> {}

impl<M: Serialize + DeserializeOwned + Send + 'static> RemoteVTable<M> {
    /// A table for `M`: CBOR for the message, and the generated functions that take a local
    /// reply slot out of a call (`take_reply`) and put a remote one in (`set_reply`).
    pub fn new(
        take_reply: fn(&mut M) -> Option<PendingReply>,
        set_reply: fn(&mut M, ReplyRoute),
    ) -> Self {
        RemoteVTable {
            encode: encode_cbor_vec::<M>,
            decode: decode_cbor::<M>,
            take_reply,
            set_reply,
        }
    }
}
