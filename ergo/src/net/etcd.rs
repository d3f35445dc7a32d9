//! The etcd registrar (feature `etcd`); see [`EtcdRegistrar`].

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::{broadcast, oneshot, watch, Notify};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::registrar::{Membership, Registrar, RegistrarError};

/// The default time to live of a node's lease.
const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// The default bound of every request (and of connecting).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The first and the largest pause between two attempts to reach etcd.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// HTTP/2 pings on the open streams (etcd refuses pings more often than every 5 s).
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// A [`Registrar`] backed by etcd: nodes of a cluster register and find each other in etcd.
///
/// # Keys
///
/// Every node of a cluster keeps one key, `<prefix>/nodes/<node name>`, whose value is the
/// address it listens on (`127.0.0.1:4000`). The prefix names the cluster (`/ergo/prod`): nodes
/// that should find each other use the same etcd and the same prefix.
///
/// # Liveness
///
/// The key is bound to an etcd lease of a short time to live ([`EtcdRegistrar::ttl`], 5 s by
/// default) that a task of the node keeps alive. A node that dies stops refreshing it, and etcd
/// deletes its key when the lease expires; a node that stops ([`Registrar::deregister`], which
/// [`crate::Node::shutdown`] calls) revokes the lease, and its key goes at once.
///
/// A name belongs to one live node: a node registers only if the key is absent or already
/// holds its own address (a restarted node on the same address takes its name back at once; on
/// another address it waits until the old lease expires).
///
/// # Membership
///
/// [`Registrar::watch`] reads the current members, then follows etcd's watch of the prefix:
/// a put is a [`Membership::Joined`], a deletion (or an expired lease) a [`Membership::Left`].
/// Nothing is polled.
///
/// # Failure
///
/// Every request to etcd is bounded by a timeout ([`EtcdRegistrar::timeout`], 2 s by
/// default), so no call waits forever. When etcd cannot be reached, [`Registrar::resolve`] and
/// [`Registrar::nodes`] fail with [`RegistrarError::Unreachable`], but nothing else changes:
/// the registrar never touches the node's connections, so the peers a node is connected to stay
/// connected. The keep-alive task retries with a growing backoff (100 ms up to 2 s, with some
/// jitter); when etcd answers again the node registers anew (a new lease, its key put again)
/// and the watch reads the members again and reports what changed meanwhile. Errors are
/// logged with `tracing`; nothing here panics.
///
/// Clones share one connection and one registration. Dropping the last clone ends it as
/// [`Registrar::deregister`] does (while the tokio runtime still runs; a node whose process
/// or runtime dies leaves its key to expire with its lease).
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ergo::net::EtcdRegistrar;
/// use ergo::prelude::*;
///
/// let etcd = EtcdRegistrar::connect(["http://127.0.0.1:2379"], "/ergo/prod")
///     .await?
///     .ttl(Duration::from_secs(5));
/// let node = Node::builder("api-1@host1")
///     .cookie("a long random cookie")
///     .listen("10.0.0.5:4000") // the address peers dial; it is what gets registered
///     .registrar(etcd)
///     .start()
///     .await?;
/// // Every node registered under `/ergo/prod`, this one included.
/// for (name, addr) in node.registered_nodes().await? {
///     println!("{name} at {addr}");
/// }
/// // Joins and leaves, as etcd reports them.
/// let mut changes = node.watch_nodes().expect("a registrar");
/// while let Ok(change) = changes.recv().await {
///     println!("{change:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EtcdRegistrar {
    shared: Arc<Shared>,
    /// Cancels the tasks when the last clone goes.
    _alive: Arc<DropGuard>,
    ttl: Duration,
    timeout: Duration,
}

/// What the handles and the tasks share.
struct Shared {
    endpoints: Vec<String>,
    /// `<prefix>/nodes/`.
    nodes_prefix: String,
    /// The client in use and its generation (bumped when it is replaced after a failure).
    conn: watch::Sender<Conn>,
    /// This node's registration, once `register` was called.
    me: Mutex<Option<Me>>,
    /// Wakes the keep-alive task to register again (a new address).
    again: Notify,
    /// Stops every task: `deregister`, or the last handle dropped.
    cancel: CancellationToken,
    changes: OnceLock<broadcast::Sender<Membership>>,
}

#[derive(Clone)]
struct Conn {
    client: Client,
    generation: u64,
}

struct Me {
    name: String,
    addr: SocketAddr,
    /// The lease the key is bound to, while registered.
    lease: Option<i64>,
}

impl std::fmt::Debug for EtcdRegistrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let me = self.shared.me.lock();
        f.debug_struct("EtcdRegistrar")
            .field("endpoints", &self.shared.endpoints)
            .field("prefix", &self.shared.nodes_prefix)
            .field("node", &me.as_ref().map(|m| &m.name))
            .field("lease", &me.as_ref().and_then(|m| m.lease))
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl EtcdRegistrar {
    /// Connects to the etcd cluster at `endpoints` (URLs such as `http://127.0.0.1:2379`) for
    /// the nodes registered under `prefix` (such as `/ergo/prod`), with the default time to
    /// live (5 s) and timeout (2 s).
    ///
    /// The connection is checked with one read of the prefix, bounded by the timeout.
    ///
    /// # Errors
    ///
    /// [`RegistrarError::Unreachable`] when there are no endpoints, an endpoint is not a valid
    /// URL, or etcd does not answer within the timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future drops the half-made connection.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), ergo::net::RegistrarError> {
    /// use ergo::net::{EtcdRegistrar, Registrar};
    ///
    /// let etcd = EtcdRegistrar::connect(["http://127.0.0.1:2379"], "/ergo/prod").await?;
    /// println!("{} nodes", etcd.nodes().await?.len());
    /// # Ok(()) }
    /// ```
    pub async fn connect<E: Into<String>>(
        endpoints: impl IntoIterator<Item = E>,
        prefix: impl Into<String>,
    ) -> Result<Self, RegistrarError> {
        let endpoints: Vec<String> = endpoints.into_iter().map(Into::into).collect();
        if endpoints.is_empty() {
            return Err(RegistrarError::Unreachable(
                "no etcd endpoints given".into(),
            ));
        }
        let prefix = prefix.into();
        let nodes_prefix = format!("{}/nodes/", prefix.trim_end_matches('/'));
        let client = new_client(&endpoints, DEFAULT_TIMEOUT).await?;
        // Check that etcd answers.
        let mut kv = client.kv_client();
        let options = GetOptions::new().with_prefix().with_count_only();
        call(
            DEFAULT_TIMEOUT,
            "read",
            kv.get(nodes_prefix.as_str(), Some(options)),
        )
        .await?;
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            endpoints,
            nodes_prefix,
            conn: watch::Sender::new(Conn {
                client,
                generation: 0,
            }),
            me: Mutex::new(None),
            again: Notify::new(),
            cancel: cancel.clone(),
            changes: OnceLock::new(),
        });
        Ok(EtcdRegistrar {
            shared,
            _alive: Arc::new(cancel.drop_guard()),
            ttl: DEFAULT_TTL,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The time to live of this node's lease (default 5 s; whole seconds, rounded up, at least
    /// 1 s; etcd may raise very short ones to its minimum, about 2 s by default). A node that
    /// dies disappears from the registry after about this long. Takes effect at the next
    /// registration, so set it before the node starts.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The bound of every request to etcd, and of connecting to it again (default 2 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The id of the etcd lease this node's key is bound to, while it is registered (`None`
    /// before the first registration, while registering again, and after
    /// [`Registrar::deregister`]).
    pub fn lease(&self) -> Option<i64> {
        self.shared.me.lock().as_ref().and_then(|m| m.lease)
    }

    /// One request with the current client; when it fails, one more with a new client.
    async fn request<T, F, Fut>(&self, what: &str, f: F) -> Result<T, RegistrarError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let conn = self.shared.current();
        match call(self.timeout, what, f(conn.client)).await {
            Ok(v) => Ok(v),
            Err(first) => {
                self.shared.renew(conn.generation, self.timeout).await;
                let again = self.shared.current();
                if again.generation == conn.generation {
                    return Err(first);
                }
                call(self.timeout, what, f(again.client)).await
            }
        }
    }
}

impl Shared {
    fn current(&self) -> Conn {
        self.conn.borrow().clone()
    }

    fn key(&self, node: &str) -> String {
        format!("{}{node}", self.nodes_prefix)
    }

    /// Replaces the client of generation `seen` with a new one (unless that was done already).
    async fn renew(&self, seen: u64, timeout: Duration) {
        if self.conn.borrow().generation != seen {
            return;
        }
        match new_client(&self.endpoints, timeout).await {
            Ok(client) => {
                self.conn.send_if_modified(|conn| {
                    if conn.generation != seen {
                        return false;
                    }
                    *conn = Conn {
                        client,
                        generation: seen + 1,
                    };
                    true
                });
            }
            Err(e) => tracing::debug!("etcd registrar: cannot make a new client: {e}"),
        }
    }

    /// `(name, address)` of a key-value of the prefix, or `None` (logged) if it is not one.
    fn parse(&self, kv: &KeyValue) -> Option<(String, SocketAddr)> {
        let name = std::str::from_utf8(kv.key())
            .ok()?
            .strip_prefix(self.nodes_prefix.as_str())?;
        match std::str::from_utf8(kv.value())
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(addr) => Some((name.to_string(), addr)),
            None => {
                tracing::debug!(node = %name, "etcd registrar: ignoring a key whose value is not an address");
                None
            }
        }
    }

    /// Takes this node's lease (so exactly one of `deregister` and the keep-alive task revokes
    /// it) and revokes it.
    async fn revoke_own(&self, timeout: Duration) {
        let lease = self.me.lock().as_mut().and_then(|m| m.lease.take());
        if let Some(lease) = lease {
            let mut leases = self.current().client.lease_client();
            if let Err(e) = call(timeout, "revoke", leases.revoke(lease)).await {
                tracing::debug!(lease, "etcd registrar: {e}");
            }
        }
    }
}

async fn new_client(endpoints: &[String], timeout: Duration) -> Result<Client, RegistrarError> {
    let options = ConnectOptions::new()
        .with_connect_timeout(timeout)
        .with_keep_alive(PING_INTERVAL, timeout);
    match tokio::time::timeout(timeout, Client::connect(endpoints, Some(options))).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(RegistrarError::Unreachable(format!(
            "etcd at {endpoints:?}: {e}"
        ))),
        Err(_) => Err(RegistrarError::Unreachable(format!(
            "etcd at {endpoints:?}: connecting timed out after {timeout:?}"
        ))),
    }
}

/// Awaits one request to etcd, bounded by `timeout`.
async fn call<T>(
    timeout: Duration,
    what: &str,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, RegistrarError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(RegistrarError::Unreachable(format!("etcd {what}: {e}"))),
        Err(_) => Err(RegistrarError::Unreachable(format!(
            "etcd {what}: no answer within {timeout:?}"
        ))),
    }
}

/// Pauses between attempts: doubling from [`BACKOFF_MIN`] to [`BACKOFF_MAX`], plus up to a
/// quarter of jitter so that nodes cut off together do not come back in step.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff { next: BACKOFF_MIN }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }

    fn next(&mut self) -> Duration {
        let pause = self.next;
        self.next = (pause * 2).min(BACKOFF_MAX);
        let random = RandomState::new().build_hasher().finish();
        pause + (pause / 4).mul_f64((random % 1024) as f64 / 1024.0)
    }
}

/// Sleeps `pause`; `false` if cancelled first.
async fn pause(cancel: &CancellationToken, pause: Duration) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(pause) => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Registration and keep-alive
// ---------------------------------------------------------------------------------------------

/// One registration: a new lease, and the key put with it if the name is free or ours.
async fn register_once(
    client: &Client,
    key: &str,
    name: &str,
    addr: SocketAddr,
    ttl: Duration,
    timeout: Duration,
) -> Result<i64, RegistrarError> {
    let ttl_secs = i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0))
        .unwrap_or(i64::MAX)
        .max(1);
    let mut leases = client.lease_client();
    let lease = call(timeout, "lease grant", leases.grant(ttl_secs, None))
        .await?
        .id();
    let value = addr.to_string();
    let put = TxnOp::put(
        key,
        value.as_str(),
        Some(PutOptions::new().with_lease(lease)),
    );
    let mut kv = client.kv_client();
    // Free (no such key), or ours (our own address: no other live node listens there).
    for compare in [
        Compare::version(key, CompareOp::Equal, 0),
        Compare::value(key, CompareOp::Equal, value.as_str()),
    ] {
        let txn = Txn::new().when([compare]).and_then([put.clone()]);
        match call(timeout, "put", kv.txn(txn)).await {
            Ok(done) if done.succeeded() => return Ok(lease),
            Ok(_) => {}
            Err(e) => {
                let _ = call(timeout, "revoke", leases.revoke(lease)).await;
                return Err(e);
            }
        }
    }
    let _ = call(timeout, "revoke", leases.revoke(lease)).await;
    Err(RegistrarError::Taken(name.to_string()))
}

/// Keeps `lease` alive until a refresh fails; returns why.
async fn keep_alive(client: &Client, lease: i64, ttl: Duration, timeout: Duration) -> String {
    let mut leases = client.lease_client();
    let (mut keeper, mut answers) =
        match call(timeout, "keep-alive", leases.keep_alive(lease)).await {
            Ok(stream) => stream,
            Err(e) => return e.to_string(),
        };
    let interval = (ttl / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(interval).await;
        if let Err(e) = call(timeout, "keep-alive", keeper.keep_alive()).await {
            return e.to_string();
        }
        match tokio::time::timeout(timeout, answers.message()).await {
            Ok(Ok(Some(answer))) if answer.ttl() > 0 => {}
            Ok(Ok(Some(_))) => return "the lease expired".into(),
            Ok(Ok(None)) => return "the keep-alive stream ended".into(),
            Ok(Err(e)) => return format!("keep-alive: {e}"),
            Err(_) => return format!("no keep-alive answer within {timeout:?}"),
        }
    }
}

/// The keep-alive task: registers, keeps the lease alive, and registers again (new lease, key
/// put again) whenever that fails, with backoff, until cancelled. Reports the first
/// attempt's result to `first`.
async fn keep(
    shared: Arc<Shared>,
    ttl: Duration,
    timeout: Duration,
    mut first: Option<oneshot::Sender<Result<(), RegistrarError>>>,
) {
    let cancel = shared.cancel.clone();
    let mut backoff = Backoff::new();
    let mut registered_before = false;
    let mut failing = false;
    // The lease of a lost registration: it may still live (etcd restarted), and is revoked
    // once the key is bound to a new one.
    let mut previous: Option<i64> = None;
    loop {
        let Some((name, addr)) = shared.me.lock().as_ref().map(|m| (m.name.clone(), m.addr)) else {
            return;
        };
        let key = shared.key(&name);
        let conn = shared.current();
        let attempt = tokio::select! {
            _ = cancel.cancelled() => break,
            r = register_once(&conn.client, &key, &name, addr, ttl, timeout) => r,
        };
        match attempt {
            Ok(lease) => {
                if let Some(me) = shared.me.lock().as_mut() {
                    me.lease = Some(lease);
                }
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                if registered_before {
                    tracing::info!(node = %name, %addr, lease, "registered in etcd again");
                } else {
                    tracing::info!(node = %name, %addr, lease, "registered in etcd");
                }
                registered_before = true;
                failing = false;
                backoff.reset();
                if let Some(old) = previous.take().filter(|&old| old != lease) {
                    let mut leases = conn.client.lease_client();
                    let _ = call(timeout, "revoke", leases.revoke(old)).await;
                }
                let why = tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = shared.again.notified() => "its address changed".to_string(),
                    why = keep_alive(&conn.client, lease, ttl, timeout) => why,
                };
                tracing::warn!(node = %name, lease, "etcd registration lost ({why}); registering again");
                previous = shared.me.lock().as_mut().and_then(|m| m.lease.take());
                shared.renew(conn.generation, timeout).await;
            }
            Err(e) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e.clone()));
                }
                if failing {
                    tracing::debug!(node = %name, "etcd registration failed: {e}");
                } else {
                    tracing::warn!(node = %name, "etcd registration failed (retrying): {e}");
                }
                failing = true;
                if matches!(e, RegistrarError::Unreachable(_)) {
                    shared.renew(conn.generation, timeout).await;
                }
                if !pause(&cancel, backoff.next()).await {
                    break;
                }
            }
        }
    }
    // Cancelled: a node that stops takes its name away at once.
    shared.revoke_own(timeout).await;
    if let Some(old) = previous {
        let mut leases = shared.current().client.lease_client();
        let _ = call(timeout, "revoke", leases.revoke(old)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Membership
// ---------------------------------------------------------------------------------------------

/// Follows the prefix: reads the members, then watches from the next revision; on any failure
/// starts over (reporting the differences) after a backoff.
async fn follow(shared: Arc<Shared>, tx: broadcast::Sender<Membership>, timeout: Duration) {
    let cancel = shared.cancel.clone();
    let mut generations = shared.conn.subscribe();
    let mut known: BTreeMap<String, SocketAddr> = BTreeMap::new();
    let mut backoff = Backoff::new();
    loop {
        let conn = shared.current();
        generations.mark_unchanged();
        let why = tokio::select! {
            _ = cancel.cancelled() => return,
            why = follow_once(&shared, &conn.client, &tx, &mut known, &mut backoff, timeout) => why,
            _ = generations.changed() => "the client was replaced".to_string(),
        };
        tracing::debug!("etcd registrar: watch restarts: {why}");
        if conn.generation == shared.current().generation {
            shared.renew(conn.generation, timeout).await;
        }
        if !pause(&cancel, backoff.next()).await {
            return;
        }
    }
}

/// One read of the members and one watch; returns why the watch ended.
async fn follow_once(
    shared: &Shared,
    client: &Client,
    tx: &broadcast::Sender<Membership>,
    known: &mut BTreeMap<String, SocketAddr>,
    backoff: &mut Backoff,
    timeout: Duration,
) -> String {
    let prefix = shared.nodes_prefix.as_str();
    let mut kv = client.kv_client();
    let read = match call(
        timeout,
        "read",
        kv.get(prefix, Some(GetOptions::new().with_prefix())),
    )
    .await
    {
        Ok(read) => read,
        Err(e) => return e.to_string(),
    };
    let revision = read.header().map_or(0, |h| h.revision());
    let now: BTreeMap<String, SocketAddr> = read
        .kvs()
        .iter()
        .filter_map(|kv| shared.parse(kv))
        .collect();
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
    *known = now;

    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision + 1);
    let mut watcher = client.watch_client();
    let mut stream = match call(timeout, "watch", watcher.watch(prefix, Some(options))).await {
        Ok(stream) => stream,
        Err(e) => return e.to_string(),
    };
    backoff.reset();
    loop {
        let answer = match stream.message().await {
            Ok(Some(answer)) => answer,
            Ok(None) => return "the watch stream ended".into(),
            Err(e) => return format!("watch: {e}"),
        };
        if answer.canceled() {
            return format!("etcd cancelled the watch: {}", answer.cancel_reason());
        }
        for event in answer.events() {
            let Some(kv) = event.kv() else { continue };
            // A deleted key (removed, or its lease expired) has version 0.
            if kv.version() == 0 {
                let Some(node) = std::str::from_utf8(kv.key())
                    .ok()
                    .and_then(|k| k.strip_prefix(prefix))
                else {
                    continue;
                };
                if known.remove(node).is_some() {
                    let _ = tx.send(Membership::Left { node: node.into() });
                }
            } else if let Some((node, addr)) = shared.parse(kv) {
                if known.insert(node.clone(), addr) != Some(addr) {
                    let _ = tx.send(Membership::Joined { node, addr });
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------------

impl Registrar for EtcdRegistrar {
    /// Registers `node` at `addr` and starts the keep-alive task (see [`EtcdRegistrar`]). Returns the first attempt's result; after a failure (etcd unreachable,
    /// or the name held by another live node) the task keeps trying until it succeeds or
    /// [`Registrar::deregister`] is called. Registering again with the same name and a new
    /// address registers the new one; another name is refused.
    fn register(&self, node: &str, addr: SocketAddr) -> BoxFuture<'_, Result<(), RegistrarError>> {
        let node = node.to_string();
        Box::pin(async move {
            if self.shared.cancel.is_cancelled() {
                return Err(RegistrarError::Protocol(
                    "this etcd registrar was deregistered".into(),
                ));
            }
            let start = {
                let mut me = self.shared.me.lock();
                match me.as_mut() {
                    Some(m) if m.name != node => {
                        return Err(RegistrarError::Protocol(format!(
                            "this etcd registrar already registers node `{}`",
                            m.name
                        )));
                    }
                    Some(m) => {
                        m.addr = addr;
                        false
                    }
                    None => {
                        *me = Some(Me {
                            name: node.clone(),
                            addr,
                            lease: None,
                        });
                        true
                    }
                }
            };
            if !start {
                self.shared.again.notify_one();
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            tokio::spawn(keep(self.shared.clone(), self.ttl, self.timeout, Some(tx)));
            // The first attempt is a few requests, each bounded by the timeout.
            match tokio::time::timeout(self.timeout.saturating_mul(5), rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(RegistrarError::Protocol(
                    "the etcd keep-alive task ended".into(),
                )),
                Err(_) => Err(RegistrarError::Unreachable(
                    "etcd registration timed out (still retrying)".into(),
                )),
            }
        })
    }

    /// Stops the keep-alive and membership tasks and revokes the lease, which deletes the
    /// node's key at once (bounded by the timeout; if etcd cannot be reached the key goes
    /// when the lease expires). Does nothing when this registrar registers another node.
    fn deregister(&self, node: &str) -> BoxFuture<'_, ()> {
        let other = self
            .shared
            .me
            .lock()
            .as_ref()
            .is_some_and(|m| m.name != node);
        Box::pin(async move {
            if other {
                return;
            }
            self.shared.cancel.cancel();
            self.shared.revoke_own(self.timeout).await;
        })
    }

    fn resolve(&self, node: &str) -> BoxFuture<'_, Result<Option<SocketAddr>, RegistrarError>> {
        let key = self.shared.key(node);
        Box::pin(async move {
            let read = self
                .request("read", |client| {
                    let key = key.clone();
                    async move { client.kv_client().get(key, None).await }
                })
                .await?;
            match read.kvs().first() {
                None => Ok(None),
                Some(kv) => match self.shared.parse(kv) {
                    Some((_, addr)) => Ok(Some(addr)),
                    None => Err(RegistrarError::Protocol(format!(
                        "the etcd key `{key}` does not hold an address"
                    ))),
                },
            }
        })
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<(String, SocketAddr)>, RegistrarError>> {
        Box::pin(async move {
            let prefix = self.shared.nodes_prefix.clone();
            let read = self
                .request("read", |client| {
                    let prefix = prefix.clone();
                    async move {
                        let options = GetOptions::new().with_prefix();
                        client.kv_client().get(prefix, Some(options)).await
                    }
                })
                .await?;
            Ok(read
                .kvs()
                .iter()
                .filter_map(|kv| self.shared.parse(kv))
                .collect())
        })
    }

    /// Membership changes from etcd's watch of the prefix. The first call starts the watch,
    /// whose first read reports every node registered then as [`Membership::Joined`]; later
    /// calls see changes from then on. Needs a tokio runtime (without one, the receiver gets
    /// nothing).
    fn watch(&self) -> broadcast::Receiver<Membership> {
        let mut started = false;
        let tx = self.shared.changes.get_or_init(|| {
            started = true;
            broadcast::channel(256).0
        });
        let rx = tx.subscribe();
        if started {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(follow(self.shared.clone(), tx.clone(), self.timeout));
                }
                Err(_) => tracing::warn!("etcd registrar: watch() outside a tokio runtime"),
            }
        }
        rx
    }
}
