//! Measurement plumbing: one run's [`Sample`], best-of-N, the printed lines, and the checks
//! every workload makes before it prints.

use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::time::Duration;

use ergo::prelude::*;
use tokio::task::JoinHandle;

/// A failed check or a runtime error; ends the run with a non-zero status.
pub(crate) type BenchResult<T> = Result<T, String>;

/// One run of a workload.
pub(crate) struct Sample {
    /// Wall time of the measured part.
    pub(crate) elapsed: Duration,
    /// Operations done in `elapsed` (messages, calls, spawns, hops).
    pub(crate) ops: u64,
    /// p50 and p99 latency in nanoseconds, for request/reply workloads.
    pub(crate) latency: Option<(u64, u64)>,
    /// Resident memory added per actor or task, in bytes, for the spawn workloads.
    pub(crate) rss_per_op: Option<u64>,
}

impl Sample {
    pub(crate) fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `once` `reps` times and keeps the fastest sample (with the first run's memory figure).
pub(crate) async fn best_of<F, Fut>(reps: usize, mut once: F) -> BenchResult<Sample>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = BenchResult<Sample>>,
{
    let mut best: Option<Sample> = None;
    let mut first_rss = None;
    for rep in 0..reps {
        let sample = once(rep).await?;
        if rep == 0 {
            first_rss = sample.rss_per_op;
        }
        best = match best {
            Some(b) if b.elapsed <= sample.elapsed => Some(b),
            _ => Some(sample),
        };
    }
    let mut best = best.ok_or("no run")?;
    best.rss_per_op = first_rss;
    Ok(best)
}

pub(crate) fn line(workload: &str, metric: &str, value: impl Display, unit: &str) {
    println!("{workload} {metric} {value} {unit}");
    let _ = std::io::stdout().flush();
}

/// Prints the figures of an ergo workload, its baseline and their ratio.
pub(crate) fn report(workload: &str, unit: &str, ergo: &Sample, tokio: &Sample) {
    let baseline = format!("tokio_{workload}");
    for (name, s) in [(workload, ergo), (baseline.as_str(), tokio)] {
        line(name, "rate", format!("{:.0}", s.rate()), unit);
        if let Some((p50, p99)) = s.latency {
            line(name, "p50", p50, "ns");
            line(name, "p99", p99, "ns");
        }
        if let Some(rss) = s.rss_per_op {
            line(name, "rss_per_actor", rss, "bytes");
        }
    }
    line(
        workload,
        "ratio_vs_tokio",
        format!("{:.2}", ergo.rate() / tokio.rate()),
        "x",
    );
}

/// Fails with `what` unless `got == want` (`what` is only formatted on failure).
pub(crate) fn check<T: PartialEq + std::fmt::Debug>(
    what: impl Display,
    got: T,
    want: T,
) -> BenchResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

pub(crate) async fn join<T>(task: JoinHandle<BenchResult<T>>) -> BenchResult<T> {
    task.await.map_err(|e| format!("task failed: {e}"))?
}

pub(crate) async fn new_node(workload: &str, rep: usize) -> BenchResult<Node> {
    Node::builder(format!(
        "bench-{}-{rep}@localhost",
        workload.replace('_', "-")
    ))
    .start()
    .await
    .map_err(|e| format!("node start: {e}"))
}

/// Stops `actors` with `Normal`, waits for each, and checks that the node has no process left.
pub(crate) async fn stop_all<A: Actor>(node: &Node, actors: &[ActorRef<A>]) -> BenchResult<()> {
    for a in actors {
        if !a.stop(ExitReason::Normal) {
            return Err(format!("{a:?} had ended before it was stopped"));
        }
    }
    for a in actors {
        let reason = a.wait().await;
        check(
            format_args!("exit reason of {a:?}"),
            reason,
            ExitReason::Normal,
        )?;
    }
    check("processes left on the node", node.process_count(), 0)
}

/// Resident set size of this process, in bytes (`VmRSS` of `/proc/self/status`).
pub(crate) fn rss_bytes() -> BenchResult<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmRSS line in /proc/self/status".to_owned())
}

/// p50 and p99 of `latencies` (nanoseconds).
pub(crate) fn percentiles(mut latencies: Vec<u64>) -> (u64, u64) {
    latencies.sort_unstable();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    (at(50), at(99))
}
