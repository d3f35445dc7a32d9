//! A distributed backend whose nodes can crash and restart without taking the system down.
//!
//! Two kinds of node share a cookie and talk over loopback:
//!
//! - **Back nodes** (`back1@localhost`, `back2@localhost`) each run one [`Worker`] under a
//!   one_for_one supervisor, registered as [`WORKER`]. A worker that crashes is restarted by its
//!   node's supervisor; a back node that dies is restarted by whoever started it, with the same
//!   name and port and a new creation. [`run_back_node`] is a back node's whole life as an OS
//!   process, a [`ChildProcess`](ergo_testkit::process::ChildProcess) the guard its parent holds.
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
//! [`run_scenario`] is the whole story with real OS processes (shared by `src/main.rs`
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
//!   `NoConnection`, the monitor fires once with [`ExitReason::NoConnection`](ergo::ExitReason::NoConnection), and the front
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
//! use cluster::{self, BackConfig, BackNode, Front, FrontConfig, Job};
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

// Jobs and the worker in `job`, back nodes in `back`, the front in `front` over its private
// `dispatcher` actor, the load in `load`, the scenario in `scenario`; the child-process
// machinery is `ergo_testkit::process`'s.

mod back;
mod dispatcher;
mod error;
mod front;
mod job;
mod load;
mod scenario;

pub use self::back::{run_back_node, BackConfig, BackNode, Ready};
pub use self::error::{ClusterError, JobError};
pub use self::front::{BackStatus, ClusterEvent, Completed, Front, FrontConfig};
pub use self::job::{silence_crash_panics, Done, Job, Worker, WorkerApi, WorkerMsg};
pub use self::load::{Load, LoadConfig, Tally};
pub use self::scenario::{run_scenario, ScenarioConfig, ScenarioReport, BACK1, BACK2, FRONT};
pub use ergo_testkit::process::random_cookie;

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
