//! A background worker pipeline that heals itself.
//!
//! A producer feeds jobs to a *dispatcher*, which owns the job queue and the ledger (attempt
//! counts, results, failures) and hands jobs to a pool of workers. The workers are children of a
//! one_for_one [`Supervisor`], each registered under a name (`worker-0`, `worker-1`, …). Some
//! jobs are *poisoned*: the worker that takes one panics. Its call fails with
//! [`CallError::Exited`], the supervisor restarts the worker under the same name, and the
//! dispatcher counts the attempt and queues the job again — or records it as failed once it has
//! had [`PipelineConfig::max_attempts`] attempts. No job is lost: every job ends up exactly once
//! in [`Report::completed`] or [`Report::failed`].
//!
//! Which jobs are poisoned is decided up front by a seeded pseudo-random generator
//! ([`XorShift`]), so runs are reproducible: [`PipelineConfig::plan`] gives the jobs of a run,
//! each with its [`Poison`]: none, *transient* (the first attempt or two crash, a later one
//! succeeds) or *always* (every attempt crashes, so the job ends up failed).
//!
//! ```text
//!  producer ──submit──▶ dispatcher ──process(job, attempt)──▶ worker-i   (one call per slot)
//!                        (queue,          ◀── output / Exited(panic) ──┘
//!                         ledger)                              supervisor: one_for_one,
//!                                                              restarts worker-i by name
//! ```
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::Node;
//! use pipeline::{self, PipelineConfig};
//!
//! pipeline::silence_poison_panics();
//! let node = Node::builder("pipeline-doc@localhost").start().await?;
//! let config = PipelineConfig { jobs: 100, workers: 2, ..PipelineConfig::default() };
//! let report = pipeline::run(&node, &config).await?;
//! assert_eq!(report.completed.len() + report.failed.len(), 100);
//! assert_eq!(report.restarts, report.crashes);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use ergo::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorApi};
use ergo::{ActorRef, CallError, ExitReason, Node, Pid, SpawnError, SpawnOptions};
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::actors::{Dispatcher, DispatcherApi, Worker, WorkerApi};

/// Attempts a job gets by default before it is recorded as failed.
pub const MAX_ATTEMPTS: u32 = 3;

/// How every poisoned worker's panic message starts (see [`silence_poison_panics`]).
pub const POISON_PANIC: &str = "poisoned job";

/// The registered name (and child id) of worker `slot`: `worker-{slot}`.
pub fn worker_name(slot: usize) -> String {
    format!("worker-{slot}")
}

// ---------------------------------------------------------------------------------------------
// Jobs and the poison plan
// ---------------------------------------------------------------------------------------------

/// A tiny deterministic pseudo-random generator (xorshift64*), so a seed gives the same run.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        // One splitmix64 step spreads the seed; xorshift needs a non-zero state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// How a job makes the worker that takes it crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Poison {
    /// Never: the first attempt succeeds.
    None,
    /// The first `crashes` attempts panic; the next one succeeds.
    Transient {
        /// Attempts that panic before one succeeds.
        crashes: u32,
    },
    /// Every attempt panics: the job ends up failed.
    Always,
}

impl Poison {
    /// Whether attempt number `attempt` (1 for the first) makes the worker panic.
    pub fn crashes_on(self, attempt: u32) -> bool {
        match self {
            Poison::None => false,
            Poison::Transient { crashes } => attempt <= crashes,
            Poison::Always => true,
        }
    }

    /// How many worker crashes this job causes when it may have `max_attempts` attempts.
    pub fn crashes_within(self, max_attempts: u32) -> u32 {
        match self {
            Poison::None => 0,
            Poison::Transient { crashes } => crashes.min(max_attempts),
            Poison::Always => max_attempts,
        }
    }
}

/// One unit of work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    /// Unique within a run: `0..jobs`.
    pub id: u64,
    /// The input of the work.
    pub payload: u64,
    /// Rounds of mixing the work does (its cost).
    pub rounds: u32,
    /// Whether (and how often) the worker that takes it crashes.
    pub poison: Poison,
}

impl Job {
    /// Does the work: `rounds` rounds of a 64-bit mix of the payload. Pure, so a test can check
    /// every reported output.
    pub fn run(&self) -> u64 {
        let mut x = self.payload ^ self.id.rotate_left(32);
        for _ in 0..self.rounds {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 31;
        }
        x
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration, report, errors
// ---------------------------------------------------------------------------------------------

/// What to run.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Jobs the producer submits.
    pub jobs: u64,
    /// Worker children (`worker-0..workers`), one job in flight each.
    pub workers: usize,
    /// Seed of the poison plan and the payloads.
    pub seed: u64,
    /// Attempts a job gets before it is recorded as failed (at least 1).
    pub max_attempts: u32,
    /// Jobs, per thousand, that crash their worker on every attempt.
    pub always_poisoned_per_mille: u32,
    /// Jobs, per thousand, that crash their worker on their first attempt(s) only (fewer than
    /// `max_attempts`), then succeed.
    pub transient_poisoned_per_mille: u32,
    /// Cost of each job (see [`Job::run`]).
    pub rounds: u32,
    /// The supervisor's restart intensity: at most this many restarts within
    /// `intensity_period`, or it gives up (and the run fails with
    /// [`PipelineError::WorkersGone`]).
    pub intensity: u32,
    /// The window of `intensity`.
    pub intensity_period: Duration,
    /// How long an attempt waits for its worker to be (re)started before the slot is given up.
    pub worker_wait: Duration,
    /// The dispatcher's mailbox bound: a fast producer waits for room (back-pressure).
    pub mailbox_capacity: usize,
}

impl Default for PipelineConfig {
    /// 2 000 jobs, 4 workers, 3 attempts, 2 % always and 8 % transiently poisoned, an
    /// intensity of 10 000 restarts per second (a poisoned batch is expected, a crash loop is
    /// not).
    fn default() -> Self {
        PipelineConfig {
            jobs: 2_000,
            workers: 4,
            seed: 0x5EED,
            max_attempts: MAX_ATTEMPTS,
            always_poisoned_per_mille: 20,
            transient_poisoned_per_mille: 80,
            rounds: 2_000,
            intensity: 10_000,
            intensity_period: Duration::from_secs(1),
            worker_wait: Duration::from_secs(5),
            mailbox_capacity: 256,
        }
    }
}

impl PipelineConfig {
    /// The jobs of a run, in submission order: ids `0..jobs`, payloads and poison from `seed`.
    pub fn plan(&self) -> Vec<Job> {
        let mut rng = XorShift::new(self.seed);
        (0..self.jobs)
            .map(|id| {
                let roll = rng.below(1_000) as u32;
                let extra = rng.next_u64();
                let poison = if roll < self.always_poisoned_per_mille {
                    Poison::Always
                } else if roll < self.always_poisoned_per_mille + self.transient_poisoned_per_mille
                    && self.max_attempts >= 2
                {
                    // 1 ..= max_attempts - 1 crashes, so a later attempt succeeds.
                    Poison::Transient {
                        crashes: 1 + (extra % u64::from(self.max_attempts - 1)) as u32,
                    }
                } else {
                    Poison::None
                };
                Job {
                    id,
                    payload: rng.next_u64(),
                    rounds: self.rounds,
                    poison,
                }
            })
            .collect()
    }

    fn validate(&self) -> Result<(), PipelineError> {
        let bad = |what: &str| Err(PipelineError::Config(what.to_owned()));
        if self.workers == 0 {
            return bad("at least one worker is needed");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if self.mailbox_capacity == 0 {
            return bad("mailbox_capacity must be at least 1");
        }
        if self.always_poisoned_per_mille + self.transient_poisoned_per_mille > 1_000 {
            return bad("the poisoned shares add up to more than 1000 per mille");
        }
        Ok(())
    }
}

/// A job that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// Attempts it took (the last one succeeded).
    pub attempts: u32,
    /// The worker's result ([`Job::run`]).
    pub output: u64,
    /// The worker incarnation that did it.
    pub worker: Pid,
}

/// A job given up on after its last attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    /// Attempts it had.
    pub attempts: u32,
    /// Why the last one failed (for a poisoned job, `Exited(Panic(..))`).
    pub last_error: CallError,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Report {
    /// Jobs submitted.
    pub total: u64,
    /// Completed jobs by id.
    pub completed: BTreeMap<u64, Completed>,
    /// Failed jobs by id.
    pub failed: BTreeMap<u64, Failed>,
    /// Attempts handed to workers (successful and failed).
    pub attempts: u64,
    /// Attempts whose worker exited before replying (it panicked): seen by the dispatcher.
    pub crashes: u64,
    /// Attempts that failed otherwise (a call timeout, say): zero in a healthy run.
    pub other_errors: u64,
    /// Results for a job already settled (a duplicate): zero when every job ran exactly once.
    pub duplicates: u64,
    /// Worker incarnations the supervisor started beyond the first one of each slot (counted
    /// by the workers' `init`).
    pub restarts: u64,
    /// Restarts per worker slot (`restarts_per_worker[i]` is for `worker-i`).
    pub restarts_per_worker: Vec<u64>,
    /// From the first submission to the last job settled.
    pub elapsed: Duration,
}

impl Report {
    /// Whether every job id `0..total` is in exactly one of `completed` and `failed`.
    pub fn accounts_for_every_job(&self) -> bool {
        (0..self.total).all(|id| self.completed.contains_key(&id) != self.failed.contains_key(&id))
            && (self.completed.len() + self.failed.len()) as u64 == self.total
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(f, "jobs        {}", self.total)?;
        writeln!(f, "completed   {}", self.completed.len())?;
        writeln!(f, "failed      {}", self.failed.len())?;
        writeln!(
            f,
            "accounted   {} (no job lost or duplicated: {})",
            self.completed.len() + self.failed.len(),
            if self.accounts_for_every_job() && self.duplicates == 0 {
                "yes"
            } else {
                "NO"
            }
        )?;
        writeln!(f, "attempts    {}", self.attempts)?;
        writeln!(f, "crashes     {}", self.crashes)?;
        writeln!(
            f,
            "restarts    {} (per worker: {:?})",
            self.restarts, self.restarts_per_worker
        )?;
        if self.other_errors > 0 {
            writeln!(f, "other errors {}", self.other_errors)?;
        }
        write!(
            f,
            "elapsed     {:.1} ms ({:.0} jobs/s)",
            secs * 1e3,
            self.total as f64 / secs.max(1e-9)
        )
    }
}

/// Why a run could not finish.
#[derive(Debug)]
#[non_exhaustive]
pub enum PipelineError {
    /// The configuration is unusable.
    Config(String),
    /// The supervisor or the dispatcher could not start.
    Spawn(SpawnError),
    /// No worker could be reached any more (the supervisor gave up: restart intensity
    /// exceeded); the jobs still queued are listed.
    WorkersGone {
        /// Jobs not settled when the run stopped.
        unsettled: Vec<u64>,
    },
    /// The dispatcher ended before it settled every job.
    DispatcherExited(ExitReason),
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::Config(why) => write!(f, "invalid pipeline configuration: {why}"),
            PipelineError::Spawn(e) => write!(f, "pipeline could not start: {e}"),
            PipelineError::WorkersGone { unsettled } => write!(
                f,
                "no worker left (the supervisor gave up); {} job(s) unsettled",
                unsettled.len()
            ),
            PipelineError::DispatcherExited(reason) => {
                write!(f, "the dispatcher ended early: {reason}")
            }
        }
    }
}

impl std::error::Error for PipelineError {}

impl From<SpawnError> for PipelineError {
    fn from(e: SpawnError) -> Self {
        PipelineError::Spawn(e)
    }
}

/// Keeps the expected panics of poisoned jobs off stderr: installs (once) a panic hook that
/// drops panics whose message starts with [`POISON_PANIC`] and passes every other panic to the
/// hook that was in place.
pub fn silence_poison_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if !message.is_some_and(|m| m.starts_with(POISON_PANIC)) {
                previous(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// Runs the pipeline on `node`: starts the supervised workers (registered as `worker-0..`) and
/// the dispatcher, feeds them `config.plan()` from a producer task, waits until every job is
/// settled and the supervisor has restarted every crashed worker, then stops them all.
///
/// Only one pipeline can run on a node at a time (the worker names are fixed).
///
/// # Errors
///
/// [`PipelineError::Config`] for an unusable configuration, [`PipelineError::Spawn`] if the
/// actors cannot start (a worker name is taken), [`PipelineError::WorkersGone`] if the
/// supervisor gives up, [`PipelineError::DispatcherExited`] if the dispatcher ends early.
pub async fn run(node: &Node, config: &PipelineConfig) -> Result<Report, PipelineError> {
    config.validate()?;
    let starts: Arc<[AtomicU64]> = (0..config.workers).map(|_| AtomicU64::new(0)).collect();
    let supervisor = (0..config.workers).fold(
        Supervisor::new(Strategy::OneForOne).intensity(config.intensity, config.intensity_period),
        |sup, slot| {
            let starts = starts.clone();
            sup.child(
                ChildSpec::new(worker_name(slot), move || Worker::new(slot, starts.clone()))
                    .register(worker_name(slot)),
            )
        },
    );
    let supervisor = node.spawn(supervisor).await?;

    let (done_tx, done_rx) = oneshot::channel();
    let dispatcher = Dispatcher::new(
        supervisor.clone(),
        config.workers,
        config.max_attempts,
        config.worker_wait,
        done_tx,
    );
    let dispatcher = match node
        .spawn_opts(
            dispatcher,
            SpawnOptions::new().mailbox_capacity(config.mailbox_capacity),
        )
        .await
    {
        Ok(d) => d,
        Err(e) => {
            stop_supervisor(&supervisor).await;
            return Err(e.into());
        }
    };

    let start = Instant::now();
    let producer = tokio::spawn(produce(dispatcher.clone(), config.plan()));
    let outcome = match done_rx.await {
        Ok(ledger) => ledger,
        Err(_) => Err(PipelineError::DispatcherExited(dispatcher.wait().await)),
    };
    let elapsed = start.elapsed();
    // The producer has finished (the dispatcher saw `close`) unless the run failed early.
    producer.abort();
    let _ = producer.await;
    dispatcher.stop(ExitReason::Normal);
    dispatcher.wait().await;
    let ledger = match outcome {
        Ok(ledger) => ledger,
        Err(e) => {
            stop_supervisor(&supervisor).await;
            return Err(e);
        }
    };

    // The last crashes may still be being restarted: wait (bounded) until every crash has its
    // replacement and every child runs again.
    let expected_starts = config.workers as u64 + ledger.crashes;
    let started =
        |starts: &[AtomicU64]| starts.iter().map(|s| s.load(Ordering::SeqCst)).sum::<u64>();
    let deadline = Instant::now() + config.worker_wait;
    while Instant::now() < deadline {
        let all_running = supervisor
            .which_children()
            .await
            .is_ok_and(|children| children.iter().all(|c| c.pid.is_some()));
        if all_running && started(&starts) >= expected_starts {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let restarts_per_worker: Vec<u64> = starts
        .iter()
        .map(|s| s.load(Ordering::SeqCst).saturating_sub(1))
        .collect();
    stop_supervisor(&supervisor).await;

    Ok(Report {
        total: config.jobs,
        completed: ledger.completed,
        failed: ledger.failed,
        attempts: ledger.attempts,
        crashes: ledger.crashes,
        other_errors: ledger.other_errors,
        duplicates: ledger.duplicates,
        restarts: restarts_per_worker.iter().sum(),
        restarts_per_worker,
        elapsed,
    })
}

/// The producer: submits every job in order, then tells the dispatcher there are no more.
async fn produce(dispatcher: ActorRef<Dispatcher>, jobs: Vec<Job>) {
    for job in jobs {
        if dispatcher.submit(job).await.is_err() {
            return; // the dispatcher ended; `run` reports why
        }
    }
    let _ = dispatcher.close().await;
}

async fn stop_supervisor(supervisor: &ActorRef<Supervisor>) {
    supervisor.stop(ExitReason::Shutdown);
    // Idle workers stop at once; their shutdown timeout bounds this anyway.
    supervisor.wait().await;
}

/// What the dispatcher hands back when every job is settled.
#[derive(Debug, Default)]
struct Ledger {
    completed: BTreeMap<u64, Completed>,
    failed: BTreeMap<u64, Failed>,
    attempts: u64,
    crashes: u64,
    other_errors: u64,
    duplicates: u64,
}

/// How one attempt ended.
#[derive(Debug)]
enum Outcome {
    /// The worker replied.
    Done { output: u64, worker: Pid },
    /// The call failed: the worker crashed (`Exited`) or did not answer in time.
    Failed { error: CallError, worker: Pid },
    /// No worker was reachable under the slot's name within `worker_wait`, or the supervisor
    /// has ended: the job never reached a worker.
    NoWorker,
}

/// One attempt of `job` on the worker registered as `name`, from its own task so the dispatcher
/// keeps serving.
///
/// The worker is looked up by name at every attempt, so a restarted one is found. `crashed` is
/// the incarnation that crashed on this slot's previous attempt: it may still hold the name
/// while it ends (its name is released only once its exit is complete), and a call queued to it
/// then would fail with *its* panic although this job never ran. So the lookup waits until the
/// name points at another process.
async fn try_on_worker(
    node: Node,
    supervisor: ActorRef<Supervisor>,
    name: Arc<str>,
    crashed: Option<Pid>,
    job: Job,
    attempt: u32,
    wait: Duration,
) -> (Job, Outcome) {
    let deadline = Instant::now() + wait;
    let mut polls = 0u32;
    loop {
        let found = node
            .whereis::<Worker>(&name)
            .filter(|w| Some(w.pid()) != crashed);
        if let Some(worker) = found {
            let pid = worker.pid();
            match worker.process(job, attempt).await {
                Ok(output) => {
                    return (
                        job,
                        Outcome::Done {
                            output,
                            worker: pid,
                        },
                    )
                }
                // The process had ended before the job reached it: not delivered. Look again.
                Err(CallError::NoProc) => {}
                Err(error) => {
                    return (job, Outcome::Failed { error, worker: pid });
                }
            }
        }
        if !supervisor.is_alive() || Instant::now() >= deadline {
            return (job, Outcome::NoWorker);
        }
        // A restart takes microseconds: spin politely first, then back off to the timer.
        polls += 1;
        if polls < 64 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

mod actors;
