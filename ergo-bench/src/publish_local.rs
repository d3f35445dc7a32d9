//! `publish_local`: one producer publishes events to local subscribers.

use std::time::Instant;

use ergo::events::{Event, EventOptions};
use ergo::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::cli::Config;
use crate::measure::{best_of, check, join, new_node, report, stop_all, BenchResult, Sample};
use crate::spawn::Idle;

/// Subscribers of the publish workload.
const SUBSCRIBERS: usize = 100;

/// The event of the publish workload.
const TICKS: Event<u64> = Event::new("ticks");

/// Events published by `publish_local` (full count).
pub(crate) const PUBLISH_LOCAL_EVENTS: u64 = 20_000;

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

pub(crate) async fn publish_workload(cfg: &Config) -> BenchResult<()> {
    let events = cfg.count(PUBLISH_LOCAL_EVENTS);
    let ergo = best_of(cfg.reps, |rep| ergo_publish(rep, events)).await?;
    let tokio = best_of(cfg.reps, |_| tokio_publish(events)).await?;
    report("publish_local", "events/s", &ergo, &tokio);
    // For `publish_remote`'s comparison.
    if let Ok(mut local) = crate::publish_remote::LOCAL_RATE.lock() {
        *local = Some(ergo.rate());
    }
    Ok(())
}

pub(crate) async fn ergo_publish(rep: usize, events: u64) -> BenchResult<Sample> {
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
