//! TCP meta processes: a server that gives every connection its own actor, and a client.
//!
//! A connection actor is any actor that implements [`TcpHandler`]: it says how a [`TcpEvent`]
//! becomes one of its messages (usually one line: the variant `#[actor]` generated for a handler
//! that takes a `TcpEvent`). It writes back through the [`TcpHandle`] it was made with.
//!
//! # Events
//!
//! Per connection, in order: one [`TcpEvent::Connected`], any number of [`TcpEvent::Data`], then
//! one [`TcpEvent::Closed`] with the [`CloseReason`]. A client that reconnects repeats the cycle
//! with the same actor and handle.
//!
//! # Lifetime
//!
//! - A server's connection actor lives as long as its connection: after `Closed` it has the
//!   close grace (5 s unless set) to stop by itself (`ctx.stop()`), then it is stopped. An actor
//!   that ends first (a panic among others) closes its socket, and only its socket.
//! - [`TcpServerRef::stop`] stops accepting, closes every connection gracefully (queued writes
//!   are flushed within the close grace, `Closed(Shutdown)` is delivered), stops the connection
//!   actors and the supervisor, and returns once the listening socket is released.
//! - A client's actor outlives its connections; [`TcpClientRef::stop`] ends both.
//!
//! # Limits
//!
//! Maximum connections (the excess is accepted and closed at once, with a log line), idle timeout
//! ([`CloseReason::IdleTimeout`]), maximum frame size ([`CloseReason::FrameTooLarge`]; the socket
//! is closed), and the write buffer (frames queued per connection before `send` waits).
//!
//! # Examples
//!
//! A line echo server and a client talking to it:
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::meta::tcp::{TcpConn, TcpEvent, TcpHandle, TcpHandler, TcpServer};
//! use ergo::meta::Codec;
//! use ergo::prelude::*;
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! struct Echo { conn: TcpHandle }
//!
//! #[actor]
//! impl Echo {
//!     #[handle]
//!     async fn tcp(&mut self, event: TcpEvent, ctx: &mut Ctx<Self>) {
//!         match event {
//!             TcpEvent::Data(line) => { let _ = self.conn.send(line).await; }
//!             TcpEvent::Closed(_) => ctx.stop(),
//!             _ => {}
//!         }
//!     }
//! }
//!
//! impl TcpHandler for Echo {
//!     fn event(event: TcpEvent) -> EchoMsg { EchoMsg::Tcp { event } }
//! }
//!
//! let node = Node::builder("tcp-doc@localhost").start().await?;
//! let server = TcpServer::bind("127.0.0.1:0".parse()?)
//!     .codec(Codec::Lines)
//!     .start(&node, |conn: TcpConn| Echo { conn: conn.handle })
//!     .await?;
//!
//! let mut client = tokio::net::TcpStream::connect(server.local_addr()).await?;
//! client.write_all(b"hello\n").await?;
//! let mut lines = BufReader::new(client).lines();
//! assert_eq!(lines.next_line().await?.as_deref(), Some("hello"));
//! server.stop().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Bytes, CloseReason, Closer, Codec, FrameCodec, SendError, StartError, TrySendError};
use crate::supervisor::{Restart, SimpleSupervisor};
use crate::{Actor, ActorRef, ExitReason, Node};

/// What a TCP meta process tells its actor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcpEvent {
    /// The connection is up; the peer's address.
    Connected(SocketAddr),
    /// Bytes that arrived: one read ([`Codec::Raw`]) or one frame (lines, length-delimited).
    Data(Bytes),
    /// The connection has closed, and why. The last event of a connection.
    Closed(CloseReason),
}

/// An actor that can be fed by a TCP meta process: turns a [`TcpEvent`] into its message.
///
/// With `#[actor]`, give the actor a handler that takes a `TcpEvent` and wrap the event in its
/// generated variant:
///
/// ```
/// use ergo::meta::tcp::{TcpEvent, TcpHandler};
/// use ergo::prelude::*;
///
/// struct Logger;
/// #[actor]
/// impl Logger {
///     #[handle]
///     fn on_tcp(&mut self, event: TcpEvent) { println!("{event:?}") }
/// }
/// impl TcpHandler for Logger {
///     fn event(event: TcpEvent) -> LoggerMsg { LoggerMsg::OnTcp { event } }
/// }
/// ```
pub trait TcpHandler: Actor {
    /// Wraps `event` in the actor's message.
    fn event(event: TcpEvent) -> Self::Msg;
}

/// What a server's factory gets for each accepted connection.
///
/// ```no_run
/// use ergo::meta::tcp::TcpConn;
/// fn describe(conn: &TcpConn) -> String { format!("{} -> {}", conn.peer, conn.local) }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TcpConn {
    /// The peer's address.
    pub peer: SocketAddr,
    /// This side's address.
    pub local: SocketAddr,
    /// Writes to the connection and closes it.
    pub handle: TcpHandle,
}

/// Writes to a TCP connection and closes it; cheap to clone.
///
/// Data goes through a bounded channel (the write buffer, 64 frames unless set) to the task that
/// owns the socket's write half, so a peer that reads slowly makes [`TcpHandle::send`] wait
/// instead of letting memory grow. Each send is framed by the connection's [`Codec`].
///
/// A client's handle stays valid across reconnections: data sent while disconnected waits in
/// the write buffer for the next connection.
#[derive(Clone, Debug)]
pub struct TcpHandle {
    tx: mpsc::Sender<Bytes>,
    closer: Arc<Closer>,
    peer: SocketAddr,
}

impl TcpHandle {
    /// Queues `data` for writing, waiting while the write buffer is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the data when the connection (or client) is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting for room, nothing is queued.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(conn: ergo::meta::tcp::TcpHandle) -> Result<(), ergo::meta::SendError> {
    /// conn.send("hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        let data = data.into();
        if self.closer.token.is_cancelled() {
            return Err(SendError(data));
        }
        tokio::select! {
            permit = self.tx.reserve() => match permit {
                Ok(permit) => {
                    permit.send(data);
                    Ok(())
                }
                Err(_) => Err(SendError(data)),
            },
            _ = self.closer.token.cancelled() => Err(SendError(data)),
        }
    }

    /// Queues `data` for writing if the write buffer has room.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the peer is behind, [`TrySendError::Closed`] when the
    /// connection is closed; both hand the data back.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(conn: ergo::meta::tcp::TcpHandle) {
    /// use ergo::meta::TrySendError;
    /// if let Err(TrySendError::Full(_)) = conn.try_send("tick") {
    ///     conn.close(); // a consumer this slow is dropped
    /// }
    /// # }
    /// ```
    pub fn try_send(&self, data: impl Into<Bytes>) -> Result<(), TrySendError> {
        let data = data.into();
        if self.closer.token.is_cancelled() {
            return Err(TrySendError::Closed(data));
        }
        self.tx.try_send(data).map_err(|e| match e {
            mpsc::error::TrySendError::Full(d) => TrySendError::Full(d),
            mpsc::error::TrySendError::Closed(d) => TrySendError::Closed(d),
        })
    }

    /// Closes the connection gracefully: data already queued is written (within the close
    /// grace), then the socket is shut down and the actor receives
    /// `Closed(`[`CloseReason::Closed`]`)`. On a client this also ends reconnecting.
    ///
    /// ```no_run
    /// # fn f(conn: ergo::meta::tcp::TcpHandle) {
    /// conn.close();
    /// assert!(conn.is_closed());
    /// # }
    /// ```
    pub fn close(&self) {
        self.closer.close(CloseReason::Closed);
    }

    /// Whether the connection (or client) is closed or closing.
    pub fn is_closed(&self) -> bool {
        self.closer.token.is_cancelled()
    }

    /// The peer's address (for a client: the address it connects to).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

/// Per-connection settings shared by the server and the client.
#[derive(Clone, Debug)]
struct ConnConfig {
    codec: Codec,
    max_frame_size: usize,
    idle_timeout: Option<Duration>,
    write_buffer: usize,
    close_grace: Duration,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            codec: Codec::Raw,
            max_frame_size: 64 * 1024,
            idle_timeout: None,
            write_buffer: 64,
            close_grace: Duration::from_secs(5),
        }
    }
}

/// Bytes encoded before a write is issued, when more frames are queued.
const WRITE_BATCH: usize = 64 * 1024;

/// Owns the write half: writes what the handle queues until `closer` fires, then flushes what
/// is queued (within `grace`) and shuts the socket's write side down. Gives the channel back.
async fn write_loop(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Bytes>,
    mut codec: FrameCodec,
    closer: Arc<Closer>,
    grace: Duration,
) -> mpsc::Receiver<Bytes> {
    let mut buf = BytesMut::new();
    loop {
        let first = tokio::select! {
            biased;
            _ = closer.token.cancelled() => break,
            data = rx.recv() => data,
        };
        let Some(first) = first else { break };
        let mut next = Some(first);
        while let Some(data) = next {
            if let Err(reason) = codec.encode(data, &mut buf) {
                closer.close(reason);
                return rx;
            }
            next = if buf.len() < WRITE_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let written = tokio::select! {
            r = w.write_all_buf(&mut buf) => r,
            _ = closer.token.cancelled() => Ok(()),
        };
        if let Err(e) = written {
            closer.close(CloseReason::Io(e.to_string()));
            return rx;
        }
    }
    let flush = async {
        while let Ok(data) = rx.try_recv() {
            if codec.encode(data, &mut buf).is_err() {
                break;
            }
        }
        w.write_all_buf(&mut buf).await?;
        w.shutdown().await
    };
    let _ = tokio::time::timeout(grace, flush).await;
    rx
}

/// Runs one connection: delivers `Connected`, `Data`… to `actor` until the peer closes, a limit
/// trips, `closer` fires or the actor ends. Returns the close reason (`None` when the actor
/// ended: it gets no `Closed`) and the write channel.
async fn run_connection<A: TcpHandler>(
    stream: TcpStream,
    actor: &ActorRef<A>,
    cfg: &ConnConfig,
    rx: mpsc::Receiver<Bytes>,
    closer: &Arc<Closer>,
    parent: &Closer,
) -> (Option<CloseReason>, mpsc::Receiver<Bytes>) {
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let _ = stream.set_nodelay(true);
    let (mut r, w) = stream.into_split();
    let writer = tokio::spawn(write_loop(
        w,
        rx,
        FrameCodec::new(cfg.codec, cfg.max_frame_size),
        closer.clone(),
        cfg.close_grace,
    ));
    let mut codec = FrameCodec::new(cfg.codec, cfg.max_frame_size);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let ended = actor.wait();
    tokio::pin!(ended);
    let mut last_read = Instant::now();
    let mut reason: Option<CloseReason> = if actor
        .cast(A::event(TcpEvent::Connected(peer)))
        .await
        .is_err()
    {
        None
    } else {
        'conn: loop {
            let idle = async {
                match cfg.idle_timeout {
                    Some(d) => tokio::time::sleep_until(last_read + d).await,
                    None => std::future::pending().await,
                }
            };
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(8 * 1024);
            }
            tokio::select! {
                biased;
                _ = closer.token.cancelled() => {
                    break 'conn Some(
                        closer.reason().or_else(|| parent.reason()).unwrap_or(CloseReason::Shutdown),
                    );
                }
                _ = &mut ended => break 'conn None,
                _ = idle => break 'conn Some(CloseReason::IdleTimeout),
                read = r.read_buf(&mut buf) => match read {
                    Ok(0) => {
                        while let Some(frame) = codec.decode_eof(&mut buf) {
                            if actor.cast(A::event(TcpEvent::Data(frame))).await.is_err() {
                                break 'conn None;
                            }
                        }
                        break 'conn Some(CloseReason::PeerClosed);
                    }
                    Ok(_) => {
                        last_read = Instant::now();
                        loop {
                            match codec.decode(&mut buf) {
                                Ok(Some(frame)) => {
                                    if actor.cast(A::event(TcpEvent::Data(frame))).await.is_err() {
                                        break 'conn None;
                                    }
                                }
                                Ok(None) => break,
                                Err(reason) => break 'conn Some(reason),
                            }
                        }
                    }
                    Err(e) => break 'conn Some(CloseReason::Io(e.to_string())),
                },
            }
        }
    };
    if let Some(why) = &reason {
        if matches!(
            why,
            CloseReason::FrameTooLarge | CloseReason::InvalidData(_)
        ) {
            tracing::info!(%peer, reason = %why, "closing connection");
        }
    }
    closer.close(reason.clone().unwrap_or(CloseReason::Closed));
    drop(r);
    let rx = match writer.await {
        Ok(rx) => rx,
        Err(_) => {
            // The writer cannot panic short of a bug; end the connection for good.
            let (_, rx) = mpsc::channel(1);
            rx
        }
    };
    if let Some(why) = reason.take() {
        let why = closer
            .reason()
            .filter(|_| why == CloseReason::Closed)
            .unwrap_or(why);
        if actor
            .cast(A::event(TcpEvent::Closed(why.clone())))
            .await
            .is_ok()
        {
            reason = Some(why);
        }
    }
    (reason, rx)
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Configures and starts a TCP server meta process: `TcpServer::bind(addr).….start(&node, f)`.
///
/// Defaults: [`Codec::Raw`], 1024 connections, no idle timeout, 64 KiB frames, a write buffer of
/// 64 frames, a close grace of 5 s.
///
/// ```no_run
/// # async fn f(node: ergo::Node) -> Result<(), Box<dyn std::error::Error>> {
/// # use ergo::meta::tcp::{TcpEvent, TcpHandler};
/// # use ergo::prelude::*;
/// # struct Conn;
/// # #[actor] impl Conn { #[handle] fn tcp(&mut self, event: TcpEvent) {} }
/// # impl TcpHandler for Conn { fn event(event: TcpEvent) -> ConnMsg { ConnMsg::Tcp { event } } }
/// use std::time::Duration;
/// use ergo::meta::tcp::TcpServer;
/// use ergo::meta::Codec;
///
/// let server = TcpServer::bind("0.0.0.0:7000".parse()?)
///     .codec(Codec::Lines)
///     .max_connections(500)
///     .idle_timeout(Duration::from_secs(300))
///     .max_frame_size(4096)
///     .start(&node, |_conn| Conn)
///     .await?;
/// println!("listening on {}", server.local_addr());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct TcpServer {
    addr: SocketAddr,
    max_connections: usize,
    conn: ConnConfig,
}

impl TcpServer {
    /// A server that will listen on `addr` (port 0: the OS picks one; read it back with
    /// [`TcpServerRef::local_addr`]).
    pub fn bind(addr: SocketAddr) -> Self {
        TcpServer {
            addr,
            max_connections: 1024,
            conn: ConnConfig::default(),
        }
    }

    /// How data is framed (see [`Codec`]).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.conn.codec = codec;
        self
    }

    /// The most connections served at once; a connection beyond it is accepted and closed at
    /// once, with a log line. A connection counts until its actor has ended.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Closes a connection on which nothing arrived for `timeout`
    /// ([`CloseReason::IdleTimeout`]).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.conn.idle_timeout = Some(timeout);
        self
    }

    /// The longest frame (or line) accepted, in bytes; a longer one closes the connection
    /// ([`CloseReason::FrameTooLarge`]). Also bounds frames sent with
    /// [`Codec::LengthDelimited`].
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.conn.max_frame_size = bytes.max(1);
        self
    }

    /// How many frames a connection queues before [`TcpHandle::send`] waits (at least 1).
    pub fn write_buffer(mut self, frames: usize) -> Self {
        self.conn.write_buffer = frames.max(1);
        self
    }

    /// How long closing may take: flushing queued writes, and a connection actor stopping by
    /// itself after `Closed` before it is stopped.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.conn.close_grace = grace;
        self
    }

    /// Binds the address, starts the connection supervisor on `node` and starts accepting;
    /// `make` builds the actor of each connection.
    ///
    /// # Errors
    ///
    /// [`StartError::Io`] when the address cannot be bound, [`StartError::Spawn`] when the node
    /// is shutting down.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped after the bind, the supervisor may be left running.
    pub async fn start<A, F>(self, node: &Node, make: F) -> Result<TcpServerRef<A>, StartError>
    where
        A: TcpHandler,
        F: FnMut(TcpConn) -> A + Send + 'static,
    {
        let listener = TcpListener::bind(self.addr).await?;
        let local_addr = listener.local_addr()?;
        let supervisor = node
            .spawn(SimpleSupervisor::new(make).restart(Restart::Temporary))
            .await?;
        let shared = Arc::new(ServerShared {
            closer: Closer::new(CancellationToken::new()),
            tracker: TaskTracker::new(),
            active: AtomicUsize::new(0),
            max_connections: self.max_connections,
            conn: self.conn,
        });
        shared
            .tracker
            .spawn(accept_loop(listener, supervisor.clone(), shared.clone()));
        tracing::info!(addr = %local_addr, "tcp server listening");
        Ok(TcpServerRef {
            local_addr,
            supervisor,
            shared,
        })
    }
}

struct ServerShared {
    closer: Arc<Closer>,
    tracker: TaskTracker,
    active: AtomicUsize,
    max_connections: usize,
    conn: ConnConfig,
}

type ConnSupervisor<A> = SimpleSupervisor<A, TcpConn>;

/// A running TCP server; cheap to clone. The server runs until [`TcpServerRef::stop`] or until
/// its supervisor ends (a node shutdown among others), not merely until this ref is dropped.
pub struct TcpServerRef<A: TcpHandler> {
    local_addr: SocketAddr,
    supervisor: ActorRef<ConnSupervisor<A>>,
    shared: Arc<ServerShared>,
}

impl<A: TcpHandler> Clone for TcpServerRef<A> {
    fn clone(&self) -> Self {
        TcpServerRef {
            local_addr: self.local_addr,
            supervisor: self.supervisor.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<A: TcpHandler> std::fmt::Debug for TcpServerRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpServerRef")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.connections())
            .finish()
    }
}

impl<A: TcpHandler> TcpServerRef<A> {
    /// The address the server listens on (with the port the OS picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The connections being served now (each counts until its actor has ended).
    pub fn connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// The supervisor of the connection actors (`simple_one_for_one`, children `Temporary`).
    pub fn supervisor(&self) -> &ActorRef<SimpleSupervisor<A, TcpConn>> {
        &self.supervisor
    }

    /// Whether the server still accepts connections.
    pub fn is_running(&self) -> bool {
        !self.shared.closer.token.is_cancelled() && self.supervisor.is_alive()
    }

    /// Stops the server: stops accepting, closes every connection gracefully (queued writes
    /// flushed, `Closed(Shutdown)` delivered, each actor given the close grace to stop), stops
    /// the supervisor, and returns once every connection task has ended and the listening
    /// socket is released. Calling it again waits for the same end.
    ///
    /// # Cancel safety
    ///
    /// The stop goes on if the future is dropped; only the waiting is cancelled.
    pub async fn stop(&self) {
        self.shared.closer.close(CloseReason::Shutdown);
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
        self.supervisor.stop(ExitReason::Shutdown);
        self.supervisor.wait().await;
    }
}

async fn accept_loop<A: TcpHandler>(
    listener: TcpListener,
    supervisor: ActorRef<ConnSupervisor<A>>,
    shared: Arc<ServerShared>,
) {
    let sup_ended = supervisor.wait();
    tokio::pin!(sup_ended);
    loop {
        tokio::select! {
            biased;
            _ = shared.closer.token.cancelled() => break,
            _ = &mut sup_ended => {
                shared.closer.close(CloseReason::Shutdown);
                break;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let active = shared.active.load(Ordering::SeqCst);
                    if active >= shared.max_connections {
                        tracing::warn!(
                            %peer,
                            max = shared.max_connections,
                            "connection refused: too many connections"
                        );
                        drop(stream);
                        continue;
                    }
                    shared.active.fetch_add(1, Ordering::SeqCst);
                    shared
                        .tracker
                        .spawn(serve_connection(stream, peer, supervisor.clone(), shared.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    tracing::info!("tcp server stopped accepting");
}

/// Decrements the connection count when a connection task ends, however it ends.
struct ActiveGuard(Arc<ServerShared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_connection<A: TcpHandler>(
    stream: TcpStream,
    peer: SocketAddr,
    supervisor: ActorRef<ConnSupervisor<A>>,
    shared: Arc<ServerShared>,
) {
    let _guard = ActiveGuard(shared.clone());
    let cfg = &shared.conn;
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "connection lost before it started");
            return;
        }
    };
    let (tx, rx) = mpsc::channel(cfg.write_buffer);
    let closer = Closer::new(shared.closer.token.child_token());
    let handle = TcpHandle {
        tx,
        closer: closer.clone(),
        peer,
    };
    let conn = TcpConn {
        peer,
        local,
        handle,
    };
    let actor = match supervisor.start_child(conn).await {
        Ok(Ok(actor)) => actor,
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "connection actor failed to start");
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e, "connection supervisor unavailable");
            return;
        }
    };
    let (reason, rx) = run_connection(stream, &actor, cfg, rx, &closer, &shared.closer).await;
    drop(rx);
    if reason.is_some() {
        // The actor was told; give it the grace to stop by itself, then stop it.
        if tokio::time::timeout(cfg.close_grace, actor.wait())
            .await
            .is_err()
        {
            actor.stop(ExitReason::Normal);
            let _ = tokio::time::timeout(cfg.close_grace, actor.wait()).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// Exponential backoff between reconnection attempts: `initial`, doubled after each failed
/// attempt up to `max`, reset after a successful connection.
///
/// ```
/// use std::time::Duration;
/// use ergo::meta::tcp::Backoff;
/// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).max_attempts(5);
/// assert_eq!(b.delay(0), Some(Duration::from_millis(100)));
/// assert_eq!(b.delay(3), Some(Duration::from_millis(800)));
/// assert_eq!(b.delay(4), Some(Duration::from_secs(1)));
/// assert_eq!(b.delay(5), None); // gives up
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    max_attempts: Option<u32>,
}

impl Backoff {
    /// Waits `initial` before the first attempt, doubling up to `max`; never gives up.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            max_attempts: None,
        }
    }

    /// Gives up after `attempts` failed attempts in a row.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The wait before attempt `attempt` (from 0), or `None` once it gives up.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if self.max_attempts.is_some_and(|max| attempt >= max) {
            return None;
        }
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        Some(
            self.initial
                .checked_mul(factor)
                .map_or(self.max, |d| d.min(self.max)),
        )
    }
}

/// Configures and starts a TCP client meta process: `TcpClient::connect(addr).….start(&node, f)`.
///
/// The actor gets the same events and handle as a server's connection actor. Without
/// [`TcpClient::reconnect`], the client ends with its first connection; with it, the client
/// connects again after a lost connection (or a failed attempt), waiting as the [`Backoff`] says.
///
/// ```no_run
/// # async fn f(node: ergo::Node) -> Result<(), Box<dyn std::error::Error>> {
/// # use ergo::meta::tcp::{TcpEvent, TcpHandler, TcpHandle};
/// # use ergo::prelude::*;
/// # struct Feed { conn: TcpHandle }
/// # #[actor] impl Feed { #[handle] fn tcp(&mut self, event: TcpEvent) {} }
/// # impl TcpHandler for Feed { fn event(event: TcpEvent) -> FeedMsg { FeedMsg::Tcp { event } } }
/// use std::time::Duration;
/// use ergo::meta::tcp::{Backoff, TcpClient};
///
/// let client = TcpClient::connect("127.0.0.1:7000".parse()?)
///     .reconnect(Some(Backoff::new(Duration::from_millis(100), Duration::from_secs(5))))
///     .start(&node, |conn| Feed { conn })
///     .await?;
/// client.handle().send("subscribe prices\n").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct TcpClient {
    addr: SocketAddr,
    reconnect: Option<Backoff>,
    conn: ConnConfig,
}

impl TcpClient {
    /// A client of `addr`.
    pub fn connect(addr: SocketAddr) -> Self {
        TcpClient {
            addr,
            reconnect: None,
            conn: ConnConfig::default(),
        }
    }

    /// Reconnect after a lost connection or a failed attempt (`None`: do not).
    pub fn reconnect(mut self, backoff: Option<Backoff>) -> Self {
        self.reconnect = backoff;
        self
    }

    /// How data is framed (see [`Codec`]).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.conn.codec = codec;
        self
    }

    /// Closes a connection on which nothing arrived for `timeout`.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.conn.idle_timeout = Some(timeout);
        self
    }

    /// The longest frame (or line) accepted, in bytes.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.conn.max_frame_size = bytes.max(1);
        self
    }

    /// How many frames are queued before [`TcpHandle::send`] waits (at least 1).
    pub fn write_buffer(mut self, frames: usize) -> Self {
        self.conn.write_buffer = frames.max(1);
        self
    }

    /// How long flushing queued writes may take when a connection closes.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.conn.close_grace = grace;
        self
    }

    /// Connects once, spawns the actor `make` builds (given the client's handle) on `node`, and
    /// serves the connection in a task of its own. With reconnection on, a failed first attempt
    /// is retried in the background instead of failing.
    ///
    /// # Errors
    ///
    /// [`StartError::Io`] when the first attempt fails and reconnection is off,
    /// [`StartError::Spawn`] when the actor cannot be spawned.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped after the spawn, the actor is left running unconnected.
    pub async fn start<A, F>(self, node: &Node, make: F) -> Result<TcpClientRef<A>, StartError>
    where
        A: TcpHandler,
        F: FnOnce(TcpHandle) -> A,
    {
        let first = match TcpStream::connect(self.addr).await {
            Ok(s) => Some(s),
            Err(e) if self.reconnect.is_none() => return Err(e.into()),
            Err(e) => {
                tracing::info!(addr = %self.addr, error = %e, "connect failed; will retry");
                None
            }
        };
        let (tx, rx) = mpsc::channel(self.conn.write_buffer);
        let closer = Closer::new(CancellationToken::new());
        let handle = TcpHandle {
            tx,
            closer: closer.clone(),
            peer: self.addr,
        };
        let actor = node.spawn(make(handle.clone())).await?;
        let task = tokio::spawn(client_loop(self, first, actor.clone(), rx, closer));
        Ok(TcpClientRef {
            actor,
            handle,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }
}

async fn client_loop<A: TcpHandler>(
    client: TcpClient,
    first: Option<TcpStream>,
    actor: ActorRef<A>,
    mut rx: mpsc::Receiver<Bytes>,
    closer: Arc<Closer>,
) {
    let mut stream = first;
    let mut attempt = 0u32;
    loop {
        if let Some(s) = stream.take() {
            attempt = 0;
            let conn_closer = Closer::new(closer.token.child_token());
            let (reason, back) =
                run_connection(s, &actor, &client.conn, rx, &conn_closer, &closer).await;
            rx = back;
            if reason.is_none() || closer.token.is_cancelled() {
                return;
            }
        }
        let Some(backoff) = client.reconnect else {
            return;
        };
        let Some(delay) = backoff.delay(attempt) else {
            tracing::warn!(addr = %client.addr, attempts = attempt, "giving up reconnecting");
            return;
        };
        attempt += 1;
        let connected = tokio::select! {
            _ = closer.token.cancelled() => return,
            _ = actor.wait() => return,
            c = async {
                tokio::time::sleep(delay).await;
                TcpStream::connect(client.addr).await
            } => c,
        };
        match connected {
            Ok(s) => stream = Some(s),
            Err(e) => tracing::debug!(addr = %client.addr, error = %e, "reconnect failed"),
        }
    }
}

/// A running TCP client: its actor and its handle; cheap to clone.
pub struct TcpClientRef<A: TcpHandler> {
    actor: ActorRef<A>,
    handle: TcpHandle,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl<A: TcpHandler> Clone for TcpClientRef<A> {
    fn clone(&self) -> Self {
        TcpClientRef {
            actor: self.actor.clone(),
            handle: self.handle.clone(),
            task: self.task.clone(),
        }
    }
}

impl<A: TcpHandler> std::fmt::Debug for TcpClientRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpClientRef")
            .field("actor", &self.actor)
            .field("addr", &self.handle.peer)
            .finish()
    }
}

impl<A: TcpHandler> TcpClientRef<A> {
    /// The client's actor.
    pub fn actor(&self) -> &ActorRef<A> {
        &self.actor
    }

    /// The client's handle (the same one its actor was made with).
    pub fn handle(&self) -> &TcpHandle {
        &self.handle
    }

    /// Stops the client: closes the connection gracefully (`Closed(Shutdown)` is delivered,
    /// queued writes flushed within the close grace), ends reconnecting, then stops the actor
    /// and waits for it.
    ///
    /// # Cancel safety
    ///
    /// The stop goes on if the future is dropped; only the waiting is cancelled.
    pub async fn stop(&self) {
        self.handle.closer.close(CloseReason::Shutdown);
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.actor.stop(ExitReason::Shutdown);
        self.actor.wait().await;
    }
}
