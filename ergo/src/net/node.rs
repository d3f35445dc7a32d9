//! The node's connections to other nodes: listening, dialling, the reader and writer task of
//! each connection, and what travels over them (messages, calls and replies, exit signals,
//! links, monitors, down notices, name lookups, heartbeats).
//!
//! # Shape
//!
//! - A node with a cookie listens (on `127.0.0.1:0` unless told otherwise) and accepts peers
//!   that pass the cookie handshake; at most `max_handshakes` run at once, each within the
//!   handshake timeout, with 64 KiB frames.
//! - The first use of a peer (a send to one of its pids, a lookup, `connect`) creates its
//!   [`PeerLink`] and dials `connections_per_peer` connections to the address its static route
//!   gives. Frames sent meanwhile wait in the connections' buffers. A failed dial fails the
//!   calls waiting on it and makes further attempts wait (backoff, 100 ms doubling to 5 s).
//! - Traffic from this node to a peer goes over the connections this node dialled, the one for
//!   a target pid chosen by its id (so messages to one process keep their order); when the
//!   peer dialled this node instead, over the first connection it opened. Replies go back over
//!   the connection their call came in on.
//! - Each connection has a writer task that drains its buffer into one write per wake-up
//!   (coalescing everything queued meanwhile) and sends a heartbeat when idle, and a reader
//!   task that decodes frames and hands them to processes. A reader that hears nothing for the
//!   heartbeat timeout, a closed or failed socket, or a malformed frame takes the whole peer
//!   link down.
//! - A link going down fails its waiting calls with `NoConnection`, and fires every link and
//!   monitor across it once with `ExitReason::NoConnection`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use dashmap::DashMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frame::{Frame, FrameCodec, FrameError, FrameKind, Header, PayloadWriter, WirePid};
use super::handshake::{handshake, HandshakeConfig, Role};
use crate::exit::{Down, ExitReason, MonitorRef};
use crate::mailbox::{ProcHandle, Sys, Target};
use crate::pid::NodeAtom;
use crate::remote::{decode_cbor, encode_cbor, PendingReply, RemoteVTable};
use crate::{Actor, CallError, Node, Pid, SendError, TrySendError};

/// A connection's outgoing buffer above which casts wait (and `try_cast` reports `Full`).
const HIGH_WATER: usize = 4 * 1024 * 1024;

/// A writer keeps buffers up to this capacity between writes (two per connection), so a busy
/// connection does not reallocate (and page-fault) its buffers on every burst.
const KEEP_CAPACITY: usize = 2 * HIGH_WATER;

/// A connection's outgoing buffer above which nothing more is queued and the connection is
/// given up (its peer does not read what it asks for).
const HARD_LIMIT: usize = 8 * HIGH_WATER;

/// The network settings of a node (see the `NodeBuilder` methods that set them).
#[derive(Clone)]
pub(crate) struct NetOptions {
    pub(crate) registrar: Option<Arc<dyn super::Registrar>>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::tls::TlsConfig>,
    pub(crate) cookie: Option<Vec<u8>>,
    pub(crate) listen: Option<String>,
    pub(crate) accept: bool,
    pub(crate) routes: Vec<(String, String)>,
    pub(crate) connections_per_peer: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) max_frame_len: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_handshakes: usize,
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for NetOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetOptions")
            .field("cookie", &self.cookie.as_ref().map(|_| "<redacted>"))
            .field("listen", &self.listen)
            .field("accept", &self.accept)
            .field("routes", &self.routes)
            .field("registrar", &self.registrar.is_some())
            .field("connections_per_peer", &self.connections_per_peer)
            .field("heartbeat", &self.heartbeat)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("max_frame_len", &self.max_frame_len)
            .finish_non_exhaustive()
    }
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            registrar: Some(Arc::new(super::EmbeddedRegistrar::new())),
            #[cfg(feature = "tls")]
            tls: None,
            cookie: None,
            listen: None,
            accept: true,
            routes: Vec::new(),
            connections_per_peer: 2,
            heartbeat: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(5),
            max_frame_len: super::frame::DEFAULT_MAX_FRAME_LEN,
            handshake_timeout: super::handshake::DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: 64,
            connect_timeout: Duration::from_secs(5),
        }
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

/// An authenticated connection's byte stream: plain TCP, or TLS over it.
pub(crate) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(feature = "tls")]
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// The network half of a node.
pub(crate) struct Net {
    pub(crate) opts: NetOptions,
    handshake: HandshakeConfig,
    codec: FrameCodec,
    local_addr: Option<SocketAddr>,
    listener: Mutex<Option<TcpListener>>,
    routes: DashMap<Arc<str>, SocketAddr>,
    peers: DashMap<NodeAtom, Arc<PeerLink>, rustc_hash::FxBuildHasher>,
    backoff: DashMap<NodeAtom, (Instant, Duration)>,
    handshakes: Arc<Semaphore>,
    cancel: CancellationToken,
    next_call: AtomicU64,
    node: OnceLock<crate::node::WeakNode>,
    /// Mirrors of other nodes' events, by (node, event name); typed `Arc<Mirror<T>>`.
    mirrors: DashMap<(NodeAtom, Arc<str>), MirrorEntry>,
    /// The factories other nodes may spawn, by name (empty: remote spawn is off).
    pub(crate) spawners: DashMap<String, Arc<dyn super::spawn::Spawner>>,
    /// The applications other nodes may start.
    pub(crate) remote_apps: DashMap<String, ()>,
}

const CONNECTING: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// Everything this node shares with one peer node over a group of connections.
pub(crate) struct PeerLink {
    atom: NodeAtom,
    name: Arc<str>,
    creation: AtomicU32,
    state: AtomicU8,
    up: Notify,
    /// The connections this node sends on (fixed when the link is made).
    outs: Vec<Arc<Conn>>,
    /// Further connections the peer opened (read from, replied on, closed with the link).
    extra: Mutex<Vec<Arc<Conn>>>,
    pending: Mutex<HashMap<u64, Pending>>,
    reg: Mutex<Registry>,
    down_reason: OnceLock<String>,
    codec: FrameCodec,
    /// Events of the peer this node subscribes to, by subscription id.
    mirrors: Mutex<HashMap<u64, Arc<dyn crate::events::MirrorSink>>>,
    /// This node's events the peer subscribes to: subscription id -> (registration, the
    /// subscriber id standing for the peer).
    remote_subs: Mutex<HashMap<u64, crate::events::RemoteSub>>,
}

/// Links and monitors across the link, so its loss fires each once.
#[derive(Default)]
struct Registry {
    /// (local process id, remote pid id) -> the remote pid, for links in either direction.
    links: HashMap<(u64, u64), Pid>,
    /// Monitors held by this node's processes (or waiters) on the peer's: ref -> (watcher,
    /// the monitored pid).
    monitors: HashMap<u64, (Watcher, Pid)>,
    /// Monitors the peer's processes hold on this node's: (local id, ref, remote watcher).
    watched: HashSet<(u64, u64, Pid)>,
}

enum Watcher {
    Process(u64),
    Waiter(oneshot::Sender<ExitReason>),
}

struct Pending {
    reply: PendingReply,
    error: Arc<OnceLock<CallError>>,
}

/// One connection's outgoing side.
pub(crate) struct Conn {
    /// Why this connection was given up on by its own side (its buffer overflowed, its peer
    /// stopped reading): the reader reports it and the link goes down.
    failure: OnceLock<String>,
    out: Mutex<Outbox>,
    wake: Notify,
    room: Notify,
    cancel: CancellationToken,
}

struct Outbox {
    bytes: BytesMut,
    closed: bool,
}

#[derive(Debug)]
enum PushError {
    Closed,
    Full,
    Encode(String),
    Frame(FrameError),
}

impl From<FrameError> for PushError {
    fn from(e: FrameError) -> Self {
        PushError::Frame(e)
    }
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Closed => f.write_str("the connection is closed"),
            PushError::Full => f.write_str("the connection's buffer is full"),
            PushError::Encode(e) => write!(f, "the message could not be encoded: {e}"),
            PushError::Frame(e) => write!(f, "{e}"),
        }
    }
}

impl Conn {
    fn new(cancel: CancellationToken) -> Arc<Conn> {
        Arc::new(Conn {
            failure: OnceLock::new(),
            out: Mutex::new(Outbox {
                bytes: BytesMut::new(),
                closed: false,
            }),
            wake: Notify::new(),
            room: Notify::new(),
            cancel,
        })
    }

    /// Appends one frame to the buffer and wakes the writer if it was idle.
    fn push(
        &self,
        codec: &FrameCodec,
        header: &Header,
        payload: impl FnOnce(&mut PayloadWriter<'_>) -> Result<(), PushError>,
    ) -> Result<(), PushError> {
        self.push_below(usize::MAX, codec, header, payload)
    }

    /// [`Conn::push`] unless the buffer already holds `limit` bytes or more.
    #[inline]
    fn push_below(
        &self,
        limit: usize,
        codec: &FrameCodec,
        header: &Header,
        payload: impl FnOnce(&mut PayloadWriter<'_>) -> Result<(), PushError>,
    ) -> Result<(), PushError> {
        let mut out = self.out.lock();
        if out.closed {
            return Err(PushError::Closed);
        }
        if out.bytes.len() >= limit {
            return Err(PushError::Full);
        }
        if out.bytes.len() >= HARD_LIMIT {
            // Even frames that never wait (replies, signals) stop here: the peer does not read
            // what it asks for. Give the connection up rather than grow without bound.
            out.closed = true;
            drop(out);
            self.fail(format!(
                "more than {HARD_LIMIT} bytes queued for a peer that does not read them"
            ));
            return Err(PushError::Closed);
        }
        let was_empty = out.bytes.is_empty();
        codec.encode_frame_with(header, &mut out.bytes, payload)?;
        drop(out);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    fn push_value<T: Serialize>(
        &self,
        codec: &FrameCodec,
        header: &Header,
        value: &T,
    ) -> Result<(), PushError> {
        self.push(codec, header, |w| {
            encode_cbor(value, w as &mut dyn std::io::Write).map_err(PushError::Encode)
        })
    }

    fn is_closed(&self) -> bool {
        self.out.lock().closed
    }

    /// Gives the connection up: its reader ends with `reason` and takes the link down.
    fn fail(&self, reason: String) {
        let _ = self.failure.set(reason);
        self.close();
    }

    /// Why the connection was given up, if it was (for the reader to report).
    fn ended(&self) -> Result<(), String> {
        match self.failure.get() {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    fn close(&self) {
        self.out.lock().closed = true;
        self.cancel.cancel();
        self.room.notify_waiters();
    }

    /// Waits until the buffer has room (or the connection closes).
    async fn wait_room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let out = self.out.lock();
                if out.closed || out.bytes.len() < HIGH_WATER {
                    return;
                }
            }
            notified.await;
        }
    }
}

/// What a `CallFailed` frame says.
#[derive(Serialize, Deserialize)]
enum WireFailure {
    NoProc,
    Exited(ExitReason),
    BadMessage(String),
}

impl From<WireFailure> for CallError {
    fn from(f: WireFailure) -> Self {
        match f {
            WireFailure::NoProc => CallError::NoProc,
            WireFailure::Exited(reason) => CallError::Exited(reason),
            WireFailure::BadMessage(e) => CallError::BadMessage(e),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LookupRequest {
    name: String,
}

#[derive(Serialize, Deserialize)]
enum LookupAnswer {
    Found {
        id: u64,
        creation: u32,
        actor: String,
        remote: bool,
    },
    NotFound,
}

impl PeerLink {
    fn new(atom: NodeAtom, state: u8, outs: Vec<Arc<Conn>>, codec: FrameCodec) -> Arc<PeerLink> {
        Arc::new(PeerLink {
            atom,
            name: atom.name(),
            creation: AtomicU32::new(0),
            state: AtomicU8::new(state),
            up: Notify::new(),
            outs,
            extra: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            reg: Mutex::new(Registry::default()),
            down_reason: OnceLock::new(),
            codec,
            mirrors: Mutex::new(HashMap::new()),
            remote_subs: Mutex::new(HashMap::new()),
        })
    }

    fn is_down(&self) -> bool {
        self.state.load(Ordering::Acquire) == DOWN
    }

    /// The peer's creation, once a connection is up (0 before).
    fn creation(&self) -> u32 {
        self.creation.load(Ordering::Acquire)
    }

    /// Whether a pid of the peer is of an earlier (or later) run than the one connected.
    fn is_stale(&self, pid: Pid) -> bool {
        let creation = self.creation();
        creation != 0 && creation != pid.creation()
    }

    /// The connection that carries traffic for the peer's process `id`.
    #[inline]
    fn out_for(&self, id: u64) -> &Arc<Conn> {
        &self.outs[(id % self.outs.len() as u64) as usize]
    }

    fn remote_pid(&self, id: u64) -> Pid {
        Pid::new(self.atom, id, self.creation())
    }

    fn no_connection(&self) -> NetError {
        NetError::NoConnection {
            node: self.name.to_string(),
            reason: self
                .down_reason
                .get()
                .cloned()
                .unwrap_or_else(|| "connection lost".into()),
        }
    }

    fn take_pending(&self, correlation: u64) -> Option<Pending> {
        self.pending.lock().remove(&correlation)
    }
}

impl Net {
    /// Sets up the network half of node `name`: checks the options and binds the listener.
    pub(crate) async fn new(
        name: &str,
        creation: u32,
        opts: NetOptions,
    ) -> Result<Arc<Net>, crate::Error> {
        let cookie = opts.cookie.clone().unwrap_or_default();
        let handshake = HandshakeConfig::new(name, creation, &cookie)
            .map_err(|e| crate::Error::Config(format!("network: {e}")))?
            .timeout(opts.handshake_timeout);
        if opts.connections_per_peer == 0 || opts.max_handshakes == 0 {
            return Err(crate::Error::Config(
                "connections per peer and concurrent handshakes must be at least 1".into(),
            ));
        }
        if opts.heartbeat.is_zero() || opts.heartbeat_timeout <= opts.heartbeat {
            return Err(crate::Error::Config(
                "the heartbeat timeout must be longer than the (non-zero) heartbeat interval"
                    .into(),
            ));
        }
        let routes = DashMap::new();
        for (node, addr) in &opts.routes {
            routes.insert(Arc::from(node.as_str()), resolve(addr).await?);
        }
        let (listener, local_addr) = if opts.accept {
            let addr = opts.listen.as_deref().unwrap_or("127.0.0.1:0");
            let addr = resolve(addr).await?;
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| crate::Error::Config(format!("cannot listen on {addr}: {e}")))?;
            let local = listener
                .local_addr()
                .map_err(|e| crate::Error::Config(format!("cannot listen on {addr}: {e}")))?;
            (Some(listener), Some(local))
        } else {
            (None, None)
        };
        Ok(Arc::new(Net {
            handshakes: Arc::new(Semaphore::new(opts.max_handshakes)),
            codec: FrameCodec::with_max_frame_len(opts.max_frame_len),
            opts,
            handshake,
            local_addr,
            listener: Mutex::new(listener),
            routes,
            peers: DashMap::with_hasher(rustc_hash::FxBuildHasher),
            backoff: DashMap::new(),
            cancel: CancellationToken::new(),
            next_call: AtomicU64::new(1),
            node: OnceLock::new(),
            mirrors: DashMap::new(),
            spawners: DashMap::new(),
            remote_apps: DashMap::new(),
        }))
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    pub(crate) fn add_route(&self, node: &str, addr: SocketAddr) {
        self.routes.insert(Arc::from(node), addr);
        self.backoff.remove(&NodeAtom::intern(node));
    }

    /// Starts accepting peers (once the node exists).
    pub(crate) fn start(self: &Arc<Self>, node: &Node) {
        let _ = self.node.set(node.downgrade());
        if let (Some(registrar), Some(addr)) = (self.opts.registrar.clone(), self.local_addr) {
            let name = node.name().to_string();
            node.runtime().spawn(async move {
                if let Err(e) = registrar.register(&name, addr).await {
                    tracing::warn!(node = %name, "registration failed: {e}");
                }
            });
        }
        if let Some(listener) = self.listener.lock().take() {
            let net = self.clone();
            let node2 = node.clone();
            node.runtime()
                .spawn(async move { net.accept_loop(node2, listener).await });
        }
    }

    /// The names of the nodes with a link up.
    pub(crate) fn connected(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|l| l.state.load(Ordering::Acquire) == UP)
            .map(|l| l.name.to_string())
            .collect()
    }

    /// The nodes this node knows of: its routes and the nodes linked to it, sorted.
    pub(crate) fn known(&self) -> Vec<String> {
        let mut known: Vec<String> = self
            .routes
            .iter()
            .map(|r| r.key().to_string())
            .chain(self.connected())
            .collect();
        known.sort();
        known.dedup();
        known
    }

    /// The link to the peer `atom`, made (and dialled) if there is none.
    pub(crate) fn link_for(
        self: &Arc<Self>,
        node: &Node,
        atom: NodeAtom,
    ) -> Result<Arc<PeerLink>, NetError> {
        if let Some(link) = self.peers.get(&atom) {
            if !link.is_down() {
                return Ok(link.clone());
            }
        }
        use dashmap::mapref::entry::Entry;
        let link = match self.peers.entry(atom) {
            Entry::Occupied(e) if !e.get().is_down() => return Ok(e.get().clone()),
            entry => {
                if self.cancel.is_cancelled() {
                    return Err(NetError::NoConnection {
                        node: atom.name().to_string(),
                        reason: "this node is shutting down".into(),
                    });
                }
                if let Some(b) = self.backoff.get(&atom) {
                    if Instant::now() < b.0 {
                        return Err(NetError::NoConnection {
                            node: atom.name().to_string(),
                            reason: "the last attempt failed; retrying later (backoff)".into(),
                        });
                    }
                }
                let name = atom.name();
                let addr = self.routes.get(&name).map(|a| *a);
                if addr.is_none() && self.opts.registrar.is_none() {
                    return Err(NetError::NoRoute(name.to_string()));
                }
                let outs = (0..self.opts.connections_per_peer)
                    .map(|_| Conn::new(self.cancel.child_token()))
                    .collect();
                let link = PeerLink::new(atom, CONNECTING, outs, self.codec);
                match entry {
                    Entry::Occupied(mut e) => {
                        e.insert(link.clone());
                    }
                    Entry::Vacant(v) => {
                        v.insert(link.clone());
                    }
                }
                let (net, node2, link2) = (self.clone(), node.clone(), link.clone());
                node.runtime()
                    .spawn(async move { net.dial(node2, link2, addr).await });
                link
            }
        };
        Ok(link)
    }

    /// Dials every connection of a new link; brings it up or takes it down.
    async fn dial(self: Arc<Self>, node: Node, link: Arc<PeerLink>, addr: Option<SocketAddr>) {
        let addr = match (addr, &self.opts.registrar) {
            (Some(addr), _) => addr,
            (None, Some(registrar)) => match registrar.resolve(&link.name).await {
                Ok(Some(addr)) => addr,
                Ok(None) => {
                    self.dial_failed(&link, format!("node `{}` is not registered", link.name));
                    return;
                }
                Err(e) => {
                    self.dial_failed(&link, e.to_string());
                    return;
                }
            },
            (None, None) => {
                self.dial_failed(&link, format!("no route to node `{}`", link.name));
                return;
            }
        };
        let mut streams = Vec::with_capacity(link.outs.len());
        let mut creation = None;
        for _ in 0..link.outs.len() {
            match self.dial_one(&link, addr).await {
                Ok((stream, peer_creation)) => {
                    if creation.is_some_and(|c| c != peer_creation) {
                        self.peer_down(&link, "the peer restarted while connecting".into());
                        return;
                    }
                    creation = Some(peer_creation);
                    streams.push(stream);
                }
                Err(reason) => {
                    self.dial_failed(&link, reason);
                    return;
                }
            }
        }
        self.backoff.remove(&link.atom);
        link.creation
            .store(creation.unwrap_or_default(), Ordering::Release);
        if link
            .state
            .compare_exchange(CONNECTING, UP, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        tracing::info!(peer = %link.name, %addr, connections = streams.len(), "connected");
        for (conn, stream) in link.outs.iter().zip(streams) {
            self.run_conn(&node, &link, conn.clone(), stream);
        }
        link.up.notify_waiters();
    }

    /// A dial failed: further attempts wait (backoff), the link goes down.
    fn dial_failed(&self, link: &Arc<PeerLink>, reason: String) {
        let delay = self
            .backoff
            .get(&link.atom)
            .map_or(Duration::from_millis(100), |b| {
                (b.1 * 2).min(Duration::from_secs(5))
            });
        self.backoff
            .insert(link.atom, (Instant::now() + delay, delay));
        tracing::warn!(peer = %link.name, "cannot connect: {reason}");
        self.peer_down(link, reason);
    }

    async fn dial_one(&self, link: &PeerLink, addr: SocketAddr) -> Result<(Stream, u32), String> {
        let tcp = tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        #[cfg(feature = "tls")]
        let mut stream = match &self.opts.tls {
            Some(tls) => {
                let timeout = self.opts.handshake_timeout;
                let tls = tokio::time::timeout(timeout, tls.connect(&link.name, tcp))
                    .await
                    .map_err(|_| format!("TLS with {addr} timed out"))??;
                Stream::TlsClient(Box::new(tls))
            }
            None => Stream::Plain(tcp),
        };
        #[cfg(not(feature = "tls"))]
        let mut stream = Stream::Plain(tcp);
        let shaken = match &mut stream {
            Stream::Plain(s) => handshake(s, Role::Initiator, &self.handshake).await,
            #[cfg(feature = "tls")]
            Stream::TlsClient(s) => handshake(&mut **s, Role::Initiator, &self.handshake).await,
            #[cfg(feature = "tls")]
            Stream::TlsServer(s) => handshake(&mut **s, Role::Initiator, &self.handshake).await,
        };
        let peer = shaken.map_err(|e| format!("handshake with {addr}: {e}"))?;
        if *peer.name != *link.name {
            return Err(format!(
                "{addr} is node `{}`, not `{}`",
                peer.name, link.name
            ));
        }
        Ok((stream, peer.creation))
    }

    async fn accept_loop(self: Arc<Self>, node: Node, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                _ = self.cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, addr)) => match self.handshakes.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (net, node2) = (self.clone(), node.clone());
                        node.runtime().spawn(async move {
                            net.accept_one(node2, stream, addr).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%addr, "too many handshakes in progress; connection dropped");
                    }
                },
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn accept_one(self: Arc<Self>, node: Node, tcp: TcpStream, addr: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        #[cfg(feature = "tls")]
        let mut stream = match &self.opts.tls {
            Some(tls) => {
                let timeout = self.opts.handshake_timeout;
                match tokio::time::timeout(timeout, tls.accept(tcp)).await {
                    Ok(Ok(tls)) => Stream::TlsServer(Box::new(tls)),
                    Ok(Err(e)) => {
                        tracing::warn!(%addr, "rejected a connection: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%addr, "rejected a connection: TLS timed out");
                        return;
                    }
                }
            }
            None => Stream::Plain(tcp),
        };
        #[cfg(not(feature = "tls"))]
        let mut stream = Stream::Plain(tcp);
        let shaken = match &mut stream {
            Stream::Plain(s) => handshake(s, Role::Acceptor, &self.handshake).await,
            #[cfg(feature = "tls")]
            Stream::TlsClient(s) => handshake(&mut **s, Role::Acceptor, &self.handshake).await,
            #[cfg(feature = "tls")]
            Stream::TlsServer(s) => handshake(&mut **s, Role::Acceptor, &self.handshake).await,
        };
        let peer = match shaken {
            Ok(peer) => peer,
            Err(e) => {
                tracing::warn!(%addr, "rejected a connection: {e}");
                return;
            }
        };
        // Over TLS, the dialler's certificate must name the node it claims to be.
        #[cfg(feature = "tls")]
        if let Stream::TlsServer(tls) = &stream {
            let certs = tls.get_ref().1.peer_certificates();
            if let Err(e) = super::tls::check_identity(certs, &peer.name) {
                tracing::warn!(%addr, peer = %peer.name, "rejected a connection: {e}");
                return;
            }
        }
        if peer.name == self.handshake.name() || self.cancel.is_cancelled() {
            return;
        }
        let atom = NodeAtom::intern(&peer.name);
        let conn = Conn::new(self.cancel.child_token());
        let mut replaced = None;
        let link = {
            use dashmap::mapref::entry::Entry;
            match self.peers.entry(atom) {
                Entry::Occupied(mut e) => {
                    let old = e.get().clone();
                    let creation = old.creation();
                    if old.is_down() || (creation != 0 && creation != peer.creation) {
                        let link = PeerLink::new(atom, UP, vec![conn.clone()], self.codec);
                        link.creation.store(peer.creation, Ordering::Release);
                        e.insert(link.clone());
                        replaced = Some(old);
                        link
                    } else {
                        // Joining a link this node is still dialling: learn the peer's creation
                        // now, so pids from this connection are right at once.
                        let _ = old.creation.compare_exchange(
                            0,
                            peer.creation,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        old.extra.lock().push(conn.clone());
                        old
                    }
                }
                Entry::Vacant(v) => {
                    let link = PeerLink::new(atom, UP, vec![conn.clone()], self.codec);
                    link.creation.store(peer.creation, Ordering::Release);
                    v.insert(link.clone());
                    link
                }
            }
        };
        if let Some(old) = replaced {
            self.peer_down(&old, "the peer restarted".into());
        }
        self.backoff.remove(&atom);
        tracing::info!(peer = %peer.name, %addr, "accepted");
        self.run_conn(&node, &link, conn, stream);
    }

    /// Starts the reader and writer tasks of one connection.
    fn run_conn(
        self: &Arc<Self>,
        node: &Node,
        link: &Arc<PeerLink>,
        conn: Arc<Conn>,
        stream: Stream,
    ) {
        match stream {
            // Plain TCP splits without a lock between the halves.
            Stream::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                self.run_halves(node, link, conn, read, write);
            }
            #[cfg(feature = "tls")]
            Stream::TlsClient(tls) => {
                let (read, write) = tokio::io::split(*tls);
                self.run_halves(node, link, conn, read, write);
            }
            #[cfg(feature = "tls")]
            Stream::TlsServer(tls) => {
                let (read, write) = tokio::io::split(*tls);
                self.run_halves(node, link, conn, read, write);
            }
        }
    }

    /// Starts the reader and writer tasks on the two halves of a connection.
    fn run_halves<R, W>(
        self: &Arc<Self>,
        node: &Node,
        link: &Arc<PeerLink>,
        conn: Arc<Conn>,
        read: R,
        write: W,
    ) where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use futures_util::FutureExt;
        let panicked = |p: Box<dyn std::any::Any + Send>| {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(format!("panicked while handling the connection: {msg}"))
        };
        let (net, link2, conn2) = (self.clone(), link.clone(), conn.clone());
        node.runtime().spawn(async move {
            let heartbeat = (net.opts.heartbeat, net.opts.heartbeat_timeout);
            let ended = std::panic::AssertUnwindSafe(write_loop(&conn2, write, heartbeat))
                .catch_unwind()
                .await
                .unwrap_or_else(panicked);
            if let Err(reason) = ended {
                net.peer_down(&link2, reason);
            }
        });
        let (net, link, node2) = (self.clone(), link.clone(), node.clone());
        node.runtime().spawn(async move {
            // A panic while handling a frame (a user `Deserialize`, an event closure) takes the
            // link down like a malformed frame, instead of leaving it half dead.
            let ended = std::panic::AssertUnwindSafe(net.read_loop(&node2, &link, &conn, read))
                .catch_unwind()
                .await
                .unwrap_or_else(panicked);
            if let Err(reason) = ended {
                net.peer_down(&link, reason);
            }
        });
    }

    async fn read_loop<R: tokio::io::AsyncRead + Unpin>(
        self: &Arc<Self>,
        node: &Node,
        link: &Arc<PeerLink>,
        conn: &Arc<Conn>,
        mut read: R,
    ) -> Result<(), String> {
        let mut inbox = BytesMut::with_capacity(64 * 1024);
        loop {
            loop {
                match self.codec.decode_frame(&mut inbox) {
                    Ok(Some(frame)) => {
                        self.dispatch(node, link, conn, frame)?;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(format!("malformed frame: {e}")),
                }
            }
            if inbox.capacity() - inbox.len() < 16 * 1024 {
                inbox.reserve(64 * 1024);
            }
            let read = tokio::select! {
                _ = conn.cancel.cancelled() => return conn.ended(),
                read = tokio::time::timeout(self.opts.heartbeat_timeout, read.read_buf(&mut inbox)) => read,
            };
            match read {
                Err(_) => {
                    return Err(format!(
                        "nothing heard for {:?} (heartbeat timeout)",
                        self.opts.heartbeat_timeout
                    ))
                }
                Ok(Ok(0)) => return Err("the connection was closed".into()),
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Handles one incoming frame.
    fn dispatch(
        self: &Arc<Self>,
        node: &Node,
        link: &Arc<PeerLink>,
        conn: &Arc<Conn>,
        frame: Frame,
    ) -> Result<(), String> {
        let h = frame.header;
        let payload = &frame.payload[..];
        let from = || link.remote_pid(h.from);
        let reason = || decode_cbor::<ExitReason>(payload);
        match h.kind {
            FrameKind::Cast => match node.local_process(h.to) {
                Some(p) => match p.deliver_remote(payload, None) {
                    Ok(()) => return Ok(()),
                    Err(e) => tracing::warn!(peer = %link.name, to = h.to.id, "cast dropped: {e}"),
                },
                None => tracing::debug!(peer = %link.name, to = h.to.id, "cast to no process"),
            },
            FrameKind::Call => {
                let failure = match node.local_process(h.to) {
                    None => WireFailure::NoProc,
                    Some(p) => {
                        let route = ReplyRoute {
                            conn: conn.clone(),
                            link: link.clone(),
                            caller: h.from,
                            correlation: h.correlation,
                            callee: p.clone(),
                        };
                        match p.deliver_remote(payload, Some(route)) {
                            Ok(()) => return Ok(()),
                            Err(DeliverError::NoProc) => WireFailure::NoProc,
                            Err(e) => {
                                tracing::warn!(peer = %link.name, to = h.to.id, "call refused: {e}");
                                WireFailure::BadMessage(e.to_string())
                            }
                        }
                    }
                };
                let header = Header {
                    kind: FrameKind::CallFailed,
                    to: WirePid {
                        id: h.from,
                        creation: link.creation(),
                    },
                    from: h.to.id,
                    correlation: h.correlation,
                };
                let _ = conn.push_value(&self.codec, &header, &failure);
            }
            FrameKind::Reply => {
                if let Some(pending) = link.take_pending(h.correlation) {
                    // The reply slot records a decoding error itself, before it lets the
                    // caller see the reply is gone.
                    if let Err(e) = (pending.reply.deliver)(payload, &pending.error) {
                        tracing::warn!(peer = %link.name, "a reply did not decode: {e}");
                    }
                }
            }
            FrameKind::CallFailed => {
                if let Some(pending) = link.take_pending(h.correlation) {
                    let error = decode_cbor::<WireFailure>(payload)
                        .map(CallError::from)
                        .unwrap_or_else(CallError::BadMessage);
                    let _ = pending.error.set(error);
                }
            }
            FrameKind::Exit => {
                let (reason, sender) = decode_cbor::<(ExitReason, Pid)>(payload)?;
                if let Some(p) = node.local_process(h.to) {
                    let _ = p.core().send_sys(Sys::Exit {
                        from: sender,
                        reason,
                        linked: false,
                    });
                }
            }
            FrameKind::LinkExit => {
                let reason = reason()?;
                let pid = link.reg.lock().links.remove(&(h.to.id, h.from));
                if let (Some(pid), Some(p)) = (pid, node.local_process_any(h.to.id)) {
                    let _ = p.core().send_sys(Sys::Exit {
                        from: pid,
                        reason,
                        linked: true,
                    });
                }
            }
            FrameKind::Kill => {
                if let Some(p) = node.local_process(h.to) {
                    p.core().kill();
                }
            }
            FrameKind::Stop => {
                let reason = reason()?;
                if let Some(p) = node.local_process(h.to) {
                    let _ = p.core().send_sys(Sys::Stop(reason));
                }
            }
            FrameKind::Link => {
                let remote = from();
                let linked = node.local_process(h.to).is_some_and(|p| {
                    link.reg.lock().links.insert((h.to.id, h.from), remote);
                    let target = Target::Remote(RemotePid {
                        pid: remote,
                        link: link.clone(),
                    });
                    if p.core().send_sys(Sys::Link(target)).is_ok() {
                        true
                    } else {
                        link.reg.lock().links.remove(&(h.to.id, h.from));
                        false
                    }
                });
                if !linked {
                    let header = Header {
                        kind: FrameKind::LinkExit,
                        to: WirePid {
                            id: h.from,
                            creation: link.creation(),
                        },
                        from: h.to.id,
                        correlation: 0,
                    };
                    let _ = conn.push_value(&self.codec, &header, &ExitReason::NoProc);
                }
            }
            FrameKind::Unlink => {
                link.reg.lock().links.remove(&(h.to.id, h.from));
                if let Some(p) = node.local_process_any(h.to.id) {
                    let _ = p.core().send_sys(Sys::Unlink(from()));
                }
            }
            FrameKind::Monitor => {
                let watcher = from();
                let key = (h.to.id, h.correlation, watcher);
                let monitored = node.local_process(h.to).is_some_and(|p| {
                    link.reg.lock().watched.insert(key);
                    let target = Target::Remote(RemotePid {
                        pid: watcher,
                        link: link.clone(),
                    });
                    let sys = Sys::Monitor {
                        by: target,
                        monitor: MonitorRef(h.correlation),
                    };
                    if p.core().send_sys(sys).is_ok() {
                        true
                    } else {
                        link.reg.lock().watched.remove(&key);
                        false
                    }
                });
                if !monitored {
                    let header = Header {
                        kind: FrameKind::Down,
                        to: WirePid {
                            id: h.from,
                            creation: link.creation(),
                        },
                        from: h.to.id,
                        correlation: h.correlation,
                    };
                    let _ = conn.push_value(&self.codec, &header, &ExitReason::NoProc);
                }
            }
            FrameKind::Demonitor => {
                let watcher = from();
                link.reg
                    .lock()
                    .watched
                    .remove(&(h.to.id, h.correlation, watcher));
                if let Some(p) = node.local_process_any(h.to.id) {
                    let _ = p.core().send_sys(Sys::Demonitor {
                        by: watcher,
                        monitor: MonitorRef(h.correlation),
                    });
                }
            }
            FrameKind::Down => {
                let reason = reason()?;
                let entry = link.reg.lock().monitors.remove(&h.correlation);
                if let Some((watcher, pid)) = entry {
                    deliver_down(node, watcher, MonitorRef(h.correlation), pid, reason);
                }
            }
            FrameKind::Lookup => {
                let request = decode_cbor::<LookupRequest>(payload)?;
                let answer = match node.registered_process(&request.name) {
                    Some(p) => {
                        let pid = p.core().pid();
                        LookupAnswer::Found {
                            id: pid.id(),
                            creation: pid.creation(),
                            actor: p.actor_name().to_string(),
                            remote: p.is_remote(),
                        }
                    }
                    None => LookupAnswer::NotFound,
                };
                self.answer(conn, link, h, &answer);
            }
            FrameKind::EventSubscribe => {
                let request = decode_cbor::<crate::events::SubRequest>(payload)?;
                let existing = link
                    .remote_subs
                    .lock()
                    .get(&request.sub)
                    .map(|(registration, _)| registration.owner_pid());
                if let Some(owner) = existing {
                    // Asked again for the same subscription (the first request's caller gave
                    // up before the answer): it is already in place.
                    let answer = crate::events::SubAnswer::Subscribed(owner);
                    self.answer(conn, link, h, &answer);
                    return Ok(());
                }
                let sink = RemoteSink {
                    link: link.clone(),
                    sub: request.sub,
                };
                let (answer, registered) = crate::events::subscribe_for_node(node, &request, sink);
                if let Some(registered) = registered {
                    link.remote_subs.lock().insert(request.sub, registered);
                }
                self.answer(conn, link, h, &answer);
            }
            FrameKind::EventPublish => {
                let mirror = link.mirrors.lock().get(&h.correlation).cloned();
                match mirror.map(|m| m.publish_bytes(node, payload)) {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) | None => {
                        // Nobody here listens any more: end the subscription.
                        if let Some(m) = link.mirrors.lock().remove(&h.correlation) {
                            m.close(ExitReason::Normal);
                        }
                        self.forget_mirror(link.atom, h.correlation);
                        let header = Header {
                            kind: FrameKind::EventUnsubscribe,
                            to: WirePid::NODE,
                            from: 0,
                            correlation: h.correlation,
                        };
                        let _ = link
                            .out_for(h.correlation)
                            .push(&self.codec, &header, |_| Ok(()));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(peer = %link.name, "an event value did not decode: {e}");
                    }
                }
            }
            FrameKind::EventDown => {
                let reason = reason()?;
                let mirror = link.mirrors.lock().remove(&h.correlation);
                self.forget_mirror(link.atom, h.correlation);
                if let Some(m) = mirror {
                    m.close(reason);
                }
            }
            FrameKind::EventUnsubscribe => {
                let sub = link.remote_subs.lock().remove(&h.correlation);
                if let Some((registration, id)) = sub {
                    registration.remove_subscriber(id);
                }
            }
            FrameKind::NodeRequest => {
                let request = decode_cbor::<super::spawn::NodeRequest>(payload)?;
                self.serve_request(node, link, conn, h, request);
            }
            FrameKind::Heartbeat => {}
            FrameKind::Handshake => return Err("a handshake frame after authentication".into()),
        }
        Ok(())
    }

    /// Takes a link down (once): closes its connections, fails its calls and fires every link
    /// and monitor across it with `NoConnection`.
    pub(crate) fn peer_down(&self, link: &Arc<PeerLink>, reason: String) {
        if link.state.swap(DOWN, Ordering::AcqRel) == DOWN {
            return;
        }
        let _ = link.down_reason.set(reason.clone());
        if !self.cancel.is_cancelled() {
            tracing::warn!(peer = %link.name, "connection lost: {reason}");
        }
        self.peers
            .remove_if(&link.atom, |_, l| Arc::ptr_eq(l, link));
        for conn in link.outs.iter().chain(link.extra.lock().iter()) {
            conn.close();
        }
        link.up.notify_waiters();
        let pending = std::mem::take(&mut *link.pending.lock());
        for (_, p) in pending {
            let _ = p.error.set(CallError::NoConnection);
        }
        let subs = std::mem::take(&mut *link.remote_subs.lock());
        for (_, (registration, id)) in subs {
            registration.remove_subscriber(id);
        }
        let mirrors = std::mem::take(&mut *link.mirrors.lock());
        for (sub, mirror) in mirrors {
            self.forget_mirror(link.atom, sub);
            mirror.close(ExitReason::NoConnection);
        }
        let reg = std::mem::take(&mut *link.reg.lock());
        let Some(node) = self.node_hint(link) else {
            return;
        };
        for ((local, _), remote) in reg.links {
            if let Some(p) = node.local_process_any(local) {
                let _ = p.core().send_sys(Sys::Exit {
                    from: remote,
                    reason: ExitReason::NoConnection,
                    linked: true,
                });
            }
        }
        for (monitor, (watcher, pid)) in reg.monitors {
            deliver_down(
                &node,
                watcher,
                MonitorRef(monitor),
                pid,
                ExitReason::NoConnection,
            );
        }
        for (local, monitor, watcher) in reg.watched {
            if let Some(p) = node.local_process_any(local) {
                let _ = p.core().send_sys(Sys::Demonitor {
                    by: watcher,
                    monitor: MonitorRef(monitor),
                });
            }
        }
    }

    fn node_hint(&self, _link: &PeerLink) -> Option<Node> {
        self.node.get().and_then(|n| n.upgrade())
    }

    /// Waits until the link to `atom` is up.
    pub(crate) async fn connect(
        self: &Arc<Self>,
        node: &Node,
        atom: NodeAtom,
    ) -> Result<Arc<PeerLink>, NetError> {
        let deadline = Instant::now() + self.opts.connect_timeout + self.opts.handshake_timeout;
        loop {
            let link = self.link_for(node, atom)?;
            let notified = link.up.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match link.state.load(Ordering::Acquire) {
                UP => return Ok(link.clone()),
                DOWN => return Err(link.no_connection()),
                _ => {}
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(NetError::Timeout(link.name.to_string()));
            }
        }
    }

    /// Closes the link to `atom` (its links and monitors fire with `NoConnection`).
    pub(crate) fn disconnect(&self, atom: NodeAtom) -> bool {
        let link = self.peers.get(&atom).map(|l| l.clone());
        match link {
            Some(link) => {
                self.peer_down(&link, "disconnected by this node".into());
                true
            }
            None => false,
        }
    }

    /// Answers a node-level request (`Lookup`, `EventSubscribe`, `NodeRequest`) on the
    /// connection it came on.
    pub(crate) fn answer<T: Serialize>(&self, conn: &Conn, link: &PeerLink, h: Header, answer: &T) {
        let header = Header {
            kind: FrameKind::Reply,
            to: WirePid {
                id: h.from,
                creation: link.creation(),
            },
            from: 0,
            correlation: h.correlation,
        };
        let _ = conn.push_value(&self.codec, &header, answer);
    }

    /// Sends a node-level request of `kind` to the peer `atom` on the connection chosen by
    /// `route` and waits (up to the node's call timeout) for its `Reply`.
    pub(crate) async fn request<Q, R>(
        self: &Arc<Self>,
        node: &Node,
        atom: NodeAtom,
        kind: FrameKind,
        route: u64,
        payload: &Q,
    ) -> Result<R, NetError>
    where
        Q: Serialize,
        R: serde::de::DeserializeOwned + Send + 'static,
    {
        let link = self.link_for(node, atom)?;
        let correlation = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel::<R>();
        link.pending.lock().insert(
            correlation,
            Pending {
                reply: PendingReply {
                    deliver: Box::new(move |bytes: &[u8], _: &OnceLock<CallError>| {
                        let _ = tx.send(decode_cbor(bytes)?);
                        Ok(())
                    }),
                },
                error: Arc::new(OnceLock::new()),
            },
        );
        // Removes the pending entry if the caller gives up (timeout, or its future dropped).
        struct Forget<'a>(&'a PeerLink, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.take_pending(self.1);
            }
        }
        let _forget = Forget(&link, correlation);
        let header = Header {
            kind,
            to: WirePid::NODE,
            from: 0,
            correlation,
        };
        if link
            .out_for(route)
            .push_value(&self.codec, &header, payload)
            .is_err()
        {
            return Err(link.no_connection());
        }
        match tokio::time::timeout(node.call_timeout(), rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(link.no_connection()),
            Err(_) => {
                link.take_pending(correlation);
                Err(NetError::Timeout(link.name.to_string()))
            }
        }
    }

    /// Resolves `name` on the peer `atom`.
    pub(crate) async fn lookup<A: Actor>(
        self: &Arc<Self>,
        node: &Node,
        name: &str,
        atom: NodeAtom,
        vtable: RemoteVTable<A::Msg>,
    ) -> Result<crate::ActorRef<A>, NetError> {
        let request = LookupRequest {
            name: name.to_string(),
        };
        let answer = self
            .request(node, atom, FrameKind::Lookup, 0, &request)
            .await?;
        match answer {
            LookupAnswer::NotFound => Err(NetError::NotFound {
                name: name.to_string(),
                node: atom.name().to_string(),
            }),
            LookupAnswer::Found { actor, remote, .. } if actor != A::NAME || !remote => {
                Err(NetError::WrongActor {
                    name: name.to_string(),
                    expected: A::NAME,
                    found: actor,
                })
            }
            LookupAnswer::Found { id, creation, .. } => {
                Ok(crate::ActorRef::from_remote(Arc::new(RemoteRef {
                    pid: Pid::new(atom, id, creation),
                    node: node.clone(),
                    vtable,
                })))
            }
        }
    }

    /// The mirror of event `name` of node `atom` with payload `T`, made if there is none (or
    /// the old one has closed).
    pub(crate) fn mirror_for<T>(
        &self,
        node: &Node,
        atom: NodeAtom,
        name: &str,
    ) -> Result<Arc<crate::events::Mirror<T>>, crate::events::SubscribeError>
    where
        T: Clone + Send + serde::de::DeserializeOwned + 'static,
    {
        use dashmap::mapref::entry::Entry;
        let key = (atom, Arc::<str>::from(name));
        let mismatch = || crate::events::SubscribeError::TypeMismatch {
            event: name.to_string(),
            registered: "another type (subscribed to by another process of this node)".into(),
            requested: std::any::type_name::<T>().into(),
        };
        match self.mirrors.entry(key) {
            Entry::Occupied(mut e) => {
                let existing = e
                    .get()
                    .typed
                    .clone()
                    .downcast::<crate::events::Mirror<T>>()
                    .map_err(|_| mismatch())?;
                if !existing.is_closed() {
                    return Ok(existing);
                }
                let sub = self.next_call.fetch_add(1, Ordering::Relaxed);
                let mirror = crate::events::Mirror::<T>::new(node, name, sub);
                e.insert(MirrorEntry {
                    sub,
                    typed: mirror.clone(),
                });
                Ok(mirror)
            }
            Entry::Vacant(v) => {
                let sub = self.next_call.fetch_add(1, Ordering::Relaxed);
                let mirror = crate::events::Mirror::<T>::new(node, name, sub);
                v.insert(MirrorEntry {
                    sub,
                    typed: mirror.clone(),
                });
                Ok(mirror)
            }
        }
    }

    /// Removes a mirror that failed to subscribe.
    pub(crate) fn drop_mirror(&self, atom: NodeAtom, name: &str, sub: u64) {
        self.mirrors
            .remove_if(&(atom, Arc::<str>::from(name)), |_, m| m.sub == sub);
        if let Some(link) = self.peers.get(&atom) {
            link.mirrors.lock().remove(&sub);
        }
    }

    /// Removes the table entry of the mirror with subscription id `sub` of node `atom`.
    fn forget_mirror(&self, atom: NodeAtom, sub: u64) {
        self.mirrors.retain(|(a, _), m| *a != atom || m.sub != sub);
    }

    /// Asks the peer `atom` to forward an event's values to `sink`.
    pub(crate) async fn event_subscribe(
        self: &Arc<Self>,
        node: &Node,
        atom: NodeAtom,
        request: &crate::events::SubRequest,
        sink: Arc<dyn crate::events::MirrorSink>,
    ) -> Result<crate::events::SubAnswer, NetError> {
        // The mirror is in place before the request goes: values may arrive before the answer.
        self.link_for(node, atom)?
            .mirrors
            .lock()
            .insert(request.sub, sink);
        self.request(node, atom, FrameKind::EventSubscribe, request.sub, request)
            .await
    }

    /// Stops listening, lets queued frames go out (up to `grace`), then closes every link.
    pub(crate) async fn shutdown(&self, name: &str, grace: Duration) {
        if let Some(registrar) = &self.opts.registrar {
            registrar.deregister(name).await;
        }
        let deadline = Instant::now() + grace;
        loop {
            let busy = self.peers.iter().any(|l| {
                l.state.load(Ordering::Acquire) == UP
                    && l.outs.iter().any(|c| !c.out.lock().bytes.is_empty())
            });
            if !busy || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.cancel.cancel();
        let links: Vec<_> = self.peers.iter().map(|l| l.clone()).collect();
        for link in links {
            self.peer_down(&link, "this node is shutting down".into());
        }
    }
}

thread_local! {
    /// Where messages are encoded before their connection's lock is taken (reused: no
    /// allocation per message once it has grown to the usual size).
    static ENCODE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes with `encode` into a reusable buffer, outside any lock, then lets `push` copy the
/// bytes into a connection's buffer.
fn with_encoded(
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
    push: impl FnOnce(&[u8]) -> Result<(), PushError>,
) -> Result<(), PushError> {
    let run = |buf: &mut Vec<u8>| {
        buf.clear();
        encode(buf).map_err(PushError::Encode)?;
        let pushed = push(buf);
        if buf.capacity() > 64 * 1024 {
            // Do not keep a huge buffer after an exceptional message.
            *buf = Vec::new();
        }
        pushed
    };
    ENCODE_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        // Re-entered (a serializer that sends?): use a fresh buffer.
        Err(_) => run(&mut Vec::new()),
    })
}

/// Hands a down notice to a local watcher (a process, or a task waiting in `ActorRef::wait`).
fn deliver_down(node: &Node, watcher: Watcher, monitor: MonitorRef, pid: Pid, reason: ExitReason) {
    match watcher {
        Watcher::Process(id) => {
            if let Some(p) = node.local_process_any(id) {
                let _ = p.core().send_sys(Sys::Down(Down {
                    monitor,
                    pid,
                    reason,
                }));
            }
        }
        Watcher::Waiter(tx) => {
            let _ = tx.send(reason);
        }
    }
}

/// Drains a connection's buffer into the socket, one write per wake-up; sends a heartbeat
/// when nothing was written for `heartbeat`.
async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
    conn: &Conn,
    mut write: W,
    (heartbeat, stall): (Duration, Duration),
) -> Result<(), String> {
    let codec = FrameCodec::new();
    let mut spare = BytesMut::with_capacity(64 * 1024);
    loop {
        let notified = conn.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut out = conn.out.lock();
            if out.closed {
                return Ok(());
            }
            std::mem::swap(&mut out.bytes, &mut spare);
        }
        if spare.is_empty() {
            tokio::select! {
                _ = &mut notified => continue,
                _ = conn.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(heartbeat) => {
                    codec
                        .encode_frame(&Header::control(FrameKind::Heartbeat), &[], &mut spare)
                        .map_err(|e| e.to_string())?;
                }
            }
        } else {
            conn.room.notify_waiters();
        }
        tokio::select! {
            written = tokio::time::timeout(stall, write.write_all(&spare)) => match written {
                Ok(written) => written.map_err(|e| format!("write failed: {e}"))?,
                // The peer has not taken a byte for the heartbeat timeout.
                Err(_) => return Err(format!("the peer has not read for {stall:?}")),
            },
            _ = conn.cancel.cancelled() => return Ok(()),
        }
        spare.clear();
        if spare.capacity() > KEEP_CAPACITY {
            spare = BytesMut::with_capacity(64 * 1024);
        }
    }
}

async fn resolve(addr: &str) -> Result<SocketAddr, crate::Error> {
    tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| crate::Error::Net(NetError::Address(addr.to_string())))
}

/// Why a message from another node was not queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliverError {
    #[error("no such process")]
    NoProc,
    #[error(
        "actor `{0}` does not accept messages from other nodes (declare it `#[actor(remote)]`)"
    )]
    NotRemote(&'static str),
    #[error("the message did not decode: {0}")]
    Decode(String),
}

/// A process of another node, as the target of a signal.
#[derive(Clone)]
pub(crate) struct RemotePid {
    pub(crate) pid: Pid,
    link: Arc<PeerLink>,
}

impl RemotePid {
    pub(crate) fn new(pid: Pid, link: Arc<PeerLink>) -> Self {
        RemotePid { pid, link }
    }

    /// Sends a signal as a frame; records links and monitors so the link's loss fires them.
    pub(crate) fn signal(&self, sys: Sys) -> Result<(), Sys> {
        let link = &self.link;
        if link.is_down() {
            return Err(sys);
        }
        let to = WirePid {
            id: self.pid.id(),
            creation: self.pid.creation(),
        };
        let conn = link.out_for(self.pid.id());
        let header = |kind, from: u64, correlation| Header {
            kind,
            to,
            from,
            correlation,
        };
        let codec = &link.codec;
        let pushed = match &sys {
            Sys::Exit {
                from,
                reason,
                linked: true,
            } => {
                link.reg.lock().links.remove(&(from.id(), to.id));
                conn.push_value(codec, &header(FrameKind::LinkExit, from.id(), 0), reason)
            }
            Sys::Exit { from, reason, .. } => conn.push_value(
                codec,
                &header(FrameKind::Exit, 0, 0),
                &(reason.clone(), *from),
            ),
            Sys::Kill => conn.push(codec, &header(FrameKind::Kill, 0, 0), |_| Ok(())),
            Sys::Stop(reason) => conn.push_value(codec, &header(FrameKind::Stop, 0, 0), reason),
            Sys::Link(me) => {
                let me = me.pid();
                link.reg.lock().links.insert((me.id(), to.id), self.pid);
                conn.push(codec, &header(FrameKind::Link, me.id(), 0), |_| Ok(()))
            }
            Sys::Unlink(me) => {
                link.reg.lock().links.remove(&(me.id(), to.id));
                conn.push(codec, &header(FrameKind::Unlink, me.id(), 0), |_| Ok(()))
            }
            Sys::Monitor { by, monitor } => {
                let by = by.pid();
                link.reg
                    .lock()
                    .monitors
                    .insert(monitor.0, (Watcher::Process(by.id()), self.pid));
                conn.push(
                    codec,
                    &header(FrameKind::Monitor, by.id(), monitor.0),
                    |_| Ok(()),
                )
            }
            Sys::Demonitor { by, monitor } => {
                link.reg.lock().monitors.remove(&monitor.0);
                conn.push(
                    codec,
                    &header(FrameKind::Demonitor, by.id(), monitor.0),
                    |_| Ok(()),
                )
            }
            Sys::Down(down) => {
                link.reg
                    .lock()
                    .watched
                    .remove(&(down.pid.id(), down.monitor.0, self.pid));
                conn.push_value(
                    codec,
                    &header(FrameKind::Down, down.pid.id(), down.monitor.0),
                    &down.reason,
                )
            }
        };
        match pushed {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!(peer = %link.name, "signal not sent: {e}");
                Err(sys)
            }
        }
    }
}

/// A ref's view of a process of another node.
pub(crate) struct RemoteRef<A: Actor> {
    pid: Pid,
    node: Node,
    vtable: RemoteVTable<A::Msg>,
}

impl<A: Actor> RemoteRef<A> {
    pub(crate) fn new(pid: Pid, node: Node, vtable: RemoteVTable<A::Msg>) -> Self {
        RemoteRef { pid, node, vtable }
    }

    #[inline]
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        self.node.call_timeout()
    }

    fn link(&self) -> Result<Arc<PeerLink>, NetError> {
        let net = self.node.net().ok_or(NetError::NotNetworked)?;
        net.link_for(&self.node, self.pid.node_atom())
    }

    fn header(&self, kind: FrameKind, correlation: u64) -> Header {
        Header {
            kind,
            to: WirePid {
                id: self.pid.id(),
                creation: self.pid.creation(),
            },
            from: 0,
            correlation,
        }
    }

    fn push_msg(
        &self,
        link: &PeerLink,
        limit: usize,
        header: &Header,
        msg: &A::Msg,
    ) -> Result<(), PushError> {
        let encode = self.vtable.encode;
        let conn = link.out_for(self.pid.id());
        with_encoded(
            |buf| encode(msg, buf),
            |bytes| {
                conn.push_below(limit, &link.codec, header, |w| {
                    w.put_slice(bytes);
                    Ok(())
                })
            },
        )
    }

    pub(crate) fn try_cast(&self, msg: A::Msg) -> Result<(), TrySendError<A::Msg>> {
        let link = match self.link() {
            Ok(link) if !link.is_stale(self.pid) => link,
            _ => return Err(TrySendError::Closed(msg)),
        };
        match self.push_msg(&link, HIGH_WATER, &self.header(FrameKind::Cast, 0), &msg) {
            Ok(()) => Ok(()),
            Err(PushError::Full) => Err(TrySendError::Full(msg)),
            Err(e) => {
                if !matches!(e, PushError::Closed) {
                    tracing::error!(to = %self.pid, actor = A::NAME, "cast not sent: {e}");
                }
                Err(TrySendError::Closed(msg))
            }
        }
    }

    pub(crate) async fn cast(&self, mut msg: A::Msg) -> Result<(), SendError<A::Msg>> {
        loop {
            match self.try_cast(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(m)) => return Err(SendError(m)),
                Err(TrySendError::Full(m)) => {
                    msg = m;
                    if let Ok(link) = self.link() {
                        link.out_for(self.pid.id()).wait_room().await;
                    }
                }
            }
        }
    }

    /// Sends a call: its reply slot becomes an entry of the link's pending calls.
    pub(crate) fn start_call(&self, mut msg: A::Msg) -> Result<RemoteCall, CallError> {
        let link = self.link().map_err(|_| CallError::NoConnection)?;
        if link.is_stale(self.pid) {
            return Err(CallError::NoProc);
        }
        let Some(reply) = (self.vtable.take_reply)(&mut msg) else {
            return Err(CallError::BadMessage("the message is not a call".into()));
        };
        let correlation = self
            .node
            .net()
            .map_or(0, |n| n.next_call.fetch_add(1, Ordering::Relaxed));
        let error = Arc::new(OnceLock::new());
        link.pending.lock().insert(
            correlation,
            Pending {
                reply,
                error: error.clone(),
            },
        );
        let call = RemoteCall {
            link,
            correlation,
            error,
        };
        let header = self.header(FrameKind::Call, correlation);
        match self.push_msg(&call.link, usize::MAX, &header, &msg) {
            Ok(()) => Ok(call),
            Err(PushError::Closed) => Err(CallError::NoConnection),
            Err(e) => Err(CallError::BadMessage(e.to_string())),
        }
    }

    pub(crate) fn is_reachable(&self) -> bool {
        self.link().is_ok_and(|l| !l.is_stale(self.pid))
    }

    pub(crate) fn signal(&self, sys: Sys) -> Result<(), Sys> {
        match self.link() {
            Ok(link) => RemotePid {
                pid: self.pid,
                link,
            }
            .signal(sys),
            Err(_) => Err(sys),
        }
    }

    /// Monitors the process from this node (no local process needed) and waits for its end.
    pub(crate) async fn wait(&self) -> ExitReason {
        let Ok(link) = self.link() else {
            return ExitReason::NoConnection;
        };
        if link.is_stale(self.pid) {
            return ExitReason::NoProc;
        }
        let monitor = self.node.next_monitor_ref();
        let (tx, rx) = oneshot::channel();
        link.reg
            .lock()
            .monitors
            .insert(monitor.0, (Watcher::Waiter(tx), self.pid));
        struct Guard<'a>(&'a PeerLink, u64, Header);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if self.0.reg.lock().monitors.remove(&self.1).is_some() {
                    let mut header = self.2;
                    header.kind = FrameKind::Demonitor;
                    let conn = self.0.out_for(header.to.id);
                    let _ = conn.push(&self.0.codec, &header, |_| Ok(()));
                }
            }
        }
        let header = self.header(FrameKind::Monitor, monitor.0);
        let _guard = Guard(&link, monitor.0, header);
        if link
            .out_for(self.pid.id())
            .push(&link.codec, &header, |_| Ok(()))
            .is_err()
        {
            return ExitReason::NoConnection;
        }
        rx.await.unwrap_or(ExitReason::NoConnection)
    }
}

/// A call in flight to another node: removes its pending entry when dropped (timeout, caller
/// gone), so a late reply is discarded.
pub(crate) struct RemoteCall {
    link: Arc<PeerLink>,
    correlation: u64,
    error: Arc<OnceLock<CallError>>,
}

impl RemoteCall {
    /// Why the call failed (its pending reply was dropped without a value).
    pub(crate) fn error(&self) -> CallError {
        self.error.get().cloned().unwrap_or(CallError::NoConnection)
    }
}

impl Drop for RemoteCall {
    fn drop(&mut self) {
        self.link.take_pending(self.correlation);
    }
}

/// Where the reply to a call from another node goes: back over the connection it came on.
pub struct ReplyRoute {
    conn: Arc<Conn>,
    link: Arc<PeerLink>,
    caller: u64,
    correlation: u64,
    callee: ProcHandle,
}

impl std::fmt::Debug for ReplyRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplyRoute({}#{})", self.link.name, self.correlation)
    }
}

impl ReplyRoute {
    fn header(&self, kind: FrameKind) -> Header {
        Header {
            kind,
            to: WirePid {
                id: self.caller,
                creation: self.link.creation(),
            },
            from: self.callee.core().pid().id(),
            correlation: self.correlation,
        }
    }

    fn fail(&self, failure: &WireFailure) {
        let _ = self.conn.push_value(
            &self.link.codec,
            &self.header(FrameKind::CallFailed),
            failure,
        );
    }
}

/// The reply slot of a call that came from another node.
pub(crate) struct RemoteReply<R> {
    route: Option<ReplyRoute>,
    encode: fn(&R, &mut Vec<u8>) -> Result<(), String>,
}

impl<R> RemoteReply<R> {
    pub(crate) fn new(
        route: ReplyRoute,
        encode: fn(&R, &mut Vec<u8>) -> Result<(), String>,
    ) -> Self {
        RemoteReply {
            route: Some(route),
            encode,
        }
    }

    pub(crate) fn send(&mut self, reply: &R) {
        let Some(route) = self.route.take() else {
            return;
        };
        let encode = self.encode;
        let header = route.header(FrameKind::Reply);
        let sent = with_encoded(
            |buf| encode(reply, buf),
            |bytes| {
                route.conn.push(&route.link.codec, &header, |w| {
                    w.put_slice(bytes);
                    Ok(())
                })
            },
        );
        match sent {
            Ok(()) | Err(PushError::Closed) => {}
            Err(e) => {
                tracing::error!(callee = %route.callee.core().pid(), "reply not sent: {e}");
                route.fail(&WireFailure::BadMessage(format!(
                    "the reply was not sent: {e}"
                )));
            }
        }
    }

    pub(crate) fn is_waiting(&self) -> bool {
        self.route.as_ref().is_some_and(|r| !r.conn.is_closed())
    }
}

impl<R> Drop for RemoteReply<R> {
    /// A call dropped without a reply (its process ended first): the caller learns why.
    fn drop(&mut self) {
        let Some(route) = self.route.take() else {
            return;
        };
        let core = route.callee.core();
        if let Some(reason) = core.exit_reason() {
            route.fail(&WireFailure::Exited(reason.clone()));
            return;
        }
        // Dropped while the process unwinds from a panic: its reason comes a moment later.
        let node = core.node.clone();
        let timeout = node.call_timeout();
        node.runtime().spawn(async move {
            let callee = route.callee.clone();
            if let Ok(reason) = tokio::time::timeout(timeout, callee.core().wait_reason()).await {
                route.fail(&WireFailure::Exited(reason));
            }
        });
    }
}

/// A mirror in the node's table: its subscription id and the typed `Arc<Mirror<T>>`.
#[derive(Clone)]
struct MirrorEntry {
    sub: u64,
    typed: Arc<dyn std::any::Any + Send + Sync>,
}

/// A subscribing node as one subscriber of a local event: values go to it as frames.
#[derive(Clone)]
pub(crate) struct RemoteSink {
    link: Arc<PeerLink>,
    sub: u64,
}

impl RemoteSink {
    pub(crate) fn is_closed(&self) -> bool {
        self.link.is_down()
    }

    /// Queues one value (written by `write`) for the subscribing node.
    pub(crate) fn publish(
        &self,
        write: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<(), String>,
    ) -> crate::events::Outcome {
        use crate::events::Outcome;
        let header = Header {
            kind: FrameKind::EventPublish,
            to: WirePid::NODE,
            from: 0,
            correlation: self.sub,
        };
        let conn = self.link.out_for(self.sub);
        match conn.push_below(HIGH_WATER, &self.link.codec, &header, |w| {
            write(w as &mut dyn std::io::Write).map_err(PushError::Encode)
        }) {
            Ok(()) => Outcome::Queued,
            Err(PushError::Full) => Outcome::Full,
            Err(PushError::Closed) => Outcome::Closed,
            Err(e) => {
                tracing::error!(peer = %self.link.name, "an event value was not sent: {e}");
                Outcome::Full
            }
        }
    }

    /// Tells the subscribing node the registration ended.
    pub(crate) fn down(&self, reason: &ExitReason) {
        self.link.remote_subs.lock().remove(&self.sub);
        let header = Header {
            kind: FrameKind::EventDown,
            to: WirePid::NODE,
            from: 0,
            correlation: self.sub,
        };
        let _ = self
            .link
            .out_for(self.sub)
            .push_value(&self.link.codec, &header, reason);
    }
}
