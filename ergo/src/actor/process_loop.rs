//! The process loop: one tokio task per process.
//!
//! The loop serves the system lane first, then drains a batch of normal messages (at most
//! [`BATCH`] before yielding to other tasks, and stopping early as soon as a system message
//! arrives), and sleeps when both lanes are empty. A panic anywhere in the actor's code is caught
//! and ends only this process, with [`ExitReason::Panic`].
//!
//! # Ending a process while a handler runs
//!
//! A handler is never cut short between two of its statements, only where it waits: when a
//! kill, or an exit signal the process does not trap (from a live link, or an `exit` call,
//! with a reason other than `Normal`), arrives while a handler waits at an `.await`, the
//! handler is dropped there (its locals dropped, a call it was answering failed with the exit
//! reason) and the process ends at once: a kill without `terminate`, an exit signal with
//! `terminate(reason)` seeing the state as the handler left it. A handler that never waits
//! (synchronous) runs to its end, and the process ends before the next message. A stop
//! ([`ActorRef::stop`](crate::ActorRef::stop)) is a request: the running handler finishes,
//! then `terminate` runs. Hooks (`init`, `on_exit`, `on_down`, `terminate`) run to their end,
//! except under a kill (the task is aborted at their next await point).
//!
//! # What overtakes what
//!
//! A stop, a kill, an exit signal that ends the process, and link and monitor bookkeeping
//! overtake every queued normal message. A notice the actor *handles* — a [`Down`](crate::Down)
//! for `#[on_down]`, a trapped exit signal for `#[on_exit]` — does not: it waits for its mark
//! in the normal lane (see [`crate::actor::mailbox`]), so the messages queued before it was sent are
//! handled first. A process that casts to its monitor (or to a trapping linked process) and then
//! ends is always heard before its end is: the last line a client sends before it disconnects
//! is not lost to its own `Down`.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use tokio::sync::oneshot;

use crate::actor::mailbox::Slot;
use crate::exit::ExitReason;
use crate::node::Sys;
use crate::{Actor, Ctx};

/// Normal messages handled per wake-up before the task yields to others.
pub(crate) const BATCH: usize = 256;

pub(crate) type InitTx = oneshot::Sender<Result<(), ExitReason>>;

/// What the system lane asks the loop to do next.
enum Flow {
    Continue,
    Exit(ExitReason),
    Kill,
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs one process from `init` to its end.
pub(crate) async fn run<A: Actor>(mut actor: A, mut ctx: Ctx<A>, init_tx: Option<InitTx>) {
    let lived = AssertUnwindSafe(async {
        if let Some(tx) = init_tx {
            // Boxed, like the other rare paths, so they add nothing to the size of an idle
            // process's future.
            if let Err(reason) = Box::pin(actor.init(&mut ctx)).await {
                let _ = tx.send(Err(reason.clone()));
                return (reason, false);
            }
            let _ = tx.send(Ok(()));
        }
        serve(&mut actor, &mut ctx).await
    })
    .catch_unwind()
    .await;
    let (reason, terminate) = match lived {
        Ok(outcome) => outcome,
        Err(payload) => (ExitReason::Panic(panic_message(&*payload)), true),
    };
    // From here on the process is ending: new messages are refused, its name is free, and
    // callers waiting on it learn the reason while `terminate` still runs.
    ctx.close(&reason);
    if terminate {
        let hook = AssertUnwindSafe(Box::pin(actor.terminate(&reason, &mut ctx)))
            .catch_unwind()
            .await;
        if let Err(payload) = hook {
            tracing::error!(panic = %panic_message(&*payload), "terminate hook panicked");
        }
    }
    match &reason {
        ExitReason::Normal | ExitReason::Shutdown => tracing::debug!(%reason, "process exited"),
        _ => tracing::warn!(%reason, "process exited"),
    }
    ctx.finish(reason);
}

/// Notices taken from the system lane whose marks are still ahead in the normal lane, in the
/// order of their marks; `None` for a notice already served (its mark is skipped). Allocated
/// only while a mark is ahead.
type Waiting = Option<Box<VecDeque<Option<Sys>>>>;

/// The message loop. Returns the exit reason and whether `terminate` should run.
async fn serve<A: Actor>(actor: &mut A, ctx: &mut Ctx<A>) -> (ExitReason, bool) {
    let mailbox = ctx.myself().mailbox().clone();
    let mut waiting: Waiting = None;
    loop {
        // The system paths are boxed (allocated only when taken) so they add nothing to the
        // size of an idle process's future.
        if mailbox.core().has_sys() {
            if let Some(end) = Box::pin(serve_system(actor, ctx, &mailbox, &mut waiting)).await {
                return end;
            }
        }
        let mut handled = 0;
        while let Some(slot) = mailbox.pop() {
            // Checked after the pop, not before: a system message that arrived before this
            // message was sent (say, the exit signal it follows from) is served first.
            if mailbox.core().has_sys() {
                if let Some(end) = Box::pin(serve_system(actor, ctx, &mailbox, &mut waiting)).await
                {
                    // Dropping `slot` fails its call, if it is one, with the exit reason.
                    return end;
                }
            }
            handled += 1;
            match slot {
                Slot::Msg(msg) => {
                    if until_doomed(actor.handle(msg, ctx), mailbox.core()).await {
                        // Ended at an await point: the system lane has what ends the process.
                        // A kill wins over a stop queued before it (the stop was waiting for
                        // the handler to finish; the kill does not wait).
                        if mailbox.core().kill_queued() {
                            return (ExitReason::Killed, false);
                        }
                        if let Some(end) =
                            Box::pin(serve_system(actor, ctx, &mailbox, &mut waiting)).await
                        {
                            return end;
                        }
                    }
                }
                Slot::Mark => {
                    let notice = waiting.as_mut().and_then(|w| w.pop_front()).flatten();
                    if waiting.as_ref().is_some_and(|w| w.is_empty()) {
                        waiting = None;
                    }
                    if let Some(msg) = notice {
                        if let Some(end) = Box::pin(serve_one(actor, ctx, msg)).await {
                            return end;
                        }
                    }
                }
            }
            if ctx.stop.is_some() || handled == BATCH {
                break;
            }
        }
        if let Some(reason) = ctx.stop.take() {
            return (reason, true);
        }
        if handled == BATCH {
            tokio::task::yield_now().await;
        } else {
            std::future::poll_fn(|cx| mailbox.poll_ready(cx)).await;
        }
    }
}

/// Runs a handler to its end, or until the system lane holds a message that ends the process
/// (a kill, or an exit signal it does not trap) while the handler waits at an await point:
/// then the handler is dropped there and `true` returned. A handler that returns without
/// waiting costs one poll more than awaiting it directly.
#[inline]
async fn until_doomed<F: std::future::Future<Output = ()>>(
    handler: F,
    core: &crate::node::ProcCore,
) -> bool {
    let mut handler = std::pin::pin!(handler);
    std::future::poll_fn(|cx| match handler.as_mut().poll(cx) {
        std::task::Poll::Ready(()) => std::task::Poll::Ready(false),
        std::task::Poll::Pending if core.poll_doomed(cx) => std::task::Poll::Ready(true),
        std::task::Poll::Pending => std::task::Poll::Pending,
    })
    .await
}

/// Serves the whole system lane (a notice the actor handles waits for its mark instead);
/// returns the end of the process if a message ends it.
async fn serve_system<A: Actor>(
    actor: &mut A,
    ctx: &mut Ctx<A>,
    mailbox: &crate::actor::mailbox::Mailbox<A>,
    waiting: &mut Waiting,
) -> Option<(ExitReason, bool)> {
    while let Some((msg, marked)) = mailbox.core().pop_sys() {
        if marked {
            let handled_by_actor = match &msg {
                Sys::Down(_) => true,
                Sys::Exit { .. } => ctx.trap_exit,
                _ => false,
            };
            let queue = waiting.get_or_insert_with(Box::default);
            if handled_by_actor {
                queue.push_back(Some(msg));
                continue;
            }
            queue.push_back(None);
        }
        if let Some(end) = serve_one(actor, ctx, msg).await {
            return Some(end);
        }
    }
    None
}

/// Serves one system message; returns the end of the process if it ends it.
async fn serve_one<A: Actor>(
    actor: &mut A,
    ctx: &mut Ctx<A>,
    msg: Sys,
) -> Option<(ExitReason, bool)> {
    match system(actor, ctx, msg).await {
        Flow::Continue => {}
        Flow::Exit(reason) => return Some((reason, true)),
        Flow::Kill => return Some((ExitReason::Killed, false)),
    }
    ctx.stop.take().map(|reason| (reason, true))
}

async fn system<A: Actor>(actor: &mut A, ctx: &mut Ctx<A>, msg: Sys) -> Flow {
    match msg {
        Sys::Kill => Flow::Kill,
        Sys::Stop(reason) => Flow::Exit(reason),
        Sys::Exit {
            from,
            reason,
            linked,
        } => {
            if linked && ctx.myself().mailbox().core().remove_link(from).is_none() {
                // Unlinked before the signal arrived: it no longer concerns us.
                return Flow::Continue;
            }
            if ctx.trap_exit {
                actor.on_exit(from, reason, ctx).await;
                Flow::Continue
            } else if reason == ExitReason::Normal {
                Flow::Continue
            } else {
                Flow::Exit(reason)
            }
        }
        Sys::Link(other) => {
            let pid = other.pid();
            ctx.myself().mailbox().core().add_link(pid, other);
            Flow::Continue
        }
        Sys::Unlink(pid) => {
            ctx.myself().mailbox().core().remove_link(pid);
            Flow::Continue
        }
        Sys::Monitor { by, monitor } => {
            ctx.extras_mut()
                .monitored_by
                .insert((by.pid(), monitor), by);
            Flow::Continue
        }
        Sys::Demonitor { by, monitor } => {
            if let Some(e) = ctx.extras.as_mut() {
                e.monitored_by.remove(&(by, monitor));
            }
            Flow::Continue
        }
        Sys::Down(down) => {
            let live = ctx
                .extras
                .as_mut()
                .and_then(|e| e.monitors.remove(&down.monitor))
                .is_some();
            if live {
                actor.on_down(down, ctx).await;
            }
            Flow::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActorRef, Node};

    struct Idle;
    #[crate::actor]
    impl Idle {
        #[handle]
        fn ping(&self) {}
    }

    /// Idle memory is dominated by this future: keep the rare paths (init, system messages,
    /// terminate) boxed so they add nothing to it. The bound is generous on purpose: it catches
    /// a regression that doubles the size, not a few bytes of compiler variation.
    #[tokio::test]
    async fn idle_process_future_stays_small() {
        let node = Node::builder("size@localhost").start().await.unwrap();
        let pid = crate::Pid::new(crate::pid::NodeAtom::intern("size@localhost"), 1, 1);
        let mailbox =
            std::sync::Arc::new(crate::actor::mailbox::Mailbox::<Idle>::new(node, pid, None));
        let ctx = Ctx::new(ActorRef::from_mailbox(mailbox));
        let fut = run(Idle, ctx, None);
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 512, "the process future grew to {size} bytes");
    }
}
