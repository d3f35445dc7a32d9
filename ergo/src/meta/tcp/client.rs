//! [`TcpClient`]: one outgoing connection fed into an actor, reconnecting with a [`Backoff`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{run_connection, ConnConfig, TcpHandle, TcpHandler};
use crate::meta::{Bytes, CloseReason, Closer, Codec, StartError};
use crate::{ActorRef, ExitReason, Node};

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
