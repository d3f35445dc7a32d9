//! `simple_one_for_one`: a supervisor of dynamic children, all made by one factory.
//!
//! A [`SimpleSupervisor<A, T>`] starts no child by itself: each
//! [`start_child(args)`](ActorRef::start_child) makes a new `A` from `args: T` and links it. A
//! child that ends is restarted (with the same `args`) according to the supervisor's restart
//! type, one for one, within the supervisor's intensity. Children are typed: `start_child`
//! returns an `ActorRef<A>`.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
//! use ergo::prelude::*;
//! use ergo::supervisor::{Restart, SimpleSupervisor};
//!
//! struct Conn { peer: String }
//! #[actor]
//! impl Conn {
//!     #[handle]
//!     fn peer(&self) -> String { self.peer.clone() }
//! }
//!
//! let node = Node::builder("simple-doc@localhost").start().await?;
//! let pool = node
//!     .spawn(SimpleSupervisor::new(|peer: String| Conn { peer }).restart(Restart::Transient))
//!     .await?;
//! let conn = pool.start_child("10.0.0.7".to_owned()).await??;
//! assert_eq!(conn.peer().await?, "10.0.0.7");
//! assert_eq!(pool.count_children().await?.active, 1);
//! pool.terminate_child(conn.pid()).await??;
//! assert_eq!(pool.which_children().await?, vec![]);
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use super::{stop_process, ChildCount, Restart, RestartWindow, Shutdown, SupervisorError};
use crate::exit::ExitReason;
use crate::{Actor, ActorRef, Call, Ctx, Pid, ReplyTo, SpawnError, SpawnOptions};

/// A `simple_one_for_one` supervisor of children of type `A`, each made from arguments `T`.
pub struct SimpleSupervisor<A: Actor, T> {
    make: Box<dyn FnMut(T) -> A + Send>,
    restart: Restart,
    shutdown: Shutdown,
    restarts: RestartWindow,
    /// Running children in start order, with the arguments to restart them.
    children: Vec<(ActorRef<A>, T)>,
    parent: Option<Pid>,
}

impl<A: Actor, T> fmt::Debug for SimpleSupervisor<A, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleSupervisor")
            .field("child", &A::NAME)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("children", &self.children.len())
            .finish()
    }
}

impl<A: Actor, T: Clone + Send + 'static> SimpleSupervisor<A, T> {
    /// A supervisor whose children are made by `make`: permanent, stopped with a 5 s timeout,
    /// OTP's default intensity (1 restart within 5 s).
    pub fn new(make: impl FnMut(T) -> A + Send + 'static) -> Self {
        SimpleSupervisor {
            make: Box::new(make),
            restart: Restart::Permanent,
            shutdown: if A::SUPERVISOR {
                Shutdown::Infinity
            } else {
                Shutdown::Timeout(Duration::from_secs(5))
            },
            restarts: RestartWindow::new(1, Duration::from_secs(5)),
            children: Vec::new(),
            parent: None,
        }
    }

    /// The restart type of every child.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// How every child is stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Allows at most `intensity` restarts within `period`.
    pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
        self.restarts = RestartWindow::new(intensity, period);
        self
    }

    async fn start(&mut self, args: T, ctx: &mut Ctx<Self>) -> Result<ActorRef<A>, SpawnError> {
        let child = (self.make)(args.clone());
        let child = ctx.spawn_link_opts(child, SpawnOptions::new()).await?;
        self.children.push((child.clone(), args));
        Ok(child)
    }

    async fn stop_all(&mut self, ctx: &mut Ctx<Self>) {
        while let Some((child, _)) = self.children.pop() {
            stop_process(ctx, &child.handle(), self.shutdown, A::NAME).await;
        }
    }

    async fn child_exited(&mut self, i: usize, reason: ExitReason, ctx: &mut Ctx<Self>) {
        let (_, args) = self.children.remove(i);
        if !self.restart.restarts_after(&reason) {
            return;
        }
        loop {
            if !self.restarts.allow() {
                tracing::error!("restart intensity exceeded; supervisor shutting down");
                self.stop_all(ctx).await;
                ctx.stop_with(ExitReason::Shutdown);
                return;
            }
            match self.start(args.clone(), ctx).await {
                Ok(_) => return,
                Err(e) => tracing::warn!(error = %e, "dynamic child failed to restart"),
            }
        }
    }
}

/// The messages of a [`SimpleSupervisor`]; use them through the methods of its ref.
#[non_exhaustive]
pub enum SimpleMsg<A: Actor, T> {
    /// See [`ActorRef::start_child`].
    StartChild(T, ReplyTo<Result<ActorRef<A>, SupervisorError>>),
    /// See [`ActorRef::terminate_child`].
    TerminateChild(Pid, ReplyTo<Result<(), SupervisorError>>),
    /// See [`ActorRef::which_children`].
    WhichChildren(ReplyTo<Vec<Pid>>),
    /// See [`ActorRef::count_children`].
    CountChildren(ReplyTo<ChildCount>),
}

impl<A: Actor, T> fmt::Debug for SimpleMsg<A, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SimpleMsg::StartChild(..) => "StartChild",
            SimpleMsg::TerminateChild(..) => "TerminateChild",
            SimpleMsg::WhichChildren(_) => "WhichChildren",
            SimpleMsg::CountChildren(_) => "CountChildren",
        })
    }
}

impl<A: Actor, T: Clone + Send + 'static> Actor for SimpleSupervisor<A, T> {
    type Msg = SimpleMsg<A, T>;
    const NAME: &'static str = "SimpleSupervisor";
    const HAS_INIT: bool = true;
    const SUPERVISOR: bool = true;

    async fn init(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ExitReason> {
        ctx.trap_exit(true);
        self.parent = ctx.links().first().copied();
        Ok(())
    }

    async fn handle(&mut self, msg: Self::Msg, ctx: &mut Ctx<Self>) {
        match msg {
            SimpleMsg::StartChild(args, reply) => {
                let started = self.start(args, ctx).await;
                reply.send(started.map_err(SupervisorError::Start));
            }
            SimpleMsg::TerminateChild(pid, reply) => {
                let found = self.children.iter().position(|(c, _)| c.pid() == pid);
                match found {
                    Some(i) => {
                        let (child, _) = self.children.remove(i);
                        stop_process(ctx, &child.handle(), self.shutdown, A::NAME).await;
                        reply.send(Ok(()));
                    }
                    None => reply.send(Err(SupervisorError::NotFound(pid.to_string()))),
                }
            }
            SimpleMsg::WhichChildren(reply) => {
                reply.send(self.children.iter().map(|(c, _)| c.pid()).collect())
            }
            SimpleMsg::CountChildren(reply) => {
                let n = self.children.len();
                reply.send(ChildCount {
                    specs: n,
                    active: n,
                    supervisors: if A::SUPERVISOR { n } else { 0 },
                    workers: if A::SUPERVISOR { 0 } else { n },
                })
            }
        }
    }

    async fn on_exit(&mut self, from: Pid, reason: ExitReason, ctx: &mut Ctx<Self>) {
        let child = self.children.iter().position(|(c, _)| c.pid() == from);
        if let Some(i) = child {
            tracing::info!(pid = %from, %reason, "dynamic child exited");
            self.child_exited(i, reason, ctx).await;
        } else if Some(from) == self.parent {
            ctx.stop_with(reason);
        }
    }

    async fn terminate(&mut self, _reason: &ExitReason, ctx: &mut Ctx<Self>) {
        self.stop_all(ctx).await;
    }
}

impl<A: Actor, T: Clone + Send + 'static> ActorRef<SimpleSupervisor<A, T>> {
    /// Starts a new child made from `args`, linked to the supervisor.
    pub fn start_child(
        &self,
        args: T,
    ) -> Call<'_, SimpleSupervisor<A, T>, Result<ActorRef<A>, SupervisorError>> {
        Call::new(self, |reply| SimpleMsg::StartChild(args, reply))
    }

    /// Stops the child `pid` (it is not restarted).
    pub fn terminate_child(
        &self,
        pid: Pid,
    ) -> Call<'_, SimpleSupervisor<A, T>, Result<(), SupervisorError>> {
        Call::new(self, |reply| SimpleMsg::TerminateChild(pid, reply))
    }

    /// The running children, in start order.
    pub fn which_children(&self) -> Call<'_, SimpleSupervisor<A, T>, Vec<Pid>> {
        Call::new(self, SimpleMsg::WhichChildren)
    }

    /// How many children run.
    pub fn count_children(&self) -> Call<'_, SimpleSupervisor<A, T>, ChildCount> {
        Call::new(self, SimpleMsg::CountChildren)
    }
}
