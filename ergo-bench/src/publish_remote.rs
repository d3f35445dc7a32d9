//! `publish_remote`: one producer on this node publishes a remote event ([`Event::remote`]) to
//! subscribers on two other nodes, each in its own OS process (this binary re-executed with
//! `--remote-server subscribers NAME PRODUCER ADDR`).
//!
//! Each subscriber process starts a node with a route to the producer's node, spawns
//! [`SUBSCRIBERS_PER_NODE`] subscriber actors, subscribes each with
//! [`Node::monitor_event_at`] (so its node subscribes once, and receives one network copy of
//! each value that it fans out), registers a tally actor that the parent asks for progress
//! and counts, and only then prints its address. Every subscriber checks that it receives
//! 0, 1, 2, … in order.
//!
//! The producer publishes at most [`WINDOW`] events ahead of the slowest subscriber: ergo
//! queues an event for a subscribing node only while that connection's outgoing buffer is
//! below 4 MiB and drops it above (counted by `EventToken::dropped`); publishing never waits.
//! The window keeps the buffer far below that, so no event may be dropped; a publish that
//! reaches fewer than every subscribing node fails the workload.
//!
//! The baseline (`tokio_publish_remote`) writes each event as 8 bytes through a 64 KiB
//! `BufWriter` on one plain TCP stream to each of two plain tokio servers in the same kind of
//! process, each of which hands a copy to each of [`SUBSCRIBERS_PER_NODE`] tasks through
//! unbounded mpsc channels. TCP's flow control paces it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ergo::events::{Event, EventDown, EventOptions, EventToken};
use ergo::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::cli::Config;
use crate::measure::{best_of, check, join, line, report, BenchResult, Sample};
use crate::publish_local::{ergo_publish, PUBLISH_LOCAL_EVENTS};
use crate::remote::server::{
    announce_and_wait, cookie_from_env, networked, new_cookie, ServerProcess, TOKIO_FAN_OUT,
};
use crate::remote::{CALL_TIMEOUT, RUN_DEADLINE};

const WORKLOAD: &str = "publish_remote";

/// The event: remote, so that processes of other nodes can subscribe.
const TICKS: Event<u64> = Event::remote("bench-remote-ticks");

/// Subscriber processes (nodes), and subscriber actors on each.
const SUBSCRIBER_NODES: usize = 2;
const SUBSCRIBERS_PER_NODE: usize = 10;

/// The registered name of the tally actor of a subscriber node.
const TALLY_NAME: &str = "tally";

/// At most this many events are published ahead of the slowest subscriber. An event frame is
/// at most 42 bytes (4-byte length, 29-byte header, 9-byte CBOR `u64`), so a connection's
/// outgoing buffer holds at most ~2.1 MB of them, below ergo's 4 MiB high water.
const WINDOW: u64 = 50_000;

/// Once the producer has caught up with the window it waits for room for this many events
/// (and yields to the runtime every this many events).
const CHUNK: u64 = 5_000;

/// The pause between two progress polls.
const POLL: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------------------------
// The subscriber process
// ---------------------------------------------------------------------------------------------

/// One subscriber's counts, on its own cache lines (ten actors update them on two threads).
#[derive(Default)]
#[repr(align(128))]
struct Slot {
    received: AtomicU64,
    out_of_order: AtomicU64,
}

/// The counts of a subscriber node's actors, read by its tally actor.
struct Shared {
    slots: Vec<Slot>,
    /// End notices (`EventDown`) received: none is expected while the workload runs.
    downs: AtomicU64,
    /// The first event out of order: (subscriber, expected, got).
    first_mismatch: Mutex<Option<(u32, u64, u64)>>,
    /// The reason of the first end notice.
    first_down: Mutex<Option<String>>,
}

/// A subscriber: counts the events and checks that they arrive as 0, 1, 2, …
struct TickSink {
    index: usize,
    received: u64,
    shared: Arc<Shared>,
}

#[actor]
impl TickSink {
    /// Event `seq`.
    #[handle]
    fn tick(&mut self, seq: u64) {
        let slot = &self.shared.slots[self.index];
        if seq != self.received {
            slot.out_of_order.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.shared.first_mismatch.lock() {
                first.get_or_insert((self.index as u32, self.received, seq));
            }
        }
        self.received += 1;
        slot.received.store(self.received, Ordering::Relaxed);
    }

    /// The registration ended (or the connection to the producer's node was lost).
    #[handle]
    fn gone(&mut self, down: EventDown) {
        if let Ok(mut first) = self.shared.first_down.lock() {
            first.get_or_insert_with(|| format!("{} ({})", down.reason, down.producer));
        }
        self.shared.downs.fetch_add(1, Ordering::Relaxed);
    }
}

/// A subscriber node's tally, asked by the parent.
struct SubscriberTally {
    shared: Arc<Shared>,
}

#[actor(remote)]
impl SubscriberTally {
    /// The fewest events any subscriber has received, events out of order in all, and end
    /// notices received.
    #[handle]
    fn progress(&self) -> (u64, u64, u64) {
        let s = &self.shared;
        let slowest = s
            .slots
            .iter()
            .map(|slot| slot.received.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        let out_of_order = s
            .slots
            .iter()
            .map(|slot| slot.out_of_order.load(Ordering::Relaxed))
            .sum();
        (slowest, out_of_order, s.downs.load(Ordering::Relaxed))
    }

    /// Per subscriber: (received, out of order).
    #[handle]
    fn tallies(&self) -> Vec<(u64, u64)> {
        self.shared
            .slots
            .iter()
            .map(|slot| {
                (
                    slot.received.load(Ordering::Relaxed),
                    slot.out_of_order.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// The first event out of order (subscriber, expected, got) and the first end notice.
    #[handle]
    fn problems(&self) -> (Option<(u32, u64, u64)>, Option<String>) {
        let s = &self.shared;
        (
            s.first_mismatch.lock().ok().and_then(|m| *m),
            s.first_down.lock().ok().and_then(|d| d.clone()),
        )
    }
}

/// The subscriber process: node `name`, subscribed to [`TICKS`] on node `producer` (listening
/// at `addr`), until stdin closes.
pub(crate) async fn serve_subscribers(name: &str, producer: &str, addr: &str) -> BenchResult<()> {
    let cookie = cookie_from_env()?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| format!("producer address {addr:?}: {e}"))?;
    let node = networked(Node::builder(name), &cookie)?
        .listen("127.0.0.1:0")
        .route(producer, addr.to_string())
        .start()
        .await
        .map_err(|e| format!("subscriber node start: {e}"))?;
    let shared = Arc::new(Shared {
        slots: (0..SUBSCRIBERS_PER_NODE).map(|_| Slot::default()).collect(),
        downs: AtomicU64::new(0),
        first_mismatch: Mutex::new(None),
        first_down: Mutex::new(None),
    });
    let tally = node
        .spawn(SubscriberTally {
            shared: shared.clone(),
        })
        .await
        .map_err(|e| format!("spawn the tally: {e}"))?;
    node.register(TALLY_NAME, &tally)
        .map_err(|e| format!("register {TALLY_NAME}: {e}"))?;
    let event = TICKS;
    for index in 0..SUBSCRIBERS_PER_NODE {
        let sink = node
            .spawn(TickSink {
                index,
                received: 0,
                shared: shared.clone(),
            })
            .await
            .map_err(|e| format!("spawn subscriber {index}: {e}"))?;
        let subscribe = node.monitor_event_at(
            &event,
            producer,
            &sink,
            |seq| TickSinkMsg::Tick { seq },
            |down| TickSinkMsg::Gone { down },
        );
        tokio::time::timeout(CALL_TIMEOUT, subscribe)
            .await
            .map_err(|_| format!("subscriber {index}: subscribing timed out"))?
            .map_err(|e| format!("subscriber {index}: subscribing: {e}"))?;
    }
    let addr = node
        .listen_addr()
        .ok_or("the subscriber node does not listen")?;
    announce_and_wait(addr).await
}

// ---------------------------------------------------------------------------------------------
// The parent's side
// ---------------------------------------------------------------------------------------------

/// The owner of the registration on the producer's node.
struct Producer;

#[actor]
impl Producer {
    /// Replies `true` (a liveness probe).
    #[handle]
    fn ping(&self) -> bool {
        true
    }
}

/// `publish_local`'s ergo rate, when it ran earlier in this invocation (set by `main`).
pub(crate) static LOCAL_RATE: Mutex<Option<f64>> = Mutex::new(None);

pub(crate) async fn publish_remote_workload(cfg: &Config) -> BenchResult<()> {
    let events = cfg.count(1_000_000);
    let subscribers = SUBSCRIBER_NODES * SUBSCRIBERS_PER_NODE;
    println!(
        "# {WORKLOAD}: 1 producer here publishes {events} events of an Event::remote to \
         {SUBSCRIBERS_PER_NODE} subscribers (monitor_event_at) on each of {SUBSCRIBER_NODES} \
         nodes in other processes ({} deliveries), at most {WINDOW} events ahead of the \
         slowest subscriber (polled by remote call; ergo drops, not waits, above a 4 MiB \
         connection buffer), timed until all {subscribers} have every event, in order; rate = \
         deliveries/s, published_rate = events/s (rate / {subscribers}); no target",
        events * subscribers as u64
    );
    let ergo = best_of(cfg.reps, |rep| ergo_publish_remote(rep, events)).await?;
    let tokio = best_of(cfg.reps, |_| tokio_publish_remote(events)).await?;
    report(WORKLOAD, "events/s", &ergo, &tokio);
    line(
        WORKLOAD,
        "published_rate",
        format!("{:.0}", ergo.rate() / subscribers as f64),
        "events/s",
    );
    let local = *LOCAL_RATE.lock().map_err(|_| "LOCAL_RATE poisoned")?;
    let local = match local {
        Some(rate) => rate,
        None => {
            let local_events = cfg.count(PUBLISH_LOCAL_EVENTS);
            println!(
                "# {WORKLOAD}: publish_local did not run before it in this invocation; \
                 measuring it now (best of {}, no baseline) for local_rate",
                cfg.reps
            );
            best_of(cfg.reps, |rep| ergo_publish(rep, local_events))
                .await?
                .rate()
        }
    };
    println!(
        "# {WORKLOAD}: local_rate is publish_local's ergo rate (1 producer, 100 subscribers on \
         this node), ratio_vs_local = rate / local_rate"
    );
    line(WORKLOAD, "local_rate", format!("{local:.0}"), "events/s");
    line(
        WORKLOAD,
        "ratio_vs_local",
        format!("{:.2}", ergo.rate() / local),
        "x",
    );
    Ok(())
}

/// A subscriber node: its name and its tally (its process is kept apart, by the function that
/// started it, so that it is killed on every exit path of that function).
struct SubscriberNode {
    name: String,
    tally: ActorRef<SubscriberTally>,
}

impl SubscriberNode {
    async fn progress(&self) -> BenchResult<(u64, u64, u64)> {
        self.tally
            .progress()
            .timeout(CALL_TIMEOUT)
            .await
            .map_err(|e| format!("progress of {}: {e}", self.name))
    }

    /// The first problem its subscribers saw, for an error message.
    async fn problems(&self) -> String {
        match self.tally.problems().timeout(CALL_TIMEOUT).await {
            Ok((mismatch, down)) => {
                let mut said = Vec::new();
                if let Some((sub, want, got)) = mismatch {
                    said.push(format!(
                        "subscriber {sub} expected event {want} and got {got}"
                    ));
                }
                if let Some(reason) = down {
                    said.push(format!("the event ended for a subscriber: {reason}"));
                }
                said.join("; ")
            }
            Err(e) => format!("(its problems could not be asked: {e})"),
        }
    }
}

/// The fewest events any subscriber of any node has received; fails on an event out of
/// order, an end notice, or more events than published.
async fn slowest(nodes: &[SubscriberNode], published: u64) -> BenchResult<u64> {
    let mut slowest = u64::MAX;
    for node in nodes {
        let (min, out_of_order, downs) = node.progress().await?;
        if out_of_order > 0 || downs > 0 || min > published {
            return Err(format!(
                "{WORKLOAD}: on {}: {out_of_order} event(s) out of order, {downs} end \
                 notice(s), slowest subscriber at {min} of {published} published: {}",
                node.name,
                node.problems().await
            ));
        }
        slowest = slowest.min(min);
    }
    Ok(slowest)
}

/// Publishes `events` values to every node's subscribers, keeping at most [`WINDOW`] ahead of
/// the slowest, then waits until every subscriber has them all.
async fn produce(
    token: EventToken<u64>,
    nodes: Arc<Vec<SubscriberNode>>,
    events: u64,
    published: Arc<AtomicU64>,
) -> BenchResult<()> {
    let mut known = 0;
    for seq in 0..events {
        if seq >= known + WINDOW {
            // Wait for room for a chunk (or for what is left).
            let room = CHUNK.min(events - seq);
            loop {
                known = slowest(&nodes, seq).await?;
                if known + WINDOW >= seq + room {
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
        } else if seq % CHUNK == 0 && seq > 0 {
            tokio::task::yield_now().await;
        }
        let queued = token
            .publish(seq)
            .map_err(|e| format!("publish {seq}: {e}"))?;
        if queued != SUBSCRIBER_NODES {
            return Err(format!(
                "{WORKLOAD}: publish {seq} was queued for {queued} of {SUBSCRIBER_NODES} \
                 subscribing nodes ({} value(s) dropped so far: a connection's outgoing buffer \
                 was full, or a node is gone)",
                token.dropped()
            ));
        }
        published.store(seq + 1, Ordering::Relaxed);
    }
    while slowest(&nodes, events).await? < events {
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

async fn ergo_publish_remote(rep: usize, events: u64) -> BenchResult<Sample> {
    let cookie = new_cookie();
    let producer_name = format!("bench-publisher-{rep}@localhost");
    let node = networked(Node::builder(producer_name.clone()), &cookie)?
        .listen("127.0.0.1:0")
        .start()
        .await
        .map_err(|e| format!("producer node start: {e}"))?;
    let addr = node
        .listen_addr()
        .ok_or("the producer node does not listen")?
        .to_string();
    let owner = node
        .spawn(Producer)
        .await
        .map_err(|e| format!("spawn the producer: {e}"))?;
    let token = node
        .register_event(&TICKS, owner.pid(), EventOptions::new())
        .map_err(|e| format!("register {TICKS:?}: {e}"))?;

    // Each subscriber process has subscribed when it prints its address.
    let mut processes = Vec::with_capacity(SUBSCRIBER_NODES);
    let mut nodes = Vec::with_capacity(SUBSCRIBER_NODES);
    for i in 0..SUBSCRIBER_NODES {
        let name = format!("bench-subscribers-{rep}-{i}@localhost");
        let process =
            ServerProcess::start(&["subscribers", &name, &producer_name, &addr], &cookie, &[])
                .await?;
        let process_addr = process.addr;
        processes.push(process);
        node.add_route(&name, process_addr)
            .map_err(|e| format!("route to {name}: {e}"))?;
        let tally = tokio::time::timeout(
            CALL_TIMEOUT,
            node.lookup::<SubscriberTally>(TALLY_NAME, &name),
        )
        .await
        .map_err(|_| format!("lookup of {TALLY_NAME} on {name}: timed out"))?
        .map_err(|e| format!("lookup of {TALLY_NAME} on {name}: {e}"))?;
        let subscriber = SubscriberNode { name, tally };
        check(
            format_args!(
                "{} (slowest, out of order, downs) before the run",
                subscriber.name
            ),
            subscriber.progress().await?,
            (0, 0, 0),
        )?;
        nodes.push(subscriber);
    }
    check(
        "subscribing nodes of the event",
        token.subscribers(),
        SUBSCRIBER_NODES,
    )?;

    let nodes = Arc::new(nodes);
    let published = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut run = tokio::spawn(produce(
        token.clone(),
        nodes.clone(),
        events,
        published.clone(),
    ));
    match tokio::time::timeout(RUN_DEADLINE, &mut run).await {
        Ok(done) => done.map_err(|e| format!("producer task failed: {e}"))??,
        Err(_) => {
            run.abort();
            return Err(format!(
                "{WORKLOAD}: stalled, not done {RUN_DEADLINE:?} after the start ({}/{events} \
                 published)",
                published.load(Ordering::Relaxed)
            ));
        }
    }
    let elapsed = start.elapsed();

    check("events dropped", token.dropped(), 0)?;
    for n in nodes.iter() {
        let tallies = n
            .tally
            .tallies()
            .timeout(CALL_TIMEOUT)
            .await
            .map_err(|e| format!("tallies of {}: {e}", n.name))?;
        check(
            format_args!("{} subscribers (received, out of order)", n.name),
            tallies,
            vec![(events, 0); SUBSCRIBERS_PER_NODE],
        )?;
        check(
            format_args!("{} (slowest, out of order, downs) after the run", n.name),
            n.progress().await?,
            (events, 0, 0),
        )?;
    }
    token.unregister();
    owner.stop(ExitReason::Normal);
    check(
        "exit reason of the producer",
        owner.wait().await,
        ExitReason::Normal,
    )?;
    for process in &mut processes {
        process.check_alive()?;
    }
    node.shutdown(Duration::from_secs(1)).await;
    Ok(Sample {
        elapsed,
        ops: events * (SUBSCRIBER_NODES * SUBSCRIBERS_PER_NODE) as u64,
        latency: None,
        rss_per_op: None,
    })
}

// ---------------------------------------------------------------------------------------------
// The baseline
// ---------------------------------------------------------------------------------------------

/// The server side of a baseline fan-out connection: `expected: u64`, then `expected` events
/// `seq: u64`, each handed to [`SUBSCRIBERS_PER_NODE`] tasks through unbounded channels; once
/// every task has all of them, answers `(received in all, out of order in all)`.
pub(crate) async fn tokio_fan_out(
    mut r: tokio::io::BufReader<OwnedReadHalf>,
    mut w: OwnedWriteHalf,
) -> std::io::Result<()> {
    let expected = r.read_u64_le().await?;
    let mut senders = Vec::with_capacity(SUBSCRIBERS_PER_NODE);
    let mut consumers = Vec::with_capacity(SUBSCRIBERS_PER_NODE);
    for _ in 0..SUBSCRIBERS_PER_NODE {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        senders.push(tx);
        consumers.push(tokio::spawn(async move {
            let (mut received, mut out_of_order) = (0u64, 0u64);
            while received < expected {
                let Some(seq) = rx.recv().await else { break };
                if seq != received {
                    out_of_order += 1;
                }
                received += 1;
            }
            (received, out_of_order)
        }));
    }
    for _ in 0..expected {
        let seq = r.read_u64_le().await?;
        for tx in &senders {
            tx.send(seq)
                .map_err(|_| std::io::Error::other("a consumer task ended early"))?;
        }
    }
    let (mut received, mut out_of_order) = (0, 0);
    for consumer in consumers {
        let (r, o) = consumer.await.map_err(std::io::Error::other)?;
        received += r;
        out_of_order += o;
    }
    w.write_u64_le(received).await?;
    w.write_u64_le(out_of_order).await?;
    Ok(())
}

async fn tokio_publish_remote(events: u64) -> BenchResult<Sample> {
    let mut servers = Vec::with_capacity(SUBSCRIBER_NODES);
    let mut streams = Vec::with_capacity(SUBSCRIBER_NODES);
    for _ in 0..SUBSCRIBER_NODES {
        let server = ServerProcess::start(&["tokio"], "unused", &[]).await?;
        let s = TcpStream::connect(server.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        servers.push(server);
        streams.push(s);
    }
    let published = Arc::new(AtomicU64::new(0));
    let progress = published.clone();
    let start = Instant::now();
    let run = join(tokio::spawn(async move {
        let io = |e: std::io::Error| format!("baseline fan-out connection: {e}");
        let mut readers = Vec::with_capacity(streams.len());
        let mut writers = Vec::with_capacity(streams.len());
        for stream in streams {
            let (r, w) = stream.into_split();
            readers.push(r);
            writers.push(BufWriter::with_capacity(64 * 1024, w));
        }
        for w in &mut writers {
            w.write_u8(TOKIO_FAN_OUT).await.map_err(io)?;
            w.write_u64_le(events).await.map_err(io)?;
        }
        for seq in 0..events {
            for w in &mut writers {
                w.write_u64_le(seq).await.map_err(io)?;
            }
            progress.store(seq + 1, Ordering::Relaxed);
        }
        for w in &mut writers {
            w.flush().await.map_err(io)?;
        }
        let mut tallies = Vec::with_capacity(readers.len());
        for r in &mut readers {
            let received = r.read_u64_le().await.map_err(io)?;
            let out_of_order = r.read_u64_le().await.map_err(io)?;
            tallies.push((received, out_of_order));
        }
        Ok(tallies)
    }));
    let tallies = tokio::time::timeout(RUN_DEADLINE, run)
        .await
        .map_err(|_| {
            format!(
                "tokio_{WORKLOAD}: stalled, not done {RUN_DEADLINE:?} after the start \
                 ({}/{events} written)",
                published.load(Ordering::Relaxed)
            )
        })??;
    let elapsed = start.elapsed();
    for (i, tally) in tallies.into_iter().enumerate() {
        check(
            format_args!("baseline fan-out server {i} (received, out of order)"),
            tally,
            (events * SUBSCRIBERS_PER_NODE as u64, 0),
        )?;
    }
    for server in &mut servers {
        server.check_alive()?;
    }
    Ok(Sample {
        elapsed,
        ops: events * (SUBSCRIBER_NODES * SUBSCRIBERS_PER_NODE) as u64,
        latency: None,
        rss_per_op: None,
    })
}
