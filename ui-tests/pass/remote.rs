//! `#[actor(remote)]`: the message enum is serializable (arguments only: a call's reply slot is
//! skipped and comes back detached), and the actor still works locally.

use ergo::prelude::*;
use ergo::ReplyTo;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Job {
    id: u64,
    payload: Vec<u8>,
}

#[derive(Default)]
struct Worker {
    done: Vec<u64>,
}

#[actor(remote)]
impl Worker {
    /// Runs a job; the context is not part of the message.
    #[handle]
    fn run(&mut self, job: Job, ctx: &mut Ctx<Self>) -> usize {
        assert!(ctx.myself().is_alive());
        self.done.push(job.id);
        job.payload.len()
    }

    #[handle]
    async fn forget(&mut self, id: u64) {
        self.done.retain(|d| *d != id);
    }

    #[handle]
    fn done(&self) -> Vec<u64> {
        self.done.clone()
    }
}

fn assert_wire<T: Serialize + serde::de::DeserializeOwned>() {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    assert_wire::<WorkerMsg>();

    let node = Node::builder("remote@localhost").start().await?;
    let worker = node.spawn(Worker::default()).await?;
    let job = Job {
        id: 7,
        payload: vec![1, 2, 3],
    };
    assert_eq!(worker.run(job.clone()).await?, 3);

    // A call's message crosses the wire without its reply slot.
    let call = WorkerMsg::Run {
        job: Job {
            id: 8,
            payload: vec![],
        },
        __reply: ReplyTo::default(),
    };
    let json = serde_json::to_string(&call)?;
    assert_eq!(json, r#"{"Run":{"job":{"id":8,"payload":[]}}}"#);
    let back: WorkerMsg = serde_json::from_str(&json)?;
    worker.cast(back).await?;
    assert_eq!(worker.done().await?, vec![7, 8]);

    // So does a cast's.
    let cast: WorkerMsg = serde_json::from_str(r#"{"Forget":{"id":7}}"#)?;
    worker.cast(cast).await?;
    assert_eq!(worker.done().await?, vec![8]);
    Ok(())
}
