//! `remote_tell_p1`, `remote_tell_p2` and `remote_tell_p1_tls`: casts to a sink in another OS
//! process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

use super::server::{ServerProcess, TOKIO_TELL};
use super::*;
use crate::cli::Config;
use crate::measure::{best_of, check, join, report, BenchResult, Sample};

/// `pairs` sender → sink pairs casting `total` messages in all across the processes.
pub(crate) async fn remote_tell_workload(
    cfg: &Config,
    workload: &str,
    pairs: usize,
    total: u64,
) -> BenchResult<()> {
    let per_pair = total / pairs as u64;
    println!(
        "# {workload}: {pairs} sender(s) here -> {pairs} sink(s) in a server process, {} casts \
         in all, timed until a tally call after the last cast counts them all; target >= 2 M \
         msg/s; peer: Ergo (Go) 0.8 M tells/s between two node processes over loopback",
        pairs as u64 * per_pair
    );
    let ergo = best_of(cfg.reps, |rep| {
        ergo_remote_tell(workload, rep, pairs, per_pair, false)
    })
    .await?;
    let tokio = best_of(cfg.reps, |_| tokio_remote_tell(pairs, per_pair)).await?;
    report(workload, "msg/s", &ergo, &tokio);
    report_target(workload, "rate", ergo.rate(), true);
    Ok(())
}

/// `plain` (a `remote_tell_p1`-like workload: one sender → sink pair) with mutual TLS on
/// both nodes, `total` casts.
pub(crate) async fn remote_tell_tls_workload(
    cfg: &Config,
    workload: &str,
    plain: &str,
    total: u64,
) -> BenchResult<()> {
    println!(
        "# {workload}: {plain} with mutual TLS (rustls, ring provider) on both nodes, a \
         certificate per node from a development CA made per run; {total} casts, timed as \
         {plain}; no target; plain_rate: plain {plain} runs interleaved with the TLS runs \
         (best of {reps} each), ratio_vs_plain = rate / plain_rate",
        reps = cfg.reps
    );
    let (plain, tls) = best_of_interleaved(
        cfg.reps,
        |rep| ergo_remote_tell(plain, rep, 1, total, false),
        |rep| ergo_remote_tell(workload, rep, 1, total, true),
    )
    .await?;
    report_vs_plain(workload, "msg/s", &tls, &plain);
    Ok(())
}

/// A stall's message, with how far each sender got.
fn stalled(what: &str, progress: &[Arc<AtomicU64>], per_pair: u64) -> String {
    let got: Vec<String> = progress
        .iter()
        .map(|p| format!("{}/{per_pair}", p.load(Ordering::Relaxed)))
        .collect();
    format!(
        "{what}: stalled, not done {RUN_DEADLINE:?} after the start (messages sent per sender: {})",
        got.join(", ")
    )
}

async fn ergo_remote_tell(
    workload: &str,
    rep: usize,
    pairs: usize,
    per_pair: u64,
    tls: bool,
) -> BenchResult<Sample> {
    let pair = Pair::start(workload, rep, tls).await?;
    let mut sinks = Vec::with_capacity(pairs);
    for name in &SINK_NAMES[..pairs] {
        let sink = pair.lookup::<RemoteSink>(name).await?;
        let tally = sink
            .tally()
            .timeout(CALL_TIMEOUT)
            .await
            .map_err(|e| format!("tally of {name} before the run: {e}"))?;
        check(format_args!("{name} before the run"), tally, (0, 0))?;
        sinks.push(sink);
    }

    let progress: Vec<Arc<AtomicU64>> = (0..pairs).map(|_| Arc::default()).collect();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(pairs);
    for (i, sink) in sinks.iter().enumerate() {
        let (sink, sent) = (sink.clone(), progress[i].clone());
        tasks.push(tokio::spawn(async move {
            for seq in 0..per_pair {
                sink.hit(0, seq)
                    .await
                    .map_err(|_| format!("cast {seq} to sink {i}: the connection is closed"))?;
                sent.store(seq + 1, Ordering::Relaxed);
            }
            // The tally call follows the casts on the same connection, into the same
            // mailbox: its reply normally already counts every cast. Poll in case not.
            loop {
                let (received, out_of_order) = sink
                    .tally()
                    .timeout(CALL_TIMEOUT)
                    .await
                    .map_err(|e| format!("tally of sink {i}: {e}"))?;
                if received >= per_pair {
                    return Ok((received, out_of_order));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    let all = async {
        let mut tallies = Vec::with_capacity(pairs);
        for task in tasks {
            tallies.push(join(task).await?);
        }
        Ok::<_, String>(tallies)
    };
    let tallies = tokio::time::timeout(RUN_DEADLINE, all)
        .await
        .map_err(|_| stalled(workload, &progress, per_pair))??;
    let elapsed = start.elapsed();

    for (i, tally) in tallies.into_iter().enumerate() {
        check(
            format_args!("sink {i} (received, out of order)"),
            tally,
            (per_pair, 0),
        )?;
    }
    pair.finish().await?;
    Ok(Sample {
        elapsed,
        ops: pairs as u64 * per_pair,
        latency: None,
        rss_per_op: None,
    })
}

async fn tokio_remote_tell(pairs: usize, per_pair: u64) -> BenchResult<Sample> {
    let mut server = ServerProcess::start(&["tokio"], "unused", &[]).await?;
    let mut streams = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        let s = TcpStream::connect(server.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        streams.push(s);
    }
    let progress: Vec<Arc<AtomicU64>> = (0..pairs).map(|_| Arc::default()).collect();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(pairs);
    for (i, stream) in streams.into_iter().enumerate() {
        let sent = progress[i].clone();
        tasks.push(tokio::spawn(async move {
            let io = |e: std::io::Error| format!("baseline connection {i}: {e}");
            let (mut r, w) = stream.into_split();
            let mut w = BufWriter::with_capacity(64 * 1024, w);
            w.write_u8(TOKIO_TELL).await.map_err(io)?;
            w.write_u64_le(per_pair).await.map_err(io)?;
            for seq in 0..per_pair {
                w.write_u32_le(0).await.map_err(io)?;
                w.write_u64_le(seq).await.map_err(io)?;
                sent.store(seq + 1, Ordering::Relaxed);
            }
            w.flush().await.map_err(io)?;
            let received = r.read_u64_le().await.map_err(io)?;
            let out_of_order = r.read_u64_le().await.map_err(io)?;
            Ok((received, out_of_order))
        }));
    }
    let all = async {
        let mut tallies = Vec::with_capacity(pairs);
        for task in tasks {
            tallies.push(join(task).await?);
        }
        Ok::<_, String>(tallies)
    };
    let tallies = tokio::time::timeout(RUN_DEADLINE, all)
        .await
        .map_err(|_| stalled("tokio baseline", &progress, per_pair))??;
    let elapsed = start.elapsed();
    for (i, tally) in tallies.into_iter().enumerate() {
        check(
            format_args!("baseline connection {i} (received, out of order)"),
            tally,
            (per_pair, 0),
        )?;
    }
    server.check_alive()?;
    Ok(Sample {
        elapsed,
        ops: pairs as u64 * per_pair,
        latency: None,
        rss_per_op: None,
    })
}
