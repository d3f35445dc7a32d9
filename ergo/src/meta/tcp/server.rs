//! [`TcpServer`]: accepts connections and runs one supervised handler actor per connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{run_connection, ConnConfig, TcpConn, TcpHandle, TcpHandler};
use crate::meta::{CloseReason, Closer, Codec, StartError};
use crate::supervisor::{Restart, SimpleSupervisor};
use crate::{ActorRef, ExitReason, Node};

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
