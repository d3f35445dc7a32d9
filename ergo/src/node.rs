//! [`Node`]: the entry point. A node owns its processes, their names and its configuration.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
//! use std::time::Duration;
//! use ergo::prelude::*;
//!
//! struct Echo;
//! #[actor]
//! impl Echo {
//!     #[handle]
//!     fn echo(&self, s: String) -> String { s }
//! }
//!
//! let node = Node::builder("app@localhost")
//!     .call_timeout(Duration::from_secs(2))
//!     .start()
//!     .await?;
//! let echo = node.spawn(Echo).await?;
//! node.register("echo", &echo)?;
//! let found = node.whereis::<Echo>("echo").expect("registered");
//! assert_eq!(found.echo("hi".into()).await?, "hi");
//! node.shutdown(Duration::from_secs(1)).await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use tracing::Instrument;

use crate::exit::{ExitReason, MonitorRef};
use crate::mailbox::{Mailbox, ProcHandle};
use crate::pid::NodeAtom;
use crate::process::{run, InitTx};
use crate::{Actor, ActorRef, Ctx, Error, Pid, RegisterError, SpawnError};

/// The default timeout of a call.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A running node: cheap to clone (all clones are the same node).
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

struct NodeInner {
    name: Arc<str>,
    atom: NodeAtom,
    creation: u32,
    call_timeout: Duration,
    next_id: AtomicU64,
    next_ref: AtomicU64,
    processes: DashMap<u64, ProcHandle, rustc_hash::FxBuildHasher>,
    names: DashMap<Arc<str>, ProcHandle>,
    shutting_down: AtomicBool,
    stopped: AtomicBool,
    stopped_notify: tokio::sync::Notify,
    apps: crate::app::AppTable,
    events: crate::events::EventTable,
    runtime: tokio::runtime::Handle,
    #[cfg(feature = "net")]
    net: Option<Arc<crate::net::node::Net>>,
}

/// A node that does not keep it alive (held by its network tasks' bookkeeping).
#[derive(Clone)]
#[cfg_attr(not(feature = "net"), allow(dead_code))]
pub(crate) struct WeakNode(std::sync::Weak<NodeInner>);

#[cfg_attr(not(feature = "net"), allow(dead_code))]
impl WeakNode {
    pub(crate) fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

/// Configures and starts a [`Node`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct NodeBuilder {
    name: String,
    call_timeout: Duration,
    creation: Option<u32>,
    #[cfg(feature = "net")]
    net: crate::net::node::NetOptions,
}

impl NodeBuilder {
    /// The default timeout of every call made to this node's processes (5 s unless set).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Fixes the creation number (normally derived from the start time, so it differs between
    /// runs of a node with the same name).
    pub fn creation(mut self, creation: u32) -> Self {
        self.creation = Some(creation);
        self
    }

    /// Connects this node to others (feature `net`): peers must present the same cookie in the
    /// handshake. Without a cookie a node has no network. Use a long random secret (32 random
    /// bytes, say); an empty cookie is refused by [`NodeBuilder::start`].
    ///
    /// A node with a cookie listens on `127.0.0.1:0` (loopback, a free port) unless
    /// [`NodeBuilder::listen`] says otherwise; [`Node::listen_addr`] tells the port.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    ///
    /// let node = Node::builder("cookie-doc@localhost")
    ///     .cookie("a long random secret")
    ///     .start()
    ///     .await?;
    /// assert!(node.listen_addr().expect("listening").ip().is_loopback());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "net")]
    pub fn cookie(mut self, cookie: impl AsRef<[u8]>) -> Self {
        self.net.cookie = Some(cookie.as_ref().to_vec());
        self
    }

    /// The address to accept peers on (`host:port`; port 0 picks a free one). Default:
    /// `127.0.0.1:0`.
    #[cfg(feature = "net")]
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.net.listen = Some(addr.into());
        self.net.accept = true;
        self
    }

    /// Accepts no peers: this node only dials others (they reply over its connections).
    #[cfg(feature = "net")]
    pub fn no_listen(mut self) -> Self {
        self.net.accept = false;
        self
    }

    /// How this node finds the addresses of peers it has no static route to (default: an
    /// [`EmbeddedRegistrar`](crate::net::EmbeddedRegistrar) on the well-known port). The node
    /// registers itself with it when it starts listening.
    #[cfg(feature = "net")]
    pub fn registrar(mut self, registrar: impl crate::net::Registrar) -> Self {
        self.net.registrar = Some(Arc::new(registrar));
        self
    }

    /// Requires mutual TLS on every peer connection (feature `tls`): see
    /// [`crate::net::tls`]. Peers without TLS, or with a certificate the configured CA did not
    /// sign, or an expired one, are refused.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::net::tls::TlsConfig) -> Self {
        self.net.tls = Some(config);
        self
    }

    /// No registrar: this node reaches only the peers it has static routes to (or that dial
    /// it).
    #[cfg(feature = "net")]
    pub fn no_registrar(mut self) -> Self {
        self.net.registrar = None;
        self
    }

    /// A static route: the address (`host:port`) where node `node` listens.
    #[cfg(feature = "net")]
    pub fn route(mut self, node: impl Into<String>, addr: impl Into<String>) -> Self {
        self.net.routes.push((node.into(), addr.into()));
        self
    }

    /// How many TCP connections this node opens to each peer it dials (default 2). Messages to
    /// one process always use the same one, so they keep their order.
    #[cfg(feature = "net")]
    pub fn connections_per_peer(mut self, n: usize) -> Self {
        self.net.connections_per_peer = n;
        self
    }

    /// How often an idle connection sends a heartbeat (default 1 s), and how long a connection
    /// may stay silent before its peer is considered gone (default 5 s).
    #[cfg(feature = "net")]
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.net.heartbeat = interval;
        self.net.heartbeat_timeout = timeout;
        self
    }

    /// The largest frame (header + encoded message) sent or accepted after the handshake
    /// (default 16 MiB). A larger incoming frame closes its connection before anything is
    /// allocated for it; a larger outgoing message fails to send.
    #[cfg(feature = "net")]
    pub fn max_frame_len(mut self, bytes: usize) -> Self {
        self.net.max_frame_len = bytes;
        self
    }

    /// The time a peer has to complete the handshake (default 5 s).
    #[cfg(feature = "net")]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.net.handshake_timeout = timeout;
        self
    }

    /// How many incoming handshakes may run at once (default 64); connections beyond it are
    /// closed at once.
    #[cfg(feature = "net")]
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.net.max_handshakes = n;
        self
    }

    /// Starts the node on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an empty or malformed name (`name@host`; a name without `@host`
    /// gets `@localhost`), a zero call timeout, an empty cookie, or an address it cannot
    /// listen on.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub async fn start(self) -> Result<Node, Error> {
        let name = if self.name.contains('@') {
            self.name
        } else {
            format!("{}@localhost", self.name)
        };
        let (local, host) = name.split_once('@').expect("has @");
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid(local) || !valid(host) {
            return Err(Error::Config(format!(
                "node name `{name}` must look like `name@host` (letters, digits, `-`, `_`, `.`)"
            )));
        }
        if self.call_timeout.is_zero() {
            return Err(Error::Config("the call timeout must be above zero".into()));
        }
        let creation = self.creation.unwrap_or_else(|| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            (now.as_secs() as u32) ^ now.subsec_nanos().rotate_left(16) | 1
        });
        #[cfg(feature = "net")]
        let net = if self.net.cookie.is_some() {
            Some(crate::net::node::Net::new(&name, creation, self.net).await?)
        } else {
            None
        };
        let node = Node {
            inner: Arc::new(NodeInner {
                atom: NodeAtom::intern(&name),
                name: Arc::from(name),
                creation,
                call_timeout: self.call_timeout,
                next_id: AtomicU64::new(1),
                next_ref: AtomicU64::new(1),
                processes: DashMap::with_hasher(rustc_hash::FxBuildHasher),
                names: DashMap::new(),
                shutting_down: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                stopped_notify: tokio::sync::Notify::new(),
                apps: Default::default(),
                events: Default::default(),
                runtime: tokio::runtime::Handle::current(),
                #[cfg(feature = "net")]
                net,
            }),
        };
        #[cfg(feature = "net")]
        if let Some(net) = &node.inner.net {
            net.start(&node);
        }
        Ok(node)
    }
}

/// Options for one spawn.
///
/// ```
/// use ergo::SpawnOptions;
/// let opts = SpawnOptions::new().mailbox_capacity(64).register("worker-1");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SpawnOptions {
    pub(crate) capacity: Option<usize>,
    pub(crate) name: Option<String>,
}

impl SpawnOptions {
    /// The defaults: the actor's own mailbox bound (unbounded unless `#[actor(mailbox = N)]`),
    /// no name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bounds the mailbox to `capacity` messages (at least 1).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Registers the process under `name` before it starts; the spawn fails if it is taken.
    pub fn register(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Node {
    /// Starts configuring a node called `name` (`name@host`).
    pub fn builder(name: impl Into<String>) -> NodeBuilder {
        NodeBuilder {
            name: name.into(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            creation: None,
            #[cfg(feature = "net")]
            net: Default::default(),
        }
    }

    /// The node's name (`name@host`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The node's creation number.
    pub fn creation(&self) -> u32 {
        self.inner.creation
    }

    /// The default call timeout.
    pub fn call_timeout(&self) -> Duration {
        self.inner.call_timeout
    }

    /// Spawns `actor` as a new process and returns its ref once `init` has succeeded.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Init`] when `init` fails or panics (the process has then ended),
    /// [`SpawnError::NodeDown`] after [`Node::shutdown`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while `init` runs leaves the process running.
    pub async fn spawn<A: Actor>(&self, actor: A) -> Result<ActorRef<A>, SpawnError> {
        self.spawn_opts(actor, SpawnOptions::default()).await
    }

    /// [`Node::spawn`] with options (mailbox bound, registered name).
    ///
    /// # Errors
    ///
    /// As [`Node::spawn`], plus [`SpawnError::Register`] when the name is taken.
    pub async fn spawn_opts<A: Actor>(
        &self,
        actor: A,
        opts: SpawnOptions,
    ) -> Result<ActorRef<A>, SpawnError> {
        let (aref, started) = self.start_process(actor, opts, None)?;
        started.await.map(|()| aref)
    }

    /// Creates the process and its task; the returned future resolves when `init` is done.
    pub(crate) fn start_process<A: Actor>(
        &self,
        actor: A,
        opts: SpawnOptions,
        link: Option<ProcHandle>,
    ) -> Result<
        (
            ActorRef<A>,
            impl Future<Output = Result<(), SpawnError>> + Send,
        ),
        SpawnError,
    > {
        let inner = &*self.inner;
        if inner.shutting_down.load(Ordering::Acquire) {
            return Err(SpawnError::NodeDown);
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let pid = Pid::new(inner.atom, id, inner.creation);
        let capacity = opts.capacity.or(A::MAILBOX_CAPACITY);
        let mailbox = Arc::new(Mailbox::<A>::new(self.clone(), pid, capacity));
        let aref = ActorRef::from_mailbox(mailbox);
        inner.processes.insert(id, aref.handle());
        let mut ctx = Ctx::new(aref.clone());
        if inner.shutting_down.load(Ordering::SeqCst) {
            // `shutdown` began while we were inserting and may have missed us: back out
            // (dropping `ctx` ends the never-started process cleanly).
            return Err(SpawnError::NodeDown);
        }
        if let Some(name) = opts.name {
            // Dropping `ctx` on failure ends the never-started process cleanly.
            self.register(&name, &aref)?;
        }
        if let Some(parent) = link {
            ctx.extras_mut()
                .links
                .insert(parent.core().pid(), crate::mailbox::Target::Local(parent));
        }
        let (init_tx, init_rx): (Option<InitTx>, _) = if A::HAS_INIT {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let span = tracing::info_span!("process", pid = %pid, actor = A::NAME);
        let task = inner
            .runtime
            .spawn(run(actor, ctx, init_tx).instrument(span));
        aref.mailbox().core().set_task(task.abort_handle());
        let waiter = aref.clone();
        let started = async move {
            match init_rx {
                None => Ok(()),
                Some(rx) => match rx.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(reason)) => {
                        waiter.wait().await;
                        Err(SpawnError::Init(reason))
                    }
                    Err(_) => Err(SpawnError::Init(waiter.wait().await)),
                },
            }
        };
        Ok((aref, started))
    }

    pub(crate) fn process(&self, pid: Pid) -> Option<ProcHandle> {
        if pid.node_atom() != self.inner.atom || pid.creation() != self.inner.creation {
            return None;
        }
        self.inner.processes.get(&pid.id()).map(|p| p.clone())
    }

    /// A process of this node named by a frame's header (`None` if it is not alive or the
    /// creation is not this run's).
    #[cfg(feature = "net")]
    pub(crate) fn local_process(&self, to: crate::net::frame::WirePid) -> Option<ProcHandle> {
        if to.creation != self.inner.creation {
            return None;
        }
        self.local_process_any(to.id)
    }

    /// A process of this node by id.
    #[cfg(feature = "net")]
    pub(crate) fn local_process_any(&self, id: u64) -> Option<ProcHandle> {
        self.inner.processes.get(&id).map(|p| p.clone())
    }

    #[cfg(feature = "net")]
    pub(crate) fn registered_process(&self, name: &str) -> Option<ProcHandle> {
        self.inner.names.get(name).map(|p| p.clone())
    }

    #[cfg(feature = "net")]
    pub(crate) fn net(&self) -> Option<&Arc<crate::net::node::Net>> {
        self.inner.net.as_ref()
    }

    #[cfg_attr(not(feature = "net"), allow(dead_code))]
    pub(crate) fn atom(&self) -> NodeAtom {
        self.inner.atom
    }

    #[cfg_attr(not(feature = "net"), allow(dead_code))]
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    #[cfg_attr(not(feature = "net"), allow(dead_code))]
    pub(crate) fn downgrade(&self) -> WeakNode {
        WeakNode(Arc::downgrade(&self.inner))
    }

    /// Where signals for `pid` go: its process on this node, or (feature `net`) the
    /// connection to its node. `None` if it is a dead local pid or its node is unreachable.
    pub(crate) fn target(&self, pid: Pid) -> Option<crate::mailbox::Target> {
        if pid.node_atom() == self.inner.atom {
            return self.process(pid).map(crate::mailbox::Target::Local);
        }
        #[cfg(feature = "net")]
        if let Some(net) = &self.inner.net {
            return net.link_for(self, pid.node_atom()).ok().map(|link| {
                crate::mailbox::Target::Remote(crate::net::node::RemotePid::new(pid, link))
            });
        }
        None
    }

    /// The reason a link or monitor to an unreachable `pid` fires with.
    pub(crate) fn unreachable_reason(&self, pid: Pid) -> ExitReason {
        if pid.node_atom() == self.inner.atom {
            ExitReason::NoProc
        } else {
            ExitReason::NoConnection
        }
    }

    /// A typed ref for `pid` (a decoded ref): local if the process is ours, remote otherwise.
    pub(crate) fn ref_for<A: crate::RemoteActor>(&self, pid: Pid) -> Result<ActorRef<A>, String> {
        if pid.node_atom() == self.inner.atom {
            return match self.process(pid) {
                Some(p) => p
                    .into_any()
                    .downcast::<Mailbox<A>>()
                    .map(ActorRef::from_mailbox)
                    .map_err(|_| format!("{pid} does not run actor `{}`", A::NAME)),
                // A ref to a process that has ended: sends to it fail as to any ended process.
                None => Ok(ActorRef::from_mailbox(Arc::new(Mailbox::dead(
                    self.clone(),
                    pid,
                )))),
            };
        }
        #[cfg(feature = "net")]
        if self.inner.net.is_some() {
            let vtable =
                A::__remote_vtable().ok_or_else(|| format!("actor `{}` is not remote", A::NAME))?;
            return Ok(ActorRef::from_remote(Arc::new(
                crate::net::node::RemoteRef::new(pid, self.clone(), vtable),
            )));
        }
        Err(format!(
            "{pid} is on another node and this node has no network"
        ))
    }

    /// The address this node accepts peers on (`None` without a network or with
    /// [`NodeBuilder::no_listen`]).
    #[cfg(feature = "net")]
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.net.as_ref().and_then(|n| n.local_addr())
    }

    /// Adds (or replaces) a static route: node `node` listens at `addr`.
    ///
    /// # Errors
    ///
    /// [`crate::net::NetError::NotNetworked`] when the node has no cookie.
    #[cfg(feature = "net")]
    pub fn add_route(
        &self,
        node: &str,
        addr: std::net::SocketAddr,
    ) -> Result<(), crate::net::NetError> {
        let net = self
            .inner
            .net
            .as_ref()
            .ok_or(crate::net::NetError::NotNetworked)?;
        net.add_route(node, addr);
        Ok(())
    }

    /// Connects to node `node` now (connections are otherwise made on first use) and waits
    /// until the link is up.
    ///
    /// # Errors
    ///
    /// [`crate::net::NetError`]: no network, no route, connection refused or handshake failed,
    /// timed out.
    #[cfg(feature = "net")]
    pub async fn connect(&self, node: &str) -> Result<(), crate::net::NetError> {
        let net = self
            .inner
            .net
            .as_ref()
            .ok_or(crate::net::NetError::NotNetworked)?;
        net.connect(self, crate::pid::NodeAtom::intern(node))
            .await
            .map(|_| ())
    }

    /// Closes the connections to node `node`: every link and monitor across them fires with
    /// [`ExitReason::NoConnection`], and calls waiting on them fail with
    /// [`CallError::NoConnection`](crate::CallError::NoConnection). The next use reconnects.
    /// Returns `false` if there was no link.
    #[cfg(feature = "net")]
    pub fn disconnect(&self, node: &str) -> bool {
        self.inner
            .net
            .as_ref()
            .is_some_and(|n| n.disconnect(crate::pid::NodeAtom::intern(node)))
    }

    /// The nodes its registrar knows (name and address), this node included.
    ///
    /// # Errors
    ///
    /// [`crate::net::RegistrarError::Unreachable`] when the registrar cannot be asked (or
    /// the node has no network or no registrar).
    #[cfg(feature = "net")]
    pub async fn registered_nodes(
        &self,
    ) -> Result<Vec<(String, std::net::SocketAddr)>, crate::net::RegistrarError> {
        let registrar = self
            .inner
            .net
            .as_ref()
            .and_then(|n| n.opts.registrar.clone())
            .ok_or_else(|| {
                crate::net::RegistrarError::Unreachable("this node has no registrar".into())
            })?;
        registrar.nodes().await
    }

    /// Membership changes seen by its registrar (`None` without one).
    #[cfg(feature = "net")]
    pub fn watch_nodes(&self) -> Option<tokio::sync::broadcast::Receiver<crate::net::Membership>> {
        let registrar = self.inner.net.as_ref()?.opts.registrar.clone()?;
        Some(registrar.watch())
    }

    /// The nodes this node has a link up with.
    #[cfg(feature = "net")]
    pub fn connected_nodes(&self) -> Vec<String> {
        self.inner
            .net
            .as_ref()
            .map(|n| n.connected())
            .unwrap_or_default()
    }

    /// Resolves the name `name` registered on node `node` into a typed ref (connecting first
    /// if needed). The generated methods work on it as on a local ref. Looking up this node's
    /// own name is [`Node::whereis`].
    ///
    /// # Errors
    ///
    /// [`crate::net::NetError::NotFound`] when nothing is registered under the name,
    /// [`crate::net::NetError::WrongActor`] when it runs another actor type, connection errors
    /// otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    ///
    /// struct Counter { n: u64 }
    /// #[actor(remote)]
    /// impl Counter {
    ///     #[handle]
    ///     fn add(&mut self, by: u64) -> u64 { self.n += by; self.n }
    /// }
    ///
    /// let a = Node::builder("lookup-a@localhost").cookie("secret cookie").start().await?;
    /// let counter = a.spawn(Counter { n: 0 }).await?;
    /// a.register("counter", &counter)?;
    ///
    /// let b = Node::builder("lookup-b@localhost")
    ///     .cookie("secret cookie")
    ///     .route("lookup-a@localhost", a.listen_addr().unwrap().to_string())
    ///     .start()
    ///     .await?;
    /// let remote = b.lookup::<Counter>("counter", "lookup-a@localhost").await?;
    /// assert_eq!(remote.add(2).await?, 2);
    /// assert_eq!(counter.add(3).await?, 5); // the same process
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "net")]
    pub async fn lookup<A: crate::RemoteActor>(
        &self,
        name: &str,
        node: &str,
    ) -> Result<ActorRef<A>, crate::net::NetError> {
        use crate::net::NetError;
        if node == self.name() {
            return match self.inner.names.get(name).map(|h| h.clone()) {
                None => Err(NetError::NotFound {
                    name: name.into(),
                    node: node.into(),
                }),
                Some(h) => {
                    let found = h.actor_name();
                    h.into_any()
                        .downcast::<Mailbox<A>>()
                        .map(ActorRef::from_mailbox)
                        .map_err(|_| NetError::WrongActor {
                            name: name.into(),
                            expected: A::NAME,
                            found: found.into(),
                        })
                }
            };
        }
        let net = self.inner.net.as_ref().ok_or(NetError::NotNetworked)?;
        let vtable = A::__remote_vtable().ok_or(NetError::WrongActor {
            name: name.into(),
            expected: A::NAME,
            found: "a local-only actor".into(),
        })?;
        net.lookup::<A>(self, name, crate::pid::NodeAtom::intern(node), vtable)
            .await
    }

    /// Every instance of the service `name`: the process registered under that name on this
    /// node and on each node this one knows (its routes, the nodes linked to it and the nodes
    /// its registrar lists), asked concurrently. Nodes that cannot be reached, or where the name is not registered (or runs
    /// another actor), are skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    ///
    /// struct Billing;
    /// #[actor(remote)]
    /// impl Billing {
    ///     #[handle]
    ///     fn charge(&self, cents: u64) -> u64 { cents }
    /// }
    ///
    /// // Without a registrar (`no_registrar`), b knows only a, through its route.
    /// let a = Node::builder("find-a@localhost").cookie("secret cookie").no_registrar().start().await?;
    /// a.register("billing", &a.spawn(Billing).await?)?;
    /// let b = Node::builder("find-b@localhost")
    ///     .cookie("secret cookie")
    ///     .no_registrar()
    ///     .route("find-a@localhost", a.listen_addr().unwrap().to_string())
    ///     .start()
    ///     .await?;
    /// b.register("billing", &b.spawn(Billing).await?)?;
    /// let all = b.find_all::<Billing>("billing").await;
    /// assert_eq!(all.len(), 2);
    /// let one = b.find::<Billing>("billing").await?;
    /// assert_eq!(one.charge(5).await?, 5);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "net")]
    pub async fn find_all<A: crate::RemoteActor>(&self, name: &str) -> Vec<ActorRef<A>> {
        let mut found: Vec<ActorRef<A>> = self.whereis::<A>(name).into_iter().collect();
        let Some(net) = &self.inner.net else {
            return found;
        };
        let mut peers = net.known();
        if let Some(registrar) = &net.opts.registrar {
            if let Ok(nodes) = registrar.nodes().await {
                peers.extend(nodes.into_iter().map(|(n, _)| n));
                peers.sort();
                peers.dedup();
            }
        }
        let lookups = peers
            .iter()
            .filter(|p| p.as_str() != self.name())
            .map(|peer| self.lookup::<A>(name, peer));
        found.extend(
            futures_util::future::join_all(lookups)
                .await
                .into_iter()
                .flatten(),
        );
        found
    }

    /// One instance of the service `name`: the local one if this node runs it, otherwise the
    /// first found on the nodes this one knows (see [`Node::find_all`]).
    ///
    /// # Errors
    ///
    /// [`crate::net::NetError::NotFound`] when no known node runs it.
    #[cfg(feature = "net")]
    pub async fn find<A: crate::RemoteActor>(
        &self,
        name: &str,
    ) -> Result<ActorRef<A>, crate::net::NetError> {
        if let Some(local) = self.whereis::<A>(name) {
            return Ok(local);
        }
        self.find_all::<A>(name)
            .await
            .into_iter()
            .next()
            .ok_or_else(|| crate::net::NetError::NotFound {
                name: name.into(),
                node: "any known node".into(),
            })
    }

    pub(crate) fn remove_process(&self, pid: Pid) {
        self.inner.processes.remove(&pid.id());
    }

    pub(crate) fn next_monitor_ref(&self) -> MonitorRef {
        MonitorRef(self.inner.next_ref.fetch_add(1, Ordering::Relaxed))
    }

    /// The number of live processes.
    pub fn process_count(&self) -> usize {
        self.inner.processes.len()
    }

    /// The pids of all live processes (a snapshot).
    pub fn processes(&self) -> Vec<Pid> {
        self.inner
            .processes
            .iter()
            .map(|e| e.value().core().pid())
            .collect()
    }

    /// Whether `pid` names a live process of this node.
    pub fn is_alive(&self, pid: Pid) -> bool {
        self.process(pid).is_some_and(|p| !p.core().is_closed())
    }

    /// Registers `actor` under `name`. A process has at most one name; the name is released
    /// when the process ends, before any monitor of it sees `Down`.
    ///
    /// # Errors
    ///
    /// [`RegisterError::NameTaken`], [`RegisterError::AlreadyNamed`], or
    /// [`RegisterError::NoProc`] if the process has ended.
    pub fn register<A: Actor>(&self, name: &str, actor: &ActorRef<A>) -> Result<(), RegisterError> {
        let Some(mailbox) = actor.local() else {
            return Err(RegisterError::NotLocal(actor.pid()));
        };
        if mailbox.core().node.inner.atom != self.inner.atom {
            return Err(RegisterError::NotLocal(actor.pid()));
        }
        let handle: ProcHandle = mailbox.clone();
        let key: Arc<str> = Arc::from(name);
        handle.core().set_name(&key, || {
            use dashmap::mapref::entry::Entry;
            match self.inner.names.entry(key.clone()) {
                Entry::Occupied(_) => Err(RegisterError::NameTaken(name.to_owned())),
                Entry::Vacant(v) => {
                    v.insert(handle.clone());
                    Ok(())
                }
            }
        })
    }

    /// Removes the registration of `name`. Returns `false` if no process had it.
    pub fn unregister(&self, name: &str) -> bool {
        match self.inner.names.remove(name) {
            Some((_, handle)) => {
                handle.core().clear_name(name);
                true
            }
            None => false,
        }
    }

    pub(crate) fn release_name(&self, name: &str, pid: Pid) {
        self.inner
            .names
            .remove_if(name, |_, h| h.core().pid() == pid);
    }

    /// The typed ref registered under `name`, if the name is registered to a live process
    /// running actor `A` (`None` if absent or registered to another actor type).
    pub fn whereis<A: Actor>(&self, name: &str) -> Option<ActorRef<A>> {
        let handle = self.inner.names.get(name)?.clone();
        let mailbox = handle.into_any().downcast::<Mailbox<A>>().ok()?;
        Some(ActorRef::from_mailbox(mailbox))
    }

    /// The pid registered under `name`, whatever its actor type.
    pub fn whereis_pid(&self, name: &str) -> Option<Pid> {
        self.inner.names.get(name).map(|h| h.core().pid())
    }

    /// The registered names (a snapshot).
    pub fn registered(&self) -> Vec<String> {
        self.inner
            .names
            .iter()
            .map(|e| e.key().to_string())
            .collect()
    }

    /// Sends `pid` an exit signal (see [`ActorRef::exit`]). `false` if no such live process.
    pub fn exit(&self, pid: Pid, reason: ExitReason) -> bool {
        self.process(pid).is_some_and(|p| {
            p.core()
                .send_sys(crate::mailbox::Sys::Exit {
                    from: pid,
                    reason,
                    linked: false,
                })
                .is_ok()
        })
    }

    /// Kills `pid` (untrappable). `false` if no such live process.
    pub fn kill(&self, pid: Pid) -> bool {
        self.process(pid).is_some_and(|p| p.core().kill())
    }

    /// Waits until `pid` has ended and returns why (`NoProc` if it was not alive).
    pub async fn wait(&self, pid: Pid) -> ExitReason {
        match self.process(pid) {
            Some(p) => p.core().wait().await,
            None => ExitReason::NoProc,
        }
    }

    /// Stops every process: asks each to stop with [`ExitReason::Shutdown`], waits up to
    /// `grace` for them to end, then kills the rest. No process can be spawned afterwards.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let all: Vec<ProcHandle> = self
            .inner
            .processes
            .iter()
            .map(|e| e.value().clone())
            .collect();
        for p in &all {
            let _ = p
                .core()
                .send_sys(crate::mailbox::Sys::Stop(ExitReason::Shutdown));
        }
        let wait_all = async {
            for p in &all {
                p.core().wait().await;
            }
        };
        if tokio::time::timeout(grace, wait_all).await.is_err() {
            for p in &all {
                p.core().kill();
            }
            for p in &all {
                p.core().wait().await;
            }
        }
        #[cfg(feature = "net")]
        if let Some(net) = &self.inner.net {
            net.shutdown(&self.inner.name, Duration::from_millis(200))
                .await;
        }
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.stopped_notify.notify_waiters();
    }

    /// Whether [`Node::shutdown`] has begun (no process can be spawned any more).
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Waits until a [`Node::shutdown`] (asked for directly, or by a permanent or transient
    /// application ending) has stopped every process.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn stopped(&self) {
        loop {
            let notified = self.inner.stopped_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.stopped.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn app_table(&self) -> &crate::app::AppTable {
        &self.inner.apps
    }

    pub(crate) fn event_table(&self) -> &crate::events::EventTable {
        &self.inner.events
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.inner.name)
            .field("creation", &self.inner.creation)
            .field("processes", &self.inner.processes.len())
            .finish()
    }
}
