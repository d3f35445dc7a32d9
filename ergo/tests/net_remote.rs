//! Two or three nodes in one process, on loopback: remote refs behave like local ones.

mod common;

use common::net::{node, pair};
use std::time::Duration;

use ergo::net::NetError;
use ergo::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct Counter {
    n: u64,
    /// Per sender: the next sequence number expected.
    next: std::collections::HashMap<u32, u64>,
    received: u64,
    out_of_order: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    label: String,
    weight: u32,
}

#[actor(remote)]
impl Counter {
    #[handle]
    fn add(&mut self, by: u64) {
        self.n += by;
    }

    #[handle]
    fn get(&self) -> u64 {
        self.n
    }

    /// Counts messages and those not in their sender's order (a gap, a repeat, a reorder).
    #[handle]
    fn tagged(&mut self, sender: u32, seq: u64) {
        self.received += 1;
        let next = self.next.entry(sender).or_default();
        if seq != *next {
            self.out_of_order += 1;
        }
        *next = seq + 1;
    }

    /// (received, out of order, per-sender next expected).
    #[handle]
    fn order_report(&self) -> (u64, u64, Vec<(u32, u64)>) {
        let mut next: Vec<_> = self.next.iter().map(|(s, n)| (*s, *n)).collect();
        next.sort();
        (self.received, self.out_of_order, next)
    }

    #[handle]
    fn weigh(&self, items: Vec<Item>) -> Result<u32, String> {
        if items.is_empty() {
            Err("no items".into())
        } else {
            Ok(items.iter().map(|i| i.weight).sum())
        }
    }

    #[handle]
    async fn slow(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    #[handle]
    fn boom(&self) -> u64 {
        panic!("boom on purpose")
    }
}

#[tokio::test]
async fn a_looked_up_remote_ref_casts_and_calls_like_a_local_one() {
    let (a, b) = pair("rr-a1@localhost", "rr-b1@localhost").await;
    let counter = a.spawn(Counter::default()).await.unwrap();
    a.register("counter", &counter).unwrap();

    let remote = b.lookup::<Counter>("counter", a.name()).await.unwrap();
    assert!(!remote.is_local());
    assert_eq!(remote.pid(), counter.pid());
    remote.add(40).await.unwrap();
    remote.add(2).await.unwrap();
    assert_eq!(remote.get().await.unwrap(), 42);
    let items = vec![
        Item {
            label: "a".into(),
            weight: 3,
        },
        Item {
            label: "b".into(),
            weight: 4,
        },
    ];
    assert_eq!(remote.weigh(items).await.unwrap(), Ok(7));
    assert_eq!(
        remote.weigh(vec![]).await.unwrap(),
        Err("no items".to_string())
    );
    assert_eq!(counter.get().await.unwrap(), 42);
    assert!(b.connected_nodes().contains(&a.name().to_string()));
}

#[tokio::test]
async fn lookup_errors_are_typed() {
    let (a, b) = pair("rr-a2@localhost", "rr-b2@localhost").await;
    let err = b.lookup::<Counter>("nobody", a.name()).await.unwrap_err();
    assert!(matches!(err, NetError::NotFound { .. }), "{err:?}");

    struct Other;
    #[actor(remote)]
    impl Other {
        #[handle]
        fn ping(&self) {}
    }
    let other = a.spawn(Other).await.unwrap();
    a.register("other", &other).unwrap();
    let err = b.lookup::<Counter>("other", a.name()).await.unwrap_err();
    assert!(matches!(err, NetError::WrongActor { .. }), "{err:?}");

    let err = b
        .lookup::<Counter>("x", "unknown@nowhere")
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::NoRoute(_)), "{err:?}");
}

#[tokio::test]
async fn remote_call_errors_match_local_ones() {
    let (a, b) = pair("rr-a3@localhost", "rr-b3@localhost").await;
    let counter = a.spawn(Counter::default()).await.unwrap();
    a.register("counter", &counter).unwrap();
    let remote = b.lookup::<Counter>("counter", a.name()).await.unwrap();

    let err = remote
        .slow(500)
        .timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err, CallError::Timeout);

    let err = remote.boom().await.unwrap_err();
    assert!(
        matches!(&err, CallError::Exited(ExitReason::Panic(m)) if m.contains("boom")),
        "{err:?}"
    );
    // The process is gone: calls fail with NoProc.
    assert_eq!(remote.get().await.unwrap_err(), CallError::NoProc);
}

#[tokio::test]
async fn a_ref_sent_inside_a_message_can_call_back() {
    // b has no route to a: its calls back reach a over the connection a opened to b.
    let a = node("rr-a4@localhost").await;
    let b = node("rr-b4@localhost").await;

    struct Caller;
    #[actor(remote)]
    impl Caller {
        /// Calls `counter` (a ref that arrived over the network) and returns what it said.
        #[handle]
        async fn call_back(&self, counter: ActorRef<Counter>, by: u64) -> u64 {
            counter.add(by).await.unwrap();
            counter.get().await.unwrap()
        }
    }

    let caller = b.spawn(Caller).await.unwrap();
    b.register("caller", &caller).unwrap();
    let counter = a.spawn(Counter::default()).await.unwrap();

    a.add_route(b.name(), b.listen_addr().unwrap()).unwrap();
    let remote_caller = a.lookup::<Caller>("caller", b.name()).await.unwrap();
    assert_eq!(
        remote_caller.call_back(counter.clone(), 5).await.unwrap(),
        5
    );
    assert_eq!(
        remote_caller.call_back(counter.clone(), 6).await.unwrap(),
        11
    );
    assert_eq!(counter.get().await.unwrap(), 11);
}

#[tokio::test]
async fn order_is_kept_per_sender_under_load() {
    let (a, b) = pair("rr-a5@localhost", "rr-b5@localhost").await;
    let counter = a.spawn(Counter::default()).await.unwrap();
    a.register("counter", &counter).unwrap();
    let remote = b.lookup::<Counter>("counter", a.name()).await.unwrap();

    const SENDERS: u32 = 8;
    const EACH: u64 = 100_000;
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let remote = remote.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..EACH {
                remote.tagged(sender, seq).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = SENDERS as u64 * EACH;
    let (received, out_of_order, next) = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let report = remote.order_report().await.unwrap();
            if report.0 >= total {
                break report;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every message arrives");
    assert_eq!(received, total, "none lost, none duplicated");
    assert_eq!(out_of_order, 0, "none reordered");
    assert_eq!(next, (0..SENDERS).map(|s| (s, EACH)).collect::<Vec<_>>());
}
