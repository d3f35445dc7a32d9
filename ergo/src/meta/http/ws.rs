//! WebSocket routes: every WebSocket connection becomes an actor, with the events and handle of
//! a TCP connection.
//!
//! [`HttpServer::websocket`] adds a route that upgrades the request and starts a connection
//! actor, made by your factory and started under a [`SimpleSupervisor`] (restart type
//! `Temporary`), exactly as [`TcpServer`](crate::meta::tcp::TcpServer) does for a socket.
//!
//! # Events
//!
//! Per connection, in order: one [`WsEvent::Connected`], any number of [`WsEvent::Text`] and
//! [`WsEvent::Binary`] (one per WebSocket message; pings are answered by the server), then one
//! [`WsEvent::Closed`] with the [`CloseReason`]. An actor implements [`WsHandler`] to say how an
//! event becomes its message.
//!
//! # Backpressure
//!
//! Messages the actor sends go through a bounded channel (the write buffer, 64 messages unless
//! set) to the task that owns the socket: [`WsHandle::send`] waits for room when the client
//! reads slowly, [`WsHandle::try_send`] reports [`TrySendError::Full`]. Events are ordinary
//! casts, so an actor with a bounded mailbox slows the reading of its socket down.
//!
//! # Lifetime
//!
//! After `Closed` the actor has the close grace (5 s unless set) to stop by itself, then it is
//! stopped. An actor that ends first (a panic among others) closes its socket, and only its
//! socket. A message larger than the maximum (64 KiB unless set) closes the connection with
//! [`CloseReason::FrameTooLarge`]. Stopping the server closes every connection with
//! [`CloseReason::Shutdown`] (queued messages are flushed within the close grace, then a close
//! frame is sent).
//!
//! # Examples
//!
//! ```no_run
//! # async fn f(node: ergo::Node) -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::meta::http::ws::{WsConn, WsEvent, WsHandle, WsHandler};
//! use ergo::meta::http::HttpServer;
//! use ergo::prelude::*;
//!
//! struct Echo { conn: WsHandle }
//!
//! #[actor]
//! impl Echo {
//!     #[handle]
//!     async fn ws(&mut self, event: WsEvent, ctx: &mut Ctx<Self>) {
//!         match event {
//!             WsEvent::Text(text) => { let _ = self.conn.send(text).await; }
//!             WsEvent::Binary(data) => { let _ = self.conn.send(data).await; }
//!             WsEvent::Closed(_) => ctx.stop(),
//!             _ => {}
//!         }
//!     }
//! }
//!
//! impl WsHandler for Echo {
//!     fn event(event: WsEvent) -> EchoMsg { EchoMsg::Ws { event } }
//! }
//!
//! let server = HttpServer::bind("127.0.0.1:8080".parse()?)
//!     .websocket("/echo", |conn: WsConn| Echo { conn: conn.handle })
//!     .start(&node)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`SimpleSupervisor`]: crate::supervisor::SimpleSupervisor

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawPathParams, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::server::{plain, SharedState, Stopper};
use super::HttpServer;
use crate::meta::{Bytes, CloseReason, Closer, SendError, StartError, TrySendError};
use crate::supervisor::{Restart, SimpleSupervisor};
use crate::{Actor, ActorRef, ExitReason, Node};

/// What a WebSocket connection tells its actor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsEvent {
    /// The connection is up; the client's address.
    Connected(SocketAddr),
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// The connection has closed, and why. The last event of a connection.
    Closed(CloseReason),
}

/// An actor that can be fed by a WebSocket connection: turns a [`WsEvent`] into its message.
///
/// ```
/// use ergo::meta::http::ws::{WsEvent, WsHandler};
/// use ergo::prelude::*;
///
/// struct Logger;
/// #[actor]
/// impl Logger {
///     #[handle]
///     fn on_ws(&mut self, event: WsEvent) { println!("{event:?}") }
/// }
/// impl WsHandler for Logger {
///     fn event(event: WsEvent) -> LoggerMsg { LoggerMsg::OnWs { event } }
/// }
/// ```
pub trait WsHandler: Actor {
    /// Wraps `event` in the actor's message.
    fn event(event: WsEvent) -> Self::Msg;
}

/// A message to send on a WebSocket: text or binary.
///
/// ```
/// use ergo::meta::http::ws::WsMessage;
/// assert_eq!(WsMessage::from("hi"), WsMessage::Text("hi".into()));
/// assert_eq!(WsMessage::from(vec![1u8, 2]), WsMessage::Binary(vec![1u8, 2].into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

impl WsMessage {
    /// The message's bytes (text as UTF-8).
    pub fn into_bytes(self) -> Bytes {
        match self {
            WsMessage::Text(t) => Bytes::from(t),
            WsMessage::Binary(b) => b,
        }
    }

    fn into_axum(self) -> Message {
        match self {
            WsMessage::Text(t) => Message::Text(Utf8Bytes::from(t)),
            WsMessage::Binary(b) => Message::Binary(b),
        }
    }
}

impl From<String> for WsMessage {
    fn from(text: String) -> Self {
        WsMessage::Text(text)
    }
}

impl From<&str> for WsMessage {
    fn from(text: &str) -> Self {
        WsMessage::Text(text.to_owned())
    }
}

impl From<Bytes> for WsMessage {
    fn from(data: Bytes) -> Self {
        WsMessage::Binary(data)
    }
}

impl From<Vec<u8>> for WsMessage {
    fn from(data: Vec<u8>) -> Self {
        WsMessage::Binary(Bytes::from(data))
    }
}

/// What a WebSocket route's factory gets for each connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WsConn {
    /// The client's address.
    pub peer: SocketAddr,
    /// The path the client asked for.
    pub path: String,
    /// The route's path parameters, percent-decoded, in order.
    pub params: Vec<(String, String)>,
    /// Writes to the connection and closes it.
    pub handle: WsHandle,
}

impl WsConn {
    /// The path parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Writes to a WebSocket connection and closes it; cheap to clone.
///
/// Messages go through a bounded channel (the write buffer) to the task that owns the socket,
/// so a client that reads slowly makes [`WsHandle::send`] wait instead of letting memory grow.
#[derive(Clone, Debug)]
pub struct WsHandle {
    tx: mpsc::Sender<WsMessage>,
    closer: Arc<Closer>,
    peer: SocketAddr,
}

impl WsHandle {
    /// Queues a message (a `String` or `&str` is sent as text, `Bytes` or `Vec<u8>` as
    /// binary), waiting while the write buffer is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message's bytes when the connection is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while waiting for room, nothing is queued.
    pub async fn send(&self, msg: impl Into<WsMessage>) -> Result<(), SendError> {
        let msg = msg.into();
        if self.closer.token.is_cancelled() {
            return Err(SendError(msg.into_bytes()));
        }
        tokio::select! {
            permit = self.tx.reserve() => match permit {
                Ok(permit) => {
                    permit.send(msg);
                    Ok(())
                }
                Err(_) => Err(SendError(msg.into_bytes())),
            },
            _ = self.closer.token.cancelled() => Err(SendError(msg.into_bytes())),
        }
    }

    /// Queues a message if the write buffer has room.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the client is behind, [`TrySendError::Closed`] when the
    /// connection is closed; both hand the message's bytes back.
    pub fn try_send(&self, msg: impl Into<WsMessage>) -> Result<(), TrySendError> {
        let msg = msg.into();
        if self.closer.token.is_cancelled() {
            return Err(TrySendError::Closed(msg.into_bytes()));
        }
        self.tx.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(m) => TrySendError::Full(m.into_bytes()),
            mpsc::error::TrySendError::Closed(m) => TrySendError::Closed(m.into_bytes()),
        })
    }

    /// Closes the connection gracefully: messages already queued are sent (within the close
    /// grace), then a close frame, and the actor receives `Closed(`[`CloseReason::Closed`]`)`.
    pub fn close(&self) {
        self.closer.close(CloseReason::Closed);
    }

    /// Whether the connection is closed or closing.
    pub fn is_closed(&self) -> bool {
        self.closer.token.is_cancelled()
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

/// Per-route WebSocket settings.
#[derive(Clone, Copy, Debug)]
pub struct WsConfig {
    max_message_size: usize,
    write_buffer: usize,
    close_grace: Duration,
}

impl Default for WsConfig {
    /// 64 KiB messages, a write buffer of 64 messages, a close grace of 5 s.
    fn default() -> Self {
        WsConfig {
            max_message_size: 64 * 1024,
            write_buffer: 64,
            close_grace: Duration::from_secs(5),
        }
    }
}

impl WsConfig {
    /// The largest message accepted, in bytes; a larger one closes the connection
    /// ([`CloseReason::FrameTooLarge`]).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.max(1);
        self
    }

    /// How many messages a connection queues before [`WsHandle::send`] waits (at least 1).
    pub fn write_buffer(mut self, messages: usize) -> Self {
        self.write_buffer = messages.max(1);
        self
    }

    /// How long closing may take: flushing queued messages, and the actor stopping by itself
    /// after `Closed` before it is stopped.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }
}

type WsSupervisor<A> = SimpleSupervisor<A, WsConn>;

impl HttpServer {
    /// Upgrades requests for `path` to WebSocket connections, each served by a new actor that
    /// `make` builds (under a supervisor started by [`HttpServer::start`]), with the default
    /// [`WsConfig`].
    ///
    /// # Panics
    ///
    /// At [`HttpServer::start`], when `path` is not a valid route path or already routed.
    pub fn websocket<A, F>(self, path: &str, make: F) -> Self
    where
        A: WsHandler,
        F: FnMut(WsConn) -> A + Send + 'static,
    {
        self.websocket_with(path, WsConfig::default(), make)
    }

    /// As [`HttpServer::websocket`], with the limits of `config`.
    ///
    /// # Panics
    ///
    /// At [`HttpServer::start`], when `path` is not a valid route path or already routed.
    pub fn websocket_with<A, F>(mut self, path: &str, config: WsConfig, make: F) -> Self
    where
        A: WsHandler,
        F: FnMut(WsConn) -> A + Send + 'static,
    {
        let path = path.to_owned();
        self.installers.push(Box::new(move |node: Node, router| {
            Box::pin(async move {
                let supervisor = node
                    .spawn(SimpleSupervisor::new(make).restart(Restart::Temporary))
                    .await
                    .map_err(StartError::from)?;
                let sup = supervisor.clone();
                let router = router.route(
                    &path,
                    axum::routing::get(
                        move |state: State<SharedState>,
                              peer: ConnectInfo<SocketAddr>,
                              params: Result<RawPathParams, RawPathParamsRejection>,
                              uri: axum::http::Uri,
                              upgrade: WebSocketUpgrade| {
                            upgrade_request(sup.clone(), config, state, peer, params, uri, upgrade)
                        },
                    ),
                );
                let stop: Stopper = Box::new(move || {
                    let supervisor = supervisor.clone();
                    Box::pin(async move {
                        supervisor.stop(ExitReason::Shutdown);
                        supervisor.wait().await;
                    })
                });
                Ok((router, stop))
            })
        }));
        self
    }
}

async fn upgrade_request<A: WsHandler>(
    supervisor: ActorRef<WsSupervisor<A>>,
    config: WsConfig,
    State(shared): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    uri: axum::http::Uri,
    upgrade: WebSocketUpgrade,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
    }
    let params: Vec<(String, String)> = params
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let path = uri.path().to_owned();
    let tracker = shared.tracker.clone();
    upgrade
        .max_message_size(config.max_message_size)
        .max_frame_size(config.max_message_size)
        .on_upgrade(move |socket| {
            tracker.track_future(serve_socket(
                socket, peer, path, params, supervisor, config, shared,
            ))
        })
        .into_response()
}

/// Serves one upgraded connection: starts its actor, delivers events until the connection ends,
/// then gives the actor the close grace to stop.
async fn serve_socket<A: WsHandler>(
    socket: WebSocket,
    peer: SocketAddr,
    path: String,
    params: Vec<(String, String)>,
    supervisor: ActorRef<WsSupervisor<A>>,
    config: WsConfig,
    shared: SharedState,
) {
    let (tx, rx) = mpsc::channel(config.write_buffer);
    let closer = Closer::new(shared.shutdown.child_token());
    let handle = WsHandle {
        tx,
        closer: closer.clone(),
        peer,
    };
    let conn = WsConn {
        peer,
        path,
        params,
        handle,
    };
    let actor = match supervisor.start_child(conn).await {
        Ok(Ok(actor)) => actor,
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "websocket actor failed to start");
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, error = %e, "websocket supervisor unavailable");
            return;
        }
    };
    let (sink, mut stream) = socket.split();
    let writer = tokio::spawn(write_loop(sink, rx, closer.clone(), config.close_grace));
    let ended = actor.wait();
    tokio::pin!(ended);
    let reason: Option<CloseReason> = 'conn: {
        if actor
            .cast(A::event(WsEvent::Connected(peer)))
            .await
            .is_err()
        {
            break 'conn None;
        }
        loop {
            let event = tokio::select! {
                biased;
                _ = closer.token.cancelled() => {
                    break 'conn Some(closer.reason().unwrap_or(CloseReason::Shutdown));
                }
                _ = &mut ended => break 'conn None,
                next = stream.next() => match next {
                    None | Some(Ok(Message::Close(_))) => break 'conn Some(CloseReason::PeerClosed),
                    Some(Ok(Message::Text(text))) => WsEvent::Text(text.as_str().to_owned()),
                    Some(Ok(Message::Binary(data))) => WsEvent::Binary(data),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Err(e)) => break 'conn Some(read_error(&e.to_string())),
                },
            };
            if actor.cast(A::event(event)).await.is_err() {
                break 'conn None;
            }
        }
    };
    if matches!(reason, Some(CloseReason::FrameTooLarge)) {
        tracing::info!(%peer, "closing websocket: message too large");
    }
    closer.close(reason.clone().unwrap_or(CloseReason::Closed));
    let _ = writer.await;
    drop(stream);
    // The actor was told why (unless it had ended): give it the grace to stop, then stop it.
    let told = match reason {
        Some(why) => {
            let why = closer
                .reason()
                .filter(|_| why == CloseReason::Closed)
                .unwrap_or(why);
            actor.cast(A::event(WsEvent::Closed(why))).await.is_ok()
        }
        None => false,
    };
    if told
        && tokio::time::timeout(config.close_grace, actor.wait())
            .await
            .is_err()
    {
        actor.stop(ExitReason::Normal);
        let _ = tokio::time::timeout(config.close_grace, actor.wait()).await;
    }
}

/// Maps a read error to a close reason: a message over the limit is `FrameTooLarge`.
fn read_error(error: &str) -> CloseReason {
    // tungstenite's capacity errors ("Message too long", "Space limit exceeded") are not
    // re-exported by axum, so they are recognised by their text (covered by a test).
    if error.contains("too long") || error.contains("Space limit exceeded") {
        CloseReason::FrameTooLarge
    } else {
        CloseReason::Io(error.to_owned())
    }
}

/// Owns the socket's sending half: sends what the handle queues until `closer` fires, then
/// flushes what is queued (within `grace`) and sends a close frame.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<WsMessage>,
    closer: Arc<Closer>,
    grace: Duration,
) {
    loop {
        let next = tokio::select! {
            biased;
            _ = closer.token.cancelled() => break,
            msg = rx.recv() => msg,
        };
        let Some(msg) = next else { break };
        let mut sent = sink.feed(msg.into_axum()).await;
        while sent.is_ok() {
            match rx.try_recv() {
                Ok(more) => sent = sink.feed(more.into_axum()).await,
                Err(_) => break,
            }
        }
        let sent = match sent {
            Ok(()) => tokio::select! {
                r = sink.flush() => r,
                _ = closer.token.cancelled() => Ok(()),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            closer.close(CloseReason::Io(e.to_string()));
            return;
        }
    }
    let reason = closer.reason();
    let flush = async {
        while let Ok(msg) = rx.try_recv() {
            sink.feed(msg.into_axum()).await?;
        }
        let (code, text) = match reason {
            Some(CloseReason::Shutdown) => (1001, "going away"),
            Some(CloseReason::FrameTooLarge) => (1009, "message too big"),
            Some(CloseReason::PeerClosed | CloseReason::Closed) | None => (1000, ""),
            Some(_) => (1011, "error"),
        };
        sink.send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(text),
        })))
        .await?;
        sink.close().await
    };
    let _ = tokio::time::timeout(grace, flush).await;
}

impl fmt::Display for WsMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsMessage::Text(t) => f.write_str(t),
            WsMessage::Binary(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_errors_are_frame_too_large() {
        assert_eq!(
            read_error("Space limit exceeded: Message too long: 70000 > 65536"),
            CloseReason::FrameTooLarge
        );
        assert!(matches!(
            read_error("Connection reset without closing handshake"),
            CloseReason::Io(_)
        ));
    }
}
