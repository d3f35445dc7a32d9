//! `spawn`: idle actors spawned from one task, with resident memory per actor.

use std::time::{Duration, Instant};

use ergo::prelude::*;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cli::Config;
use crate::measure::{check, join, new_node, report, rss_bytes, stop_all, BenchResult, Sample};

/// An actor that does nothing until asked.
pub(crate) struct Idle;

#[actor]
impl Idle {
    /// Replies `true` (a liveness probe).
    #[handle]
    fn ping(&self) -> bool {
        true
    }
}

/// How long spawned actors get to run their first poll before memory is read.
const SETTLE: Duration = Duration::from_millis(100);

/// Idle actors (or tasks) still alive after a spawn run, so that memory can be read with both
/// populations in place.
enum Spawned {
    Ergo(Node, Vec<ActorRef<Idle>>),
    Tokio(Vec<(mpsc::UnboundedSender<()>, JoinHandle<u64>)>),
}

impl Spawned {
    /// Ends every actor or task and checks that each ended as asked.
    async fn release(self) -> BenchResult<()> {
        match self {
            Spawned::Ergo(node, refs) => stop_all(&node, &refs).await,
            Spawned::Tokio(tasks) => {
                let count = tasks.len() as u64;
                let mut handles = Vec::with_capacity(tasks.len());
                for (tx, task) in tasks {
                    tx.send(()).map_err(|_| "a task ended early".to_owned())?;
                    handles.push(task);
                }
                let mut woken = 0;
                for task in handles {
                    woken += task.await.map_err(|e| format!("task failed: {e}"))?;
                }
                check("tasks that received their message", woken, count)
            }
        }
    }
}

pub(crate) async fn spawn_workload(cfg: &Config) -> BenchResult<()> {
    let count = cfg.count(100_000);
    // The first run of each keeps its actors alive until both have read their memory, so that
    // neither reuses heap pages the other freed (which would hide part of its footprint).
    let (ergo_first, ergo_held) = ergo_spawn(0, count).await?;
    let (tokio_first, tokio_held) = tokio_spawn(count).await?;
    ergo_held.release().await?;
    tokio_held.release().await?;
    let mut samples = [ergo_first, tokio_first];
    for rep in 1..cfg.reps {
        let (ergo, held) = ergo_spawn(rep, count).await?;
        held.release().await?;
        let (tokio, held) = tokio_spawn(count).await?;
        held.release().await?;
        for (best, s) in samples.iter_mut().zip([ergo, tokio]) {
            if s.elapsed < best.elapsed {
                best.elapsed = s.elapsed;
            }
        }
    }
    report("spawn", "actors/s", &samples[0], &samples[1]);
    Ok(())
}

/// Spawns `count` idle actors from one task; the sample's memory figure is read while they are
/// all alive, and they are handed back alive.
async fn ergo_spawn(rep: usize, count: u64) -> BenchResult<(Sample, Spawned)> {
    let node = new_node("spawn", rep).await?;
    let spawner = node.clone();
    let (sample, refs) = join(tokio::spawn(async move {
        let node = spawner;
        let mut refs = Vec::with_capacity(count as usize);
        let rss_before = rss_bytes()?;
        let start = Instant::now();
        for i in 0..count {
            let idle = node
                .spawn(Idle)
                .await
                .map_err(|e| format!("spawn {i}: {e}"))?;
            refs.push(idle);
        }
        let elapsed = start.elapsed();
        tokio::time::sleep(SETTLE).await;
        let rss_after = rss_bytes()?;
        let sample = Sample {
            elapsed,
            ops: count,
            latency: None,
            rss_per_op: Some(rss_after.saturating_sub(rss_before) / count),
        };
        Ok((sample, refs))
    }))
    .await?;

    check(
        "processes on the node",
        node.process_count(),
        count as usize,
    )?;
    let alive = refs.iter().filter(|r| r.is_alive()).count();
    check("live actors", alive, count as usize)?;
    for probe in [refs.first(), refs.last()].into_iter().flatten() {
        let pong = probe.ping().await.map_err(|e| e.to_string())?;
        check(format_args!("ping of {probe:?}"), pong, true)?;
    }
    Ok((sample, Spawned::Ergo(node, refs)))
}

/// The baseline: `count` tokio tasks, each waiting on its own unbounded channel.
async fn tokio_spawn(count: u64) -> BenchResult<(Sample, Spawned)> {
    let (sample, tasks) = join(tokio::spawn(async move {
        let mut tasks = Vec::with_capacity(count as usize);
        let rss_before = rss_bytes()?;
        let start = Instant::now();
        for _ in 0..count {
            let (tx, mut rx) = mpsc::unbounded_channel::<()>();
            let task = tokio::spawn(async move {
                let mut got = 0u64;
                while rx.recv().await.is_some() {
                    got += 1;
                }
                got
            });
            tasks.push((tx, task));
        }
        let elapsed = start.elapsed();
        tokio::time::sleep(SETTLE).await;
        let rss_after = rss_bytes()?;
        let sample = Sample {
            elapsed,
            ops: count,
            latency: None,
            rss_per_op: Some(rss_after.saturating_sub(rss_before) / count),
        };
        Ok((sample, tasks))
    }))
    .await?;

    let alive = tasks.iter().filter(|(_, t)| !t.is_finished()).count();
    check("live tasks", alive, count as usize)?;
    Ok((sample, Spawned::Tokio(tasks)))
}
