//! The network's settings: [`NetOptions`] and the methods they add to [`NodeBuilder`].

use std::sync::Arc;
use std::time::Duration;

use crate::NodeBuilder;

/// The network settings of a node (see the `NodeBuilder` methods that set them).
#[derive(Clone)]
pub(crate) struct NetOptions {
    pub(crate) registrar: Option<Arc<dyn super::Registrar>>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::tls::TlsConfig>,
    pub(crate) cookie: Option<Vec<u8>>,
    pub(crate) listen: Option<String>,
    pub(crate) accept: bool,
    pub(crate) routes: Vec<(String, String)>,
    pub(crate) connections_per_peer: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) max_frame_len: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_handshakes: usize,
    pub(crate) hello_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for NetOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetOptions")
            .field("cookie", &self.cookie.as_ref().map(|_| "<redacted>"))
            .field("listen", &self.listen)
            .field("accept", &self.accept)
            .field("routes", &self.routes)
            .field("registrar", &self.registrar.is_some())
            .field("connections_per_peer", &self.connections_per_peer)
            .field("heartbeat", &self.heartbeat)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("max_frame_len", &self.max_frame_len)
            .finish_non_exhaustive()
    }
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            registrar: Some(Arc::new(super::EmbeddedRegistrar::new())),
            #[cfg(feature = "tls")]
            tls: None,
            cookie: None,
            listen: None,
            accept: true,
            routes: Vec::new(),
            connections_per_peer: 2,
            heartbeat: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(5),
            max_frame_len: super::frame::DEFAULT_MAX_FRAME_LEN,
            handshake_timeout: super::handshake::DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: 64,
            hello_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The network's part of a node's configuration (feature `net`).
impl NodeBuilder {
    /// Connects this node to others (feature `net`): peers must present the same cookie in the
    /// handshake. Without a cookie a node has no network. Use a long random secret (32 random
    /// bytes, say); an empty cookie is refused by [`NodeBuilder::start`].
    ///
    /// A node with a cookie listens on `127.0.0.1:0` (loopback, a free port) unless
    /// [`NodeBuilder::listen`] says otherwise; [`Node::listen_addr`](crate::Node::listen_addr) tells the port.
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
    pub fn cookie(mut self, cookie: impl AsRef<[u8]>) -> Self {
        self.net_options().cookie = Some(cookie.as_ref().to_vec());
        self
    }

    /// The address to accept peers on (`host:port`; port 0 picks a free one). Default:
    /// `127.0.0.1:0`.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.net_options().listen = Some(addr.into());
        self.net_options().accept = true;
        self
    }

    /// Accepts no peers: this node only dials others (they reply over its connections).
    pub fn no_listen(mut self) -> Self {
        self.net_options().accept = false;
        self
    }

    /// How this node finds the addresses of peers it has no static route to (default: an
    /// [`EmbeddedRegistrar`](crate::net::EmbeddedRegistrar) on the well-known port). The node
    /// registers itself with it when it starts listening.
    pub fn registrar(mut self, registrar: impl crate::net::Registrar) -> Self {
        self.net_options().registrar = Some(Arc::new(registrar));
        self
    }

    /// Requires mutual TLS on every peer connection (feature `tls`): see
    /// [`crate::net::tls`]. Peers without TLS, or with a certificate the configured CA did not
    /// sign, or an expired one, are refused.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::net::tls::TlsConfig) -> Self {
        self.net_options().tls = Some(config);
        self
    }

    /// No registrar: this node reaches only the peers it has static routes to (or that dial
    /// it).
    pub fn no_registrar(mut self) -> Self {
        self.net_options().registrar = None;
        self
    }

    /// A static route: the address (`host:port`) where node `node` listens.
    pub fn route(mut self, node: impl Into<String>, addr: impl Into<String>) -> Self {
        self.net_options().routes.push((node.into(), addr.into()));
        self
    }

    /// How many TCP connections this node opens to each peer it dials (default 2). Messages to
    /// one process always use the same one, so they keep their order.
    pub fn connections_per_peer(mut self, n: usize) -> Self {
        self.net_options().connections_per_peer = n;
        self
    }

    /// How often an idle connection sends a heartbeat (default 1 s), and how long a connection
    /// may stay silent before its peer is considered gone (default 5 s).
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.net_options().heartbeat = interval;
        self.net_options().heartbeat_timeout = timeout;
        self
    }

    /// The largest frame (header + encoded message) sent or accepted after the handshake
    /// (default 16 MiB). A larger incoming frame closes its connection before anything is
    /// allocated for it; a larger outgoing message fails to send.
    pub fn max_frame_len(mut self, bytes: usize) -> Self {
        self.net_options().max_frame_len = bytes;
        self
    }

    /// The time a peer has to complete the handshake (default 5 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.net_options().handshake_timeout = timeout;
        self
    }

    /// How many incoming handshakes may run at once (default 64). When all are running, a
    /// new connection takes the slot of the oldest one that has not sent a byte yet, or else
    /// of the oldest of the source address holding the most slots, down to a fair share; only
    /// when neither is possible is it closed at once. So silent sockets, however many, never
    /// keep a peer out, and one address cannot take every slot from the others.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.net_options().max_handshakes = n;
        self
    }

    /// The time a new incoming connection has to send its first bytes (default 1 s, and never
    /// more than the handshake timeout). A node that dials speaks at once; a socket that
    /// stays silent longer is closed.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use std::time::Duration;
    /// use ergo::prelude::*;
    ///
    /// let node = Node::builder("hello-doc@localhost")
    ///     .cookie("a long random secret")
    ///     .no_registrar()
    ///     .hello_timeout(Duration::from_millis(300))
    ///     .start()
    ///     .await?;
    /// # drop(node); Ok(()) }
    /// ```
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.net_options().hello_timeout = timeout;
        self
    }
}
