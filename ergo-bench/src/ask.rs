//! `ask_roundtrip`: sequential calls from one task to one actor, with p50 and p99 latency.

use std::time::Instant;

use ergo::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::cli::Config;
use crate::measure::{
    best_of, check, join, new_node, percentiles, report, stop_all, BenchResult, Sample,
};

/// Answers calls with their argument plus one.
pub(crate) struct Echo {
    pub(crate) calls: u64,
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

pub(crate) async fn ask_workload(cfg: &Config) -> BenchResult<()> {
    let calls = cfg.count(200_000);
    let ergo = best_of(cfg.reps, |rep| ergo_ask(rep, calls)).await?;
    let tokio = best_of(cfg.reps, |_| tokio_ask(calls)).await?;
    report("ask_roundtrip", "calls/s", &ergo, &tokio);
    Ok(())
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
