//! Jobs and the back nodes' worker that does them.

use std::sync::Once;
use std::time::Duration;

use ergo::prelude::*;
use serde::{Deserialize, Serialize};

use super::{CRASH_PANIC, MAX_HOLD_MS, MAX_ROUNDS};

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
    /// [`JobError::Rejected`](super::JobError::Rejected).
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

/// The back nodes' worker: does jobs; run under a supervisor and registered as [`WORKER`](super::WORKER).
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
