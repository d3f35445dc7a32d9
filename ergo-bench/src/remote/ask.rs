//! `remote_ask` and `remote_ask_tls`: sequential calls to an actor in another OS process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::server::{ServerProcess, TOKIO_ASK};
use super::*;
use crate::cli::Config;
use crate::measure::{best_of, check, join, percentiles, report, BenchResult, Sample};

/// `calls` sequential remote calls after a warm-up, with p50 and p99 latency.
pub(crate) async fn remote_ask_workload(cfg: &Config, calls: u64) -> BenchResult<()> {
    let warmup = ASK_WARMUP.min(calls);
    println!(
        "# remote_ask: {calls} sequential calls to an echo in a server process, after {warmup} \
         warm-up calls; target p50 <= 25 us; peer: Ergo (Go) 42 us per remote call"
    );
    let ergo = best_of(cfg.reps, |rep| {
        ergo_remote_ask("remote_ask", rep, warmup, calls, false)
    })
    .await?;
    let tokio = best_of(cfg.reps, |_| tokio_remote_ask(warmup, calls)).await?;
    report("remote_ask", "calls/s", &ergo, &tokio);
    if let Some((p50, _)) = ergo.latency {
        report_target("remote_ask", "p50", p50 as f64, false);
    }
    Ok(())
}

/// `remote_ask` with mutual TLS on both nodes.
pub(crate) async fn remote_ask_tls_workload(cfg: &Config, calls: u64) -> BenchResult<()> {
    const WORKLOAD: &str = "remote_ask_tls";
    let warmup = ASK_WARMUP.min(calls);
    println!(
        "# {WORKLOAD}: remote_ask with mutual TLS (rustls, ring provider) on both nodes, a \
         certificate per node from a development CA made per run; {calls} sequential calls \
         after {warmup} warm-up calls; no target; plain_*: plain remote_ask runs interleaved \
         with the TLS runs (best of {reps} each), ratio_vs_plain = rate / plain_rate",
        reps = cfg.reps
    );
    let (plain, tls) = best_of_interleaved(
        cfg.reps,
        |rep| ergo_remote_ask("remote_ask", rep, warmup, calls, false),
        |rep| ergo_remote_ask(WORKLOAD, rep, warmup, calls, true),
    )
    .await?;
    report_vs_plain(WORKLOAD, "calls/s", &tls, &plain);
    Ok(())
}

async fn ergo_remote_ask(
    workload: &str,
    rep: usize,
    warmup: u64,
    calls: u64,
    tls: bool,
) -> BenchResult<Sample> {
    let pair = Pair::start(workload, rep, tls).await?;
    let echo = pair.lookup::<RemoteEcho>(ECHO_NAME).await?;
    let caller = echo.clone();
    let done = Arc::new(AtomicU64::new(0));
    let progress = done.clone();
    let run = join(tokio::spawn(async move {
        for x in 0..warmup {
            let reply = caller
                .echo(x)
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(|e| format!("warm-up call {x}: {e}"))?;
            check(format_args!("reply to warm-up call {x}"), reply, x + 1)?;
        }
        let mut latencies = Vec::with_capacity(calls as usize);
        let start = Instant::now();
        for x in 0..calls {
            let t = Instant::now();
            let reply = caller
                .echo(x)
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(|e| format!("call {x}: {e}"))?;
            latencies.push(t.elapsed().as_nanos() as u64);
            check(format_args!("reply to call {x}"), reply, x + 1)?;
            progress.store(x + 1, Ordering::Relaxed);
        }
        Ok((start.elapsed(), latencies))
    }));
    let (elapsed, latencies) = tokio::time::timeout(RUN_DEADLINE, run)
        .await
        .map_err(|_| {
            format!(
                "{workload}: stalled, not done {RUN_DEADLINE:?} after the start ({}/{calls} timed \
             calls answered)",
                done.load(Ordering::Relaxed)
            )
        })??;
    let answered = echo
        .calls()
        .timeout(CALL_TIMEOUT)
        .await
        .map_err(|e| format!("calls of the echo: {e}"))?;
    check(
        "calls answered by the remote echo",
        answered,
        warmup + calls,
    )?;
    pair.finish().await?;
    Ok(Sample {
        elapsed,
        ops: calls,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

async fn tokio_remote_ask(warmup: u64, calls: u64) -> BenchResult<Sample> {
    let mut server = ServerProcess::start(&["tokio"], "unused", &[]).await?;
    let stream = TcpStream::connect(server.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let done = Arc::new(AtomicU64::new(0));
    let progress = done.clone();
    let run = join(tokio::spawn(async move {
        let io = |e: std::io::Error| format!("baseline connection: {e}");
        let (mut r, mut w) = stream.into_split();
        w.write_u8(TOKIO_ASK).await.map_err(io)?;
        let mut latencies = Vec::with_capacity(calls as usize);
        let mut start = Instant::now();
        for x in 0..warmup + calls {
            if x == warmup {
                start = Instant::now();
            }
            let t = Instant::now();
            w.write_u64_le(x).await.map_err(io)?;
            let reply = r.read_u64_le().await.map_err(io)?;
            if x >= warmup {
                latencies.push(t.elapsed().as_nanos() as u64);
                progress.store(x + 1 - warmup, Ordering::Relaxed);
            }
            check(format_args!("reply to request {x}"), reply, x + 1)?;
        }
        Ok((start.elapsed(), latencies))
    }));
    let (elapsed, latencies) = tokio::time::timeout(RUN_DEADLINE, run)
        .await
        .map_err(|_| {
            format!(
                "tokio_remote_ask: stalled, not done {RUN_DEADLINE:?} after the start ({}/{calls} \
             answered)",
                done.load(Ordering::Relaxed)
            )
        })??;
    server.check_alive()?;
    Ok(Sample {
        elapsed,
        ops: calls,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}
