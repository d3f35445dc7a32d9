//! [`NodeBuilder`]: a node's configuration, and the one place a node is given its transport.
//!
//! The settings of the core (name, call timeout, creation) are here; `net` adds the network's
//! (`cookie`, `listen`, `route`, `registrar`, `tls`, …) as further methods of the same builder.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Node, DEFAULT_CALL_TIMEOUT};
use crate::Error;

/// Configures and starts a [`Node`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct NodeBuilder {
    name: String,
    call_timeout: Duration,
    creation: Option<u32>,
    /// The network's settings (see the methods `net` adds: `cookie`, `listen`, `route`, …).
    #[cfg(feature = "net")]
    pub(crate) net: crate::net::NetOptions,
}

impl NodeBuilder {
    pub(crate) fn new(name: String) -> NodeBuilder {
        NodeBuilder {
            name,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            creation: None,
            #[cfg(feature = "net")]
            net: Default::default(),
        }
    }

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
        // The one place a node is given its transport.
        #[cfg(feature = "net")]
        let transport = crate::net::transport(&name, creation, self.net).await?;
        #[cfg(not(feature = "net"))]
        let transport = None;
        let node = Node::new(name, creation, self.call_timeout, transport);
        if let Some(transport) = node.transport() {
            transport.add_service(crate::events::node_service());
            transport.start(&node);
        }
        Ok(node)
    }
}
