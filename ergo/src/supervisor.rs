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
//! # Declaring trees with `supervisor!`
//!
//! [`supervisor!`](macro@crate::supervisor) declares a tree as a type that can be spawned or
//! nested in another tree (see the macro's docs for the whole grammar):
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
//! use ergo::prelude::*;
//!
//! #[derive(Default)]
//! struct Cache { hits: u64 }
//!
//! #[actor]
//! impl Cache {
//!     #[handle]
//!     fn hit(&mut self) -> u64 { self.hits += 1; self.hits }
//! }
//!
//! supervisor! {
//!     /// The cache tree: restarts the cache up to 3 times in 5 s.
//!     pub CacheSup: one_for_one, intensity = 3, period = 5s {
//!         cache: Cache::default() => permanent, name = "cache",
//!     }
//! }
//!
//! let node = Node::builder("sup-macro-doc@localhost").start().await?;
//! let sup = node.spawn(CacheSup::new()).await?;
//! assert_eq!(sup.which_children().await?[0].id, "cache");
//! assert_eq!(node.whereis::<Cache>("cache").unwrap().hit().await?, 1);
//! # Ok(()) }
//! ```
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
use std::time::Duration;

use tokio::time::Instant;

pub use crate::error::SupervisorError;
use crate::exit::ExitReason;
use crate::node::{ProcHandle, Sys};
use crate::{Actor, ActorRef, Call, Ctx, Pid, ReplyTo, SpawnError, SpawnOptions};

mod simple;
mod spec;
pub use simple::{SimpleMsg, SimpleSupervisor};
use spec::Child;
pub use spec::{AutoShutdown, ChildCount, ChildInfo, ChildSpec, Restart, Shutdown, Strategy};

/// The messages every supervisor understands (a [`Supervisor`], or a type made by
/// `supervisor!`). Use them through [`SupervisorApi`].
#[non_exhaustive]
pub enum SupervisorMsg {
    /// See [`SupervisorApi::which_children`].
    WhichChildren(ReplyTo<Vec<ChildInfo>>),
    /// See [`SupervisorApi::count_children`].
    CountChildren(ReplyTo<ChildCount>),
    /// See [`SupervisorApi::start_child`].
    StartChild(ChildSpec, ReplyTo<Result<Pid, SupervisorError>>),
    /// See [`SupervisorApi::terminate_child`].
    TerminateChild(String, ReplyTo<Result<(), SupervisorError>>),
    /// See [`SupervisorApi::restart_child`].
    RestartChild(String, ReplyTo<Result<Pid, SupervisorError>>),
    /// See [`SupervisorApi::delete_child`].
    DeleteChild(String, ReplyTo<Result<(), SupervisorError>>),
}

impl fmt::Debug for SupervisorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SupervisorMsg::WhichChildren(_) => "WhichChildren",
            SupervisorMsg::CountChildren(_) => "CountChildren",
            SupervisorMsg::StartChild(..) => "StartChild",
            SupervisorMsg::TerminateChild(..) => "TerminateChild",
            SupervisorMsg::RestartChild(..) => "RestartChild",
            SupervisorMsg::DeleteChild(..) => "DeleteChild",
        })
    }
}

/// The calls every supervisor answers, as methods of its ref.
pub trait SupervisorApi {
    /// The supervisor's actor type.
    type Sup: Actor<Msg = SupervisorMsg>;

    /// The children, in start order.
    fn which_children(&self) -> Call<'_, Self::Sup, Vec<ChildInfo>>;

    /// How many children there are, and how many run.
    fn count_children(&self) -> Call<'_, Self::Sup, ChildCount>;

    /// Adds a child (started at once, after the existing ones).
    fn start_child(&self, spec: ChildSpec) -> Call<'_, Self::Sup, Result<Pid, SupervisorError>>;

    /// Stops the child `id`; its spec stays (a temporary child's is removed).
    fn terminate_child(&self, id: String) -> Call<'_, Self::Sup, Result<(), SupervisorError>>;

    /// Starts the terminated child `id` again.
    fn restart_child(&self, id: String) -> Call<'_, Self::Sup, Result<Pid, SupervisorError>>;

    /// Removes the spec of the terminated child `id`.
    fn delete_child(&self, id: String) -> Call<'_, Self::Sup, Result<(), SupervisorError>>;
}

impl<S: Actor<Msg = SupervisorMsg>> SupervisorApi for ActorRef<S> {
    type Sup = S;

    fn which_children(&self) -> Call<'_, S, Vec<ChildInfo>> {
        Call::new(self, SupervisorMsg::WhichChildren)
    }

    fn count_children(&self) -> Call<'_, S, ChildCount> {
        Call::new(self, SupervisorMsg::CountChildren)
    }

    fn start_child(&self, spec: ChildSpec) -> Call<'_, S, Result<Pid, SupervisorError>> {
        Call::new(self, |reply| SupervisorMsg::StartChild(spec, reply))
    }

    fn terminate_child(&self, id: String) -> Call<'_, S, Result<(), SupervisorError>> {
        Call::new(self, |reply| SupervisorMsg::TerminateChild(id, reply))
    }

    fn restart_child(&self, id: String) -> Call<'_, S, Result<Pid, SupervisorError>> {
        Call::new(self, |reply| SupervisorMsg::RestartChild(id, reply))
    }

    fn delete_child(&self, id: String) -> Call<'_, S, Result<(), SupervisorError>> {
        Call::new(self, |reply| SupervisorMsg::DeleteChild(id, reply))
    }
}

/// A supervisor process. Build it with [`Supervisor::new`] and spawn it like any actor (or nest
/// it with [`ChildSpec::supervisor`]).
pub struct Supervisor {
    strategy: Strategy,
    auto_shutdown: AutoShutdown,
    children: Vec<Child>,
    restarts: RestartWindow,
    parent: Option<Pid>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.strategy)
            .field("intensity", &self.restarts.intensity)
            .field("period", &self.restarts.period)
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
            auto_shutdown: AutoShutdown::Never,
            children: Vec::new(),
            restarts: RestartWindow::new(1, Duration::from_secs(5)),
            parent: None,
        }
    }

    /// Allows at most `intensity` restarts within `period`. A zero `period` is taken as 1 ms
    /// (a window of no length would allow any number of restarts).
    pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
        self.restarts = RestartWindow::new(intensity, period);
        self
    }

    /// Stops the supervisor when significant children end (see [`AutoShutdown`]).
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
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

    async fn start_child<S: Actor>(
        &mut self,
        i: usize,
        ctx: &mut Ctx<S>,
    ) -> Result<(), SpawnError> {
        let opts = Self::opts(&self.children[i].spec);
        let node = ctx.node().clone();
        let (handle, started) =
            self.children[i]
                .spec
                .starter
                .start(&node, ctx.myself().handle(), opts)?;
        let pid = handle.core().pid();
        // Linked before the child runs (the child holds our handle the same way).
        ctx.myself()
            .mailbox()
            .core()
            .add_link(pid, crate::node::Target::Local(handle.clone()));
        started.await?;
        tracing::debug!(child = %self.children[i].spec.id, %pid, "child started");
        self.children[i].running = Some(handle);
        Ok(())
    }

    async fn stop_child<S: Actor>(&mut self, i: usize, ctx: &mut Ctx<S>) {
        if let Some(handle) = self.children[i].running.take() {
            stop_process(
                ctx,
                &handle,
                self.children[i].spec.shutdown,
                &self.children[i].spec.id,
            )
            .await;
        }
    }

    /// Stops the running children among `indices`, last first.
    async fn stop_children<S: Actor>(&mut self, indices: &[usize], ctx: &mut Ctx<S>) {
        for &i in indices.iter().rev() {
            self.stop_child(i, ctx).await;
        }
    }

    async fn stop_all<S: Actor>(&mut self, ctx: &mut Ctx<S>) {
        let all: Vec<usize> = (0..self.children.len()).collect();
        self.stop_children(&all, ctx).await;
    }

    fn allow_restart(&mut self) -> bool {
        self.restarts.allow()
    }

    async fn give_up<S: Actor>(&mut self, ctx: &mut Ctx<S>) {
        tracing::error!(
            intensity = self.restarts.intensity,
            period = ?self.restarts.period,
            "restart intensity exceeded; supervisor shutting down"
        );
        self.stop_all(ctx).await;
        ctx.stop_with(ExitReason::Shutdown);
    }

    /// Restarts the (not running) children among `indices`, in order. Every failed start counts
    /// as another restart.
    async fn restart_children<S: Actor>(&mut self, indices: &[usize], ctx: &mut Ctx<S>) {
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

    /// Whether the end of significant child `ended` (not restarted) stops the supervisor.
    fn auto_shutdown_due(&self, ended: usize) -> bool {
        match self.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => self.children[ended].spec.significant,
            AutoShutdown::AllSignificant => {
                self.children[ended].spec.significant
                    && self
                        .children
                        .iter()
                        .all(|c| !c.spec.significant || c.running.is_none())
            }
        }
    }

    async fn child_exited<S: Actor>(&mut self, i: usize, reason: ExitReason, ctx: &mut Ctx<S>) {
        self.children[i].running = None;
        if !self.children[i].spec.restart.restarts_after(&reason) {
            if self.auto_shutdown_due(i) {
                tracing::info!(child = %self.children[i].spec.id, "significant child ended; supervisor shutting down");
                self.stop_all(ctx).await;
                ctx.stop_with(ExitReason::Shutdown);
                return;
            }
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

    fn index_of(&self, id: &str) -> Result<usize, SupervisorError> {
        self.children
            .iter()
            .position(|c| c.spec.id == id)
            .ok_or_else(|| SupervisorError::NotFound(id.to_owned()))
    }

    fn running_pid(&self, i: usize) -> Option<Pid> {
        self.children[i].running.as_ref().map(|h| h.core().pid())
    }

    /// `init` of any actor hosting this supervisor. Not public API (used by `supervisor!`).
    #[doc(hidden)]
    pub async fn __init<S: Actor>(&mut self, ctx: &mut Ctx<S>) -> Result<(), ExitReason> {
        ctx.trap_exit(true);
        // A supervisor started by `spawn_link` (e.g. by its own supervisor) is linked to its
        // parent from the start: the parent's exit ends it too.
        self.parent = ctx.links().first().copied();
        for i in 0..self.children.len() {
            if let Err(e) = self.start_child(i, ctx).await {
                let started: Vec<usize> = (0..i).collect();
                self.stop_children(&started, ctx).await;
                return Err(match e {
                    SpawnError::Init(reason) => reason,
                    other => ExitReason::Error(format!(
                        "child `{}` failed to start: {other}",
                        self.children[i].spec.id
                    )),
                });
            }
        }
        Ok(())
    }

    /// `handle` of any actor hosting this supervisor. Not public API.
    #[doc(hidden)]
    pub async fn __handle<S: Actor>(&mut self, msg: SupervisorMsg, ctx: &mut Ctx<S>) {
        match msg {
            SupervisorMsg::WhichChildren(reply) => reply.send(
                self.children
                    .iter()
                    .map(|c| ChildInfo {
                        id: c.spec.id.clone(),
                        pid: c.running.as_ref().map(|h| h.core().pid()),
                        restart: c.spec.restart,
                        supervisor: c.spec.supervisor,
                    })
                    .collect(),
            ),
            SupervisorMsg::CountChildren(reply) => {
                let supervisors = self.children.iter().filter(|c| c.spec.supervisor).count();
                reply.send(ChildCount {
                    specs: self.children.len(),
                    active: self.children.iter().filter(|c| c.running.is_some()).count(),
                    supervisors,
                    workers: self.children.len() - supervisors,
                })
            }
            SupervisorMsg::StartChild(spec, reply) => {
                if self.index_of(&spec.id).is_ok() {
                    return reply.send(Err(SupervisorError::AlreadyPresent(spec.id)));
                }
                self.children.push(Child {
                    spec,
                    running: None,
                });
                let i = self.children.len() - 1;
                match self.start_child(i, ctx).await {
                    Ok(()) => reply.send(Ok(self.running_pid(i).expect("just started"))),
                    Err(e) => {
                        self.children.pop();
                        reply.send(Err(SupervisorError::Start(e)))
                    }
                }
            }
            SupervisorMsg::TerminateChild(id, reply) => reply.send(match self.index_of(&id) {
                Ok(i) => {
                    self.stop_child(i, ctx).await;
                    if self.children[i].spec.restart == Restart::Temporary {
                        self.children.remove(i);
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }),
            SupervisorMsg::RestartChild(id, reply) => {
                let result = match self.index_of(&id) {
                    Ok(i) if self.children[i].running.is_some() => {
                        Err(SupervisorError::Running(id))
                    }
                    Ok(i) => match self.start_child(i, ctx).await {
                        Ok(()) => Ok(self.running_pid(i).expect("just started")),
                        Err(e) => Err(SupervisorError::Start(e)),
                    },
                    Err(e) => Err(e),
                };
                reply.send(result)
            }
            SupervisorMsg::DeleteChild(id, reply) => reply.send(match self.index_of(&id) {
                Ok(i) if self.children[i].running.is_some() => Err(SupervisorError::Running(id)),
                Ok(i) => {
                    self.children.remove(i);
                    Ok(())
                }
                Err(e) => Err(e),
            }),
        }
    }

    /// `on_exit` of any actor hosting this supervisor. Not public API.
    #[doc(hidden)]
    pub async fn __on_exit<S: Actor>(&mut self, from: Pid, reason: ExitReason, ctx: &mut Ctx<S>) {
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

    /// `terminate` of any actor hosting this supervisor. Not public API.
    #[doc(hidden)]
    pub async fn __terminate<S: Actor>(&mut self, ctx: &mut Ctx<S>) {
        self.stop_all(ctx).await;
    }
}

/// Stops one child as its shutdown says: unlink it (so its exit is not taken for a crash), then
/// kill it, or ask it to stop and wait (killing it after the timeout, if any).
async fn stop_process<S: Actor>(
    ctx: &mut Ctx<S>,
    child: &ProcHandle,
    shutdown: Shutdown,
    id: &str,
) {
    let core = child.core();
    ctx.unlink(core.pid());
    match shutdown {
        Shutdown::BrutalKill => {
            core.kill();
        }
        Shutdown::Timeout(limit) => {
            let _ = core.send_sys(Sys::Stop(ExitReason::Shutdown));
            if tokio::time::timeout(limit, core.wait()).await.is_err() {
                tracing::warn!(child = %id, "child did not stop in time; killing it");
                core.kill();
            }
        }
        Shutdown::Infinity => {
            let _ = core.send_sys(Sys::Stop(ExitReason::Shutdown));
        }
    }
    core.wait().await;
}

/// Restart intensity: at most `intensity` restarts within a sliding `period`.
#[derive(Debug)]
struct RestartWindow {
    intensity: u32,
    period: Duration,
    restarts: VecDeque<Instant>,
}

impl RestartWindow {
    fn new(intensity: u32, period: Duration) -> Self {
        RestartWindow {
            intensity,
            period: period.max(Duration::from_millis(1)),
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart; `false` when it exceeds the intensity.
    fn allow(&mut self) -> bool {
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
}

/// Implemented by every type that hosts a [`Supervisor`] (the type itself, and the types made by
/// `supervisor!`), so they share one `Actor` implementation.
#[doc(hidden)]
pub trait HostsSupervisor: Send + 'static {
    /// The supervisor inside.
    fn supervisor_mut(&mut self) -> &mut Supervisor;
}

impl HostsSupervisor for Supervisor {
    fn supervisor_mut(&mut self) -> &mut Supervisor {
        self
    }
}

/// Implements [`Actor`] for a type that hosts a [`Supervisor`]. Used by `supervisor!`; not public
/// API.
#[doc(hidden)]
#[macro_export]
macro_rules! __supervisor_actor {
    ($ty:ty, $name:expr) => {
        #[automatically_derived]
        impl $crate::Actor for $ty {
            type Msg = $crate::supervisor::SupervisorMsg;
            const NAME: &'static str = $name;
            const HAS_INIT: bool = true;
            const SUPERVISOR: bool = true;

            async fn init(
                &mut self,
                ctx: &mut $crate::Ctx<Self>,
            ) -> ::core::result::Result<(), $crate::ExitReason> {
                $crate::supervisor::HostsSupervisor::supervisor_mut(self)
                    .__init(ctx)
                    .await
            }

            async fn handle(
                &mut self,
                msg: $crate::supervisor::SupervisorMsg,
                ctx: &mut $crate::Ctx<Self>,
            ) {
                $crate::supervisor::HostsSupervisor::supervisor_mut(self)
                    .__handle(msg, ctx)
                    .await
            }

            async fn on_exit(
                &mut self,
                from: $crate::Pid,
                reason: $crate::ExitReason,
                ctx: &mut $crate::Ctx<Self>,
            ) {
                $crate::supervisor::HostsSupervisor::supervisor_mut(self)
                    .__on_exit(from, reason, ctx)
                    .await
            }

            async fn terminate(
                &mut self,
                _reason: &$crate::ExitReason,
                ctx: &mut $crate::Ctx<Self>,
            ) {
                $crate::supervisor::HostsSupervisor::supervisor_mut(self)
                    .__terminate(ctx)
                    .await
            }
        }
    };
}

crate::__supervisor_actor!(Supervisor, "Supervisor");
