//! [`NodeBuilder`]: a node's configuration, and the one place a node is given its transport.
//!
//! The settings of the core (name, call timeout, creation) are here; `net` adds the network's
//! (`cookie`, `listen`, `route`, `registrar`, `tls`, …) as further methods of the same builder.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;

use super::{Node, DEFAULT_CALL_TIMEOUT};
use crate::node::transport::Transport;
use crate::Error;

/// The settings of a transport, held by the builder until `start` and then turned into the
/// node's [`Transport`]. The layer that provides a transport (`net` today, a simulated network
/// later) stores its settings here through its own builder methods; the core never names it.
pub(crate) trait TransportSetup: fmt::Debug + Send + Sync + 'static {
    /// A copy, for `NodeBuilder: Clone`.
    fn clone_box(&self) -> Box<dyn TransportSetup>;
    /// The settings, for the providing layer's builder methods to downcast.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Starts the transport of the node `name` (`None`: these settings make no network).
    fn start(
        self: Box<Self>,
        name: &str,
        creation: u32,
    ) -> BoxFuture<'_, Result<Option<Arc<dyn Transport>>, Error>>;
}

impl Clone for Box<dyn TransportSetup> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Configures and starts a [`Node`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct NodeBuilder {
    name: String,
    call_timeout: Duration,
    creation: Option<u32>,
    /// The transport's settings, if a layer that provides one set any (`net` does, through
    /// the methods it adds: `cookie`, `listen`, `route`, …).
    pub(crate) transport: Option<Box<dyn TransportSetup>>,
}

impl NodeBuilder {
    pub(crate) fn new(name: String) -> NodeBuilder {
        NodeBuilder {
            name,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            creation: None,
            transport: None,
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

    /// The node, its settings checked and its transport made but not started: `boot.rs`'s
    /// [`NodeBuilder::start`] adds the node services of the layers above the core, then starts
    /// the transport.
    pub(crate) async fn build(self) -> Result<Node, Error> {
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
        let transport = match self.transport {
            Some(setup) => setup.start(&name, creation).await?,
            None => None,
        };
        Ok(Node::new(name, creation, self.call_timeout, transport))
    }
}
