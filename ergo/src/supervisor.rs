//! Supervisors: processes that start children, watch them, and restart them when they fail.
//!
//! A [`Supervisor`] traps exits, starts its children in order (each linked to it), and applies
//! its [`Strategy`] when one ends:
//!
//! - [`Strategy::OneForOne`]: only the child that ended is restarted;
//! - [`Strategy::OneForAll`]: the others are stopped (in reverse start order) and all are
//!   restarted in order;
//! - [`Strategy::RestForOne`]: the children started after it are stopped (in reverse order) and
//!   it and they are restarted in order.
//!
//! Whether a child is restarted depends on its [`Restart`] type: `Permanent` always, `Transient`
//! only after an abnormal exit (not `Normal`, not `Shutdown`), `Temporary` never (its spec is
//! dropped).
//!
//! # Intensity
//!
//! More than `intensity` restarts within `period` (a sliding window; OTP's default is 1 within
//! 5 s) make the supervisor give up: it stops all its children and exits with
//! [`ExitReason::Shutdown`], so its own supervisor applies its strategy in turn (escalation).
//! Exactly `intensity` restarts within the period are still allowed. A restart whose start fails
//! counts toward the intensity too.
//!
//! # Shutdown
//!
//! Children stop in reverse start order. Each has a [`Shutdown`]: a timeout (ask it to stop, then
//! kill it if it has not ended in time; 5 s by default for workers), `BrutalKill`, or `Infinity`
//! (the default for child supervisors).
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
//! use std::time::Duration;
//! use ergo::prelude::*;
//! use ergo::supervisor::{ChildSpec, Restart, Strategy, Supervisor};
//!
//! #[derive(Default)]
//! struct Counter { n: u64 }
//!
//! #[actor]
//! impl Counter {
//!     #[handle]
//!     fn add(&mut self, by: u64) -> u64 { self.n += by; self.n }
//!     #[handle]
//!     fn crash(&mut self) { panic!("counter crashed") }
//! }
//!
//! let node = Node::builder("sup-doc@localhost").start().await?;
//! let sup = node
//!     .spawn(
//!         Supervisor::new(Strategy::OneForOne)
//!             .intensity(3, Duration::from_secs(5))
//!             .child(ChildSpec::new("counter", Counter::default).register("counter")),
//!     )
//!     .await?;
//! let counter = node.whereis::<Counter>("counter").expect("started");
//! counter.crash().await?;
//! counter.wait().await;
//! // The supervisor restarted it under the same name, with fresh state.
//! # let mut again = None;
//! # for _ in 0..500 {
//! #     if let Some(c) = node.whereis::<Counter>("counter") { if c.pid() != counter.pid() { again = Some(c); break; } }
//! #     tokio::time::sleep(Duration::from_millis(2)).await;
//! # }
//! let again = again.expect("restarted");
//! assert_eq!(again.add(1).await?, 1);
//! # drop(sup);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use crate::exit::ExitReason;
use crate::mailbox::{ProcHandle, Sys};
use crate::{Actor, Ctx, Pid, SpawnError, SpawnOptions};

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

type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<ProcHandle, SpawnError>> + Send + 'a>>;

/// Starts one kind of child; erases the child's actor type.
trait Starter: Send {
    fn start<'a>(&'a mut self, ctx: &'a mut Ctx<Supervisor>, opts: SpawnOptions)
        -> StartFuture<'a>;
}

struct FnStarter<A, F> {
    make: F,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Actor, F: FnMut() -> A + Send> Starter for FnStarter<A, F> {
    fn start<'a>(
        &'a mut self,
        ctx: &'a mut Ctx<Supervisor>,
        opts: SpawnOptions,
    ) -> StartFuture<'a> {
        let actor = (self.make)();
        Box::pin(async move { ctx.spawn_link_opts(actor, opts).await.map(|r| r.handle()) })
    }
}

/// The description of one child: how to make it, when to restart it, how to stop it.
pub struct ChildSpec {
    id: String,
    starter: Box<dyn Starter>,
    restart: Restart,
    shutdown: Shutdown,
    name: Option<String>,
}

impl ChildSpec {
    /// A permanent worker child called `id`, made by `make` at every (re)start, stopped with a
    /// 5 s timeout.
    pub fn new<A: Actor, F: FnMut() -> A + Send + 'static>(id: impl Into<String>, make: F) -> Self {
        ChildSpec {
            id: id.into(),
            starter: Box::new(FnStarter {
                make,
                _actor: PhantomData,
            }),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(Duration::from_secs(5)),
            name: None,
        }
    }

    /// A child that is itself a supervisor: like [`ChildSpec::new`], with
    /// [`Shutdown::Infinity`].
    pub fn supervisor<F: FnMut() -> Supervisor + Send + 'static>(
        id: impl Into<String>,
        make: F,
    ) -> Self {
        ChildSpec::new(id, make).shutdown(Shutdown::Infinity)
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

/// A child's start failure, passed through as the supervisor's own start failure with the
/// child's exit reason unchanged (an error type would be flattened into `ExitReason::Error`).
struct StartFailure(ExitReason);

#[diagnostic::do_not_recommend]
impl crate::InitResult for Result<(), StartFailure> {
    fn into_init_result(self) -> Result<(), ExitReason> {
        self.map_err(|StartFailure(reason)| reason)
    }
}

struct Child {
    spec: ChildSpec,
    running: Option<ProcHandle>,
}

/// One line of [`SupervisorApi::which_children`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child's id in its spec.
    pub id: String,
    /// Its current pid, or `None` while it is not running.
    pub pid: Option<Pid>,
    /// Its restart type.
    pub restart: Restart,
}

/// Why a supervisor operation on a child failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// No child has this id.
    #[error("no child with id `{0}`")]
    NotFound(String),
    /// The child is running (it must be terminated first).
    #[error("child `{0}` is running")]
    Running(String),
    /// Starting the child failed.
    #[error("child failed to start: {0}")]
    Start(SpawnError),
}

/// A supervisor process. Build it with [`Supervisor::new`] and spawn it like any actor (or nest
/// it with [`ChildSpec::supervisor`]).
pub struct Supervisor {
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
    parent: Option<Pid>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.strategy)
            .field("intensity", &self.intensity)
            .field("period", &self.period)
            .field("children", &self.children.len())
            .finish()
    }
}

impl Supervisor {
    /// A supervisor with `strategy`, OTP's default intensity (1 restart within 5 s) and no
    /// children yet.
    pub fn new(strategy: Strategy) -> Self {
        Supervisor {
            strategy,
            intensity: 1,
            period: Duration::from_secs(5),
            children: Vec::new(),
            restarts: VecDeque::new(),
            parent: None,
        }
    }

    /// Allows at most `intensity` restarts within `period`.
    pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
        self.intensity = intensity;
        self.period = period;
        self
    }

    /// Adds a child; children start in the order they are added.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(Child {
            spec,
            running: None,
        });
        self
    }

    fn opts(spec: &ChildSpec) -> SpawnOptions {
        match &spec.name {
            Some(name) => SpawnOptions::new().register(name.clone()),
            None => SpawnOptions::new(),
        }
    }

    async fn start_child(&mut self, i: usize, ctx: &mut Ctx<Self>) -> Result<(), SpawnError> {
        let opts = Self::opts(&self.children[i].spec);
        let handle = self.children[i].spec.starter.start(ctx, opts).await?;
        tracing::debug!(child = %self.children[i].spec.id, pid = %handle.core().pid(), "child started");
        self.children[i].running = Some(handle);
        Ok(())
    }

    async fn stop_child(&mut self, i: usize, ctx: &mut Ctx<Self>) {
        let Some(handle) = self.children[i].running.take() else {
            return;
        };
        let core = handle.core();
        ctx.unlink(core.pid());
        match self.children[i].spec.shutdown {
            Shutdown::BrutalKill => {
                core.kill();
            }
            Shutdown::Timeout(limit) => {
                let _ = core.send_sys(Sys::Stop(ExitReason::Shutdown));
                if tokio::time::timeout(limit, core.wait()).await.is_err() {
                    tracing::warn!(child = %self.children[i].spec.id, "child did not stop in time; killing it");
                    core.kill();
                }
            }
            Shutdown::Infinity => {
                let _ = core.send_sys(Sys::Stop(ExitReason::Shutdown));
            }
        }
        core.wait().await;
    }

    /// Stops the running children among `indices`, last first.
    async fn stop_children(&mut self, indices: &[usize], ctx: &mut Ctx<Self>) {
        for &i in indices.iter().rev() {
            self.stop_child(i, ctx).await;
        }
    }

    /// Records a restart; `false` when it exceeds the intensity.
    fn allow_restart(&mut self) -> bool {
        let now = Instant::now();
        self.restarts.push_back(now);
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.period)
        {
            self.restarts.pop_front();
        }
        self.restarts.len() <= self.intensity as usize
    }

    async fn give_up(&mut self, ctx: &mut Ctx<Self>) {
        tracing::error!(
            intensity = self.intensity,
            period = ?self.period,
            "restart intensity exceeded; supervisor shutting down"
        );
        let all: Vec<usize> = (0..self.children.len()).collect();
        self.stop_children(&all, ctx).await;
        ctx.stop_with(ExitReason::Shutdown);
    }

    /// Restarts the (not running) children among `indices`, in order. Every failed start counts
    /// as another restart.
    async fn restart_children(&mut self, indices: &[usize], ctx: &mut Ctx<Self>) {
        for &i in indices {
            loop {
                match self.start_child(i, ctx).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(child = %self.children[i].spec.id, error = %e, "child failed to restart");
                        if !self.allow_restart() {
                            self.give_up(ctx).await;
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn child_exited(&mut self, i: usize, reason: ExitReason, ctx: &mut Ctx<Self>) {
        self.children[i].running = None;
        let restart = match self.children[i].spec.restart {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal(),
            Restart::Temporary => false,
        };
        if !restart {
            if self.children[i].spec.restart == Restart::Temporary {
                self.children.remove(i);
            }
            return;
        }
        if !self.allow_restart() {
            self.give_up(ctx).await;
            return;
        }
        let affected: Vec<usize> = match self.strategy {
            Strategy::OneForOne => vec![i],
            Strategy::OneForAll => (0..self.children.len()).collect(),
            Strategy::RestForOne => (i..self.children.len()).collect(),
        };
        self.stop_children(&affected, ctx).await;
        // Temporary siblings stopped by the strategy are not restarted: drop their specs.
        let temporary: Vec<usize> = affected
            .iter()
            .copied()
            .filter(|&j| j != i && self.children[j].spec.restart == Restart::Temporary)
            .collect();
        let mut keep: Vec<usize> = affected
            .into_iter()
            .filter(|j| !temporary.contains(j))
            .collect();
        for &r in temporary.iter().rev() {
            self.children.remove(r);
            for j in &mut keep {
                if *j > r {
                    *j -= 1;
                }
            }
        }
        self.restart_children(&keep, ctx).await;
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id == id)
    }
}

#[crate::actor(crate = "crate")]
impl Supervisor {
    #[init]
    async fn init(&mut self, ctx: &mut Ctx<Self>) -> Result<(), StartFailure> {
        ctx.trap_exit(true);
        // A supervisor started by `spawn_link` (e.g. by its own supervisor) is linked to its
        // parent from the start: the parent's exit ends it too.
        self.parent = ctx.links().first().copied();
        for i in 0..self.children.len() {
            if let Err(e) = self.start_child(i, ctx).await {
                let started: Vec<usize> = (0..i).collect();
                self.stop_children(&started, ctx).await;
                return Err(StartFailure(match e {
                    SpawnError::Init(reason) => reason,
                    other => ExitReason::Error(format!(
                        "child `{}` failed to start: {other}",
                        self.children[i].spec.id
                    )),
                }));
            }
        }
        Ok(())
    }

    /// The children, in start order.
    #[handle]
    fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|c| ChildInfo {
                id: c.spec.id.clone(),
                pid: c.running.as_ref().map(|h| h.core().pid()),
                restart: c.spec.restart,
            })
            .collect()
    }

    /// Stops the child `id` (it stays in the spec list; a temporary one is removed).
    #[handle]
    async fn terminate_child(
        &mut self,
        id: String,
        ctx: &mut Ctx<Self>,
    ) -> Result<(), SupervisorError> {
        let i = self.index_of(&id).ok_or(SupervisorError::NotFound(id))?;
        self.stop_child(i, ctx).await;
        if self.children[i].spec.restart == Restart::Temporary {
            self.children.remove(i);
        }
        Ok(())
    }

    /// Starts the terminated child `id` again.
    #[handle]
    async fn restart_child(
        &mut self,
        id: String,
        ctx: &mut Ctx<Self>,
    ) -> Result<Pid, SupervisorError> {
        let i = self
            .index_of(&id)
            .ok_or_else(|| SupervisorError::NotFound(id.clone()))?;
        if self.children[i].running.is_some() {
            return Err(SupervisorError::Running(id));
        }
        self.start_child(i, ctx)
            .await
            .map_err(SupervisorError::Start)?;
        Ok(self.children[i]
            .running
            .as_ref()
            .map(|h| h.core().pid())
            .expect("just started"))
    }

    #[on_exit]
    async fn on_exit(&mut self, from: Pid, reason: ExitReason, ctx: &mut Ctx<Self>) {
        let child = self
            .children
            .iter()
            .position(|c| c.running.as_ref().is_some_and(|h| h.core().pid() == from));
        if let Some(i) = child {
            tracing::info!(child = %self.children[i].spec.id, pid = %from, %reason, "child exited");
            self.child_exited(i, reason, ctx).await;
        } else if Some(from) == self.parent {
            ctx.stop_with(reason);
        }
        // Other exits: children that failed to start (already handled) or stale links.
    }

    #[terminate]
    async fn terminate(&mut self, _reason: &ExitReason, ctx: &mut Ctx<Self>) {
        let all: Vec<usize> = (0..self.children.len()).collect();
        self.stop_children(&all, ctx).await;
    }
}
