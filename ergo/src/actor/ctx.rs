//! [`Ctx`]: what a handler can do besides changing its own state.
//!
//! Every handler and hook may take a `ctx: &mut Ctx<Self>` argument. Through it a process learns
//! its own pid and ref, stops itself, links to and monitors other processes, traps exits, spawns
//! (linked) children, registers a name and sets timers.
//!
//! # Links
//!
//! A link is two-way: when either end ends with a reason other than `Normal`, the other end ends
//! with the same reason, unless it traps exits ([`Ctx::trap_exit`]), in which case its
//! `#[on_exit]` hook receives the signal. Linking to a process that has already ended sends an
//! exit signal with [`ExitReason::NoProc`] at once.
//!
//! # Monitors
//!
//! A monitor is one-way and never kills: when the monitored process ends, the monitoring one's
//! `#[on_down]` hook receives a [`crate::Down`] notice, exactly once per monitor. Monitoring
//! a process that has already ended delivers `Down` with [`ExitReason::NoProc`] at once.
//!
//! # Timers
//!
//! [`Ctx::send_after`] and [`Ctx::send_interval`] deliver messages to the process itself. Both
//! return a [`TimerRef`] that cancels them; all timers of a process end with it.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::exit::{Down, ExitReason, MonitorRef};
use crate::node::{AnyProcess, Sys, Target};
use crate::{Actor, ActorRef, Node, Pid, RegisterError, SpawnError, SpawnOptions};

/// The context of a running process, handed to its handlers and hooks.
pub struct Ctx<A: Actor> {
    myself: ActorRef<A>,
    pub(crate) stop: Option<ExitReason>,
    pub(crate) trap_exit: bool,
    pub(crate) extras: Option<Box<Extras>>,
    /// System messages still queued when the mailbox closed (answered by `finish`). Boxed: an
    /// idle process carries 8 bytes for it, not 32.
    #[allow(clippy::box_collection)]
    pending: Option<Box<std::collections::VecDeque<Sys>>>,
    closed: bool,
    finished: bool,
}

/// Links, monitors and timers: allocated on first use, so idle processes stay small.
#[derive(Default)]
pub(crate) struct Extras {
    /// Monitors this process holds on others (`None`: the target was already dead).
    pub(crate) monitors: HashMap<MonitorRef, (Pid, Option<Target>)>,
    /// Monitors others hold on this process, by watcher and ref (refs of other nodes' watchers
    /// come from their node's counter, so the watcher is part of the key).
    pub(crate) monitored_by: HashMap<(Pid, MonitorRef), Target>,
    pub(crate) timers: Vec<AbortHandle>,
}

/// A running timer; cancel it with [`TimerRef::cancel`] (or let its process end).
#[derive(Clone, Debug)]
pub struct TimerRef(AbortHandle);

impl TimerRef {
    /// Cancels the timer: no message is sent after this returns (one already queued stays).
    pub fn cancel(&self) {
        self.0.abort();
    }

    /// Whether the timer has fired (one-shot) or been cancelled.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl<A: Actor> Ctx<A> {
    pub(crate) fn new(myself: ActorRef<A>) -> Self {
        Ctx {
            myself,
            stop: None,
            trap_exit: false,
            extras: None,
            pending: None,
            closed: false,
            finished: false,
        }
    }

    pub(crate) fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
    }

    /// This process's pid.
    #[inline]
    pub fn pid(&self) -> Pid {
        self.myself.pid()
    }

    /// A ref to this process (clone it to hand it out).
    #[inline]
    pub fn myself(&self) -> &ActorRef<A> {
        &self.myself
    }

    /// The node this process runs on.
    #[inline]
    pub fn node(&self) -> &Node {
        &self.myself.mailbox().core().node
    }

    /// Stops this process with [`ExitReason::Normal`] once the current handler returns.
    pub fn stop(&mut self) {
        self.stop_with(ExitReason::Normal);
    }

    /// Stops this process with `reason` once the current handler returns.
    pub fn stop_with(&mut self, reason: ExitReason) {
        self.stop = Some(reason);
    }

    /// Turns exit trapping on or off. While on, exit signals from links (and `exit` calls) arrive
    /// at the `#[on_exit]` hook instead of stopping this process. Kills are never trapped.
    pub fn trap_exit(&mut self, on: bool) {
        if self.trap_exit != on {
            self.trap_exit = on;
            self.myself.mailbox().core().set_traps(on);
        }
    }

    /// Whether this process traps exits.
    pub fn is_trapping_exits(&self) -> bool {
        self.trap_exit
    }

    fn self_signal(&self, msg: Sys) {
        // Our own lane is open while we run.
        let _ = AnyProcess::send_sys(&**self.myself.mailbox(), msg);
    }

    /// Links this process and `pid` (both ways). Linking to an ended process sends this process
    /// an exit signal with [`ExitReason::NoProc`]. Linking twice is the same as once.
    pub fn link(&mut self, pid: Pid) {
        if pid == self.pid() || self.myself.mailbox().core().is_linked(pid) {
            return;
        }
        let me = Target::Local(self.myself.handle());
        match self.node().target(pid) {
            Some(other) => match other.send_sys(Sys::Link(me)) {
                Ok(()) => {
                    self.myself.mailbox().core().add_link(pid, other);
                }
                Err(_) => self.self_signal(Sys::Exit {
                    from: pid,
                    reason: if other.is_remote() {
                        ExitReason::NoConnection
                    } else {
                        ExitReason::NoProc
                    },
                    linked: false,
                }),
            },
            None => self.self_signal(Sys::Exit {
                from: pid,
                reason: self.node().unreachable_reason(pid),
                linked: false,
            }),
        }
    }

    /// Removes the link to `pid`, if any. No exit signal from it arrives after this.
    pub fn unlink(&mut self, pid: Pid) {
        let me = self.pid();
        if let Some(other) = self.myself.mailbox().core().remove_link(pid) {
            let _ = other.send_sys(Sys::Unlink(me));
        }
    }

    /// The pids this process is linked to.
    pub fn links(&self) -> Vec<Pid> {
        self.myself.mailbox().core().link_pids()
    }

    /// Monitors `pid`: when it ends, `#[on_down]` receives a [`Down`] for the returned ref.
    pub fn monitor(&mut self, pid: Pid) -> MonitorRef {
        let monitor = self.node().next_monitor_ref();
        let me = Target::Local(self.myself.handle());
        let target = self.node().target(pid);
        let reason = match &target {
            Some(other) => match other.send_sys(Sys::Monitor { by: me, monitor }) {
                Ok(()) => None,
                Err(_) if other.is_remote() => Some(ExitReason::NoConnection),
                Err(_) => Some(ExitReason::NoProc),
            },
            None => Some(self.node().unreachable_reason(pid)),
        };
        match reason {
            None => {
                self.extras_mut().monitors.insert(monitor, (pid, target));
            }
            Some(reason) => {
                self.extras_mut().monitors.insert(monitor, (pid, None));
                self.self_signal(Sys::Down(Down {
                    monitor,
                    pid,
                    reason,
                }));
            }
        }
        monitor
    }

    /// Removes a monitor. No `Down` for it arrives after this. Returns `false` if it had already
    /// fired or been removed.
    pub fn demonitor(&mut self, monitor: MonitorRef) -> bool {
        match self
            .extras
            .as_mut()
            .and_then(|e| e.monitors.remove(&monitor))
        {
            Some((_, Some(other))) => {
                let _ = other.send_sys(Sys::Demonitor {
                    by: self.myself.pid(),
                    monitor,
                });
                true
            }
            Some((_, None)) => true,
            None => false,
        }
    }

    /// Sends an exit signal to `pid` from this process (see [`ActorRef::exit`]).
    pub fn exit(&self, pid: Pid, reason: ExitReason) -> bool {
        match self.node().target(pid) {
            Some(p) => p
                .send_sys(Sys::Exit {
                    from: self.pid(),
                    reason,
                    linked: false,
                })
                .is_ok(),
            None => false,
        }
    }

    /// Spawns a process on this node (see [`Node::spawn`]).
    ///
    /// # Errors
    ///
    /// As [`Node::spawn`].
    pub async fn spawn<B: Actor>(&self, actor: B) -> Result<ActorRef<B>, SpawnError> {
        self.node().spawn(actor).await
    }

    /// Spawns a process linked to this one, atomically: the link exists before the child runs.
    ///
    /// # Errors
    ///
    /// As [`Node::spawn`]. A child whose `init` fails also sends this process its exit signal.
    pub async fn spawn_link<B: Actor>(&mut self, actor: B) -> Result<ActorRef<B>, SpawnError> {
        self.spawn_link_opts(actor, SpawnOptions::default()).await
    }

    /// [`Ctx::spawn_link`] with options.
    ///
    /// # Errors
    ///
    /// As [`Node::spawn`].
    pub async fn spawn_link_opts<B: Actor>(
        &mut self,
        actor: B,
        opts: SpawnOptions,
    ) -> Result<ActorRef<B>, SpawnError> {
        let node = self.node().clone();
        let me = self.myself.handle();
        let (child, started) = node.start_process(actor, opts, Some(me))?;
        self.myself
            .mailbox()
            .core()
            .add_link(child.pid(), Target::Local(child.handle()));
        started.await.map(|()| child)
    }

    /// Registers this process under `name` (see [`Node::register`]).
    ///
    /// # Errors
    ///
    /// As [`Node::register`].
    pub fn register(&self, name: &str) -> Result<(), RegisterError> {
        self.node().register(name, &self.myself)
    }

    fn add_timer(&mut self, handle: AbortHandle) -> TimerRef {
        let timers = &mut self.extras_mut().timers;
        if timers.len() >= 16 {
            timers.retain(|t| !t.is_finished());
        }
        timers.push(handle.clone());
        TimerRef(handle)
    }

    /// Sends `msg` to this process after `delay`.
    pub fn send_after(&mut self, delay: Duration, msg: A::Msg) -> TimerRef {
        let target = self.myself.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = target.cast(msg).await;
        });
        self.add_timer(task.abort_handle())
    }

    /// Sends the message `make` builds to this process every `period` (first after one period)
    /// until cancelled or the process ends. Ticks missed while the mailbox was busy are not
    /// caught up in a burst.
    pub fn send_interval<F>(&mut self, period: Duration, mut make: F) -> TimerRef
    where
        F: FnMut() -> A::Msg + Send + 'static,
    {
        let target = self.myself.clone();
        let task = tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(first_tick(period), period.max(Duration::from_nanos(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if target.cast(make()).await.is_err() {
                    break;
                }
            }
        });
        self.add_timer(task.abort_handle())
    }

    /// Runs `fut` in its own task and sends its output, mapped by `into_msg`, back to this
    /// process: a way to wait for slow work without blocking the mailbox.
    pub fn spawn_task<T, F>(
        &mut self,
        fut: F,
        into_msg: impl FnOnce(T) -> A::Msg + Send + 'static,
    ) -> TimerRef
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let target = self.myself.clone();
        let task = tokio::spawn(async move {
            let out = fut.await;
            let _ = target.cast(into_msg(out)).await;
        });
        self.add_timer(task.abort_handle())
    }

    /// First half of the end, run as soon as the process knows it will end (before
    /// `terminate`): records the reason, closes the mailbox (later sends fail at once), releases
    /// the name, leaves the process table and fails the calls still queued. Runs once.
    pub(crate) fn close(&mut self, reason: &ExitReason) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let mailbox = self.myself.mailbox();
        let core = mailbox.core();
        let me = core.pid();
        let (name, pending) = core.close(reason);
        let node = core.node.clone();
        if let Some(name) = name {
            node.release_name(&name, me);
        }
        node.remove_process(me);
        mailbox.drain_dropped();
        if !pending.is_empty() {
            self.pending = Some(Box::new(pending));
        }
    }

    /// Ends the process: [`Ctx::close`] if not done yet, then stops timers and notifies links
    /// and monitors (with the reason recorded first). Runs once; `Drop` runs it with `Killed` if
    /// the task was aborted.
    pub(crate) fn finish(&mut self, reason: ExitReason) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.close(&reason);
        let core = self.myself.mailbox().core();
        let me = core.pid();
        let reason = core.exit_reason().cloned().unwrap_or(reason);
        let pending = self.pending.take().map(|b| *b).unwrap_or_default();
        let extras = self.extras.take().map(|b| *b).unwrap_or_default();
        for t in &extras.timers {
            t.abort();
        }
        let exit = |to: &Target| {
            let _ = to.send_sys(Sys::Exit {
                from: me,
                reason: reason.clone(),
                linked: true,
            });
        };
        let down = |to: &Target, monitor: MonitorRef| {
            let _ = to.send_sys(Sys::Down(Down {
                monitor,
                pid: me,
                reason: reason.clone(),
            }));
        };
        for msg in pending {
            match msg {
                Sys::Link(from) => exit(&from),
                Sys::Monitor { by, monitor } => down(&by, monitor),
                _ => {}
            }
        }
        for other in core.take_links() {
            exit(&other);
        }
        for ((_, monitor), by) in &extras.monitored_by {
            down(by, *monitor);
        }
        for (monitor, (_, target)) in extras.monitors {
            if let Some(target) = target {
                let _ = target.send_sys(Sys::Demonitor { by: me, monitor });
            }
        }
        core.announce_exit();
    }
}

/// When an interval's first tick is due; a period too long to add saturates far in the future.
fn first_tick(period: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(period)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

impl<A: Actor> Drop for Ctx<A> {
    fn drop(&mut self) {
        self.finish(ExitReason::Killed);
    }
}
