//! The scenario: the whole story with real OS processes.

use std::fmt;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use ergo::prelude::*;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{
    random_cookie, BackStatus, ClusterError, ClusterEvent, Front, FrontConfig, JobError, Load,
    LoadConfig, Ready, Tally, Worker, WorkerApi, COOKIE_ENV, WORKER,
};
use ergo_testkit::process::{ChildProcess, ANY_LOOPBACK_PORT, HEARTBEAT, HEARTBEAT_TIMEOUT};

/// The first back node's name: the one the scenario kills and restarts.
pub const BACK1: &str = "back1@localhost";
/// The second back node's name: the survivor (its worker is crashed once instead).
pub const BACK2: &str = "back2@localhost";
/// The front node's name.
pub const FRONT: &str = "front@localhost";
/// Attempts at restarting back1 on its port.
const RESTART_TRIES: u32 = 5;

/// The settings of [`run_scenario`].
#[derive(Clone, Debug)]
pub struct ScenarioConfig {
    /// The load kept flowing throughout.
    pub load: LoadConfig,
    /// Jobs each step waits to see completed by the worker it is about.
    pub step_jobs: u64,
    /// The longest any step may take.
    pub step_timeout: Duration,
    /// Whether to crash back2's worker once (its supervisor restarts it) before the kill.
    pub crash_worker: bool,
}

impl Default for ScenarioConfig {
    /// The default load, 50 jobs per step, 15 s per step, with the worker crash.
    fn default() -> Self {
        ScenarioConfig {
            load: LoadConfig::default(),
            step_jobs: 50,
            step_timeout: Duration::from_secs(15),
            crash_worker: true,
        }
    }
}

/// What [`run_scenario`] saw.
#[derive(Clone, Debug)]
pub struct ScenarioReport {
    /// The submitters' counts once every job had returned.
    pub tally: Tally,
    /// Every event of the front, in order.
    pub events: Vec<ClusterEvent>,
    /// The back nodes as the front saw them at the end.
    pub status: Vec<BackStatus>,
    /// back1's first incarnation.
    pub back1_before: Ready,
    /// back1 after its restart (same name and address, another creation).
    pub back1_after: Ready,
    /// back2.
    pub back2: Ready,
    /// back2's worker before and after its crash (when the scenario crashed it).
    pub crashed_worker: Option<(Pid, Pid)>,
    /// Jobs in flight when back1 was killed.
    pub in_flight_at_kill: u64,
    /// Jobs back2 completed between back1's kill and its rejoin.
    pub survivor_done_while_down: u64,
    /// Jobs that completed on a retry after back1's kill, by the time it rejoined.
    pub retried_after_kill: u64,
    /// Jobs back1's new incarnation completed.
    pub restarted_done: u64,
    /// From the first back node's start to the end.
    pub elapsed: Duration,
}

impl ScenarioReport {
    /// How many times the front's monitor of `node`'s worker fired with `reason`.
    pub fn downs(&self, node: &str, reason: &ExitReason) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, ClusterEvent::Down { node: n, reason: r, .. } if n == node && r == reason))
            .count()
    }

    /// How many times the front's monitor of `node`'s worker fired, whatever the reason.
    pub fn all_downs(&self, node: &str) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, ClusterEvent::Down { node: n, .. } if n == node))
            .count()
    }
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let rejected = t
            .errors
            .iter()
            .filter(|(_, e)| matches!(e, JobError::Rejected(_)))
            .count();
        writeln!(f, "jobs sent        {}", t.sent)?;
        writeln!(f, "completed        {}", t.done)?;
        writeln!(
            f,
            "failed           {} ({rejected} rejected as invalid, {} for other reasons)",
            t.failed,
            t.failed - rejected as u64
        )?;
        writeln!(
            f,
            "accounted        {} (every job returned to its submitter: {})",
            t.done + t.failed,
            if t.done + t.failed == t.sent {
                "yes"
            } else {
                "NO"
            }
        )?;
        writeln!(f, "wrong outputs    {}", t.wrong_output)?;
        writeln!(f, "retried, then completed  {}", t.retried)?;
        writeln!(
            f,
            "by worker        {}",
            t.by_worker
                .iter()
                .map(|(pid, n)| format!("{pid}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        for b in &self.status {
            writeln!(
                f,
                "front's view     {}: {} joins, monitor fired {:?}, worker {}",
                b.node,
                b.joins,
                b.downs,
                b.worker.map_or_else(|| "none".into(), |p| p.to_string())
            )?;
        }
        write!(f, "elapsed          {:.2} s", self.elapsed.as_secs_f64())
    }
}

/// The front's events as they arrive, with the waits of the scenario's steps.
struct Watch<'a, S: FnMut(&str)> {
    rx: mpsc::UnboundedReceiver<ClusterEvent>,
    log: Vec<ClusterEvent>,
    say: &'a mut S,
    within: Duration,
}

impl<S: FnMut(&str)> Watch<'_, S> {
    fn record(&mut self, event: ClusterEvent) {
        (self.say)(&format!("  front: {event}"));
        self.log.push(event);
    }

    /// Waits (at most the step timeout) until `done` holds for the events so far and the
    /// current tally.
    async fn until(
        &mut self,
        what: &str,
        load: Option<&Load>,
        mut done: impl FnMut(&[ClusterEvent], &Tally) -> bool,
    ) -> Result<Tally, ClusterError> {
        let deadline = Instant::now() + self.within;
        loop {
            while let Ok(event) = self.rx.try_recv() {
                self.record(event);
            }
            let tally = load.map(Load::tally).unwrap_or_default();
            if done(&self.log, &tally) {
                return Ok(tally);
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Timeout(format!(
                    "{what} (after {:?}; {} jobs sent, {} done, {} failed)",
                    self.within, tally.sent, tally.done, tally.failed
                )));
            }
            // Wake at the next event, or poll the tally again in 5 ms.
            if let Ok(Some(event)) =
                tokio::time::timeout(Duration::from_millis(5), self.rx.recv()).await
            {
                self.record(event);
            }
        }
    }
}

fn joined(events: &[ClusterEvent], node: &str, worker_ok: impl Fn(Pid) -> bool) -> Option<Pid> {
    events.iter().rev().find_map(|e| match e {
        ClusterEvent::Joined {
            node: n, worker, ..
        } if n == node && worker_ok(*worker) => Some(*worker),
        _ => None,
    })
}

fn went_down(events: &[ClusterEvent], node: &str, reason: impl Fn(&ExitReason) -> bool) -> bool {
    events.iter().any(
        |e| matches!(e, ClusterEvent::Down { node: n, reason: r, .. } if n == node && reason(r)),
    )
}

/// Runs the whole story with real OS processes and reports what happened:
///
/// 1. starts back1 and back2 as child processes (`back_command(name, addr)` must run
///    [`run_back_node`](super::run_back_node) for that node on that address; the first time the port is 0, so the
///    node picks a free one and reports it) and a front in this process, all on loopback with
///    one fresh cookie; waits until the front has joined both;
/// 2. keeps a [`Load`] flowing and waits until both back nodes have completed jobs;
/// 3. (with `crash_worker`) crashes back2's worker: its supervisor restarts it, the front's
///    monitor fires with the panic and the front finds the new worker; waits until it works;
/// 4. SIGKILLs back1 mid-run; waits for the front's monitor to fire with `noconnection`;
/// 5. waits until back2 alone has completed more jobs and a lookup of back1 has failed;
/// 6. restarts back1 (same name, same port, new creation; a few tries should the port have
///    been taken meanwhile); waits until the front has found it again and its new incarnation
///    has completed jobs;
/// 7. stops the load, waits until every job has returned to its submitter, stops everything.
///
/// `say` receives a line for each step and each event of the front. Every wait is bounded by
/// `config.step_timeout`; the child processes are stopped on every path (killed if need be).
///
/// # Errors
///
/// [`ClusterError`] when a process cannot start, a step times out, or the load's jobs do not
/// all return.
pub async fn run_scenario<C, S>(
    config: &ScenarioConfig,
    mut back_command: C,
    mut say: S,
) -> Result<ScenarioReport, ClusterError>
where
    C: FnMut(&str, SocketAddr) -> Command,
    S: FnMut(&str),
{
    let started = Instant::now();
    let k = config.step_jobs.max(1);
    let within = config.step_timeout;
    let cookie = random_cookie();
    let mut start_back = |node: &str, addr: SocketAddr| {
        ChildProcess::spawn(back_command(node, addr), node, COOKIE_ENV, &cookie)
    };

    // 1. The nodes. The back nodes bind port 0 (no window in which another program could take
    // a port chosen here) and say which port they got; back1 comes back on the same one.
    let mut back1 = start_back(BACK1, ANY_LOOPBACK_PORT)?;
    let mut back2 = start_back(BACK2, ANY_LOOPBACK_PORT)?;
    let back1_before = back1.ready(within, Ready::parse).await?;
    let back2_ready = back2.ready(within, Ready::parse).await?;
    for (p, r) in [(&back1, &back1_before), (&back2, &back2_ready)] {
        say(&format!(
            "{} serves at {} (os pid {}, creation {})",
            r.node,
            r.addr,
            p.os_pid(),
            r.creation
        ));
    }
    let front_node = Node::builder(FRONT)
        .cookie(&cookie)
        .route(BACK1, back1_before.addr.to_string())
        .route(BACK2, back2_ready.addr.to_string())
        .heartbeat(HEARTBEAT, HEARTBEAT_TIMEOUT)
        .start()
        .await
        .map_err(|e| ClusterError::Start(format!("front node: {e}")))?;
    let front_config = FrontConfig::new([BACK1.to_string(), BACK2.to_string()]);
    let job_deadline = front_config.job_deadline;
    let (front, rx) = match Front::start(&front_node, front_config).await {
        Ok(started) => started,
        Err(e) => {
            front_node.shutdown(Duration::from_secs(1)).await;
            return Err(e);
        }
    };
    let mut watch = Watch {
        rx,
        log: Vec::new(),
        say: &mut say,
        within,
    };

    let outcome = async {
        watch
            .until("the front to join both back nodes", None, |ev, _| {
                joined(ev, BACK1, |_| true).is_some() && joined(ev, BACK2, |_| true).is_some()
            })
            .await?;

        // 2. Load on both.
        let load = Load::start(&front, &config.load);
        let t = watch
            .until("both back nodes to complete jobs", Some(&load), |_, t| {
                t.done_on(BACK1) >= k && t.done_on(BACK2) >= k
            })
            .await?;
        (watch.say)(&format!(
            "both back nodes serve: {} jobs completed ({} on back1, {} on back2), {} failed",
            t.done,
            t.done_on(BACK1),
            t.done_on(BACK2),
            t.failed
        ));

        // 3. A worker crash, healed by back2's own supervisor.
        let mut crashed_worker = None;
        if config.crash_worker {
            let old = joined(&watch.log, BACK2, |_| true).expect("joined above");
            (watch.say)(&format!("crashing back2's worker {old} (a panic)"));
            let worker = front_node
                .lookup::<Worker>(WORKER, BACK2)
                .await
                .map_err(|e| ClusterError::Start(format!("looking back2's worker up: {e}")))?;
            let _ = worker.crash().await;
            let t = watch
                .until(
                    "back2's restarted worker to complete jobs",
                    Some(&load),
                    |ev, t| {
                        went_down(ev, BACK2, |r| matches!(r, ExitReason::Panic(_)))
                            && joined(ev, BACK2, |p| p != old)
                                .is_some_and(|new| t.by_worker.get(&new).copied().unwrap_or(0) >= k)
                    },
                )
                .await?;
            let new = joined(&watch.log, BACK2, |p| p != old).expect("checked");
            (watch.say)(&format!(
                "back2's supervisor restarted its worker as {new}: it completed {} jobs since",
                t.by_worker.get(&new).copied().unwrap_or(0)
            ));
            crashed_worker = Some((old, new));
        }

        // 4. Kill back1 mid-run.
        let mark = load.tally();
        let in_flight_at_kill = mark.in_flight();
        (watch.say)(&format!(
            "SIGKILL {BACK1} (os pid {}) with {in_flight_at_kill} jobs in flight",
            back1.os_pid()
        ));
        back1.kill()?;
        watch
            .until(
                "the front's monitor of back1 to fire",
                Some(&load),
                |ev, _| went_down(ev, BACK1, |r| *r == ExitReason::NoConnection),
            )
            .await?;

        // 5. back2 carries the work alone, while the front's lookups of back1 fail.
        let t = watch
            .until(
                "back2 to complete jobs and a lookup of back1 to fail",
                Some(&load),
                |ev, t| {
                    t.done_on(BACK2) >= mark.done_on(BACK2) + k
                        && ev.iter().any(|e| {
                            matches!(e, ClusterEvent::LookupFailed { node, .. } if node == BACK1)
                        })
                },
            )
            .await?;
        (watch.say)(&format!(
            "back1 is down, back2 carries on: {} jobs completed since the kill ({} of them on a \
             retry), {} failed",
            t.done - mark.done,
            t.retried - mark.retried,
            t.failed - mark.failed
        ));

        // 6. Restart back1: same name, same port, a new creation. Should another program have
        // taken the port meanwhile, the new process ends at once; try again a few times.
        let mut tries = 0;
        let back1_after = loop {
            tries += 1;
            let mut restarted = start_back(BACK1, back1_before.addr)?;
            match restarted
                .ready(within, Ready::parse)
                .await
                .map_err(ClusterError::from)
            {
                Ok(ready) => {
                    back1 = restarted; // the old guard's process is already reaped
                    break ready;
                }
                Err(e) if tries < RESTART_TRIES && restarted.has_exited() => {
                    (watch.say)(&format!("restarting {BACK1} failed ({e}); trying again"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        (watch.say)(&format!(
            "restarted {BACK1} at {} (os pid {}, creation {} -> {})",
            back1_after.addr,
            back1.os_pid(),
            back1_before.creation,
            back1_after.creation
        ));
        let new_creation = back1_after.creation;
        let at_rejoin = watch
            .until(
                "the front to find the restarted back1",
                Some(&load),
                |ev, _| joined(ev, BACK1, |p| p.creation() == new_creation).is_some(),
            )
            .await?;
        let t = watch
            .until(
                "the restarted back1 to complete jobs",
                Some(&load),
                |_, t| t.done_on_creation(BACK1, new_creation) >= k,
            )
            .await?;
        (watch.say)(&format!(
            "back1 serves again: {} jobs completed by its new incarnation",
            t.done_on_creation(BACK1, new_creation)
        ));

        // 7. Stop the load; every job returns to its submitter.
        let tally = load.stop(job_deadline + within).await?;
        let restarted_done = tally.done_on_creation(BACK1, new_creation);
        let status = front
            .status()
            .await
            .map_err(|e| ClusterError::Start(format!("the front's status: {e}")))?;
        Ok::<_, ClusterError>(ScenarioReport {
            survivor_done_while_down: at_rejoin.done_on(BACK2) - mark.done_on(BACK2),
            retried_after_kill: at_rejoin.retried - mark.retried,
            tally,
            events: Vec::new(),
            status,
            back1_before: back1_before.clone(),
            back1_after,
            back2: back2_ready.clone(),
            crashed_worker,
            in_flight_at_kill,
            restarted_done,
            elapsed: Duration::ZERO,
        })
    }
    .await;

    front.stop().await;
    front_node.shutdown(Duration::from_secs(1)).await;
    let grace = Duration::from_secs(2);
    let (clean1, clean2) = (back1.stop(grace).await, back2.stop(grace).await);
    while let Ok(event) = watch.rx.try_recv() {
        watch.record(event);
    }
    let events = watch.log;
    say(&format!(
        "stopped the front and both back nodes ({})",
        if clean1 && clean2 {
            "they shut down cleanly"
        } else {
            "some had to be killed"
        }
    ));
    let mut report = outcome?;
    report.events = events;
    report.elapsed = started.elapsed();
    Ok(report)
}
