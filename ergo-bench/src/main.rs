//! Benchmarks of ergo, each next to a raw-tokio baseline doing the same work.
//!
//! Run with `cargo run --release -p ergo-bench [-- [--quick] [--reps N] [WORKLOAD...]]`.
//!
//! Every figure is printed as one line `workload metric value unit`; lines starting with `#` are
//! comments. Each workload checks its own counts (every message sent was handled, in order, by
//! the actor it was sent to) before its figures are printed, and the binary exits with a non-zero
//! status on any mismatch.
//!
//! Workloads (full counts; `--quick` or `ERGO_BENCH_QUICK=1` divides them by 10):
//!
//! - `tell_p1`: one producer task casts 1 000 000 messages to one actor;
//! - `tell_p2`: two independent producer → actor pairs, 1 000 000 casts each;
//! - `fan_in`: two producers cast 500 000 messages each to one actor;
//! - `ask_roundtrip`: 200 000 sequential calls from one task, with p50 and p99 latency;
//! - `spawn`: 100 000 idle actors spawned from one task, with resident memory per actor;
//! - `ring`: 1 000 actors in a ring pass a token 1 000 000 hops;
//! - `restart`: a child under a one_for_one supervisor is crashed 20 000 times, one at a time;
//!   p50 and p99 are the time from asking it to crash to its replacement's first reply;
//! - `publish_local`: one producer publishes 20 000 events to 100 local subscribers (2 M
//!   deliveries), timed until every subscriber has every event, in order;
//! - `pool_call`: 8 caller tasks make 200 000 calls (25 000 each, sequential per caller) through a
//!   round-robin pool of 4 workers; `least_busy_rate` is the same with least-busy routing;
//! - `tcp_echo_c1`, `tcp_echo_c50`: 1 (or 50) client connections send 50 000 (200 000) lines in
//!   all to a `TcpServer` whose connection actors echo them, one round trip at a time per
//!   connection, with p50 and p99 round-trip latency; baseline: a plain tokio echo server;
//! - `http_rps`: 16 keep-alive clients make 100 000 `GET` requests in all to an `HttpServer`
//!   route served by one actor; baseline: a plain axum handler (same router and hyper);
//! - `remote_tell_p1`: one sender casts 1 000 000 messages to a `#[actor(remote)]` sink on a node
//!   in another OS process (over 127.0.0.1), timed until the sink has counted them all;
//! - `remote_tell_p2`: the same with two sender → sink pairs, 1 000 000 casts in all;
//! - `remote_ask`: 50 000 sequential remote calls after 5 000 warm-up ones, with p50 and p99;
//!   baselines: plain tokio TCP streams to a plain tokio server in the same kind of process;
//! - `remote_tell_p1_tls`, `remote_ask_tls`: `remote_tell_p1` and `remote_ask` with mutual TLS
//!   on both nodes (certificates of a development CA made per run, handed to the server process
//!   as PEM in its environment); no baseline: `ratio_vs_plain` compares them with plain runs
//!   of the same workload interleaved with theirs (best of `--reps` each);
//! - `publish_remote`: one producer publishes 1 000 000 events of an `Event::remote` to 10
//!   subscribers (`monitor_event_at`) on each of 2 nodes in 2 other OS processes (20 M
//!   deliveries), at most 50 000 events ahead of the slowest subscriber, timed until all 20
//!   have every event, in order; `published_rate` is events/s, `local_rate` is
//!   `publish_local`'s; baseline: 8-byte events over plain TCP to 2 plain tokio servers that
//!   fan them out to 10 tasks each.
//!
//! The remote workloads re-execute this binary as their server process (hidden argument
//! `--remote-server`), one per run (two for `publish_remote`); it prints its address, serves
//! until its stdin closes, and is killed on every exit path. They also print their target
//! (`…_target`, `…_vs_target`, when the issues set one) and the figure of a peer for
//! reference. `ERGO_BENCH_REMOTE_CONNS=N` sets `connections_per_peer` on both nodes (default:
//! ergo's).
//!
//! Each has a `tokio_…` baseline built from tokio tasks and unbounded mpsc channels (for
//! `restart`: a supervising task that respawns a panicked task and publishes its sender; for
//! `publish_local`: one channel per subscriber, the producer sending a copy to each; for
//! `pool_call`: 4 server tasks chosen round-robin, replies by oneshot; for the network
//! workloads: plain tokio and plain axum servers), and a
//! `ratio_vs_tokio` line (ergo's rate divided by tokio's). A `WORKLOAD` argument keeps the
//! workload it names exactly (`tell_p1` is not `remote_tell_p1`), or else the workloads whose
//! name, or whose baseline's name, contains it.

use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use ergo::events::{Event, EventOptions};
use ergo::pool::{Pool, Routing};
use ergo::prelude::*;
use ergo::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorApi};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

mod net;
mod publish_remote;
mod remote;

/// A failed check or a runtime error; ends the run with a non-zero status.
type BenchResult<T> = Result<T, String>;

/// The workloads, in the order they run. `spawn` runs first so its memory figures are taken
/// before other workloads have grown (and freed) the heap.
const WORKLOADS: [&str; 18] = [
    "spawn",
    "tell_p1",
    "tell_p2",
    "fan_in",
    "ask_roundtrip",
    "ring",
    "restart",
    "publish_local",
    "pool_call",
    "tcp_echo_c1",
    "tcp_echo_c50",
    "http_rps",
    "remote_tell_p1",
    "remote_tell_p2",
    "remote_ask",
    "remote_tell_p1_tls",
    "remote_ask_tls",
    "publish_remote",
];

/// Actors in the ring (not scaled by `--quick`).
const RING_SIZE: u64 = 1_000;

/// What to run, from the command line.
struct Config {
    /// Divide every count by 10.
    quick: bool,
    /// Runs per workload; the best is reported.
    reps: usize,
    /// Substrings selecting workloads; empty keeps all.
    filters: Vec<String>,
}

impl Config {
    fn from_args() -> Result<Config, String> {
        let mut cfg = Config {
            quick: std::env::var_os("ERGO_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0"),
            reps: 3,
            filters: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" | "-q" => cfg.quick = true,
                "--reps" => {
                    cfg.reps = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--reps takes a positive number")?;
                }
                "--help" | "-h" => return Err(usage()),
                flag if flag.starts_with('-') => {
                    return Err(format!("unknown option `{flag}`\n{}", usage()))
                }
                filter => cfg.filters.push(filter.to_owned()),
            }
        }
        if let Some(bad) = cfg
            .filters
            .iter()
            .find(|f| !WORKLOADS.iter().any(|w| selects(f, w)))
        {
            return Err(format!("no workload matches `{bad}`\n{}", usage()));
        }
        Ok(cfg)
    }

    /// Whether `workload` (and its baseline) should run.
    fn wants(&self, workload: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| selects(f, workload))
    }

    /// `full` divided by 10 under `--quick`.
    fn count(&self, full: u64) -> u64 {
        if self.quick {
            full / 10
        } else {
            full
        }
    }
}

/// Whether `filter` keeps `workload`: a filter naming a workload (or its baseline) exactly keeps
/// only that one, any other keeps those whose names contain it.
fn selects(filter: &str, workload: &str) -> bool {
    let names = |w: &str| [w.to_owned(), format!("tokio_{w}")];
    if WORKLOADS
        .iter()
        .any(|w| names(w).iter().any(|n| n == filter))
    {
        names(workload).iter().any(|n| n == filter)
    } else {
        names(workload).iter().any(|n| n.contains(filter))
    }
}

fn usage() -> String {
    format!(
        "usage: ergo-bench [--quick] [--reps N] [WORKLOAD...]\n  workloads: {}\n  \
         --quick (or ERGO_BENCH_QUICK=1) divides every count by 10; --reps N keeps the best of \
         N runs (default 3)",
        WORKLOADS.join(", ")
    )
}

fn main() -> ExitCode {
    if let Some(code) = remote::serve_if_asked() {
        return code;
    }
    let cfg = match Config::from_args() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ergo-bench: cannot build the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_all(&cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ergo-bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_all(cfg: &Config) -> BenchResult<()> {
    println!(
        "# ergo-bench: tokio multi-thread runtime, 2 worker threads; {} counts{}",
        if cfg.quick { "quick (1/10)" } else { "full" },
        if cfg.quick {
            " (ring size stays 1000)"
        } else {
            ""
        },
    );
    println!(
        "# each figure is the best (shortest) of {} run(s), no warm-up; p50/p99 come from that \
         run; rss_per_actor is the VmRSS growth of the first run divided by its count",
        cfg.reps
    );
    println!("# every count is checked before its figures are printed; a mismatch exits non-zero");
    println!("# format: workload metric value unit");
    for workload in WORKLOADS {
        if !cfg.wants(workload) {
            continue;
        }
        match workload {
            "spawn" => spawn_workload(cfg).await?,
            "tell_p1" => tell_workload(cfg, workload, 1, 1, cfg.count(1_000_000)).await?,
            "tell_p2" => tell_workload(cfg, workload, 2, 1, cfg.count(1_000_000)).await?,
            "fan_in" => tell_workload(cfg, workload, 1, 2, cfg.count(1_000_000) / 2).await?,
            "ask_roundtrip" => ask_workload(cfg).await?,
            "ring" => ring_workload(cfg).await?,
            "restart" => restart_workload(cfg).await?,
            "publish_local" => publish_workload(cfg).await?,
            "pool_call" => pool_workload(cfg).await?,
            "tcp_echo_c1" => net::tcp_echo_workload(cfg, workload, 1, cfg.count(50_000)).await?,
            "tcp_echo_c50" => net::tcp_echo_workload(cfg, workload, 50, cfg.count(200_000)).await?,
            "http_rps" => net::http_rps_workload(cfg, cfg.count(100_000)).await?,
            "remote_tell_p1" => {
                remote::remote_tell_workload(cfg, workload, 1, cfg.count(1_000_000)).await?
            }
            "remote_tell_p2" => {
                remote::remote_tell_workload(cfg, workload, 2, cfg.count(1_000_000)).await?
            }
            "remote_ask" => remote::remote_ask_workload(cfg, cfg.count(50_000)).await?,
            "remote_tell_p1_tls" => {
                remote::remote_tell_tls_workload(
                    cfg,
                    workload,
                    "remote_tell_p1",
                    cfg.count(1_000_000),
                )
                .await?
            }
            "remote_ask_tls" => remote::remote_ask_tls_workload(cfg, cfg.count(50_000)).await?,
            "publish_remote" => publish_remote::publish_remote_workload(cfg).await?,
            _ => unreachable!("every workload has a runner"),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measurement plumbing
// ---------------------------------------------------------------------------------------------

/// One run of a workload.
struct Sample {
    /// Wall time of the measured part.
    elapsed: Duration,
    /// Operations done in `elapsed` (messages, calls, spawns, hops).
    ops: u64,
    /// p50 and p99 latency in nanoseconds, for request/reply workloads.
    latency: Option<(u64, u64)>,
    /// Resident memory added per actor or task, in bytes, for the spawn workloads.
    rss_per_op: Option<u64>,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `once` `reps` times and keeps the fastest sample (with the first run's memory figure).
async fn best_of<F, Fut>(reps: usize, mut once: F) -> BenchResult<Sample>
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

fn line(workload: &str, metric: &str, value: impl Display, unit: &str) {
    println!("{workload} {metric} {value} {unit}");
    let _ = std::io::stdout().flush();
}

/// Prints the figures of an ergo workload, its baseline and their ratio.
fn report(workload: &str, unit: &str, ergo: &Sample, tokio: &Sample) {
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
fn check<T: PartialEq + std::fmt::Debug>(what: impl Display, got: T, want: T) -> BenchResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

async fn join<T>(task: JoinHandle<BenchResult<T>>) -> BenchResult<T> {
    task.await.map_err(|e| format!("task failed: {e}"))?
}

async fn new_node(workload: &str, rep: usize) -> BenchResult<Node> {
    Node::builder(format!(
        "bench-{}-{rep}@localhost",
        workload.replace('_', "-")
    ))
    .start()
    .await
    .map_err(|e| format!("node start: {e}"))
}

/// Stops `actors` with `Normal`, waits for each, and checks that the node has no process left.
async fn stop_all<A: Actor>(node: &Node, actors: &[ActorRef<A>]) -> BenchResult<()> {
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
fn rss_bytes() -> BenchResult<u64> {
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

// ---------------------------------------------------------------------------------------------
// tell_p1, tell_p2, fan_in
// ---------------------------------------------------------------------------------------------

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
async fn tell_workload(
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

// ---------------------------------------------------------------------------------------------
// ask_roundtrip
// ---------------------------------------------------------------------------------------------

/// Answers calls with their argument plus one.
struct Echo {
    calls: u64,
}

#[actor]
impl Echo {
    /// Replies `x + 1`.
    #[handle]
    fn echo(&mut self, x: u64) -> u64 {
        self.calls += 1;
        x + 1
    }

    /// Calls answered so far (this one excluded).
    #[handle]
    fn calls(&self) -> u64 {
        self.calls
    }
}

async fn ask_workload(cfg: &Config) -> BenchResult<()> {
    let calls = cfg.count(200_000);
    let ergo = best_of(cfg.reps, |rep| ergo_ask(rep, calls)).await?;
    let tokio = best_of(cfg.reps, |_| tokio_ask(calls)).await?;
    report("ask_roundtrip", "calls/s", &ergo, &tokio);
    Ok(())
}

/// p50 and p99 of `latencies` (nanoseconds).
fn percentiles(mut latencies: Vec<u64>) -> (u64, u64) {
    latencies.sort_unstable();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    (at(50), at(99))
}

async fn ergo_ask(rep: usize, calls: u64) -> BenchResult<Sample> {
    let node = new_node("ask_roundtrip", rep).await?;
    let echo = node
        .spawn(Echo { calls: 0 })
        .await
        .map_err(|e| e.to_string())?;
    let caller = echo.clone();
    let (elapsed, latencies) = join(tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(calls as usize);
        let start = Instant::now();
        for x in 0..calls {
            let t = Instant::now();
            let reply = caller.echo(x).await.map_err(|e| format!("call {x}: {e}"))?;
            latencies.push(t.elapsed().as_nanos() as u64);
            check(format_args!("reply to call {x}"), reply, x + 1)?;
        }
        Ok((start.elapsed(), latencies))
    }))
    .await?;
    check(
        "calls answered",
        echo.calls().await.map_err(|e| e.to_string())?,
        calls,
    )?;
    stop_all(&node, &[echo]).await?;
    Ok(Sample {
        elapsed,
        ops: calls,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

async fn tokio_ask(calls: u64) -> BenchResult<Sample> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, oneshot::Sender<u64>)>();
    let server = tokio::spawn(async move {
        let mut answered = 0u64;
        while let Some((x, reply)) = rx.recv().await {
            answered += 1;
            let _ = reply.send(x + 1);
        }
        Ok(answered)
    });
    let (elapsed, latencies) = join(tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(calls as usize);
        let start = Instant::now();
        for x in 0..calls {
            let t = Instant::now();
            let (reply_tx, reply_rx) = oneshot::channel();
            tx.send((x, reply_tx))
                .map_err(|_| format!("request {x}: server ended"))?;
            let reply = reply_rx
                .await
                .map_err(|_| format!("request {x}: no reply"))?;
            latencies.push(t.elapsed().as_nanos() as u64);
            check(format_args!("reply to request {x}"), reply, x + 1)?;
        }
        Ok((start.elapsed(), latencies))
    }))
    .await?;
    check("requests answered", join(server).await?, calls)?;
    Ok(Sample {
        elapsed,
        ops: calls,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

// ---------------------------------------------------------------------------------------------
// spawn
// ---------------------------------------------------------------------------------------------

/// An actor that does nothing until asked.
struct Idle;

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

async fn spawn_workload(cfg: &Config) -> BenchResult<()> {
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

// ---------------------------------------------------------------------------------------------
// ring
// ---------------------------------------------------------------------------------------------

/// One actor of the ring: forwards the token to the next one.
struct RingNode {
    next: Option<ActorRef<RingNode>>,
    hops: u64,
    lost: u64,
    done: Arc<Notify>,
}

#[actor]
impl RingNode {
    /// Sets the actor the token goes to next.
    #[handle]
    fn set_next(&mut self, next: ActorRef<RingNode>) {
        self.next = Some(next);
    }

    /// The token, with the hops left including this one.
    #[handle]
    fn token(&mut self, remaining: u64) {
        self.hops += 1;
        if remaining <= 1 {
            self.done.notify_one();
            return;
        }
        let sent = self.next.as_ref().map(|next| {
            next.try_cast(RingNodeMsg::Token {
                remaining: remaining - 1,
            })
        });
        if !matches!(sent, Some(Ok(()))) {
            self.lost += 1;
            self.done.notify_one();
        }
    }

    /// Tokens received, and tokens it could not forward.
    #[handle]
    fn tally(&self) -> (u64, u64) {
        (self.hops, self.lost)
    }
}

async fn ring_workload(cfg: &Config) -> BenchResult<()> {
    let hops = cfg.count(1_000_000);
    let ergo = best_of(cfg.reps, |rep| ergo_ring(rep, hops)).await?;
    let tokio = best_of(cfg.reps, |_| tokio_ring(hops)).await?;
    report("ring", "hops/s", &ergo, &tokio);
    Ok(())
}

async fn ergo_ring(rep: usize, hops: u64) -> BenchResult<Sample> {
    let node = new_node("ring", rep).await?;
    let done = Arc::new(Notify::new());
    let mut ring = Vec::with_capacity(RING_SIZE as usize);
    for _ in 0..RING_SIZE {
        let member = RingNode {
            next: None,
            hops: 0,
            lost: 0,
            done: done.clone(),
        };
        ring.push(node.spawn(member).await.map_err(|e| e.to_string())?);
    }
    for (i, member) in ring.iter().enumerate() {
        let next = ring[(i + 1) % ring.len()].clone();
        member
            .set_next(next)
            .await
            .map_err(|_| "ring member ended")?;
    }

    let start = Instant::now();
    ring[0]
        .try_cast(RingNodeMsg::Token { remaining: hops })
        .map_err(|_| "ring member ended")?;
    done.notified().await;
    let elapsed = start.elapsed();

    let mut total = 0;
    for member in &ring {
        let (got, lost) = member.tally().await.map_err(|e| e.to_string())?;
        check(format_args!("tokens lost by {member:?}"), lost, 0)?;
        check(
            format_args!("tokens through {member:?}"),
            got,
            hops / RING_SIZE,
        )?;
        total += got;
    }
    check("hops", total, hops)?;
    stop_all(&node, &ring).await?;
    Ok(Sample {
        elapsed,
        ops: hops,
        latency: None,
        rss_per_op: None,
    })
}

async fn tokio_ring(hops: u64) -> BenchResult<Sample> {
    let done = Arc::new(Notify::new());
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..RING_SIZE)
        .map(|_| mpsc::unbounded_channel::<u64>())
        .unzip();
    let first = txs[0].clone();
    let mut members = Vec::with_capacity(RING_SIZE as usize);
    for (i, mut rx) in rxs.into_iter().enumerate() {
        let next = txs[(i + 1) % txs.len()].clone();
        let done = done.clone();
        members.push(tokio::spawn(async move {
            // A token of 0 sweeps the ring once the run is over, ending every member.
            let mut got = 0u64;
            while let Some(remaining) = rx.recv().await {
                if remaining == 0 {
                    let _ = next.send(0);
                    break;
                }
                got += 1;
                if remaining == 1 {
                    done.notify_one();
                    let _ = next.send(0);
                    break;
                }
                if next.send(remaining - 1).is_err() {
                    done.notify_one();
                    return Err("token lost".to_owned());
                }
            }
            Ok(got)
        }));
    }
    drop(txs);

    let start = Instant::now();
    first.send(hops).map_err(|_| "ring member ended")?;
    done.notified().await;
    let elapsed = start.elapsed();

    let mut total = 0;
    for member in members {
        let got = join(member).await?;
        check("tokens through a tokio ring member", got, hops / RING_SIZE)?;
        total += got;
    }
    check("hops", total, hops)?;
    Ok(Sample {
        elapsed,
        ops: hops,
        latency: None,
        rss_per_op: None,
    })
}

// ---------------------------------------------------------------------------------------------
// restart
// ---------------------------------------------------------------------------------------------

/// The registered name of the restart workload's child.
const CRASHER: &str = "crasher";

/// The panic message of the restart workload (kept off stderr by [`silence_crash_panics`]).
const CRASH_PANIC: &str = "ergo-bench: crash on request";

/// How long one restart may take before the workload fails (the supervisor gave up, say).
const RESTART_DEADLINE: Duration = Duration::from_secs(5);

/// Keeps the workload's own panics (tens of thousands) off stderr; other panics still reach
/// the hook that was in place.
fn silence_crash_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if message != Some(CRASH_PANIC) {
                previous(info);
            }
        }));
    });
}

/// The supervised child: each incarnation numbers itself at `init` and panics when asked.
struct Crasher {
    /// Incarnations started so far (shared with the workload, which checks it).
    starts: Arc<AtomicU64>,
    /// This incarnation's number, from 1.
    incarnation: u64,
}

#[actor]
impl Crasher {
    /// Counts this incarnation.
    #[init]
    fn init(&mut self) {
        self.incarnation = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
    }

    /// Panics. A call, so the caller learns of the crash as `CallError::Exited`; it never
    /// replies.
    #[handle]
    fn crash(&self) -> u64 {
        panic!("{}", CRASH_PANIC)
    }

    /// Which incarnation this is: proves the replacement accepts calls.
    #[handle]
    fn incarnation(&self) -> u64 {
        self.incarnation
    }
}

async fn restart_workload(cfg: &Config) -> BenchResult<()> {
    silence_crash_panics();
    let restarts = cfg.count(20_000);
    let ergo = best_of(cfg.reps, |rep| ergo_restart(rep, restarts)).await?;
    let tokio = best_of(cfg.reps, |_| tokio_restart(restarts)).await?;
    report("restart", "restarts/s", &ergo, &tokio);
    Ok(())
}

async fn ergo_restart(rep: usize, restarts: u64) -> BenchResult<Sample> {
    let node = new_node("restart", rep).await?;
    let starts = Arc::new(AtomicU64::new(0));
    let make = {
        let starts = starts.clone();
        move || Crasher {
            starts: starts.clone(),
            incarnation: 0,
        }
    };
    // An intensity above the run's restarts: the supervisor never gives up.
    let limit = u32::try_from(restarts + 1).map_err(|_| "too many restarts for u32")?;
    let supervisor = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .intensity(limit, Duration::from_secs(3600))
                .child(ChildSpec::new(CRASHER, make).register(CRASHER)),
        )
        .await
        .map_err(|e| format!("supervisor start: {e}"))?;

    let client = node.clone();
    let (elapsed, latencies, last) = join(tokio::spawn(async move {
        let node = client;
        let mut current = node
            .whereis::<Crasher>(CRASHER)
            .ok_or("the child is not registered")?;
        let mut latencies = Vec::with_capacity(restarts as usize);
        let start = Instant::now();
        for i in 0..restarts {
            let t = Instant::now();
            match current.crash().await {
                Err(CallError::Exited(ExitReason::Panic(_))) => {}
                other => return Err(format!("crash {i}: {other:?}, expected a panic exit")),
            }
            let old = current.pid();
            // Poll the name until it points at a new incarnation that answers.
            let (next, incarnation) = loop {
                if let Some(child) = node.whereis::<Crasher>(CRASHER) {
                    if child.pid() != old {
                        match child.incarnation().await {
                            Ok(n) => break (child, n),
                            Err(CallError::NoProc) => {}
                            Err(e) => return Err(format!("probe after crash {i}: {e}")),
                        }
                    }
                }
                if t.elapsed() > RESTART_DEADLINE {
                    return Err(format!(
                        "no replacement {RESTART_DEADLINE:?} after crash {i}"
                    ));
                }
                tokio::task::yield_now().await;
            };
            latencies.push(t.elapsed().as_nanos() as u64);
            check(
                format_args!("incarnation after crash {i}"),
                incarnation,
                i + 2,
            )?;
            current = next;
        }
        Ok((start.elapsed(), latencies, current.pid()))
    }))
    .await?;

    check(
        "restarts counted by the child's init",
        starts.load(Ordering::SeqCst) - 1,
        restarts,
    )?;
    check(
        "supervisor alive (intensity not tripped)",
        supervisor.is_alive(),
        true,
    )?;
    let children = supervisor
        .which_children()
        .await
        .map_err(|e| format!("which_children: {e}"))?;
    check(
        "children (id, pid)",
        children
            .into_iter()
            .map(|c| (c.id, c.pid))
            .collect::<Vec<_>>(),
        vec![(CRASHER.to_owned(), Some(last))],
    )?;
    supervisor.stop(ExitReason::Shutdown);
    check(
        "supervisor exit",
        supervisor.wait().await,
        ExitReason::Shutdown,
    )?;
    check("processes left on the node", node.process_count(), 0)?;
    Ok(Sample {
        elapsed,
        ops: restarts,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

/// A request to the baseline's child task.
enum CrasherReq {
    /// Panic. The reply slot is never used: the unwinding drops it, as a crashing actor's
    /// does, so the client learns of the crash.
    Crash(#[allow(dead_code)] oneshot::Sender<()>),
    /// Reply with the incarnation number.
    Incarnation(oneshot::Sender<u64>),
}

/// The current child of the baseline: its incarnation and the sender of its channel.
type Registry = Arc<std::sync::Mutex<Option<(u64, mpsc::UnboundedSender<CrasherReq>)>>>;

/// The baseline: a supervising task awaits its child task's `JoinHandle`; when the child has
/// panicked it spawns a new one and publishes its sender in a shared slot, which the client
/// polls as ergo's client polls the name registry.
async fn tokio_restart(restarts: u64) -> BenchResult<Sample> {
    let registry: Registry = Arc::default();
    let supervisor = tokio::spawn({
        let registry = registry.clone();
        async move {
            let mut restarted = 0u64;
            for incarnation in 1u64.. {
                let (tx, mut rx) = mpsc::unbounded_channel::<CrasherReq>();
                let child = tokio::spawn(async move {
                    while let Some(req) = rx.recv().await {
                        match req {
                            CrasherReq::Crash(_reply) => panic!("{}", CRASH_PANIC),
                            CrasherReq::Incarnation(reply) => {
                                let _ = reply.send(incarnation);
                            }
                        }
                    }
                });
                *registry.lock().map_err(|_| "registry poisoned")? = Some((incarnation, tx));
                match child.await {
                    // Every sender is gone: the run is over.
                    Ok(()) => return Ok(restarted),
                    Err(e) if e.is_panic() => restarted += 1,
                    Err(e) => return Err(format!("child task failed: {e}")),
                }
            }
            unreachable!("the incarnations do not run out")
        }
    });

    let lookup = |registry: &Registry| -> BenchResult<Option<(u64, mpsc::UnboundedSender<_>)>> {
        Ok(registry.lock().map_err(|_| "registry poisoned")?.clone())
    };
    let client_registry = registry.clone();
    let (elapsed, latencies) = join(tokio::spawn(async move {
        let registry = client_registry;
        let t = Instant::now();
        let mut current = loop {
            if let Some(entry) = lookup(&registry)? {
                break entry;
            }
            if t.elapsed() > RESTART_DEADLINE {
                return Err("the first child was never published".to_owned());
            }
            tokio::task::yield_now().await;
        };
        let mut latencies = Vec::with_capacity(restarts as usize);
        let start = Instant::now();
        for i in 0..restarts {
            let t = Instant::now();
            let (reply_tx, reply_rx) = oneshot::channel();
            current
                .1
                .send(CrasherReq::Crash(reply_tx))
                .map_err(|_| format!("crash {i}: child gone"))?;
            if reply_rx.await.is_ok() {
                return Err(format!("crash {i}: the child replied instead of panicking"));
            }
            let old = current.0;
            let (next, incarnation) = loop {
                if let Some((gen, tx)) = lookup(&registry)? {
                    if gen != old {
                        let (reply_tx, reply_rx) = oneshot::channel();
                        if tx.send(CrasherReq::Incarnation(reply_tx)).is_ok() {
                            if let Ok(n) = reply_rx.await {
                                break ((gen, tx), n);
                            }
                        }
                    }
                }
                if t.elapsed() > RESTART_DEADLINE {
                    return Err(format!(
                        "no replacement {RESTART_DEADLINE:?} after crash {i}"
                    ));
                }
                tokio::task::yield_now().await;
            };
            latencies.push(t.elapsed().as_nanos() as u64);
            check(
                format_args!("incarnation after crash {i}"),
                incarnation,
                i + 2,
            )?;
            current = next;
        }
        let elapsed = start.elapsed();
        // Drop every sender so the last child, and then the supervisor, end.
        drop(current);
        registry.lock().map_err(|_| "registry poisoned")?.take();
        Ok((elapsed, latencies))
    }))
    .await?;

    check("tokio restarts", join(supervisor).await?, restarts)?;
    Ok(Sample {
        elapsed,
        ops: restarts,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

// ---------------------------------------------------------------------------------------------
// publish_local
// ---------------------------------------------------------------------------------------------

/// Subscribers of the publish workload.
const SUBSCRIBERS: usize = 100;

/// The event of the publish workload.
const TICKS: Event<u64> = Event::new("ticks");

/// Events published by `publish_local` (full count).
const PUBLISH_LOCAL_EVENTS: u64 = 20_000;

/// Receives the events of the publish workload and checks that they arrive in order.
struct EventSink {
    received: u64,
    expected: u64,
    out_of_order: u64,
    done: Option<oneshot::Sender<()>>,
}

#[actor]
impl EventSink {
    /// Event `seq`.
    #[handle]
    fn tick(&mut self, seq: u64) {
        if seq != self.received {
            self.out_of_order += 1;
        }
        self.received += 1;
        if self.received == self.expected {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }

    /// Events received, and how many of them arrived out of order.
    #[handle]
    fn tally(&self) -> (u64, u64) {
        (self.received, self.out_of_order)
    }
}

async fn publish_workload(cfg: &Config) -> BenchResult<()> {
    let events = cfg.count(PUBLISH_LOCAL_EVENTS);
    let ergo = best_of(cfg.reps, |rep| ergo_publish(rep, events)).await?;
    let tokio = best_of(cfg.reps, |_| tokio_publish(events)).await?;
    report("publish_local", "events/s", &ergo, &tokio);
    // For `publish_remote`'s comparison.
    if let Ok(mut local) = publish_remote::LOCAL_RATE.lock() {
        *local = Some(ergo.rate());
    }
    Ok(())
}

async fn ergo_publish(rep: usize, events: u64) -> BenchResult<Sample> {
    let node = new_node("publish_local", rep).await?;
    let owner = node.spawn(Idle).await.map_err(|e| e.to_string())?;
    let token = node
        .register_event(&TICKS, owner.pid(), EventOptions::new())
        .map_err(|e| format!("register: {e}"))?;
    let mut sinks = Vec::with_capacity(SUBSCRIBERS);
    let mut dones = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let (tx, rx) = oneshot::channel();
        let sink = EventSink {
            received: 0,
            expected: events,
            out_of_order: 0,
            done: Some(tx),
        };
        let sink = node.spawn(sink).await.map_err(|e| e.to_string())?;
        node.link_event(&TICKS, &sink, |seq| EventSinkMsg::Tick { seq })
            .map_err(|e| format!("subscribe: {e}"))?;
        sinks.push(sink);
        dones.push(rx);
    }

    let start = Instant::now();
    let publisher = token.clone();
    let producer = tokio::spawn(async move {
        for seq in 0..events {
            let queued = publisher
                .publish(seq)
                .map_err(|e| format!("publish {seq}: {e}"))?;
            if queued != SUBSCRIBERS {
                return Err(format!("publish {seq} reached {queued} subscribers"));
            }
        }
        Ok(())
    });
    for done in dones {
        done.await
            .map_err(|_| "a subscriber ended before receiving everything".to_owned())?;
    }
    let elapsed = start.elapsed();

    join(producer).await?;
    check("events dropped", token.dropped(), 0)?;
    for sink in &sinks {
        let tally = sink.tally().await.map_err(|e| e.to_string())?;
        check(
            format_args!("{sink:?} (received, out of order)"),
            tally,
            (events, 0),
        )?;
    }
    token.unregister();
    owner.stop(ExitReason::Normal);
    check(
        "exit reason of the owner",
        owner.wait().await,
        ExitReason::Normal,
    )?;
    stop_all(&node, &sinks).await?;
    Ok(Sample {
        elapsed,
        ops: events * SUBSCRIBERS as u64,
        latency: None,
        rss_per_op: None,
    })
}

async fn tokio_publish(events: u64) -> BenchResult<Sample> {
    let mut senders = Vec::with_capacity(SUBSCRIBERS);
    let mut consumers = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        senders.push(tx);
        consumers.push(tokio::spawn(async move {
            let (mut received, mut out_of_order) = (0u64, 0u64);
            while received < events {
                let seq = rx.recv().await.ok_or("channel closed early")?;
                if seq != received {
                    out_of_order += 1;
                }
                received += 1;
            }
            Ok((received, out_of_order))
        }));
    }

    let start = Instant::now();
    let producer = tokio::spawn(async move {
        for seq in 0..events {
            for tx in &senders {
                tx.send(seq)
                    .map_err(|_| format!("send {seq}: consumer ended"))?;
            }
        }
        Ok(())
    });
    let mut tallies = Vec::with_capacity(SUBSCRIBERS);
    for consumer in consumers {
        tallies.push(join(consumer).await?);
    }
    let elapsed = start.elapsed();

    join(producer).await?;
    for tally in tallies {
        check(
            "tokio subscriber (received, out of order)",
            tally,
            (events, 0),
        )?;
    }
    Ok(Sample {
        elapsed,
        ops: events * SUBSCRIBERS as u64,
        latency: None,
        rss_per_op: None,
    })
}

// ---------------------------------------------------------------------------------------------
// pool_call
// ---------------------------------------------------------------------------------------------

/// Workers in the pool.
const POOL_SIZE: usize = 4;

/// Tasks calling through the pool at once.
const CALLERS: u64 = 8;

async fn pool_workload(cfg: &Config) -> BenchResult<()> {
    let calls = cfg.count(200_000) / CALLERS * CALLERS;
    let ergo = best_of(cfg.reps, |rep| ergo_pool(rep, calls, Routing::RoundRobin)).await?;
    let least_busy = best_of(cfg.reps, |rep| {
        ergo_pool(rep + cfg.reps, calls, Routing::LeastBusy)
    })
    .await?;
    let tokio = best_of(cfg.reps, |_| tokio_pool(calls)).await?;
    report("pool_call", "calls/s", &ergo, &tokio);
    line(
        "pool_call",
        "least_busy_rate",
        format!("{:.0}", least_busy.rate()),
        "calls/s",
    );
    Ok(())
}

async fn ergo_pool(rep: usize, calls: u64, routing: Routing) -> BenchResult<Sample> {
    let node = new_node("pool_call", rep).await?;
    let pool = Pool::spawn(&node, POOL_SIZE, routing, || Echo { calls: 0 })
        .await
        .map_err(|e| format!("pool start: {e}"))?;
    let per_caller = calls / CALLERS;
    let start = Instant::now();
    let mut callers = Vec::new();
    for c in 0..CALLERS {
        let pool = pool.clone();
        callers.push(tokio::spawn(async move {
            for i in 0..per_caller {
                let x = c * per_caller + i;
                let reply = pool
                    .call(|w| w.echo(x))
                    .await
                    .map_err(|e| format!("call {x}: {e}"))?;
                check(format_args!("reply to call {x}"), reply, x + 1)?;
            }
            Ok(())
        }));
    }
    for caller in callers {
        join(caller).await?;
    }
    let elapsed = start.elapsed();

    let workers = pool.workers();
    check("workers in the pool", workers.len(), POOL_SIZE)?;
    let mut answered = 0;
    for w in &workers {
        let n = w.calls().await.map_err(|e| e.to_string())?;
        if routing == Routing::RoundRobin {
            check(
                format_args!("calls answered by {w:?}"),
                n,
                calls / POOL_SIZE as u64,
            )?;
        }
        answered += n;
    }
    check("calls answered", answered, calls)?;
    check("workers replaced", pool.replaced(), 0)?;
    pool.shutdown().await;
    check("processes left on the node", node.process_count(), 0)?;
    Ok(Sample {
        elapsed,
        ops: calls,
        latency: None,
        rss_per_op: None,
    })
}

async fn tokio_pool(calls: u64) -> BenchResult<Sample> {
    let mut servers = Vec::with_capacity(POOL_SIZE);
    let mut senders = Vec::with_capacity(POOL_SIZE);
    for _ in 0..POOL_SIZE {
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, oneshot::Sender<u64>)>();
        senders.push(tx);
        servers.push(tokio::spawn(async move {
            let mut answered = 0u64;
            while let Some((x, reply)) = rx.recv().await {
                answered += 1;
                let _ = reply.send(x + 1);
            }
            Ok(answered)
        }));
    }
    let senders = Arc::new(senders);
    let next = Arc::new(AtomicU64::new(0));
    let per_caller = calls / CALLERS;
    let start = Instant::now();
    let mut callers = Vec::new();
    for c in 0..CALLERS {
        let (senders, next) = (senders.clone(), next.clone());
        callers.push(tokio::spawn(async move {
            for i in 0..per_caller {
                let x = c * per_caller + i;
                let k = next.fetch_add(1, Ordering::Relaxed) as usize % senders.len();
                let (reply_tx, reply_rx) = oneshot::channel();
                senders[k]
                    .send((x, reply_tx))
                    .map_err(|_| format!("request {x}: server ended"))?;
                let reply = reply_rx
                    .await
                    .map_err(|_| format!("request {x}: no reply"))?;
                check(format_args!("reply to request {x}"), reply, x + 1)?;
            }
            Ok(())
        }));
    }
    for caller in callers {
        join(caller).await?;
    }
    let elapsed = start.elapsed();
    drop(senders);
    let mut answered = 0;
    for server in servers {
        answered += join(server).await?;
    }
    check("requests answered", answered, calls)?;
    Ok(Sample {
        elapsed,
        ops: calls,
        latency: None,
        rss_per_op: None,
    })
}
