//! What a supervisor is told about its children: the strategy, each child's [`ChildSpec`]
//! (restart type, shutdown, registered name, significance) and what it reports of them.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use super::Supervisor;
use crate::exit::ExitReason;
use crate::node::ProcHandle;
use crate::{Actor, Node, Pid, SpawnError, SpawnOptions};

/// How a supervisor reacts when a child ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// Restart only the child that ended.
    OneForOne,
    /// Stop all other children, then restart all.
    OneForAll,
    /// Stop the children started after the one that ended, then restart it and them.
    RestForOne,
}

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only after an abnormal exit (not `Normal`, not `Shutdown`).
    Transient,
    /// Never; the child's spec is removed when it ends.
    Temporary,
}

impl Restart {
    /// Whether a child of this restart type is restarted after ending with `reason`.
    ///
    /// ```
    /// use ergo::supervisor::Restart;
    /// use ergo::ExitReason;
    /// assert!(Restart::Transient.restarts_after(&ExitReason::Panic("x".into())));
    /// assert!(!Restart::Transient.restarts_after(&ExitReason::Shutdown));
    /// assert!(!Restart::Temporary.restarts_after(&ExitReason::Killed));
    /// ```
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal(),
            Restart::Temporary => false,
        }
    }
}

/// How a child is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Ask it to stop (its `terminate` runs), and kill it if it has not ended after this long.
    Timeout(Duration),
    /// Kill it at once.
    BrutalKill,
    /// Ask it to stop and wait as long as it takes (the default for child supervisors).
    Infinity,
}

pub(super) type Started = Pin<Box<dyn Future<Output = Result<(), SpawnError>> + Send>>;

/// Starts one kind of child linked to `parent`; erases the child's actor type.
pub(super) trait Starter: Send {
    fn start(
        &mut self,
        node: &Node,
        parent: ProcHandle,
        opts: SpawnOptions,
    ) -> Result<(ProcHandle, Started), SpawnError>;
}

struct FnStarter<A, F> {
    make: F,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Actor, F: FnMut() -> A + Send> Starter for FnStarter<A, F> {
    fn start(
        &mut self,
        node: &Node,
        parent: ProcHandle,
        opts: SpawnOptions,
    ) -> Result<(ProcHandle, Started), SpawnError> {
        let (child, started) = node.start_process((self.make)(), opts, Some(parent))?;
        Ok((child.handle(), Box::pin(started)))
    }
}

/// The description of one child: how to make it, when to restart it, how to stop it.
pub struct ChildSpec {
    pub(super) id: String,
    pub(super) starter: Box<dyn Starter>,
    pub(super) restart: Restart,
    pub(super) shutdown: Shutdown,
    pub(super) name: Option<String>,
    pub(super) significant: bool,
    pub(super) supervisor: bool,
}

impl ChildSpec {
    /// A permanent child called `id`, made by `make` at every (re)start. Workers are stopped
    /// with a 5 s timeout; supervisors (including types made by `supervisor!`) with
    /// [`Shutdown::Infinity`].
    pub fn new<A: Actor, F: FnMut() -> A + Send + 'static>(id: impl Into<String>, make: F) -> Self {
        ChildSpec {
            id: id.into(),
            starter: Box::new(FnStarter {
                make,
                _actor: PhantomData,
            }),
            restart: Restart::Permanent,
            shutdown: if A::SUPERVISOR {
                Shutdown::Infinity
            } else {
                Shutdown::Timeout(Duration::from_secs(5))
            },
            name: None,
            significant: false,
            supervisor: A::SUPERVISOR,
        }
    }

    /// A child that is itself a supervisor built by `make` (the same as [`ChildSpec::new`],
    /// named for readability).
    pub fn supervisor<F: FnMut() -> Supervisor + Send + 'static>(
        id: impl Into<String>,
        make: F,
    ) -> Self {
        ChildSpec::new(id, make)
    }

    /// Marks the child significant for [`Supervisor::auto_shutdown`]: its exit (when it is not
    /// restarted) may stop the whole supervisor. Only meaningful for transient and temporary
    /// children.
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Registers every incarnation of the child under `name`, so callers that look it up by
    /// name reach the current one.
    pub fn register(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("name", &self.name)
            .finish()
    }
}

/// A child spec and its running incarnation, if any.
pub(super) struct Child {
    pub(super) spec: ChildSpec,
    pub(super) running: Option<ProcHandle>,
}

/// One line of [`SupervisorApi::which_children`](super::SupervisorApi::which_children).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child's id in its spec.
    pub id: String,
    /// Its current pid, or `None` while it is not running.
    pub pid: Option<Pid>,
    /// Its restart type.
    pub restart: Restart,
    /// Whether the child is itself a supervisor.
    pub supervisor: bool,
}

/// The answer of [`SupervisorApi::count_children`](super::SupervisorApi::count_children).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildCount {
    /// Child specs the supervisor holds.
    pub specs: usize,
    /// Children running now.
    pub active: usize,
    /// Specs that are supervisors.
    pub supervisors: usize,
    /// Specs that are workers.
    pub workers: usize,
}

/// When a supervisor stops by itself because significant children ended (OTP 24's
/// `auto_shutdown`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AutoShutdown {
    /// Never (the default); significance is ignored.
    #[default]
    Never,
    /// As soon as any significant child ends without being restarted.
    AnySignificant,
    /// Once every significant child has ended without being restarted.
    AllSignificant,
}
