//! The UDP meta process: a socket whose datagrams arrive at an actor as events.
//!
//! [`Udp::bind`] binds a socket, spawns the actor your factory builds (given a [`UdpHandle`] to
//! send with) and reads datagrams in a task of its own, delivering each as
//! [`UdpEvent::Datagram`]. Sends go straight to the socket (`send_to` waits only for the kernel's
//! buffer, never for a peer), so nothing queues up in memory.
//!
//! # Limits
//!
//! A datagram longer than the maximum size (64 KiB unless set) is dropped with a log line.
//!
//! # Examples
//!
//! An echo socket:
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::meta::udp::{Udp, UdpEvent, UdpHandle, UdpHandler};
//! use ergo::prelude::*;
//!
//! struct Echo { socket: UdpHandle }
//!
//! #[actor]
//! impl Echo {
//!     #[handle]
//!     async fn udp(&mut self, event: UdpEvent) {
//!         let UdpEvent::Datagram { from, data } = event else { return };
//!         let _ = self.socket.send_to(data, from).await;
//!     }
//! }
//!
//! impl UdpHandler for Echo {
//!     fn event(event: UdpEvent) -> EchoMsg { EchoMsg::Udp { event } }
//! }
//!
//! let node = Node::builder("udp-doc@localhost").start().await?;
//! let echo = Udp::bind("127.0.0.1:0".parse()?)
//!     .start(&node, |socket| Echo { socket })
//!     .await?;
//!
//! let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
//! client.send_to(b"ping", echo.local_addr()).await?;
//! let mut buf = [0u8; 16];
//! let (n, _) = client.recv_from(&mut buf).await?;
//! assert_eq!(&buf[..n], b"ping");
//! echo.stop().await;
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::{Bytes, StartError};
use crate::{Actor, ActorRef, ExitReason, Node};

/// What a UDP meta process tells its actor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpEvent {
    /// A datagram arrived from `from`.
    Datagram {
        /// The sender's address.
        from: SocketAddr,
        /// The datagram's payload.
        data: Bytes,
    },
}

/// An actor that can be fed by a UDP meta process: turns a [`UdpEvent`] into its message.
///
/// ```
/// use ergo::meta::udp::{UdpEvent, UdpHandler};
/// use ergo::prelude::*;
///
/// struct Sink;
/// #[actor]
/// impl Sink {
///     #[handle]
///     fn udp(&mut self, event: UdpEvent) { println!("{event:?}") }
/// }
/// impl UdpHandler for Sink {
///     fn event(event: UdpEvent) -> SinkMsg { SinkMsg::Udp { event } }
/// }
/// ```
pub trait UdpHandler: Actor {
    /// Wraps `event` in the actor's message.
    fn event(event: UdpEvent) -> Self::Msg;
}

/// Sends datagrams from the meta process's socket; cheap to clone.
#[derive(Clone, Debug)]
pub struct UdpHandle {
    socket: Arc<UdpSocket>,
}

impl UdpHandle {
    /// Sends `data` as one datagram to `to`; returns the bytes sent.
    ///
    /// # Errors
    ///
    /// The socket's error (a datagram too long for the network, an unreachable address…).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it completes, no datagram was sent.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(socket: ergo::meta::udp::UdpHandle) -> std::io::Result<()> {
    /// socket.send_to("hello", "127.0.0.1:9999".parse().unwrap()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_to(&self, data: impl Into<Bytes>, to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(&data.into(), to).await
    }

    /// Sends `data` to `to` if the socket can take it without waiting.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when the socket's buffer is full, or the socket's error.
    pub fn try_send_to(&self, data: impl Into<Bytes>, to: SocketAddr) -> io::Result<usize> {
        self.socket.try_send_to(&data.into(), to)
    }

    /// The socket's local address.
    ///
    /// # Errors
    ///
    /// The socket's error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// Configures and starts a UDP meta process: `Udp::bind(addr).….start(&node, f)`.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct Udp {
    addr: SocketAddr,
    max_datagram: usize,
}

impl Udp {
    /// A socket that will be bound to `addr` (port 0: the OS picks one).
    pub fn bind(addr: SocketAddr) -> Self {
        Udp {
            addr,
            max_datagram: 64 * 1024,
        }
    }

    /// The longest datagram delivered, in bytes; longer ones are dropped with a log line.
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes.max(1);
        self
    }

    /// Binds the socket, spawns the actor `make` builds on `node`, and starts receiving.
    ///
    /// # Errors
    ///
    /// [`StartError::Io`] when the address cannot be bound, [`StartError::Spawn`] when the actor
    /// cannot be spawned.
    pub async fn start<A, F>(self, node: &Node, make: F) -> Result<UdpRef<A>, StartError>
    where
        A: UdpHandler,
        F: FnOnce(UdpHandle) -> A,
    {
        let socket = Arc::new(UdpSocket::bind(self.addr).await?);
        let local_addr = socket.local_addr()?;
        let handle = UdpHandle {
            socket: socket.clone(),
        };
        let actor = node.spawn(make(handle)).await?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(recv_loop(
            socket,
            actor.clone(),
            self.max_datagram,
            stop.clone(),
        ));
        Ok(UdpRef {
            actor,
            local_addr,
            stop,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }
}

async fn recv_loop<A: UdpHandler>(
    socket: Arc<UdpSocket>,
    actor: ActorRef<A>,
    max: usize,
    stop: CancellationToken,
) {
    // One byte more than the maximum tells an oversized datagram from one of exactly `max`.
    let mut buf = vec![0u8; max + 1];
    let ended = actor.wait();
    tokio::pin!(ended);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = &mut ended => break,
            got = socket.recv_from(&mut buf) => match got {
                Ok((n, from)) if n > max => {
                    tracing::warn!(%from, max, "datagram dropped: longer than the maximum");
                }
                Ok((n, from)) => {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    if actor.cast(A::event(UdpEvent::Datagram { from, data })).await.is_err() {
                        break;
                    }
                }
                // ICMP errors from earlier sends surface here on some systems: not fatal.
                Err(e) => tracing::debug!(error = %e, "udp receive error"),
            },
        }
    }
}

/// A running UDP meta process: its actor and its address; cheap to clone.
pub struct UdpRef<A: UdpHandler> {
    actor: ActorRef<A>,
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl<A: UdpHandler> Clone for UdpRef<A> {
    fn clone(&self) -> Self {
        UdpRef {
            actor: self.actor.clone(),
            local_addr: self.local_addr,
            stop: self.stop.clone(),
            task: self.task.clone(),
        }
    }
}

impl<A: UdpHandler> std::fmt::Debug for UdpRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpRef")
            .field("actor", &self.actor)
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl<A: UdpHandler> UdpRef<A> {
    /// The socket's address (with the port the OS picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The actor datagrams go to.
    pub fn actor(&self) -> &ActorRef<A> {
        &self.actor
    }

    /// Stops receiving, stops the actor and waits for it. The socket is released once the
    /// actor (which holds the handle) has ended.
    ///
    /// # Cancel safety
    ///
    /// The stop goes on if the future is dropped; only the waiting is cancelled.
    pub async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.actor.stop(ExitReason::Shutdown);
        self.actor.wait().await;
    }
}
