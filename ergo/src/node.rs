//! [`Node`]: the entry point. A node owns its processes, their names and its configuration.
//!
//! # The API, by concern
//!
//! `Node`'s methods live beside the part of the runtime they drive, one `impl` block per concern:
//!
//! | concern | methods | where |
//! | --- | --- | --- |
//! | start and identity | [`builder`](Node::builder), [`name`](Node::name), [`creation`](Node::creation), [`call_timeout`](Node::call_timeout) | here, [`NodeBuilder`] in `node/builder.rs`, its `start` in `boot.rs` |
//! | typed processes and names | [`spawn`](Node::spawn), [`spawn_opts`](Node::spawn_opts), [`register`](Node::register), [`whereis`](Node::whereis) | [`crate::actor`](mod@crate::actor) (`actor/spawn.rs`) |
//! | the process table | [`process_count`](Node::process_count), [`processes`](Node::processes), [`is_alive`](Node::is_alive), [`exit`](Node::exit), [`kill`](Node::kill), [`wait`](Node::wait) | here |
//! | names by pid | [`unregister`](Node::unregister), [`whereis_pid`](Node::whereis_pid), [`registered`](Node::registered) | here |
//! | the node's end | [`shutdown`](Node::shutdown), [`is_shutting_down`](Node::is_shutting_down), [`stopped`](Node::stopped) | here |
//! | applications | [`load_application`](Node::load_application), [`start_application`](Node::start_application), [`stop_application`](Node::stop_application), [`applications`](Node::applications) | [`crate::app`] |
//! | events | [`register_event`](Node::register_event), [`monitor_event`](Node::monitor_event), [`link_event`](Node::link_event) | [`crate::events`] |
//! | events of other nodes (`net`) | `monitor_event_at`, `link_event_at` | [`crate::events`] (`events/remote.rs`) |
//! | peers (`net`) | `listen_addr`, `add_route`, `connect`, `disconnect`, `connected_nodes`, `registered_nodes`, `watch_nodes` | `ergo::net` (`net/api.rs`) |
//! | names on other nodes (`net`) | `lookup`, `find`, `find_all` | `ergo::net` (`net/lookup.rs`) |
//! | remote spawn (`net`) | `allow_spawn`, `disallow_spawn`, `allow_remote_start`, `spawn_remote`, `start_application_remote` | `ergo::net` (`net/spawn.rs`) |
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use crate::exit::{ExitReason, MonitorRef};
use crate::pid::NodeAtom;
use crate::{Pid, RegisterError, SpawnError};

mod builder;
pub(crate) mod codec;
mod extensions;
mod process;
pub(crate) mod transport;

pub use builder::NodeBuilder;
pub(crate) use builder::TransportSetup;
use extensions::Extensions;
pub(crate) use process::{AnyProcess, ProcCore, ProcHandle, Sys, Target};
use transport::Transport;

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
    /// The state of the layers above the core (the application table, the event table).
    extensions: Extensions,
    runtime: tokio::runtime::Handle,
    /// The network (none without a cookie): the node's one way to other nodes.
    transport: Option<Arc<dyn Transport>>,
}

/// A node that does not keep it alive (held by its transport's bookkeeping).
#[derive(Clone)]
pub(crate) struct WeakNode(std::sync::Weak<NodeInner>);

impl WeakNode {
    pub(crate) fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

impl Node {
    /// Starts configuring a node called `name` (`name@host`).
    pub fn builder(name: impl Into<String>) -> NodeBuilder {
        NodeBuilder::new(name.into())
    }

    /// A node that has just been configured (by [`NodeBuilder::start`]).
    pub(crate) fn new(
        name: String,
        creation: u32,
        call_timeout: Duration,
        transport: Option<Arc<dyn Transport>>,
    ) -> Node {
        Node {
            inner: Arc::new(NodeInner {
                atom: NodeAtom::intern(&name),
                name: Arc::from(name),
                creation,
                call_timeout,
                next_id: AtomicU64::new(1),
                next_ref: AtomicU64::new(1),
                processes: DashMap::with_hasher(rustc_hash::FxBuildHasher),
                names: DashMap::new(),
                shutting_down: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                stopped_notify: tokio::sync::Notify::new(),
                extensions: Extensions::default(),
                runtime: tokio::runtime::Handle::current(),
                transport,
            }),
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

    /// A new pid, for a process about to be spawned.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NodeDown`] after [`Node::shutdown`] has begun.
    pub(crate) fn next_pid(&self) -> Result<Pid, SpawnError> {
        let inner = &*self.inner;
        if inner.shutting_down.load(Ordering::Acquire) {
            return Err(SpawnError::NodeDown);
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(Pid::new(inner.atom, id, inner.creation))
    }

    /// Puts a new process in the table.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NodeDown`] if [`Node::shutdown`] began meanwhile (it may have missed the
    /// process: the caller backs out, which ends the never-started process).
    pub(crate) fn insert_process(&self, handle: ProcHandle) -> Result<(), SpawnError> {
        let pid = handle.core().pid();
        self.inner.processes.insert(pid.id(), handle);
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(SpawnError::NodeDown);
        }
        Ok(())
    }

    /// Whether `pid` names a process of this node (alive or not).
    #[inline]
    pub(crate) fn is_local(&self, pid: Pid) -> bool {
        pid.node_atom() == self.inner.atom
    }

    pub(crate) fn process(&self, pid: Pid) -> Option<ProcHandle> {
        if pid.node_atom() != self.inner.atom || pid.creation() != self.inner.creation {
            return None;
        }
        self.inner.processes.get(&pid.id()).map(|p| p.clone())
    }

    /// A process of this node named by a frame's header (`None` if it is not alive or the
    /// creation is not this run's).
    pub(crate) fn local_process(&self, id: u64, creation: u32) -> Option<ProcHandle> {
        if creation != self.inner.creation {
            return None;
        }
        self.local_process_any(id)
    }

    /// A process of this node by id.
    pub(crate) fn local_process_any(&self, id: u64) -> Option<ProcHandle> {
        self.inner.processes.get(&id).map(|p| p.clone())
    }

    /// The process registered under `name`, whatever its actor type.
    pub(crate) fn registered_process(&self, name: &str) -> Option<ProcHandle> {
        self.inner.names.get(name).map(|p| p.clone())
    }

    /// The node's network, if it has one.
    #[inline]
    pub(crate) fn transport(&self) -> Option<&Arc<dyn Transport>> {
        self.inner.transport.as_ref()
    }

    pub(crate) fn atom(&self) -> NodeAtom {
        self.inner.atom
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    pub(crate) fn downgrade(&self) -> WeakNode {
        WeakNode(Arc::downgrade(&self.inner))
    }

    /// Where signals for `pid` go: its process on this node, or the link to its node. `None`
    /// if it is a dead local pid or its node is unreachable.
    pub(crate) fn target(&self, pid: Pid) -> Option<Target> {
        if self.is_local(pid) {
            return self.process(pid).map(Target::Local);
        }
        let peer = self.transport()?.peer(pid.node_atom()).ok()?;
        Some(Target::Remote { pid, peer })
    }

    /// The reason a link or monitor to an unreachable `pid` fires with.
    pub(crate) fn unreachable_reason(&self, pid: Pid) -> ExitReason {
        if pid.node_atom() == self.inner.atom {
            ExitReason::NoProc
        } else {
            ExitReason::NoConnection
        }
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

    /// Registers the process `handle` under `name` (the typed [`Node::register`] checks the
    /// process is one of this node's).
    pub(crate) fn register_process(
        &self,
        name: &str,
        handle: ProcHandle,
    ) -> Result<(), RegisterError> {
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

    /// Sends `pid` an exit signal (see [`ActorRef::exit`](crate::ActorRef::exit)). `false` if no such live process.
    pub fn exit(&self, pid: Pid, reason: ExitReason) -> bool {
        self.process(pid).is_some_and(|p| {
            p.send_sys(Sys::Exit {
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
            let _ = p.core().send_sys(Sys::Stop(ExitReason::Shutdown));
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
        if let Some(transport) = self.transport() {
            transport.shutdown(Duration::from_millis(200)).await;
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

    /// The per-node state of type `T` that a layer above the core keeps here (made on first
    /// use).
    #[inline]
    pub(crate) fn extension<T: Default + Send + Sync + 'static>(&self) -> &T {
        self.inner.extensions.get()
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
