//! Putting a node together: the one place that knows every layer.
//!
//! [`NodeBuilder`] (in the node core) checks the settings and makes the transport; here the node
//! services of the layers above the core (events across nodes) are added to it before it starts
//! carrying frames, so the core never names those layers.

use crate::{Error, Node, NodeBuilder};

impl NodeBuilder {
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
        let node = self.build().await?;
        if let Some(transport) = node.transport() {
            transport.add_service(crate::events::node_service());
            transport.start(&node);
        }
        Ok(node)
    }
}
