//! A distributed backend whose nodes can crash and restart without taking the system down.
//!
//! Two kinds of node share a cookie and talk over loopback:
//!
//! - **Back nodes** (`back1@localhost`, `back2@localhost`) each run one [`Worker`] under a
//!   one_for_one supervisor, registered as [`WORKER`]. A worker that crashes is restarted by its
//!   node's supervisor; a back node that dies is restarted by whoever started it, with the same
//!   name and port and a new creation. [`run_back_node`] is a back node's whole life as an OS
//!   process, [`BackProcess`] the guard its parent holds.
//! - **The front node** runs a [`Front`]: a dispatcher actor looks each back node's worker up by
//!   name, monitors it and, once the monitor has fired, looks it up again (polling with backoff,
//!   a bounded number of times) so that a restarted worker or back node rejoins on its own.
//!   [`Front::submit`] routes a job to a live worker (round robin) and tries it again on another
//!   one when the call fails because the worker or its node went away.
//!
//! ```text
//!  submitters ──submit(job)──▶ Front ──pick──▶ dispatcher  (lookup, monitor, on_down, relookup)
//!       ▲                        │
//!       └─── Completed / JobError┴──process(job)──▶ worker@back1 | worker@back2
//!                                                  (each under its node's supervisor)
//! ```
//!
//! [`run_scenario`] is the whole story with real OS processes (shared by `examples/cluster.rs`
//! and `tests/cluster.rs`): two back nodes serve, one worker crashes and is restarted by its
//! supervisor, one back node is SIGKILLed mid-run while the other carries the work, then it is
//! restarted and serves again.
//!
//! # Delivery
//!
//! Every submitted job ends once for its submitter: [`Completed`] or a [`JobError`]. A call that
//! fails with `NoConnection`, `NoProc`, `Exited` or `Timeout` is tried again on another worker,
//! up to [`FrontConfig::max_attempts`] attempts within [`FrontConfig::job_deadline`]; a job the
//! worker refuses ([`JobError::Rejected`]) is not. A timed-out call may still have been served,
//! so a job can run twice: delivery is at least once, which is why jobs are pure.
//!
//! # Failure
//!
//! - A crashed worker: the calls queued at it fail with `Exited(reason)`, the front's monitor
//!   fires with that reason, the back node's supervisor starts a new worker under the same name
//!   and the front's next lookup finds it.
//! - A dead back node: the front's connection closes, every pending call fails with
//!   `NoConnection`, the monitor fires once with [`ExitReason::NoConnection`], and the front
//!   looks the node up again with backoff until the node is back (or gives up after
//!   [`FrontConfig::relookup_attempts`] failed lookups).
//!
//! # Examples
//!
//! One back node and a front in one process (the scenario runs them as separate processes):
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::Node;
//! use ergo_workspace::cluster::{self, BackConfig, BackNode, Front, FrontConfig, Job};
//!
//! let cookie = cluster::random_cookie();
//! let back = BackNode::start(&BackConfig {
//!     name: "doc-back@localhost".into(),
//!     listen: "127.0.0.1:0".parse()?,
//!     cookie: cookie.clone(),
//! })
//! .await?;
//! let front_node = Node::builder("doc-front@localhost")
//!     .cookie(&cookie)
//!     .route("doc-back@localhost", back.node().listen_addr().unwrap().to_string())
//!     .start()
//!     .await?;
//! let (front, _events) = Front::start(
//!     &front_node,
//!     FrontConfig::new(["doc-back@localhost".to_string()]),
//! )
//! .await?;
//! let job = Job::new(7, 100, 0);
//! let completed = front.submit(job.clone()).await?;
//! assert_eq!(Ok(completed.done.output), job.output());
//! assert_eq!(&*completed.done.worker.node_name(), "doc-back@localhost");
//! assert!(front.submit(Job::invalid(8)).await.is_err());
//! # front.stop().await;
//! # back.stop().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use ergo::prelude::*;
use ergo::supervisor::{ChildSpec, Strategy, Supervisor};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::actors::{Dispatcher, DispatcherApi};

/// The name every back node registers its worker under.
pub const WORKER: &str = "worker";

/// The environment variable that hands the cookie to a back node started as a child process
/// (the command line is visible to every user of the machine; the environment is not).
pub const COOKIE_ENV: &str = "ERGO_CLUSTER_COOKIE";

/// The start of the line a back node prints once it serves:
/// `cluster-back-ready name=NODE addr=IP:PORT creation=N`.
pub const READY: &str = "cluster-back-ready";

/// How the panic message of a deliberate worker crash starts (see [`silence_crash_panics`]).
pub const CRASH_PANIC: &str = "worker crash requested";

/// The most rounds a job may ask for; a job asking for more (or for none) is rejected.
pub const MAX_ROUNDS: u32 = 1_000_000;

/// The longest a job may make its worker wait (milliseconds).
pub const MAX_HOLD_MS: u32 = 1_000;

// ---------------------------------------------------------------------------------------------
// Jobs and the worker
// ---------------------------------------------------------------------------------------------

/// One unit of work: `rounds` rounds of a 64-bit mix of `payload`, after holding the worker for
/// `hold_ms` milliseconds (standing for I/O, so that calls are in flight when a node dies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Unique within a run.
    pub id: u64,
    /// The input of the work.
    pub payload: u64,
    /// Rounds of mixing (`1..=MAX_ROUNDS`).
    pub rounds: u32,
    /// How long the worker waits before doing the work (`..=MAX_HOLD_MS`).
    pub hold_ms: u32,
}

impl Job {
    /// A valid job `id` with a payload derived from the id.
    pub fn new(id: u64, rounds: u32, hold_ms: u32) -> Job {
        Job {
            id,
            payload: mix(id ^ 0xC1A5_7E12),
            rounds,
            hold_ms,
        }
    }

    /// A job every worker rejects (it asks for no work): its submitter gets
    /// [`JobError::Rejected`].
    pub fn invalid(id: u64) -> Job {
        Job {
            rounds: 0,
            ..Job::new(id, 1, 0)
        }
    }

    /// The job's result, computed here: what a worker must return for it. Pure.
    ///
    /// # Errors
    ///
    /// Why a worker rejects the job: no rounds, too many, or too long a hold.
    pub fn output(&self) -> Result<u64, String> {
        if self.rounds == 0 || self.rounds > MAX_ROUNDS {
            return Err(format!(
                "job {} asks for {} rounds (1..={MAX_ROUNDS} allowed)",
                self.id, self.rounds
            ));
        }
        if self.hold_ms > MAX_HOLD_MS {
            return Err(format!(
                "job {} holds for {} ms (at most {MAX_HOLD_MS})",
                self.id, self.hold_ms
            ));
        }
        let mut x = self.payload ^ self.id.rotate_left(32);
        for _ in 0..self.rounds {
            x = mix(x);
        }
        Ok(x)
    }
}

/// One splitmix64 step.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A worker's answer to a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The job's id.
    pub job: u64,
    /// [`Job::output`].
    pub output: u64,
    /// The worker incarnation that did it (its node and the node's creation included).
    pub worker: Pid,
    /// Jobs this worker incarnation has done, this one included.
    pub served: u64,
}

/// The back nodes' worker: does jobs; run under a supervisor and registered as [`WORKER`].
#[derive(Debug, Default)]
pub struct Worker {
    served: u64,
}

#[actor(remote)]
impl Worker {
    /// Does `job` and returns its output, or the reason it refuses the job.
    #[handle]
    async fn process(&mut self, job: Job, ctx: &mut Ctx<Self>) -> Result<Done, String> {
        // Check before holding the worker: a refused job costs nothing.
        job.output()?;
        if job.hold_ms > 0 {
            tokio::time::sleep(Duration::from_millis(job.hold_ms.into())).await;
        }
        let output = job.output()?;
        self.served += 1;
        Ok(Done {
            job: job.id,
            output,
            worker: ctx.pid(),
            served: self.served,
        })
    }

    /// Crashes this worker on purpose (a panic whose message starts with [`CRASH_PANIC`]); its
    /// supervisor starts a new one under the same name.
    #[handle]
    fn crash(&mut self, ctx: &mut Ctx<Self>) {
        panic!("{CRASH_PANIC} on {}", ctx.pid());
    }
}

/// Keeps the expected panics of `Worker::crash` off stderr: installs (once) a panic hook that
/// drops panics whose message starts with [`CRASH_PANIC`] and passes every other panic on.
pub fn silence_crash_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if !message.is_some_and(|m| m.starts_with(CRASH_PANIC)) {
                previous(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a cluster could not be started or driven.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterError {
    /// A node, or an actor on it, could not start; or the configuration is unusable.
    Start(String),
    /// Starting, reading or stopping a back node's OS process failed.
    Process {
        /// The back node.
        node: String,
        /// What went wrong.
        error: io::Error,
    },
    /// A back node's process ended, or did not say it was ready, in time.
    NotReady {
        /// The back node.
        node: String,
        /// Why.
        why: String,
    },
    /// A step did not happen within its timeout.
    Timeout(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Start(why) => write!(f, "cannot start: {why}"),
            ClusterError::Process { node, error } => {
                write!(f, "the process of back node `{node}`: {error}")
            }
            ClusterError::NotReady { node, why } => {
                write!(f, "back node `{node}` is not ready: {why}")
            }
            ClusterError::Timeout(what) => write!(f, "timed out waiting for: {what}"),
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Process { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Why a submitted job did not complete. Every job that is not [`Completed`] ends with one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The worker refused the job (its own error, the same on every worker: not retried).
    Rejected(String),
    /// Every attempt failed (the workers or their nodes went away, or did not answer in time).
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        last: CallError,
    },
    /// No live worker was known until the job's deadline.
    NoBackend {
        /// Attempts made before (all failed).
        attempts: u32,
        /// Why the last of them failed, if there was one.
        last: Option<CallError>,
    },
    /// The front's dispatcher has ended (the front was stopped).
    FrontDown,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Rejected(why) => write!(f, "rejected: {why}"),
            JobError::Exhausted { attempts, last } => {
                write!(
                    f,
                    "failed after {attempts} attempt(s), the last with: {last}"
                )
            }
            JobError::NoBackend { attempts, last } => {
                write!(
                    f,
                    "no live back node until the deadline ({attempts} attempt(s)"
                )?;
                match last {
                    Some(last) => write!(f, ", the last failed with: {last})"),
                    None => f.write_str(")"),
                }
            }
            JobError::FrontDown => f.write_str("the front has stopped"),
        }
    }
}

impl std::error::Error for JobError {}

// ---------------------------------------------------------------------------------------------
// Back nodes
// ---------------------------------------------------------------------------------------------

/// What a back node needs: its name, where it listens, the cluster's cookie.
#[derive(Clone, Debug)]
pub struct BackConfig {
    /// The node's name (`name@host`).
    pub name: String,
    /// Where it accepts peers (a loopback address; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The cluster's cookie.
    pub cookie: String,
}

/// A running back node: a node with a one_for_one supervisor running a [`Worker`] registered as
/// [`WORKER`].
pub struct BackNode {
    node: Node,
    supervisor: ActorRef<Supervisor>,
}

impl BackNode {
    /// Starts the node and its supervised worker.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Start`] if the node cannot listen (the port is taken, say) or the
    /// supervisor cannot start.
    pub async fn start(config: &BackConfig) -> Result<BackNode, ClusterError> {
        let node = Node::builder(&config.name)
            .cookie(&config.cookie)
            .listen(config.listen.to_string())
            .heartbeat(HEARTBEAT, HEARTBEAT_TIMEOUT)
            .start()
            .await
            .map_err(|e| ClusterError::Start(format!("back node `{}`: {e}", config.name)))?;
        // A crash loop (more than 10 restarts in 1 s) takes the worker down for good; the front
        // then treats the node as down.
        let tree = Supervisor::new(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(1))
            .child(ChildSpec::new(WORKER, Worker::default).register(WORKER));
        let supervisor = node
            .spawn(tree)
            .await
            .map_err(|e| ClusterError::Start(format!("supervisor of `{}`: {e}", config.name)))?;
        Ok(BackNode { node, supervisor })
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The line announcing that this node serves (see [`READY`]).
    pub fn ready_line(&self) -> String {
        let addr = self
            .node
            .listen_addr()
            .map_or_else(|| "none".to_string(), |a| a.to_string());
        format!(
            "{READY} name={} addr={addr} creation={}",
            self.node.name(),
            self.node.creation()
        )
    }

    /// Stops the supervisor (and so the worker), then the node.
    pub async fn stop(self) {
        self.supervisor.stop(ExitReason::Shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.supervisor.wait()).await;
        self.node.shutdown(Duration::from_secs(1)).await;
    }
}

/// A back node's whole life as an OS process: starts a [`BackNode`], prints its
/// [`ready line`](BackNode::ready_line) on stdout, serves until stdin reaches its end (the
/// parent closed it, or died) or Ctrl-C, then stops.
///
/// # Errors
///
/// As [`BackNode::start`].
pub async fn run_back_node(config: &BackConfig) -> Result<(), ClusterError> {
    silence_crash_panics();
    let back = BackNode::start(config).await?;
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{}", back.ready_line());
        let _ = out.flush();
    }
    // A plain thread, not `spawn_blocking`: a read blocked on stdin must not hold the runtime's
    // shutdown up after Ctrl-C.
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        });
    if watcher.is_err() {
        back.stop().await;
        return Err(ClusterError::Start("cannot watch stdin".into()));
    }
    tokio::select! {
        _ = eof_rx => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    back.stop().await;
    Ok(())
}

/// What a back node said once it served (parsed from its [`READY`] line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    /// The node's name.
    pub node: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// This incarnation's creation.
    pub creation: u32,
}

impl Ready {
    /// Parses a [`READY`] line (the marker may follow other output on the same line, as a test
    /// harness's `test name ... `); `None` for any other line.
    pub fn parse(line: &str) -> Option<Ready> {
        let rest = &line[line.find(READY)? + READY.len()..];
        let (mut node, mut addr, mut creation) = (None, None, None);
        for field in rest.split_whitespace() {
            match field.split_once('=')? {
                ("name", v) => node = Some(v.to_string()),
                ("addr", v) => addr = v.parse().ok(),
                ("creation", v) => creation = v.parse().ok(),
                _ => {}
            }
        }
        Some(Ready {
            node: node?,
            addr: addr?,
            creation: creation?,
        })
    }
}

/// A back node running as a child OS process. Dropping it kills the process (SIGKILL on
/// unix) and reaps it, so no child outlives its guard; and since the child's stdin is a pipe
/// from this guard, a child whose parent died without dropping it (SIGKILL) stops on its own.
pub struct BackProcess {
    node: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    reaped: bool,
}

impl BackProcess {
    /// Starts `command` (which must run [`run_back_node`] for node `node`), handing it `cookie`
    /// through [`COOKIE_ENV`]; its stdin and stdout become pipes to this guard, its stderr is
    /// inherited.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Process`] if the process cannot start.
    pub fn spawn(mut command: Command, node: &str, cookie: &str) -> Result<Self, ClusterError> {
        let failed = |error| ClusterError::Process {
            node: node.to_string(),
            error,
        };
        command
            .env(COOKIE_ENV, cookie)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().map_err(failed)?;
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take();
        let guard = BackProcess {
            node: node.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            reaped: false,
        };
        if let Some(stdout) = stdout {
            // Forwards the child's stdout line by line; ends with it.
            std::thread::Builder::new()
                .name(format!("{node}-stdout"))
                .spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                })
                .map_err(failed)?; // the guard, dropped, kills the child
        }
        Ok(guard)
    }

    /// The back node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The OS process id.
    pub fn os_pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has ended.
    pub fn has_exited(&mut self) -> bool {
        self.reaped || matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits (at most `within`) for the child's [`READY`] line, skipping any other output.
    ///
    /// # Errors
    ///
    /// [`ClusterError::NotReady`] if the process ends first or the time runs out.
    pub async fn ready(&mut self, within: Duration) -> Result<Ready, ClusterError> {
        let deadline = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(ready) = Ready::parse(&line) {
                        return Ok(ready);
                    }
                }
                Ok(None) => {
                    let status = self
                        .child
                        .try_wait()
                        .ok()
                        .flatten()
                        .map_or_else(|| "closed its stdout".to_string(), |s| s.to_string());
                    return Err(ClusterError::NotReady {
                        node: self.node.clone(),
                        why: format!("the process ended before it was ready ({status})"),
                    });
                }
                Err(_) => {
                    return Err(ClusterError::NotReady {
                        node: self.node.clone(),
                        why: format!("no ready line within {within:?}"),
                    })
                }
            }
        }
    }

    /// Kills the process (SIGKILL on unix: no clean-up runs in it) and reaps it.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Process`] if it cannot be killed or reaped.
    pub fn kill(&mut self) -> Result<(), ClusterError> {
        if self.reaped {
            return Ok(());
        }
        let killed = self.child.kill();
        self.stdin = None;
        let reaped = self.child.wait();
        self.reaped = true;
        killed
            .and(reaped.map(|_| ()))
            .map_err(|error| ClusterError::Process {
                node: self.node.clone(),
                error,
            })
    }

    /// Stops the process cleanly: closes its stdin (a back node then shuts down), waits for it
    /// up to `grace`, then kills it. Returns whether it ended by itself.
    pub async fn stop(&mut self, grace: Duration) -> bool {
        if self.reaped {
            return true;
        }
        self.stdin = None;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.reaped = true;
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.kill();
        false
    }
}

impl Drop for BackProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A fresh cookie: 32 random bytes from the OS (`/dev/urandom`), in hex. Where that file is
/// missing, 256 bits of SipHash output keyed by the standard library's per-process random keys.
pub fn random_cookie() -> String {
    let mut bytes = [0u8; 32];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        use std::hash::{BuildHasher, Hasher};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(now.as_nanos());
            h.write_u32(std::process::id());
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The front
// ---------------------------------------------------------------------------------------------

/// How often an idle connection between nodes sends a heartbeat.
const HEARTBEAT: Duration = Duration::from_millis(250);
/// How long a silent peer is given before its link is taken down (a SIGKILLed peer's sockets
/// close at once; this is for a peer that hangs).
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a submitter asks again for a worker while none is live.
const NO_BACKEND_POLL: Duration = Duration::from_millis(10);

/// How the front routes and heals.
#[derive(Clone, Debug)]
pub struct FrontConfig {
    /// The back nodes (`name@host`); the front node needs a route to each.
    pub backs: Vec<String>,
    /// Attempts a job gets (at least 1).
    pub max_attempts: u32,
    /// Timeout of one attempt.
    pub call_timeout: Duration,
    /// The most time a job may take, attempts and waits for a live worker included.
    pub job_deadline: Duration,
    /// The wait before the first lookup after a monitor fired; it doubles per failed lookup...
    pub relookup_first: Duration,
    /// ...up to this.
    pub relookup_max: Duration,
    /// Failed lookups in a row after which the front gives a back node up.
    pub relookup_attempts: u32,
}

impl FrontConfig {
    /// The defaults for `backs`: 3 attempts of at most 2 s each within 10 s; lookups again after
    /// 100 ms, doubling up to 1 s, given up after 60 failures in a row (about a minute).
    pub fn new(backs: impl IntoIterator<Item = String>) -> Self {
        FrontConfig {
            backs: backs.into_iter().collect(),
            max_attempts: 3,
            call_timeout: Duration::from_secs(2),
            job_deadline: Duration::from_secs(10),
            relookup_first: Duration::from_millis(100),
            relookup_max: Duration::from_secs(1),
            relookup_attempts: 60,
        }
    }

    /// The wait before lookup number `failures + 1` of a back node.
    fn relookup_delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.min(16);
        self.relookup_first
            .saturating_mul(factor)
            .min(self.relookup_max)
    }
}

/// What the front's dispatcher saw happen to the back nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A back node's worker was found and is monitored; jobs go to it.
    Joined {
        /// The back node.
        node: String,
        /// Its worker (the pid carries the node's creation).
        worker: Pid,
        /// How many times this back node has joined (1 the first time).
        joins: u32,
    },
    /// The monitor of a back node's worker fired: no jobs go there until it joins again.
    Down {
        /// The back node.
        node: String,
        /// The worker that went away.
        worker: Pid,
        /// Why: [`ExitReason::NoConnection`] when the node was lost, the worker's own reason
        /// (a panic, say) when only the worker ended.
        reason: ExitReason,
    },
    /// A lookup failed; the next one is scheduled.
    LookupFailed {
        /// The back node.
        node: String,
        /// Failed lookups in a row.
        failures: u32,
        /// What went wrong.
        error: String,
        /// When the next lookup runs.
        retry_in: Duration,
    },
    /// Too many lookups failed in a row: the front no longer looks for this back node.
    GaveUp {
        /// The back node.
        node: String,
        /// Failed lookups in a row.
        failures: u32,
    },
}

impl fmt::Display for ClusterEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterEvent::Joined {
                node,
                worker,
                joins,
            } => {
                let again = if *joins > 1 { " again" } else { "" };
                write!(f, "{node} joined{again}: worker {worker} monitored")
            }
            ClusterEvent::Down {
                node,
                worker,
                reason,
            } => write!(f, "{node} down: monitor of {worker} fired ({reason})"),
            ClusterEvent::LookupFailed {
                node,
                failures,
                error,
                retry_in,
            } => write!(
                f,
                "{node}: lookup {failures} failed ({error}); next in {} ms",
                retry_in.as_millis()
            ),
            ClusterEvent::GaveUp { node, failures } => {
                write!(f, "{node}: given up after {failures} failed lookups")
            }
        }
    }
}

/// One back node as the front sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackStatus {
    /// The back node.
    pub node: String,
    /// Its monitored worker, when it is up.
    pub worker: Option<Pid>,
    /// How many times it has joined.
    pub joins: u32,
    /// How many times its monitor has fired, by kind of reason (`noconnection`, `panic`, …).
    pub downs: BTreeMap<String, u32>,
    /// Whether the front has given it up.
    pub gave_up: bool,
}

/// A short name for an exit reason's kind: `panic` or `error` without the message, the
/// reason's own name otherwise (`noconnection`, `killed`, …).
fn reason_kind(reason: &ExitReason) -> String {
    match reason {
        ExitReason::Panic(_) => "panic".into(),
        ExitReason::Error(_) => "error".into(),
        other => other.to_string(),
    }
}

/// A job that completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The worker's answer.
    pub done: Done,
    /// Attempts it took (more than 1 when a worker or node went away under it).
    pub attempts: u32,
}

/// The front: routes jobs to the back nodes' workers and heals its view of them. Cheap to
/// clone (all clones share one dispatcher).
#[derive(Clone)]
pub struct Front {
    dispatcher: ActorRef<Dispatcher>,
    config: Arc<FrontConfig>,
}

impl Front {
    /// Starts the dispatcher on `node`, which looks every back node up at once (and again with
    /// backoff until found). Returns the front and the stream of [`ClusterEvent`]s (unbounded;
    /// drop it if unwanted).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Start`] for an unusable configuration (no back node, no attempt) or if
    /// the dispatcher cannot start.
    pub async fn start(
        node: &Node,
        config: FrontConfig,
    ) -> Result<(Front, mpsc::UnboundedReceiver<ClusterEvent>), ClusterError> {
        if config.backs.is_empty() || config.max_attempts == 0 {
            return Err(ClusterError::Start(
                "a front needs at least one back node and one attempt per job".into(),
            ));
        }
        let config = Arc::new(config);
        let (events, rx) = mpsc::unbounded_channel();
        let dispatcher = node
            .spawn(Dispatcher::new(config.clone(), events))
            .await
            .map_err(|e| ClusterError::Start(format!("dispatcher: {e}")))?;
        Ok((Front { dispatcher, config }, rx))
    }

    /// Runs `job` on a live worker, trying again on another one when a worker or its node
    /// goes away (see the module's `# Delivery`).
    ///
    /// # Errors
    ///
    /// A [`JobError`]: the job was refused, every attempt failed, no worker was live until the
    /// deadline, or the front has stopped.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the job; an attempt already sent may still run.
    pub async fn submit(&self, job: Job) -> Result<Completed, JobError> {
        let deadline = Instant::now() + self.config.job_deadline;
        let mut attempts = 0u32;
        let mut failed_on: Vec<Pid> = Vec::new();
        let mut last: Option<CallError> = None;
        loop {
            let picked = self
                .dispatcher
                .pick(failed_on.clone())
                .await
                .map_err(|_| JobError::FrontDown)?;
            let Some(worker) = picked else {
                if Instant::now() >= deadline {
                    return Err(JobError::NoBackend { attempts, last });
                }
                tokio::time::sleep(NO_BACKEND_POLL).await;
                continue;
            };
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = self
                .config
                .call_timeout
                .min(left)
                .max(Duration::from_millis(1));
            match worker.process(job.clone()).timeout(timeout).await {
                Ok(Ok(done)) => return Ok(Completed { done, attempts }),
                Ok(Err(why)) => return Err(JobError::Rejected(why)),
                // The worker or its node went away (or did not answer): try another worker.
                Err(error) => {
                    if attempts >= self.config.max_attempts || Instant::now() >= deadline {
                        return Err(JobError::Exhausted {
                            attempts,
                            last: error,
                        });
                    }
                    failed_on.push(worker.pid());
                    last = Some(error);
                }
            }
        }
    }

    /// The back nodes as the front sees them, in configuration order.
    ///
    /// # Errors
    ///
    /// A [`CallError`] if the front has stopped.
    pub async fn status(&self) -> Result<Vec<BackStatus>, CallError> {
        self.dispatcher.status().await
    }

    /// Stops the dispatcher (jobs submitted afterwards fail with [`JobError::FrontDown`]).
    pub async fn stop(&self) {
        self.dispatcher.stop(ExitReason::Shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.dispatcher.wait()).await;
    }
}

/// The dispatcher. Private: its generated message enum and API trait stay inside.
mod actors {
    use super::*;
    use ergo::net::NetError;

    enum State {
        /// A lookup is running or scheduled.
        LookingUp { failures: u32 },
        /// The worker is monitored and gets jobs.
        Up {
            worker: ActorRef<Worker>,
            monitor: MonitorRef,
        },
        /// Too many lookups failed in a row.
        GaveUp,
    }

    struct Back {
        node: Arc<str>,
        state: State,
        joins: u32,
        downs: BTreeMap<String, u32>,
    }

    /// Knows which back nodes' workers are live: looks them up, monitors them, looks again
    /// after a monitor fired; hands out workers round robin.
    pub(super) struct Dispatcher {
        config: Arc<FrontConfig>,
        backs: Vec<Back>,
        next: usize,
        events: mpsc::UnboundedSender<ClusterEvent>,
    }

    impl Dispatcher {
        pub(super) fn new(
            config: Arc<FrontConfig>,
            events: mpsc::UnboundedSender<ClusterEvent>,
        ) -> Self {
            let backs = config
                .backs
                .iter()
                .map(|node| Back {
                    node: Arc::from(node.as_str()),
                    state: State::LookingUp { failures: 0 },
                    joins: 0,
                    downs: BTreeMap::new(),
                })
                .collect();
            Dispatcher {
                config,
                backs,
                next: 0,
                events,
            }
        }

        fn emit(&self, event: ClusterEvent) {
            let _ = self.events.send(event);
        }

        /// Looks back node `back`'s worker up, from a task (the mailbox keeps serving).
        fn look_up(&mut self, back: usize, ctx: &mut Ctx<Self>) {
            let node = ctx.node().clone();
            let name = self.backs[back].node.clone();
            ctx.spawn_task(
                async move { node.lookup::<Worker>(WORKER, &name).await },
                move |result| DispatcherMsg::LookedUp { back, result },
            );
        }
    }

    #[actor]
    impl Dispatcher {
        #[init]
        fn init(&mut self, ctx: &mut Ctx<Self>) {
            for back in 0..self.backs.len() {
                self.look_up(back, ctx);
            }
        }

        /// A live worker, round robin, other than those in `avoid` (the ones a job already
        /// failed on); `None` when there is none.
        #[handle]
        fn pick(&mut self, avoid: Vec<Pid>) -> Option<ActorRef<Worker>> {
            let n = self.backs.len();
            for step in 0..n {
                let i = (self.next + step) % n;
                if let State::Up { worker, .. } = &self.backs[i].state {
                    if !avoid.contains(&worker.pid()) {
                        self.next = (i + 1) % n;
                        return Some(worker.clone());
                    }
                }
            }
            None
        }

        /// The back nodes as seen from here.
        #[handle]
        fn status(&self) -> Vec<BackStatus> {
            self.backs
                .iter()
                .map(|b| BackStatus {
                    node: b.node.to_string(),
                    worker: match &b.state {
                        State::Up { worker, .. } => Some(worker.pid()),
                        _ => None,
                    },
                    joins: b.joins,
                    downs: b.downs.clone(),
                    gave_up: matches!(b.state, State::GaveUp),
                })
                .collect()
        }

        /// A lookup ended (sent by its task).
        #[handle]
        fn looked_up(
            &mut self,
            back: usize,
            result: Result<ActorRef<Worker>, NetError>,
            ctx: &mut Ctx<Self>,
        ) {
            let State::LookingUp { failures } = self.backs[back].state else {
                return; // only one lookup runs per back node; nothing else is expected
            };
            match result {
                Ok(worker) => {
                    let monitor = ctx.monitor(worker.pid());
                    let b = &mut self.backs[back];
                    b.joins += 1;
                    let event = ClusterEvent::Joined {
                        node: b.node.to_string(),
                        worker: worker.pid(),
                        joins: b.joins,
                    };
                    b.state = State::Up { worker, monitor };
                    self.emit(event);
                }
                Err(error) => {
                    let failures = failures + 1;
                    let node = self.backs[back].node.to_string();
                    if failures >= self.config.relookup_attempts {
                        self.backs[back].state = State::GaveUp;
                        self.emit(ClusterEvent::GaveUp { node, failures });
                        return;
                    }
                    self.backs[back].state = State::LookingUp { failures };
                    let retry_in = self.config.relookup_delay(failures);
                    ctx.send_after(retry_in, DispatcherMsg::LookUpAgain { back });
                    self.emit(ClusterEvent::LookupFailed {
                        node,
                        failures,
                        error: error.to_string(),
                        retry_in,
                    });
                }
            }
        }

        /// Runs the next lookup of back node `back` (a timer).
        #[handle]
        fn look_up_again(&mut self, back: usize, ctx: &mut Ctx<Self>) {
            if matches!(self.backs[back].state, State::LookingUp { .. }) {
                self.look_up(back, ctx);
            }
        }

        /// A worker's monitor fired: stop routing to it and look its back node up again.
        #[on_down]
        fn worker_down(&mut self, down: Down, ctx: &mut Ctx<Self>) {
            let Some(back) = self.backs.iter().position(
                |b| matches!(&b.state, State::Up { monitor, .. } if *monitor == down.monitor),
            ) else {
                return;
            };
            let b = &mut self.backs[back];
            b.state = State::LookingUp { failures: 0 };
            *b.downs.entry(reason_kind(&down.reason)).or_insert(0) += 1;
            let event = ClusterEvent::Down {
                node: b.node.to_string(),
                worker: down.pid,
                reason: down.reason,
            };
            self.emit(event);
            ctx.send_after(
                self.config.relookup_delay(0),
                DispatcherMsg::LookUpAgain { back },
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/// What a [`Load`] submits.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Submitters, each with one job in flight.
    pub submitters: usize,
    /// The most jobs submitted in all (a bound on the run).
    pub max_jobs: u64,
    /// Rounds per job.
    pub rounds: u32,
    /// Hold per job (ms).
    pub hold_ms: u32,
    /// Every `reject_every`-th job is [`Job::invalid`] (0: none).
    pub reject_every: u64,
}

impl Default for LoadConfig {
    /// 8 submitters, at most 100 000 jobs of 2 000 rounds and a 2 ms hold, one in 50 invalid.
    fn default() -> Self {
        LoadConfig {
            submitters: 8,
            max_jobs: 100_000,
            rounds: 2_000,
            hold_ms: 2,
            reject_every: 50,
        }
    }
}

impl LoadConfig {
    /// The job with id `id`.
    pub fn job(&self, id: u64) -> Job {
        if self.reject_every > 0 && id % self.reject_every == self.reject_every - 1 {
            Job::invalid(id)
        } else {
            Job::new(id, self.rounds, self.hold_ms)
        }
    }
}

/// What the submitters got back, counted on their side.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Jobs submitted (counted before the submit starts).
    pub sent: u64,
    /// Jobs completed.
    pub done: u64,
    /// Jobs that ended with a [`JobError`].
    pub failed: u64,
    /// Completed jobs that took more than one attempt.
    pub retried: u64,
    /// Completed jobs whose output was not [`Job::output`] (0 in a correct run).
    pub wrong_output: u64,
    /// Completed jobs per worker incarnation.
    pub by_worker: BTreeMap<Pid, u64>,
    /// The failed jobs: id and error.
    pub errors: Vec<(u64, JobError)>,
}

impl Tally {
    /// Jobs completed by back node `node` (any incarnation).
    pub fn done_on(&self, node: &str) -> u64 {
        self.by_worker
            .iter()
            .filter(|(pid, _)| &*pid.node_name() == node)
            .map(|(_, n)| n)
            .sum()
    }

    /// Jobs completed by the incarnation `creation` of back node `node`.
    pub fn done_on_creation(&self, node: &str, creation: u32) -> u64 {
        self.by_worker
            .iter()
            .filter(|(pid, _)| &*pid.node_name() == node && pid.creation() == creation)
            .map(|(_, n)| n)
            .sum()
    }

    /// Jobs submitted whose submit has not returned yet.
    pub fn in_flight(&self) -> u64 {
        self.sent - self.done - self.failed
    }
}

/// Submitters that keep jobs flowing through a [`Front`] until stopped.
pub struct Load {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `config.submitters` submitters on the current runtime.
    pub fn start(front: &Front, config: &LoadConfig) -> Load {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let tasks = (0..config.submitters.max(1))
            .map(|_| {
                let (front, config) = (front.clone(), config.clone());
                let (tally, stop, next) = (tally.clone(), stop.clone(), next.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Acquire) {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        if id >= config.max_jobs {
                            break;
                        }
                        let job = config.job(id);
                        lock(&tally).sent += 1;
                        let outcome = front.submit(job.clone()).await;
                        let mut t = lock(&tally);
                        match outcome {
                            Ok(c) => {
                                t.done += 1;
                                if c.attempts > 1 {
                                    t.retried += 1;
                                }
                                if job.output() != Ok(c.done.output) {
                                    t.wrong_output += 1;
                                }
                                *t.by_worker.entry(c.done.worker).or_insert(0) += 1;
                            }
                            Err(e) => {
                                t.failed += 1;
                                t.errors.push((id, e));
                            }
                        }
                    }
                })
            })
            .collect();
        Load { tally, stop, tasks }
    }

    /// A snapshot of the counts.
    pub fn tally(&self) -> Tally {
        lock(&self.tally).clone()
    }

    /// Stops submitting and waits (at most `within`) until every submitted job has returned.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Timeout`] if some submit has not returned in time (it is then
    /// abandoned), or a submitter panicked.
    pub async fn stop(mut self, within: Duration) -> Result<Tally, ClusterError> {
        self.stop.store(true, Ordering::Release);
        let deadline = Instant::now() + within;
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(ClusterError::Timeout(format!("a submitter: {e}"))),
                Err(_) => {
                    abort.abort();
                    return Err(ClusterError::Timeout(
                        "the submitters' last jobs to return".into(),
                    ));
                }
            }
        }
        Ok(lock(&self.tally).clone())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

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
///    [`run_back_node`] for that node on that address; the first time the port is 0, so the
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
    let mut start_back =
        |node: &str, addr: SocketAddr| BackProcess::spawn(back_command(node, addr), node, &cookie);

    // 1. The nodes. The back nodes bind port 0 (no window in which another program could take
    // a port chosen here) and say which port they got; back1 comes back on the same one.
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut back1 = start_back(BACK1, any_port)?;
    let mut back2 = start_back(BACK2, any_port)?;
    let back1_before = back1.ready(within).await?;
    let back2_ready = back2.ready(within).await?;
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
            match restarted.ready(within).await {
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
