//! `pool_call`: caller tasks call through a pool of workers (round-robin and least-busy).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ergo::pool::{Pool, Routing};
use tokio::sync::{mpsc, oneshot};

use crate::ask::{Echo, EchoApi};
use crate::cli::Config;
use crate::measure::{best_of, check, join, line, new_node, report, BenchResult, Sample};

/// Workers in the pool.
const POOL_SIZE: usize = 4;

/// Tasks calling through the pool at once.
const CALLERS: u64 = 8;

pub(crate) async fn pool_workload(cfg: &Config) -> BenchResult<()> {
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
