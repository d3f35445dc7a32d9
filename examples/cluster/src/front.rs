//! The front: routes jobs to the back nodes' workers and heals its view of them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ergo::prelude::*;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::dispatcher::{Dispatcher, DispatcherApi};
use super::{ClusterError, Done, Job, JobError, WorkerApi};

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
    pub(super) fn relookup_delay(&self, failures: u32) -> Duration {
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
pub(super) fn reason_kind(reason: &ExitReason) -> String {
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
