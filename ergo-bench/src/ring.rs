//! `ring`: actors in a ring pass a token around.

use std::sync::Arc;
use std::time::Instant;

use ergo::prelude::*;
use tokio::sync::{mpsc, Notify};

use crate::cli::Config;
use crate::measure::{best_of, check, join, new_node, report, stop_all, BenchResult, Sample};

/// Actors in the ring (not scaled by `--quick`).
const RING_SIZE: u64 = 1_000;

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

pub(crate) async fn ring_workload(cfg: &Config) -> BenchResult<()> {
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
