//! [`Net`]: a node's network, the [`Transport`] the core reaches other nodes through.
//!
//! It owns the table of peer links (one [`PeerLink`] per node, made on first use and replaced
//! when it goes down), the routes and the dial backoff, the listener, and the node services
//! registered with it. The jobs around it live beside it: dialling and accepting
//! (`connect.rs`), a connection's writer (`conn.rs`), the read loop (`inbound.rs`), signals
//! (`signals.rs`), links and monitors across a peer (`links.rs`), lookups (`lookup.rs`) and
//! remote spawn (`spawn.rs`).

use std::any::Any;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use futures_util::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::NetOptions;
use super::conn::Conn;
use super::frame::FrameCodec;
use super::handshake::HandshakeConfig;
use super::peer::{next_correlation, PeerLink, CONNECTING, DOWN, UP};
use crate::error::NetError;
use crate::node::transport::{NodeService, Peer, Transport};
use crate::node::{TransportSetup, WeakNode};
use crate::pid::NodeAtom;
use crate::NodeBuilder;
use crate::{CallError, Node};

/// How the end of a link is logged.
#[derive(Clone, Copy, Debug)]
pub(super) enum Report {
    /// Something broke: a warning.
    Warn,
    /// The end was meant (the peer shut down, this node disconnected): info.
    Info,
    /// Already logged by the caller.
    Quiet,
}

/// A peer this node failed to dial: when it may try again, and why the last attempt failed.
pub(super) struct Backoff {
    pub(super) until: Instant,
    pub(super) delay: Duration,
    pub(super) reason: Arc<str>,
}

/// The network half of a node.
pub(crate) struct Net {
    pub(crate) opts: NetOptions,
    pub(super) handshake: HandshakeConfig,
    pub(super) codec: FrameCodec,
    local_addr: Option<SocketAddr>,
    listener: Mutex<Option<TcpListener>>,
    routes: DashMap<Arc<str>, SocketAddr>,
    pub(super) peers: DashMap<NodeAtom, Arc<PeerLink>, rustc_hash::FxBuildHasher>,
    pub(super) backoff: DashMap<NodeAtom, Backoff>,
    /// One per peer node, kept across its links: a reader delivers what it read while holding
    /// it shared, and a new connection's reader takes it exclusively once before its first
    /// frame, so it waits out whatever the readers of an older link were delivering (they
    /// deliver nothing more: their connections were closed before).
    gates: DashMap<NodeAtom, Arc<parking_lot::RwLock<()>>, rustc_hash::FxBuildHasher>,
    pub(super) admission: Arc<super::admission::Admission>,
    /// Frames dropped by connections that closed before writing them (see `Conn::close`).
    pub(crate) frames_dropped: std::sync::atomic::AtomicU64,
    pub(super) cancel: CancellationToken,
    /// This node said `Goodbye` to its peers (it is shutting down): links that end from now on
    /// end as expected, and are not logged.
    leaving: AtomicBool,
    node: OnceLock<WeakNode>,
    /// This `Net` itself (for the tasks it starts from `&self`).
    me: Weak<Net>,
    /// The node services (events across nodes) its frames and link ends go to.
    pub(super) services: RwLock<Vec<Arc<dyn NodeService>>>,
    /// The factories other nodes may spawn, by name (empty: remote spawn is off).
    pub(crate) spawners: DashMap<String, Arc<dyn super::spawn::Spawner>>,
    /// The applications other nodes may start.
    pub(crate) remote_apps: DashMap<String, ()>,
}

/// The network's settings become the node's transport at `start`: none without a cookie, else
/// a [`Net`] (`Error::Config` for bad settings or an address it cannot listen on).
impl TransportSetup for NetOptions {
    fn clone_box(&self) -> Box<dyn TransportSetup> {
        Box::new(self.clone())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn start(
        self: Box<Self>,
        name: &str,
        creation: u32,
    ) -> BoxFuture<'_, Result<Option<Arc<dyn Transport>>, crate::Error>> {
        Box::pin(async move {
            if self.cookie.is_none() {
                return Ok(None);
            }
            let net: Arc<dyn Transport> = Net::new(name, creation, *self).await?;
            Ok(Some(net))
        })
    }
}

impl NodeBuilder {
    /// The network's settings in this builder, made (with the defaults) on first use.
    pub(crate) fn net_options(&mut self) -> &mut NetOptions {
        let is_net = self
            .transport
            .as_mut()
            .is_some_and(|t| t.as_any_mut().is::<NetOptions>());
        if !is_net {
            self.transport = Some(Box::new(NetOptions::default()));
        }
        match self
            .transport
            .as_mut()
            .and_then(|t| t.as_any_mut().downcast_mut::<NetOptions>())
        {
            Some(opts) => opts,
            None => unreachable!("set just above"),
        }
    }
}

/// The network of `node`, if it has one.
pub(crate) fn net_of(node: &Node) -> Option<Arc<Net>> {
    node.transport()?.clone().into_any().downcast::<Net>().ok()
}

impl Net {
    /// Sets up the network half of node `name`: checks the options and binds the listener.
    async fn new(name: &str, creation: u32, opts: NetOptions) -> Result<Arc<Net>, crate::Error> {
        let cookie = opts.cookie.clone().unwrap_or_default();
        let handshake = HandshakeConfig::new(name, creation, &cookie)
            .map_err(|e| crate::Error::Config(format!("network: {e}")))?
            .timeout(opts.handshake_timeout);
        if opts.connections_per_peer == 0 || opts.max_handshakes == 0 {
            return Err(crate::Error::Config(
                "connections per peer and concurrent handshakes must be at least 1".into(),
            ));
        }
        if opts.hello_timeout.is_zero() || opts.handshake_timeout.is_zero() {
            return Err(crate::Error::Config(
                "the hello and handshake timeouts must be longer than zero".into(),
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
            if let Some(taken) = opts.registrar.as_ref().and_then(|r| r.listens_on()) {
                let same_ip = addr.ip() == taken.ip()
                    || addr.ip().is_unspecified()
                    || taken.ip().is_unspecified();
                if addr.port() == taken.port() && same_ip {
                    return Err(crate::Error::Config(format!(
                        "cannot listen on {addr}: port {} is the embedded registrar's \
                         (every node of the host registers there); listen on another port, or \
                         give the registrar another with `EmbeddedRegistrar::with_port`",
                        taken.port()
                    )));
                }
            }
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
        Ok(Arc::new_cyclic(|me| Net {
            admission: super::admission::Admission::new(opts.max_handshakes),
            frames_dropped: std::sync::atomic::AtomicU64::new(0),
            codec: FrameCodec::with_max_frame_len(opts.max_frame_len),
            opts,
            handshake,
            local_addr,
            listener: Mutex::new(listener),
            routes,
            peers: DashMap::with_hasher(rustc_hash::FxBuildHasher),
            backoff: DashMap::new(),
            gates: DashMap::with_hasher(rustc_hash::FxBuildHasher),
            cancel: CancellationToken::new(),
            leaving: AtomicBool::new(false),
            node: OnceLock::new(),
            me: me.clone(),
            services: RwLock::new(Vec::new()),
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

    /// The node this network belongs to, while it exists.
    pub(super) fn node(&self) -> Option<Node> {
        self.node.get().and_then(|n| n.upgrade())
    }

    /// Starts accepting peers (once the node exists).
    fn begin(self: &Arc<Self>, node: &Node) {
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

    /// The delivery gate of the peer `atom` (see `gates`).
    pub(super) fn gate(&self, atom: NodeAtom) -> Arc<parking_lot::RwLock<()>> {
        self.gates.entry(atom).or_default().clone()
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
                    let now = Instant::now();
                    if now < b.until {
                        return Err(NetError::NoConnection {
                            node: atom.name().to_string(),
                            reason: format!(
                                "{} (the next attempt in {:?})",
                                b.reason,
                                b.until - now
                            ),
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

    /// Takes a link down (once): closes its connections, fails its calls, tells the node
    /// services, and fires every link and monitor across it with `NoConnection`.
    ///
    /// Logged as a warning, except when the peer said `Goodbye` (it shuts down: info) or this
    /// node is shutting down (nothing).
    pub(crate) fn peer_down(&self, link: &Arc<PeerLink>, reason: String) {
        let report = if link.saying_goodbye() {
            Report::Info
        } else {
            Report::Warn
        };
        self.take_down(link, reason, report);
    }

    /// [`Net::peer_down`], logged as `report` says.
    pub(super) fn take_down(&self, link: &Arc<PeerLink>, reason: String, report: Report) {
        if link.state.swap(DOWN, Ordering::AcqRel) == DOWN {
            return;
        }
        let _ = link.down_reason.set(reason.clone());
        let dropped = link.close_all();
        self.frames_dropped.fetch_add(dropped, Ordering::Relaxed);
        if !self.cancel.is_cancelled() && !self.leaving.load(Ordering::Acquire) {
            match report {
                Report::Warn => {
                    tracing::warn!(peer = %link.name, dropped, "connection lost: {reason}")
                }
                Report::Info => tracing::info!(peer = %link.name, dropped, "link closed: {reason}"),
                Report::Quiet => {}
            }
        }
        self.peers
            .remove_if(&link.atom, |_, l| Arc::ptr_eq(l, link));
        link.up.notify_waiters();
        let pending = std::mem::take(&mut *link.pending.lock());
        for (_, p) in pending {
            let _ = p.error.set(CallError::NoConnection);
        }
        let Some(node) = self.node() else {
            return;
        };
        let services = self.services.read().clone();
        for service in services {
            service.on_peer_down(&node, link.id);
        }
        link.fire_all(&node);
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
                self.take_down(&link, "disconnected by this node".into(), Report::Info);
                true
            }
            None => false,
        }
    }

    /// Stops listening, lets queued frames go out (up to `grace`), then closes every link.
    async fn stop(&self, grace: Duration) {
        if let Some(registrar) = &self.opts.registrar {
            registrar.deregister(self.handshake.name()).await;
        }
        let deadline = Instant::now() + grace;
        loop {
            let busy = self.peers.iter().any(|l| {
                l.state.load(Ordering::Acquire) == UP && l.outs.iter().any(|c| c.has_queued())
            });
            if !busy || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Say goodbye on every connection, after what is queued, so the peers know the end is
        // meant (and log it as such); give the writers until the grace ends (at least a moment)
        // to send it.
        let conns: Vec<_> = self
            .peers
            .iter()
            .filter(|l| l.state.load(Ordering::Acquire) == UP)
            .flat_map(|l| l.conns())
            .collect();
        self.leaving.store(true, Ordering::Release);
        for conn in &conns {
            conn.finish(&self.codec);
        }
        let deadline = deadline.max(Instant::now() + Duration::from_millis(100));
        while !conns.iter().all(|c| c.is_finished()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.cancel.cancel();
        let links: Vec<_> = self.peers.iter().map(|l| l.clone()).collect();
        for link in links {
            self.peer_down(&link, "this node is shutting down".into());
        }
    }
}

impl Transport for Net {
    #[inline]
    fn peer(&self, node: NodeAtom) -> Result<Arc<dyn Peer>, NetError> {
        if let Some(link) = self.peers.get(&node) {
            if !link.is_down() {
                return Ok(link.clone());
            }
        }
        let (Some(me), Some(n)) = (self.me.upgrade(), self.node()) else {
            return Err(NetError::NoConnection {
                node: node.name().to_string(),
                reason: "this node is shutting down".into(),
            });
        };
        Ok(me.link_for(&n, node)?)
    }

    fn next_correlation(&self) -> u64 {
        next_correlation()
    }

    fn add_service(&self, service: Arc<dyn NodeService>) {
        self.services.write().push(service);
    }

    fn start(&self, node: &Node) {
        if let Some(me) = self.me.upgrade() {
            me.begin(node);
        }
    }

    fn shutdown(&self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.stop(grace))
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

async fn resolve(addr: &str) -> Result<SocketAddr, crate::Error> {
    tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| crate::Error::Net(NetError::Address(addr.to_string())))
}
