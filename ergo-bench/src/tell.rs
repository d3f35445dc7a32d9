//! `tell_p1`, `tell_p2`, `fan_in`: casts from producer tasks to sink actors, each producer's
//! messages checked to arrive in order.

use std::time::Instant;

use ergo::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::cli::Config;
use crate::measure::{best_of, check, join, new_node, report, stop_all, BenchResult, Sample};

/// Receives the casts of the tell workloads and checks that each producer's arrive in order.
struct Sink {
    received: u64,
    expected: u64,
    next_seq: Vec<u64>,
    out_of_order: u64,
    done: Option<oneshot::Sender<()>>,
}

#[actor]
impl Sink {
    /// Message `seq` of producer `from`.
    #[handle]
    fn hit(&mut self, from: u32, seq: u64) {
        let next = &mut self.next_seq[from as usize];
        if seq != *next {
            self.out_of_order += 1;
        }
        *next = seq + 1;
        self.received += 1;
        if self.received == self.expected {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }

    /// Messages received, and how many of them arrived out of order.
    #[handle]
    fn tally(&self) -> (u64, u64) {
        (self.received, self.out_of_order)
    }
}

/// `sinks` actors, each fed by `producers` tasks casting `per_producer` messages.
pub(crate) async fn tell_workload(
    cfg: &Config,
    workload: &str,
    sinks: usize,
    producers: usize,
    per_producer: u64,
) -> BenchResult<()> {
    let ergo = best_of(cfg.reps, |rep| {
        ergo_tell(workload, rep, sinks, producers, per_producer)
    })
    .await?;
    let tokio = best_of(cfg.reps, |_| tokio_tell(sinks, producers, per_producer)).await?;
    report(workload, "msg/s", &ergo, &tokio);
    Ok(())
}

async fn ergo_tell(
    workload: &str,
    rep: usize,
    sinks: usize,
    producers: usize,
    per_producer: u64,
) -> BenchResult<Sample> {
    let node = new_node(workload, rep).await?;
    let expected = producers as u64 * per_producer;
    let mut refs = Vec::new();
    let mut dones = Vec::new();
    for _ in 0..sinks {
        let (tx, rx) = oneshot::channel();
        let sink = Sink {
            received: 0,
            expected,
            next_seq: vec![0; producers],
            out_of_order: 0,
            done: Some(tx),
        };
        refs.push(node.spawn(sink).await.map_err(|e| e.to_string())?);
        dones.push(rx);
    }

    let start = Instant::now();
    let mut tasks = Vec::new();
    for sink in &refs {
        for from in 0..producers as u32 {
            let sink = sink.clone();
            tasks.push(tokio::spawn(async move {
                for seq in 0..per_producer {
                    sink.hit(from, seq)
                        .await
                        .map_err(|_| format!("cast {seq} of producer {from}: sink ended"))?;
                }
                Ok(())
            }));
        }
    }
    for done in dones {
        done.await
            .map_err(|_| "a sink ended before receiving everything".to_owned())?;
    }
    let elapsed = start.elapsed();

    for task in tasks {
        join(task).await?;
    }
    for sink in &refs {
        let tally = sink.tally().await.map_err(|e| e.to_string())?;
        check(
            format_args!("{sink:?} (received, out of order)"),
            tally,
            (expected, 0),
        )?;
    }
    stop_all(&node, &refs).await?;
    Ok(Sample {
        elapsed,
        ops: sinks as u64 * expected,
        latency: None,
        rss_per_op: None,
    })
}

async fn tokio_tell(sinks: usize, producers: usize, per_producer: u64) -> BenchResult<Sample> {
    let expected = producers as u64 * per_producer;
    let mut consumers = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..sinks {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u32, u64)>();
        senders.push(tx);
        consumers.push(tokio::spawn(async move {
            let (mut received, mut out_of_order) = (0u64, 0u64);
            let mut next_seq = vec![0u64; producers];
            while received < expected {
                let (from, seq) = rx.recv().await.ok_or("channel closed early")?;
                let next = &mut next_seq[from as usize];
                if seq != *next {
                    out_of_order += 1;
                }
                *next = seq + 1;
                received += 1;
            }
            Ok((received, out_of_order))
        }));
    }

    let start = Instant::now();
    let mut tasks = Vec::new();
    for tx in &senders {
        for from in 0..producers as u32 {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                for seq in 0..per_producer {
                    tx.send((from, seq))
                        .map_err(|_| format!("send {seq} of producer {from}: consumer ended"))?;
                }
                Ok(())
            }));
        }
    }
    let mut tallies = Vec::new();
    for consumer in consumers {
        tallies.push(join(consumer).await?);
    }
    let elapsed = start.elapsed();

    for task in tasks {
        join(task).await?;
    }
    for tally in tallies {
        check(
            "tokio consumer (received, out of order)",
            tally,
            (expected, 0),
        )?;
    }
    Ok(Sample {
        elapsed,
        ops: sinks as u64 * expected,
        latency: None,
        rss_per_op: None,
    })
}
