//! Load: submitters that keep jobs flowing through a front, and what they got back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ergo::prelude::*;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{ClusterError, Front, Job, JobError};

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
