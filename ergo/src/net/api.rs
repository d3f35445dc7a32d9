//! The network's part of [`Node`]'s API: its address and routes, connecting and
//! disconnecting, and what discovery knows (lookups are in `lookup.rs`, remote spawn in
//! `spawn.rs`).

use super::transport::net_of;
use crate::Node;

/// Peers, routes and discovery (feature `net`).
impl Node {
    /// The address this node accepts peers on (`None` without a network or with
    /// [`NodeBuilder::no_listen`](crate::NodeBuilder::no_listen)).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        net_of(self).and_then(|n| n.local_addr())
    }

    /// Adds (or replaces) a static route: node `node` listens at `addr`.
    ///
    /// # Errors
    ///
    /// [`crate::net::NetError::NotNetworked`] when the node has no cookie.
    pub fn add_route(
        &self,
        node: &str,
        addr: std::net::SocketAddr,
    ) -> Result<(), crate::net::NetError> {
        let net = net_of(self).ok_or(crate::net::NetError::NotNetworked)?;
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
    pub async fn connect(&self, node: &str) -> Result<(), crate::net::NetError> {
        let net = net_of(self).ok_or(crate::net::NetError::NotNetworked)?;
        net.connect(self, crate::pid::NodeAtom::intern(node))
            .await
            .map(|_| ())
    }

    /// How many frames (casts, calls, replies, signals, events) this node had queued for its
    /// peers and dropped because their connection closed first, since it started. A break
    /// loses at most about 512 KiB per connection this way (see `net/conn.rs`), plus what the
    /// operating system had already taken into its socket buffers, which no one can count
    /// without acknowledgements. `0` for a node without a network.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    /// let node = Node::builder("dropped-doc@localhost").start().await?;
    /// assert_eq!(node.frames_dropped(), 0);
    /// # Ok(()) }
    /// ```
    pub fn frames_dropped(&self) -> u64 {
        net_of(self).map_or(0, |n| {
            n.frames_dropped.load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// Closes the connections to node `node`: every link and monitor across them fires with
    /// [`ExitReason::NoConnection`](crate::ExitReason::NoConnection), and calls waiting on them fail with
    /// [`CallError::NoConnection`](crate::CallError::NoConnection). The next use reconnects.
    /// Returns `false` if there was no link.
    pub fn disconnect(&self, node: &str) -> bool {
        net_of(self).is_some_and(|n| n.disconnect(crate::pid::NodeAtom::intern(node)))
    }

    /// The nodes its registrar knows (name and address), this node included.
    ///
    /// # Errors
    ///
    /// [`crate::net::RegistrarError::Unreachable`] when the registrar cannot be asked (or
    /// the node has no network or no registrar).
    pub async fn registered_nodes(
        &self,
    ) -> Result<Vec<(String, std::net::SocketAddr)>, crate::net::RegistrarError> {
        let registrar = net_of(self)
            .and_then(|n| n.opts.registrar.clone())
            .ok_or_else(|| {
                crate::net::RegistrarError::Unreachable("this node has no registrar".into())
            })?;
        registrar.nodes().await
    }

    /// Membership changes seen by its registrar (`None` without one).
    pub fn watch_nodes(&self) -> Option<tokio::sync::broadcast::Receiver<crate::net::Membership>> {
        let registrar = net_of(self)?.opts.registrar.clone()?;
        Some(registrar.watch())
    }

    /// The nodes this node has a link up with.
    pub fn connected_nodes(&self) -> Vec<String> {
        net_of(self).map(|n| n.connected()).unwrap_or_default()
    }
}
