//! Discovery: how a node finds the address of a peer it knows only by name.
//!
//! A [`Registrar`] registers this node, resolves a node name into an address, lists the nodes
//! it knows and reports membership changes. A node consults its static routes first
//! ([`crate::NodeBuilder::route`]), then its registrar, when it first connects to a peer.
//! Discovery gives addresses only: trust still comes from the cookie handshake.
//!
//! - [`EmbeddedRegistrar`] (the default): the first node on a host serves a small registry on a
//!   well-known loopback port ([`DEFAULT_REGISTRAR_PORT`]; so it serves the nodes of that host,
//!   and answers with loopback addresses: across hosts use static routes or etcd); later nodes on the host register
//!   with it over a connection they keep open, so the name of a node that dies disappears with
//!   its connection. When the serving node dies, the next node to notice takes the port over,
//!   and the others register again with it; nothing has to be done by hand. Resolving
//!   `name@host` asks the registrar of `host`.
//! - [`StaticRoutes`]: a fixed table of names and addresses.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::prelude::*;
//! use ergo::net::EmbeddedRegistrar;
//!
//! // Two nodes on this host find each other through the embedded registrar (on a port of
//! // our own here, so the example does not meet other nodes of this machine).
//! let registrar = || EmbeddedRegistrar::with_port(15_901);
//! let a = Node::builder("reg-doc-a@localhost").cookie("secret cookie").registrar(registrar()).start().await?;
//! let b = Node::builder("reg-doc-b@localhost").cookie("secret cookie").registrar(registrar()).start().await?;
//! b.connect("reg-doc-a@localhost").await?;
//! assert!(b.connected_nodes().contains(&"reg-doc-a@localhost".to_string()));
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::node::codec::{decode_cbor, encode_cbor};

/// The well-known port of the embedded registrar.
pub const DEFAULT_REGISTRAR_PORT: u16 = 4370;

/// The largest message of the registrar protocol.
const MAX_MESSAGE: usize = 64 * 1024;

/// A change of the set of known nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// A node registered (or changed its address).
    Joined {
        /// The node's name.
        node: String,
        /// Where it listens.
        addr: SocketAddr,
    },
    /// A node's registration ended (it stopped, or died).
    Left {
        /// The node's name.
        node: String,
    },
}

/// Why a registrar operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrarError {
    /// The registrar could not be reached.
    #[error("registrar unreachable: {0}")]
    Unreachable(String),
    /// The name is registered by another live node.
    #[error("the node name `{0}` is already registered")]
    Taken(String),
    /// The registrar answered something that does not fit the protocol.
    #[error("registrar protocol error: {0}")]
    Protocol(String),
}

/// Finds nodes by name. Selected with [`crate::NodeBuilder::registrar`].
///
/// Methods return boxed futures so a registrar can be a trait object.
pub trait Registrar: Send + Sync + 'static {
    /// Registers this node (its name and the address it listens on) and keeps the
    /// registration alive until [`Registrar::deregister`] or the node's end.
    fn register(&self, node: &str, addr: SocketAddr) -> BoxFuture<'_, Result<(), RegistrarError>>;

    /// Ends this node's registration.
    fn deregister(&self, node: &str) -> BoxFuture<'_, ()>;

    /// The address of `node`, if it is registered.
    fn resolve(&self, node: &str) -> BoxFuture<'_, Result<Option<SocketAddr>, RegistrarError>>;

    /// Every registered node and its address.
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<(String, SocketAddr)>, RegistrarError>>;

    /// Membership changes from now on (the embedded registrar polls [`Registrar::nodes`]
    /// every 200 ms and reports the differences).
    fn watch(&self) -> broadcast::Receiver<Membership>;

    /// The local address this registrar itself may listen on, if any (the embedded registrar's
    /// port), so that a node refuses to listen there: two servers on one port would take each
    /// other's clients.
    fn listens_on(&self) -> Option<SocketAddr> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Static routes
// ---------------------------------------------------------------------------------------------

/// A fixed table of node names and addresses, as a [`Registrar`].
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ergo::net::{Registrar, StaticRoutes};
/// let routes = StaticRoutes::new().route("a@localhost", "127.0.0.1:4000".parse()?);
/// assert_eq!(routes.resolve("a@localhost").await?, Some("127.0.0.1:4000".parse()?));
/// assert_eq!(routes.resolve("b@localhost").await?, None);
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct StaticRoutes {
    table: Arc<Mutex<BTreeMap<String, SocketAddr>>>,
    changes: Arc<OnceLock<broadcast::Sender<Membership>>>,
}

impl StaticRoutes {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route.
    #[must_use]
    pub fn route(self, node: impl Into<String>, addr: SocketAddr) -> Self {
        self.add(node, addr);
        self
    }

    /// Adds (or replaces) a route on a shared table.
    pub fn add(&self, node: impl Into<String>, addr: SocketAddr) {
        let node = node.into();
        self.table.lock().insert(node.clone(), addr);
        if let Some(tx) = self.changes.get() {
            let _ = tx.send(Membership::Joined { node, addr });
        }
    }
}

impl std::fmt::Debug for StaticRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.table.lock().iter()).finish()
    }
}

impl Registrar for StaticRoutes {
    fn register(&self, node: &str, addr: SocketAddr) -> BoxFuture<'_, Result<(), RegistrarError>> {
        self.add(node, addr);
        Box::pin(async { Ok(()) })
    }

    fn deregister(&self, node: &str) -> BoxFuture<'_, ()> {
        if self.table.lock().remove(node).is_some() {
            if let Some(tx) = self.changes.get() {
                let _ = tx.send(Membership::Left { node: node.into() });
            }
        }
        Box::pin(async {})
    }

    fn resolve(&self, node: &str) -> BoxFuture<'_, Result<Option<SocketAddr>, RegistrarError>> {
        let addr = self.table.lock().get(node).copied();
        Box::pin(async move { Ok(addr) })
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<(String, SocketAddr)>, RegistrarError>> {
        let all = self
            .table
            .lock()
            .iter()
            .map(|(n, a)| (n.clone(), *a))
            .collect();
        Box::pin(async move { Ok(all) })
    }

    fn watch(&self) -> broadcast::Receiver<Membership> {
        self.changes
            .get_or_init(|| broadcast::channel(256).0)
            .subscribe()
    }
}

// ---------------------------------------------------------------------------------------------
// The embedded registrar
// ---------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
enum Request {
    Register { name: String, port: u16 },
    Resolve { name: String },
    List,
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Registered,
    Taken,
    Address(Option<u16>),
    Nodes(Vec<(String, u16)>),
}

async fn send<T: Serialize>(stream: &mut TcpStream, value: &T) -> std::io::Result<()> {
    let mut body = Vec::new();
    encode_cbor(value, &mut body).map_err(std::io::Error::other)?;
    let mut buf = (body.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(&body);
    stream.write_all(&buf).await
}

async fn recv<T: serde::de::DeserializeOwned>(stream: &mut TcpStream) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::other(format!("message of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    decode_cbor(&body).map_err(std::io::Error::other)
}

/// The registrar every node runs by default; see [the module docs](self).
///
/// Every node of a host uses the same port (default [`DEFAULT_REGISTRAR_PORT`], on loopback);
/// nodes that must not meet use different ports.
#[derive(Clone)]
pub struct EmbeddedRegistrar {
    inner: Arc<Embedded>,
}

/// The registry a serving node keeps: name -> (listen port, id of the registering connection).
type Table = Mutex<HashMap<String, (u16, u64)>>;

struct Embedded {
    port: u16,
    bind: IpAddr,
    /// This node's registration: name and listen port.
    me: Mutex<Option<(String, u16)>>,
    /// The table, while this node serves it: name -> (port, registration id).
    serving: Mutex<Option<Arc<Table>>>,
    cancel: CancellationToken,
    changes: OnceLock<broadcast::Sender<Membership>>,
    timeout: Duration,
}

impl Default for EmbeddedRegistrar {
    fn default() -> Self {
        Self::with_port(DEFAULT_REGISTRAR_PORT)
    }
}

impl std::fmt::Debug for EmbeddedRegistrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedRegistrar")
            .field("port", &self.inner.port)
            .field("serving", &self.is_serving())
            .finish()
    }
}

impl EmbeddedRegistrar {
    /// The registrar on the well-known port [`DEFAULT_REGISTRAR_PORT`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The registrar on another port (all nodes that should find each other use the same).
    pub fn with_port(port: u16) -> Self {
        EmbeddedRegistrar {
            inner: Arc::new(Embedded {
                port,
                bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
                me: Mutex::new(None),
                serving: Mutex::new(None),
                cancel: CancellationToken::new(),
                changes: OnceLock::new(),
                timeout: Duration::from_secs(2),
            }),
        }
    }

    /// Whether this node currently serves the host's registry.
    pub fn is_serving(&self) -> bool {
        self.inner.serving.lock().is_some()
    }

    /// The registrar address of the host of `node` (`name@host`).
    async fn host_addr(&self, node: &str) -> Result<SocketAddr, RegistrarError> {
        let host = node.split_once('@').map_or("localhost", |(_, h)| h);
        if host == "localhost" {
            return Ok(SocketAddr::new(self.inner.bind, self.inner.port));
        }
        tokio::net::lookup_host((host, self.inner.port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| RegistrarError::Unreachable(format!("cannot resolve host `{host}`")))
    }

    /// One request to the registrar of `node`'s host (or the local table when serving).
    async fn ask(&self, node: &str, request: Request) -> Result<Reply, RegistrarError> {
        let addr = self.host_addr(node).await?;
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await?;
            send(&mut stream, &request).await?;
            recv::<Reply>(&mut stream).await
        };
        match tokio::time::timeout(self.inner.timeout, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(RegistrarError::Unreachable(format!("{addr}: {e}"))),
            Err(_) => Err(RegistrarError::Unreachable(format!("{addr}: timed out"))),
        }
    }

    /// Keeps this node registered: serve the port if it is free, otherwise hold a
    /// registration on whoever serves it; start over whenever that ends.
    async fn keep(self) {
        let inner = &self.inner;
        // Consecutive attempts that did not end in a held registration (the port is held by
        // something that does not answer as a registrar, say): wait longer each time.
        let mut failures: u32 = 0;
        loop {
            let Some((name, port)) = inner.me.lock().clone() else {
                return;
            };
            let addr = SocketAddr::new(inner.bind, inner.port);
            if let Ok(listener) = TcpListener::bind(addr).await {
                tracing::info!(%addr, node = %name, "started the embedded registrar (the other nodes of this host register with it)");
                self.serve(listener, name, port).await;
                return;
            }
            // Someone serves it: register there and hold the connection.
            let timeout = inner.timeout;
            let held = async {
                let register = async {
                    let mut stream = TcpStream::connect(addr).await?;
                    let request = Request::Register {
                        name: name.clone(),
                        port,
                    };
                    send(&mut stream, &request).await?;
                    match recv::<Reply>(&mut stream).await? {
                        Reply::Registered => Ok(stream),
                        _ => Err(std::io::Error::other("the name is taken")),
                    }
                };
                let mut stream = tokio::time::timeout(timeout, register)
                    .await
                    .map_err(|_| std::io::Error::other("no answer from the registrar"))??;
                // Held until the server goes away.
                let mut byte = [0u8; 1];
                let _ = stream.read(&mut byte).await;
                Ok::<(), std::io::Error>(())
            };
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                result = held => match result {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        if failures == 3 {
                            tracing::warn!(node = %name, "cannot register with the host's registrar (still trying): {e}");
                        } else {
                            tracing::debug!(node = %name, "registrar: {e}");
                        }
                    }
                },
            }
            // Let the server's successor (maybe us) settle; spread the nodes out a little.
            let jitter = u64::from(port % 50);
            let backoff = Duration::from_millis(20 + jitter)
                .saturating_mul(1 << failures.min(8))
                .min(Duration::from_secs(5));
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }

    async fn serve(&self, listener: TcpListener, name: String, port: u16) {
        let inner = &self.inner;
        let table = Arc::new(Mutex::new(HashMap::new()));
        table.lock().insert(name, (port, 0u64));
        *inner.serving.lock() = Some(table.clone());
        let mut next_id = 1u64;
        loop {
            let accepted = tokio::select! {
                _ = inner.cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                // Out of file descriptors, say: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (table, cancel, id) = (table.clone(), inner.cancel.clone(), next_id);
            next_id += 1;
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = serve_one(stream, &table, id) => {}
                }
            });
        }
        *inner.serving.lock() = None;
    }
}

/// Serves one client: answers its requests; a registration lasts as long as the connection.
async fn serve_one(mut stream: TcpStream, table: &Table, id: u64) {
    let mut registered: Option<String> = None;
    while let Ok(request) = recv::<Request>(&mut stream).await {
        let reply = answer(table, id, &mut registered, request);
        if send(&mut stream, &reply).await.is_err() {
            break;
        }
    }
    forget(table, id, registered);
}

/// The answer to one request of connection `id`, which holds the registration `registered`.
fn answer(table: &Table, id: u64, registered: &mut Option<String>, request: Request) -> Reply {
    match request {
        Request::Register { name, port } => {
            let mut t = table.lock();
            if t.get(&name).is_some_and(|(_, owner)| *owner != id) {
                Reply::Taken
            } else {
                // One name per connection: a new one replaces the old.
                if let Some(old) = registered.take().filter(|old| *old != name) {
                    t.remove(&old);
                }
                t.insert(name.clone(), (port, id));
                *registered = Some(name);
                Reply::Registered
            }
        }
        Request::Resolve { name } => Reply::Address(table.lock().get(&name).map(|(p, _)| *p)),
        Request::List => Reply::Nodes(
            table
                .lock()
                .iter()
                .map(|(n, (p, _))| (n.clone(), *p))
                .collect(),
        ),
    }
}

/// Connection `id` closed: its registration ends.
fn forget(table: &Table, id: u64, registered: Option<String>) {
    if let Some(name) = registered {
        let mut t = table.lock();
        if t.get(&name).is_some_and(|(_, owner)| *owner == id) {
            t.remove(&name);
        }
    }
}

/// The registrar's server side on bytes, for the fuzz target: `input` is a stream of
/// requests (each a 4-byte length and CBOR, as on the wire) from two interleaved connections
/// (a byte before each picks which), then both close. Checks that a connection holds at most
/// one name, that every reply encodes, and that nothing is left once both have closed.
pub(crate) fn fuzz_serve(mut input: &[u8]) {
    let table: Table = Mutex::new(HashMap::new());
    let mut registered: [Option<String>; 2] = [None, None];
    let mut open = [true, true];
    while let [pick, rest @ ..] = input {
        let conn = usize::from(*pick & 1);
        let Some((len, rest)) = rest.split_first_chunk::<4>() else {
            break;
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_MESSAGE || rest.len() < len {
            break;
        }
        let (body, rest) = rest.split_at(len);
        input = rest;
        if !open[conn] {
            continue;
        }
        match decode_cbor::<Request>(body) {
            Ok(request) => {
                let reply = answer(&table, conn as u64, &mut registered[conn], request);
                let mut out = Vec::new();
                encode_cbor(&reply, &mut out).expect("a reply encodes");
                let owned = table
                    .lock()
                    .values()
                    .filter(|(_, o)| *o == conn as u64)
                    .count();
                assert!(owned <= 1, "connection {conn} holds {owned} names");
            }
            // The server closes a connection that sends what it cannot read.
            Err(_) => {
                open[conn] = false;
                forget(&table, conn as u64, registered[conn].take());
            }
        }
    }
    for (conn, name) in registered.into_iter().enumerate() {
        forget(&table, conn as u64, name);
    }
    assert!(
        table.lock().is_empty(),
        "registrations outlived their connections"
    );
}
impl Registrar for EmbeddedRegistrar {
    fn register(&self, node: &str, addr: SocketAddr) -> BoxFuture<'_, Result<(), RegistrarError>> {
        let first = self
            .inner
            .me
            .lock()
            .replace((node.to_string(), addr.port()))
            .is_none();
        if first {
            tokio::spawn(self.clone().keep());
        }
        Box::pin(async { Ok(()) })
    }

    fn deregister(&self, _node: &str) -> BoxFuture<'_, ()> {
        self.inner.me.lock().take();
        self.inner.cancel.cancel();
        Box::pin(async {})
    }

    fn resolve(&self, node: &str) -> BoxFuture<'_, Result<Option<SocketAddr>, RegistrarError>> {
        let node = node.to_string();
        Box::pin(async move {
            let host = self.host_addr(&node).await?;
            let local = self.inner.serving.lock().clone();
            let port = match local {
                Some(table) if host.ip() == self.inner.bind => {
                    table.lock().get(&node).map(|(p, _)| *p)
                }
                _ => match self
                    .ask(&node, Request::Resolve { name: node.clone() })
                    .await?
                {
                    Reply::Address(port) => port,
                    _ => return Err(RegistrarError::Protocol("expected an address".into())),
                },
            };
            Ok(port.map(|p| SocketAddr::new(host.ip(), p)))
        })
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<(String, SocketAddr)>, RegistrarError>> {
        Box::pin(async move {
            let me = self
                .inner
                .me
                .lock()
                .clone()
                .map_or_else(|| "registrar@localhost".to_string(), |(n, _)| n);
            let host = self.host_addr(&me).await?;
            match self.ask(&me, Request::List).await? {
                Reply::Nodes(all) => Ok(all
                    .into_iter()
                    .map(|(n, p)| (n, SocketAddr::new(host.ip(), p)))
                    .collect()),
                _ => Err(RegistrarError::Protocol("expected a list".into())),
            }
        })
    }

    fn watch(&self) -> broadcast::Receiver<Membership> {
        let mut started = false;
        let tx = self.inner.changes.get_or_init(|| {
            started = true;
            broadcast::channel(256).0
        });
        let rx = tx.subscribe();
        if started {
            let (this, tx) = (self.clone(), tx.clone());
            tokio::spawn(async move { poll_changes(&this, &tx, &this.inner.cancel).await });
        }
        rx
    }

    fn listens_on(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.inner.bind, self.inner.port))
    }
}

/// Reports the differences between successive `nodes()` lists.
async fn poll_changes(
    registrar: &dyn Registrar,
    tx: &broadcast::Sender<Membership>,
    cancel: &CancellationToken,
) {
    let mut known: BTreeMap<String, SocketAddr> = BTreeMap::new();
    loop {
        if let Ok(now) = registrar.nodes().await {
            let now: BTreeMap<_, _> = now.into_iter().collect();
            for (node, addr) in &now {
                if known.get(node) != Some(addr) {
                    let _ = tx.send(Membership::Joined {
                        node: node.clone(),
                        addr: *addr,
                    });
                }
            }
            for node in known.keys() {
                if !now.contains_key(node) {
                    let _ = tx.send(Membership::Left { node: node.clone() });
                }
            }
            known = now;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}
