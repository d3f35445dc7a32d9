//! The actors of the pipeline. Private: the `#[actor]`-generated message enums and API traits
//! stay inside the crate.

use super::*;
use ergo::{actor, Ctx};

/// A worker: does one job per call, and panics on a poisoned one.
pub(super) struct Worker {
    slot: usize,
    /// Incarnations started per slot (shared with the `run` that owns the pool).
    starts: Arc<[AtomicU64]>,
}

impl Worker {
    pub(super) fn new(slot: usize, starts: Arc<[AtomicU64]>) -> Self {
        Worker { slot, starts }
    }
}

#[actor]
impl Worker {
    /// Counts this incarnation: the first per slot is the initial start, every other one
    /// a restart by the supervisor.
    #[init]
    fn init(&mut self) {
        self.starts[self.slot].fetch_add(1, Ordering::SeqCst);
    }

    /// Does `job` (attempt number `attempt`, from 1) and returns its output.
    #[handle]
    fn process(&mut self, job: Job, attempt: u32) -> u64 {
        if job.poison.crashes_on(attempt) {
            panic!(
                "{POISON_PANIC} {} (attempt {attempt}) on worker-{}",
                job.id, self.slot
            );
        }
        job.run()
    }
}

/// Owns the queue and the ledger; one attempt in flight per worker slot.
pub(super) struct Dispatcher {
    supervisor: ActorRef<Supervisor>,
    names: Vec<Arc<str>>,
    /// Slots with no attempt in flight.
    idle: Vec<usize>,
    /// Per slot, the worker incarnation that crashed on its last attempt.
    crashed: Vec<Option<Pid>>,
    /// Slots given up on (no worker reachable).
    dead: usize,
    queue: VecDeque<Job>,
    attempts: HashMap<u64, u32>,
    max_attempts: u32,
    worker_wait: Duration,
    in_flight: usize,
    closed: bool,
    ledger: Ledger,
    done: Option<oneshot::Sender<Result<Ledger, PipelineError>>>,
}

impl Dispatcher {
    pub(super) fn new(
        supervisor: ActorRef<Supervisor>,
        workers: usize,
        max_attempts: u32,
        worker_wait: Duration,
        done: oneshot::Sender<Result<Ledger, PipelineError>>,
    ) -> Self {
        Dispatcher {
            supervisor,
            names: (0..workers).map(|i| Arc::from(worker_name(i))).collect(),
            idle: (0..workers).rev().collect(),
            crashed: vec![None; workers],
            dead: 0,
            queue: VecDeque::new(),
            attempts: HashMap::new(),
            max_attempts,
            worker_wait,
            in_flight: 0,
            closed: false,
            ledger: Ledger::default(),
            done: Some(done),
        }
    }

    /// Starts an attempt on every idle slot while jobs are queued; reports when all is
    /// settled.
    fn pump(&mut self, ctx: &mut Ctx<Self>) {
        while !self.queue.is_empty() {
            let Some(slot) = self.idle.pop() else { break };
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            let n = self.attempts.entry(job.id).or_insert(0);
            *n += 1;
            let n = *n;
            self.ledger.attempts += 1;
            self.in_flight += 1;
            let run = try_on_worker(
                ctx.node().clone(),
                self.supervisor.clone(),
                self.names[slot].clone(),
                self.crashed[slot],
                job,
                n,
                self.worker_wait,
            );
            ctx.spawn_task(run, move |(job, outcome)| DispatcherMsg::AttemptEnded {
                slot,
                job,
                outcome,
            });
        }
        if self.in_flight == 0 && self.queue.is_empty() && self.closed {
            self.finish(Ok(()), ctx);
        } else if self.in_flight == 0 && self.dead == self.names.len() {
            let unsettled = self.queue.iter().map(|j| j.id).collect();
            self.finish(Err(PipelineError::WorkersGone { unsettled }), ctx);
        }
    }

    fn finish(&mut self, result: Result<(), PipelineError>, ctx: &mut Ctx<Self>) {
        if let Some(done) = self.done.take() {
            let ledger = std::mem::take(&mut self.ledger);
            let _ = done.send(result.map(|()| ledger));
        }
        ctx.stop();
    }

    fn settle(&mut self, job: &Job, result: Result<Completed, Failed>) {
        let id = job.id;
        let duplicate = match result {
            Ok(done) => {
                self.ledger.failed.contains_key(&id)
                    || self.ledger.completed.insert(id, done).is_some()
            }
            Err(failed) => {
                self.ledger.completed.contains_key(&id)
                    || self.ledger.failed.insert(id, failed).is_some()
            }
        };
        if duplicate {
            self.ledger.duplicates += 1;
        }
    }
}

#[actor]
impl Dispatcher {
    /// A new job from the producer.
    #[handle]
    fn submit(&mut self, job: Job, ctx: &mut Ctx<Self>) {
        self.queue.push_back(job);
        self.pump(ctx);
    }

    /// No more jobs will be submitted.
    #[handle]
    fn close(&mut self, ctx: &mut Ctx<Self>) {
        self.closed = true;
        self.pump(ctx);
    }

    /// An attempt ended (sent by the attempt's task).
    #[handle]
    fn attempt_ended(&mut self, slot: usize, job: Job, outcome: Outcome, ctx: &mut Ctx<Self>) {
        self.in_flight -= 1;
        let attempts = self.attempts.get(&job.id).copied().unwrap_or(0);
        match outcome {
            Outcome::Done { output, worker } => {
                self.idle.push(slot);
                self.settle(
                    &job,
                    Ok(Completed {
                        attempts,
                        output,
                        worker,
                    }),
                );
            }
            Outcome::Failed { error, worker } => {
                self.idle.push(slot);
                if matches!(error, CallError::Exited(_)) {
                    self.crashed[slot] = Some(worker);
                    self.ledger.crashes += 1;
                } else {
                    self.ledger.other_errors += 1;
                }
                if attempts >= self.max_attempts {
                    self.settle(
                        &job,
                        Err(Failed {
                            attempts,
                            last_error: error,
                        }),
                    );
                } else {
                    self.queue.push_back(job);
                }
            }
            Outcome::NoWorker => {
                // The job never reached a worker: not an attempt. The slot is given up.
                if let Some(n) = self.attempts.get_mut(&job.id) {
                    *n -= 1;
                }
                self.ledger.attempts -= 1;
                self.dead += 1;
                self.queue.push_front(job);
            }
        }
        self.pump(ctx);
    }
}
