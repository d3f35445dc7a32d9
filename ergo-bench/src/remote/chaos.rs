//! `chaos_reconnect`: casts flat out to a sink in another OS process while the client
//! disconnects from the server every 200 ms (50 times at full counts), then counts what
//! arrived: reorders and duplicates must be 0 (order holds per sender→receiver pair across
//! reconnections, at most once); losses are allowed on a break and are printed, split into
//! casts that failed visibly (an error to the sender) and silent ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::cli::Config;
use crate::measure::{line, BenchResult};

/// The registered name of the sink on the server node.
pub(crate) const CHAOS_NAME: &str = "chaos";

/// Counts distinct, duplicate and out-of-order sequence numbers of one sender.
pub(crate) struct ChaosSink {
    /// Bit `n` set: `n` has arrived.
    seen: Vec<u64>,
    received: u64,
    distinct: u64,
    duplicates: u64,
    reorders: u64,
    highest: Option<u64>,
}

impl ChaosSink {
    pub(crate) fn new() -> Self {
        ChaosSink {
            seen: Vec::new(),
            received: 0,
            distinct: 0,
            duplicates: 0,
            reorders: 0,
            highest: None,
        }
    }
}

/// What the sink counted: received, distinct, duplicates, reorders, highest seq.
type Tally = (u64, u64, u64, u64, Option<u64>);

#[actor(remote)]
impl ChaosSink {
    /// Message `seq`.
    #[handle]
    fn hit(&mut self, seq: u64) {
        self.received += 1;
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.distinct += 1;
        if self.highest.is_some_and(|h| seq < h) {
            self.reorders += 1;
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
    }

    #[handle]
    fn tally(&self) -> Tally {
        (
            self.received,
            self.distinct,
            self.duplicates,
            self.reorders,
            self.highest,
        )
    }
}

/// Runs the cut-and-count scenario once (`cfg.count(50)` disconnects, 200 ms apart).
pub(crate) async fn chaos_workload(cfg: &Config) -> BenchResult<()> {
    let workload = "chaos_reconnect";
    let cuts = cfg.count(50).max(2);
    println!(
        "# {workload}: one sender casts flat out to a sink in a server process while the \
         client disconnects every 200 ms ({cuts} times); reorders and duplicates must be 0; \
         failed = casts that returned an error, silent = lost without one (dropped_counted: those the \
         client's buffers still held at a break, counted by Node::frames_dropped); no baseline"
    );
    let pair = Pair::start(workload, 0, false).await?;
    let sink = pair.lookup::<ChaosSink>(CHAOS_NAME).await?;
    let done = Arc::new(AtomicBool::new(false));
    let cutter = {
        let (client, server, done) = (pair.client.clone(), pair.server_name.clone(), done.clone());
        tokio::spawn(async move {
            let mut made = 0u64;
            for _ in 0..cuts {
                tokio::time::sleep(Duration::from_millis(200)).await;
                made += u64::from(client.disconnect(&server));
            }
            done.store(true, Ordering::Release);
            made
        })
    };
    let start = Instant::now();
    let (mut sent, mut failed) = (0u64, 0u64);
    // Bounded in count and time: the cuts take cuts × 200 ms.
    let deadline = start + Duration::from_millis(200 * cuts + 30_000);
    while !done.load(Ordering::Acquire) && sent < 200_000_000 && Instant::now() < deadline {
        if sink.hit(sent).await.is_err() {
            failed += 1;
            // The link is being made again: do not spin on errors.
            tokio::task::yield_now().await;
        }
        sent += 1;
    }
    let elapsed = start.elapsed();
    let made = cutter.await.map_err(|e| format!("cutter: {e}"))?;
    // The last casts are on the current link; the tally follows them into the mailbox.
    let mut tally = None;
    for _ in 0..50 {
        match sink.tally().timeout(CALL_TIMEOUT).await {
            Ok(t) => {
                tally = Some(t);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let (received, distinct, duplicates, reorders, _highest) =
        tally.ok_or(format!("{workload}: the sink never answered its tally"))?;
    let silent = sent - failed - distinct;
    line(
        workload,
        "rate",
        format!("{:.0}", sent as f64 / elapsed.as_secs_f64()),
        "msg/s",
    );
    line(workload, "cuts", made, "disconnects");
    line(workload, "sent", sent, "casts");
    line(workload, "received", received, "casts");
    line(workload, "reorders", reorders, "casts");
    line(workload, "duplicates", duplicates, "casts");
    line(workload, "failed", failed, "casts");
    line(workload, "silent_losses", silent, "casts");
    // Of the silent losses, those still in the client's buffers when a link went down.
    line(
        workload,
        "dropped_counted",
        pair.client.frames_dropped(),
        "frames",
    );
    line(
        workload,
        "silent_per_cut",
        format!("{:.0}", silent as f64 / made.max(1) as f64),
        "casts",
    );
    pair.finish().await?;
    if reorders != 0 || duplicates != 0 {
        return Err(format!(
            "{workload}: {reorders} reorders and {duplicates} duplicates across reconnections"
        ));
    }
    Ok(())
}
