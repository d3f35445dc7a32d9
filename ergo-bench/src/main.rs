//! Benchmarks of ergo, each next to a raw-tokio baseline doing the same work.
//!
//! Run with `cargo run --release -p ergo-bench [-- [--quick] [--reps N] [WORKLOAD...]]`.
//!
//! Every figure is printed as one line `workload metric value unit`; lines starting with `#` are
//! comments. Each workload checks its own counts (every message sent was handled, in order, by
//! the actor it was sent to) before its figures are printed, and the binary exits with a non-zero
//! status on any mismatch.
//!
//! The workloads, what each measures and the order they run in are listed once, in
//! [`workloads::WORKLOADS`]; `ergo-bench --help` prints that list. The files are one per
//! workload family (`tell`, `ask`, `spawn`, `ring`, `restart`, `publish_local`, `pool`, `net`
//! for TCP and HTTP, `remote` and `publish_remote` across OS processes), over the command line
//! (`cli`) and the measurement helpers (`measure`).
//!
//! The remote workloads re-execute this binary as their server process (hidden argument
//! `--remote-server`), one per run (two for `publish_remote`); it prints its address, serves
//! until its stdin closes, and is killed on every exit path. They also print their target
//! (`…_target`, `…_vs_target`, when the issues set one) and the figure of a peer for
//! reference. `ERGO_BENCH_REMOTE_CONNS=N` sets `connections_per_peer` on both nodes (default:
//! ergo's).
//!
//! Each workload has a `tokio_…` baseline built from tokio tasks and unbounded mpsc channels (for
//! `restart`: a supervising task that respawns a panicked task and publishes its sender; for
//! `publish_local`: one channel per subscriber, the producer sending a copy to each; for
//! `pool_call`: 4 server tasks chosen round-robin, replies by oneshot; for the network
//! workloads: plain tokio and plain axum servers), and a
//! `ratio_vs_tokio` line (ergo's rate divided by tokio's). A `WORKLOAD` argument keeps the
//! workload it names exactly (`tell_p1` is not `remote_tell_p1`), or else the workloads whose
//! name, or whose baseline's name, contains it.

use std::process::ExitCode;

mod ask;
mod cli;
mod measure;
mod net;
mod pool;
mod publish_local;
mod publish_remote;
mod remote;
mod restart;
mod ring;
mod spawn;
mod tell;
mod workloads;

use cli::Config;
use measure::BenchResult;
use workloads::WORKLOADS;

fn main() -> ExitCode {
    if let Some(code) = remote::server::serve_if_asked() {
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
        if cfg.wants(workload.name) {
            workload.run(cfg).await?;
        }
    }
    Ok(())
}
