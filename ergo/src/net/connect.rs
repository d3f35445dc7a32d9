//! Making connections: dialling a peer (TCP, then TLS when configured, then the cookie
//! handshake), accepting peers (`max_handshakes` slots shared fairly, see `admission`, each
//! handshake within its timeout), and starting the reader and writer tasks of an authenticated connection.
//!
//! # Joining links
//!
//! The first use of a peer makes its link and dials `connections_per_peer` connections to the
//! address its route (or the registrar) gives. A failed dial fails the calls waiting on it and
//! makes further attempts wait (backoff, 100 ms doubling to 5 s). A peer that dials this node
//! joins the link this node has to it when that link carries the same link of the peer (the
//! `Attach` frame that opens every connection names it), or makes a new one when there is none,
//! it is down, the peer restarted (another creation), or the peer's link is a newer one: the
//! old link goes down first (one `NoConnection` for its links and monitors), and is never
//! joined by, nor closes, its successor.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::admission::{Refused, Ticket};
use super::conn::{write_loop, Conn};
use super::frame::{FrameCodec, FrameKind, Header, HEADER_LEN, LEN_PREFIX};
use super::handshake::{handshake, Role};
use super::inbound::ConnRoute;
use super::peer::{PeerLink, CONNECTING, UP};
use super::transport::{Backoff, Net, Report};
use crate::pid::NodeAtom;
use crate::Node;

/// Reads the frame that opens an authenticated connection, the dialler's `Attach`, within
/// `timeout`: the number of the dialler's link the connection belongs to. Reads exactly that
/// frame, so nothing after it is taken from the stream.
async fn read_attach<R>(read: &mut R, codec: &FrameCodec, timeout: Duration) -> Result<u64, String>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
{
    use tokio::io::AsyncReadExt;
    let first = async {
        let mut prefix = [0; LEN_PREFIX];
        let io = |e: std::io::Error| format!("reading the first frame: {e}");
        read.read_exact(&mut prefix).await.map_err(io)?;
        let len = codec.check_len(prefix).map_err(|e| e.to_string())?;
        if len != HEADER_LEN {
            return Err(format!("the first frame ({len} bytes) is not an Attach"));
        }
        let mut body = [0; HEADER_LEN];
        read.read_exact(&mut body).await.map_err(io)?;
        let header = Header::decode(&body).map_err(|e| e.to_string())?;
        match header.kind {
            FrameKind::Attach if header.correlation != 0 => Ok(header.correlation),
            FrameKind::Attach => Err("an Attach frame naming no link".to_string()),
            kind => Err(format!("the first frame is a {kind:?}, not an Attach")),
        }
    };
    match tokio::time::timeout(timeout, first).await {
        Ok(result) => result,
        Err(_) => Err(format!("no Attach frame within {timeout:?}")),
    }
}

/// An authenticated connection's byte stream: plain TCP, or TLS over it.
pub(crate) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    #[cfg(feature = "tls")]
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Net {
    /// Dials every connection of a new link; brings it up or takes it down.
    pub(super) async fn dial(
        self: Arc<Self>,
        node: Node,
        link: Arc<PeerLink>,
        addr: Option<SocketAddr>,
    ) {
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
            self.run_conn(&node, &link, conn.clone(), stream, true);
        }
        link.up.notify_waiters();
    }

    /// A dial failed: further attempts wait (backoff), the link goes down.
    pub(super) fn dial_failed(&self, link: &Arc<PeerLink>, reason: String) {
        let delay = self
            .backoff
            .get(&link.atom)
            .map_or(Duration::from_millis(100), |b| {
                (b.delay * 2).min(Duration::from_secs(5))
            });
        let backoff = Backoff {
            until: Instant::now() + delay,
            delay,
            reason: Arc::from(reason.as_str()),
        };
        self.backoff.insert(link.atom, backoff);
        tracing::warn!(peer = %link.name, "cannot connect: {reason}");
        self.take_down(link, reason, Report::Quiet);
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

    pub(super) async fn accept_loop(self: Arc<Self>, node: Node, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                _ = self.cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, addr)) => match self.admission.admit(addr.ip()) {
                    Ok(ticket) => {
                        let (net, node2) = (self.clone(), node.clone());
                        node.runtime().spawn(async move {
                            let evicted = ticket.evicted.clone();
                            tokio::select! {
                                _ = evicted.cancelled() => net.rejected(
                                    addr,
                                    None,
                                    "closed to free its handshake slot for a newer connection",
                                ),
                                _ = net.clone().accept_one(node2, stream, addr, ticket) => {}
                            }
                        });
                    }
                    Err(Refused::Full) => self.rejected(
                        addr,
                        None,
                        "every handshake slot is taken by a connection that has spoken, and \
                         its source holds its fair share",
                    ),
                },
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Logs a refused incoming connection, at most once per `admission::LOG_EVERY` (a
    /// flood of them must not flood the log); the others are logged at debug level and
    /// counted in the next warning.
    fn rejected(&self, addr: SocketAddr, peer: Option<&str>, reason: impl std::fmt::Display) {
        let peer = peer.unwrap_or("-");
        match self.admission.may_log() {
            Some(0) => tracing::warn!(%addr, %peer, "rejected a connection: {reason}"),
            Some(more) => tracing::warn!(
                %addr,
                %peer,
                "rejected a connection: {reason} (and {more} more since the last such line, \
                 not logged)"
            ),
            None => tracing::debug!(%addr, %peer, "rejected a connection: {reason}"),
        }
    }

    async fn accept_one(
        self: Arc<Self>,
        node: Node,
        tcp: TcpStream,
        addr: SocketAddr,
        ticket: Ticket,
    ) {
        let _ = tcp.set_nodelay(true);
        // A peer that dials speaks first (its Hello, or its TLS ClientHello): a socket that
        // says nothing within the hello timeout is not one, and is closed.
        let hello = self.opts.hello_timeout.min(self.opts.handshake_timeout);
        match tokio::time::timeout(hello, tcp.peek(&mut [0; 1])).await {
            Ok(Ok(n)) if n > 0 => ticket.spoke(),
            Ok(Ok(_)) => return,
            Ok(Err(e)) => return self.rejected(addr, None, e),
            Err(_) => {
                return self.rejected(addr, None, format_args!("sent nothing within {hello:?}"))
            }
        }
        #[cfg(feature = "tls")]
        let mut stream = match &self.opts.tls {
            Some(tls) => {
                let timeout = self.opts.handshake_timeout;
                match tokio::time::timeout(timeout, tls.accept(tcp)).await {
                    Ok(Ok(tls)) => Stream::TlsServer(Box::new(tls)),
                    Ok(Err(e)) => return self.rejected(addr, None, e),
                    Err(_) => return self.rejected(addr, None, "TLS timed out"),
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
            Err(e) => return self.rejected(addr, None, e),
        };
        // Over TLS, the dialler's certificate must name the node it claims to be.
        #[cfg(feature = "tls")]
        if let Stream::TlsServer(tls) = &stream {
            let certs = tls.get_ref().1.peer_certificates();
            if let Err(e) = super::tls::check_identity(certs, &peer.name) {
                return self.rejected(addr, Some(&peer.name), e);
            }
        }
        if peer.name == self.handshake.name() || self.cancel.is_cancelled() {
            return;
        }
        // The dialler's first frame names the link of its own the connection belongs to.
        let attach_timeout = self.opts.handshake_timeout;
        let attached = match &mut stream {
            Stream::Plain(s) => read_attach(s, &self.codec, attach_timeout).await,
            #[cfg(feature = "tls")]
            Stream::TlsClient(s) => read_attach(&mut **s, &self.codec, attach_timeout).await,
            #[cfg(feature = "tls")]
            Stream::TlsServer(s) => read_attach(&mut **s, &self.codec, attach_timeout).await,
        };
        let theirs = match attached {
            Ok(theirs) => theirs,
            Err(e) => return self.rejected(addr, Some(&peer.name), e),
        };
        // The handshake is over: its slot is free for the next socket.
        drop(ticket);
        let atom = NodeAtom::intern(&peer.name);
        let conn = Conn::new(self.cancel.child_token());
        let mut replaced = None;
        let link = {
            use dashmap::mapref::entry::Entry;
            let fresh = |replaced: &mut Option<_>, old: Option<(Arc<PeerLink>, String)>| {
                let link = PeerLink::new(atom, UP, vec![conn.clone()], self.codec);
                link.creation.store(peer.creation, Ordering::Release);
                link.peer_link.store(theirs, Ordering::Release);
                *replaced = old;
                link
            };
            match self.peers.entry(atom) {
                Entry::Occupied(mut e) => {
                    let old = e.get().clone();
                    let creation = old.creation();
                    let restarted = creation != 0 && creation != peer.creation;
                    let joined = if old.is_down() || restarted {
                        Err(0)
                    } else {
                        old.attach(theirs)
                    };
                    match joined {
                        Ok(()) => {
                            // Another connection of the peer's link this one carries (it
                            // dials several, or both nodes dialled at once): learn the peer's
                            // creation now, so pids from this connection are right at once.
                            let _ = old.creation.compare_exchange(
                                0,
                                peer.creation,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            );
                            conn.push_attach(&self.codec, old.id);
                            old.extra.lock().push(conn.clone());
                            old
                        }
                        Err(current) if current != 0 && theirs < current => {
                            // A late connection of a link the peer has already replaced.
                            tracing::debug!(%addr, peer = %peer.name, "refused a connection of a replaced link");
                            return;
                        }
                        Err(current) => {
                            let reason = if restarted {
                                "the peer restarted"
                            } else if current != 0 {
                                "the peer opened a new link"
                            } else {
                                "replaced"
                            };
                            let link = fresh(&mut replaced, Some((old, reason.to_string())));
                            e.insert(link.clone());
                            link
                        }
                    }
                }
                Entry::Vacant(v) => {
                    let link = fresh(&mut replaced, None);
                    v.insert(link.clone());
                    link
                }
            }
        };
        if let Some((old, reason)) = replaced {
            // Down before the successor's reader starts: the old link's readers stop at their
            // next frame, and the successor delivers nothing until they have.
            self.take_down(&old, reason, Report::Info);
        }
        self.backoff.remove(&atom);
        tracing::info!(peer = %peer.name, %addr, "accepted");
        self.run_conn(&node, &link, conn, stream, false);
    }

    /// Starts the reader and writer tasks of one connection (`dialled` by this node, or
    /// accepted).
    fn run_conn(
        self: &Arc<Self>,
        node: &Node,
        link: &Arc<PeerLink>,
        conn: Arc<Conn>,
        stream: Stream,
        dialled: bool,
    ) {
        match stream {
            // Plain TCP splits without a lock between the halves.
            Stream::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                self.run_halves(node, link, conn, read, write, dialled);
            }
            #[cfg(feature = "tls")]
            Stream::TlsClient(tls) => {
                let (read, write) = tokio::io::split(*tls);
                self.run_halves(node, link, conn, read, write, dialled);
            }
            #[cfg(feature = "tls")]
            Stream::TlsServer(tls) => {
                let (read, write) = tokio::io::split(*tls);
                self.run_halves(node, link, conn, read, write, dialled);
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
        dialled: bool,
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
        let (net, node2) = (self.clone(), node.clone());
        let route = Arc::new(ConnRoute {
            conn,
            link: link.clone(),
        });
        node.runtime().spawn(async move {
            // A panic while handling a frame (a user `Deserialize`, an event closure) takes the
            // link down like a malformed frame, instead of leaving it half dead.
            let ended = std::panic::AssertUnwindSafe(net.read_loop(&node2, &route, read, dialled))
                .catch_unwind()
                .await
                .unwrap_or_else(panicked);
            if let Err(reason) = ended {
                net.peer_down(&route.link, reason);
            }
        });
    }
}
