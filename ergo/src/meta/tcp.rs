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
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Bytes, CloseReason, Closer, Codec, FrameCodec, SendError, TrySendError};
use crate::{Actor, ActorRef};

mod client;
mod server;

pub use client::{Backoff, TcpClient, TcpClientRef};
pub use server::{TcpServer, TcpServerRef};

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
pub(super) struct ConnConfig {
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
pub(super) async fn run_connection<A: TcpHandler>(
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
