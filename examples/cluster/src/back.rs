//! Back nodes: a node with a supervised worker, run as its own OS process.

use std::net::SocketAddr;
use std::time::Duration;

use ergo::prelude::*;
use ergo::supervisor::{ChildSpec, Strategy, Supervisor};

use super::{silence_crash_panics, ClusterError, Worker, READY, WORKER};
use ergo_testkit::process::{self, HEARTBEAT, HEARTBEAT_TIMEOUT};

/// What a back node needs: its name, where it listens, the cluster's cookie.
#[derive(Clone, Debug)]
pub struct BackConfig {
    /// The node's name (`name@host`).
    pub name: String,
    /// Where it accepts peers (a loopback address; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The cluster's cookie.
    pub cookie: String,
}

/// A running back node: a node with a one_for_one supervisor running a [`Worker`] registered as
/// [`WORKER`].
pub struct BackNode {
    node: Node,
    supervisor: ActorRef<Supervisor>,
}

impl BackNode {
    /// Starts the node and its supervised worker.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Start`] if the node cannot listen (the port is taken, say) or the
    /// supervisor cannot start.
    pub async fn start(config: &BackConfig) -> Result<BackNode, ClusterError> {
        let node = Node::builder(&config.name)
            .cookie(&config.cookie)
            .listen(config.listen.to_string())
            .heartbeat(HEARTBEAT, HEARTBEAT_TIMEOUT)
            .start()
            .await
            .map_err(|e| ClusterError::Start(format!("back node `{}`: {e}", config.name)))?;
        // A crash loop (more than 10 restarts in 1 s) takes the worker down for good; the front
        // then treats the node as down.
        let tree = Supervisor::new(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(1))
            .child(ChildSpec::new(WORKER, Worker::default).register(WORKER));
        let supervisor = node
            .spawn(tree)
            .await
            .map_err(|e| ClusterError::Start(format!("supervisor of `{}`: {e}", config.name)))?;
        Ok(BackNode { node, supervisor })
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The line announcing that this node serves (see [`READY`]).
    pub fn ready_line(&self) -> String {
        let addr = self
            .node
            .listen_addr()
            .map_or_else(|| "none".to_string(), |a| a.to_string());
        format!(
            "{READY} name={} addr={addr} creation={}",
            self.node.name(),
            self.node.creation()
        )
    }

    /// Stops the supervisor (and so the worker), then the node.
    pub async fn stop(self) {
        self.supervisor.stop(ExitReason::Shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.supervisor.wait()).await;
        self.node.shutdown(Duration::from_secs(1)).await;
    }
}

/// A back node's whole life as an OS process: starts a [`BackNode`], prints its
/// [`ready line`](BackNode::ready_line) on stdout, serves until stdin reaches its end (the
/// parent closed it, or died) or Ctrl-C, then stops (see [`process::wait_for_release`]).
///
/// # Errors
///
/// As [`BackNode::start`]; [`ClusterError::Start`] if stdin cannot be watched.
pub async fn run_back_node(config: &BackConfig) -> Result<(), ClusterError> {
    silence_crash_panics();
    let back = BackNode::start(config).await?;
    process::announce_ready(&back.ready_line());
    let released = process::wait_for_release().await;
    back.stop().await;
    released.map_err(|_| ClusterError::Start("cannot watch stdin".into()))
}

/// What a back node said once it served (parsed from its [`READY`] line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    /// The node's name.
    pub node: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// This incarnation's creation.
    pub creation: u32,
}

impl Ready {
    /// Parses a [`READY`] line (the marker may follow other output on the same line, as a test
    /// harness's `test name ... `); `None` for any other line.
    pub fn parse(line: &str) -> Option<Ready> {
        let rest = &line[line.find(READY)? + READY.len()..];
        let (mut node, mut addr, mut creation) = (None, None, None);
        for field in rest.split_whitespace() {
            match field.split_once('=')? {
                ("name", v) => node = Some(v.to_string()),
                ("addr", v) => addr = v.parse().ok(),
                ("creation", v) => creation = v.parse().ok(),
                _ => {}
            }
        }
        Some(Ready {
            node: node?,
            addr: addr?,
            creation: creation?,
        })
    }
}
