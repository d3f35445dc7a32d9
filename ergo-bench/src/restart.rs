//! `restart`: a child under a one_for_one supervisor crashed over and over, one at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use ergo::prelude::*;
use ergo::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorApi};
use tokio::sync::{mpsc, oneshot};

use crate::cli::Config;
use crate::measure::{best_of, check, join, new_node, percentiles, report, BenchResult, Sample};

/// The registered name of the restart workload's child.
const CRASHER: &str = "crasher";

/// The panic message of the restart workload (kept off stderr by [`silence_crash_panics`]).
const CRASH_PANIC: &str = "ergo-bench: crash on request";

/// How long one restart may take before the workload fails (the supervisor gave up, say).
const RESTART_DEADLINE: Duration = Duration::from_secs(5);

/// Keeps the workload's own panics (tens of thousands) off stderr; other panics still reach
/// the hook that was in place.
fn silence_crash_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if message != Some(CRASH_PANIC) {
                previous(info);
            }
        }));
    });
}

/// The supervised child: each incarnation numbers itself at `init` and panics when asked.
struct Crasher {
    /// Incarnations started so far (shared with the workload, which checks it).
    starts: Arc<AtomicU64>,
    /// This incarnation's number, from 1.
    incarnation: u64,
}

#[actor]
impl Crasher {
    /// Counts this incarnation.
    #[init]
    fn init(&mut self) {
        self.incarnation = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
    }

    /// Panics. A call, so the caller learns of the crash as `CallError::Exited`; it never
    /// replies.
    #[handle]
    fn crash(&self) -> u64 {
        panic!("{}", CRASH_PANIC)
    }

    /// Which incarnation this is: proves the replacement accepts calls.
    #[handle]
    fn incarnation(&self) -> u64 {
        self.incarnation
    }
}

pub(crate) async fn restart_workload(cfg: &Config) -> BenchResult<()> {
    silence_crash_panics();
    let restarts = cfg.count(20_000);
    let ergo = best_of(cfg.reps, |rep| ergo_restart(rep, restarts)).await?;
    let tokio = best_of(cfg.reps, |_| tokio_restart(restarts)).await?;
    report("restart", "restarts/s", &ergo, &tokio);
    Ok(())
}

async fn ergo_restart(rep: usize, restarts: u64) -> BenchResult<Sample> {
    let node = new_node("restart", rep).await?;
    let starts = Arc::new(AtomicU64::new(0));
    let make = {
        let starts = starts.clone();
        move || Crasher {
            starts: starts.clone(),
            incarnation: 0,
        }
    };
    // An intensity above the run's restarts: the supervisor never gives up.
    let limit = u32::try_from(restarts + 1).map_err(|_| "too many restarts for u32")?;
    let supervisor = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .intensity(limit, Duration::from_secs(3600))
                .child(ChildSpec::new(CRASHER, make).register(CRASHER)),
        )
        .await
        .map_err(|e| format!("supervisor start: {e}"))?;

    let client = node.clone();
    let (elapsed, latencies, last) = join(tokio::spawn(async move {
        let node = client;
        let mut current = node
            .whereis::<Crasher>(CRASHER)
            .ok_or("the child is not registered")?;
        let mut latencies = Vec::with_capacity(restarts as usize);
        let start = Instant::now();
        for i in 0..restarts {
            let t = Instant::now();
            match current.crash().await {
                Err(CallError::Exited(ExitReason::Panic(_))) => {}
                other => return Err(format!("crash {i}: {other:?}, expected a panic exit")),
            }
            let old = current.pid();
            // Poll the name until it points at a new incarnation that answers.
            let (next, incarnation) = loop {
                if let Some(child) = node.whereis::<Crasher>(CRASHER) {
                    if child.pid() != old {
                        match child.incarnation().await {
                            Ok(n) => break (child, n),
                            Err(CallError::NoProc) => {}
                            Err(e) => return Err(format!("probe after crash {i}: {e}")),
                        }
                    }
                }
                if t.elapsed() > RESTART_DEADLINE {
                    return Err(format!(
                        "no replacement {RESTART_DEADLINE:?} after crash {i}"
                    ));
                }
                tokio::task::yield_now().await;
            };
            latencies.push(t.elapsed().as_nanos() as u64);
            check(
                format_args!("incarnation after crash {i}"),
                incarnation,
                i + 2,
            )?;
            current = next;
        }
        Ok((start.elapsed(), latencies, current.pid()))
    }))
    .await?;

    check(
        "restarts counted by the child's init",
        starts.load(Ordering::SeqCst) - 1,
        restarts,
    )?;
    check(
        "supervisor alive (intensity not tripped)",
        supervisor.is_alive(),
        true,
    )?;
    let children = supervisor
        .which_children()
        .await
        .map_err(|e| format!("which_children: {e}"))?;
    check(
        "children (id, pid)",
        children
            .into_iter()
            .map(|c| (c.id, c.pid))
            .collect::<Vec<_>>(),
        vec![(CRASHER.to_owned(), Some(last))],
    )?;
    supervisor.stop(ExitReason::Shutdown);
    check(
        "supervisor exit",
        supervisor.wait().await,
        ExitReason::Shutdown,
    )?;
    check("processes left on the node", node.process_count(), 0)?;
    Ok(Sample {
        elapsed,
        ops: restarts,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

/// A request to the baseline's child task.
enum CrasherReq {
    /// Panic. The reply slot is never used: the unwinding drops it, as a crashing actor's
    /// does, so the client learns of the crash.
    Crash(#[allow(dead_code)] oneshot::Sender<()>),
    /// Reply with the incarnation number.
    Incarnation(oneshot::Sender<u64>),
}

/// The current child of the baseline: its incarnation and the sender of its channel.
type Registry = Arc<std::sync::Mutex<Option<(u64, mpsc::UnboundedSender<CrasherReq>)>>>;

/// The baseline: a supervising task awaits its child task's `JoinHandle`; when the child has
/// panicked it spawns a new one and publishes its sender in a shared slot, which the client
/// polls as ergo's client polls the name registry.
async fn tokio_restart(restarts: u64) -> BenchResult<Sample> {
    let registry: Registry = Arc::default();
    let supervisor = tokio::spawn({
        let registry = registry.clone();
        async move {
            let mut restarted = 0u64;
            for incarnation in 1u64.. {
                let (tx, mut rx) = mpsc::unbounded_channel::<CrasherReq>();
                let child = tokio::spawn(async move {
                    while let Some(req) = rx.recv().await {
                        match req {
                            CrasherReq::Crash(_reply) => panic!("{}", CRASH_PANIC),
                            CrasherReq::Incarnation(reply) => {
                                let _ = reply.send(incarnation);
                            }
                        }
                    }
                });
                *registry.lock().map_err(|_| "registry poisoned")? = Some((incarnation, tx));
                match child.await {
                    // Every sender is gone: the run is over.
                    Ok(()) => return Ok(restarted),
                    Err(e) if e.is_panic() => restarted += 1,
                    Err(e) => return Err(format!("child task failed: {e}")),
                }
            }
            unreachable!("the incarnations do not run out")
        }
    });

    let lookup = |registry: &Registry| -> BenchResult<Option<(u64, mpsc::UnboundedSender<_>)>> {
        Ok(registry.lock().map_err(|_| "registry poisoned")?.clone())
    };
    let client_registry = registry.clone();
    let (elapsed, latencies) = join(tokio::spawn(async move {
        let registry = client_registry;
        let t = Instant::now();
        let mut current = loop {
            if let Some(entry) = lookup(&registry)? {
                break entry;
            }
            if t.elapsed() > RESTART_DEADLINE {
                return Err("the first child was never published".to_owned());
            }
            tokio::task::yield_now().await;
        };
        let mut latencies = Vec::with_capacity(restarts as usize);
        let start = Instant::now();
        for i in 0..restarts {
            let t = Instant::now();
            let (reply_tx, reply_rx) = oneshot::channel();
            current
                .1
                .send(CrasherReq::Crash(reply_tx))
                .map_err(|_| format!("crash {i}: child gone"))?;
            if reply_rx.await.is_ok() {
                return Err(format!("crash {i}: the child replied instead of panicking"));
            }
            let old = current.0;
            let (next, incarnation) = loop {
                if let Some((gen, tx)) = lookup(&registry)? {
                    if gen != old {
                        let (reply_tx, reply_rx) = oneshot::channel();
                        if tx.send(CrasherReq::Incarnation(reply_tx)).is_ok() {
                            if let Ok(n) = reply_rx.await {
                                break ((gen, tx), n);
                            }
                        }
                    }
                }
                if t.elapsed() > RESTART_DEADLINE {
                    return Err(format!(
                        "no replacement {RESTART_DEADLINE:?} after crash {i}"
                    ));
                }
                tokio::task::yield_now().await;
            };
            latencies.push(t.elapsed().as_nanos() as u64);
            check(
                format_args!("incarnation after crash {i}"),
                incarnation,
                i + 2,
            )?;
            current = next;
        }
        let elapsed = start.elapsed();
        // Drop every sender so the last child, and then the supervisor, end.
        drop(current);
        registry.lock().map_err(|_| "registry poisoned")?.take();
        Ok((elapsed, latencies))
    }))
    .await?;

    check("tokio restarts", join(supervisor).await?, restarts)?;
    Ok(Sample {
        elapsed,
        ops: restarts,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}
