//! Pools of workers on other nodes, and services found by name across the known nodes.

mod common;

use common::net::node;
use std::time::Duration;

use ergo::pool::{Pool, Routing};
use ergo::prelude::*;

struct Billing {
    instance: u32,
}

#[actor(remote)]
impl Billing {
    /// Bills an order; answers which instance did it.
    #[handle]
    async fn bill(&self, order: u64, hold_ms: u64) -> (u64, u32) {
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        (order, self.instance)
    }
}

/// Two billing nodes, each running one registered instance, and a client knowing both.
async fn cluster(prefix: &str) -> (Node, Node, Node) {
    let b1 = node(&format!("{prefix}-b1@localhost")).await;
    let b2 = node(&format!("{prefix}-b2@localhost")).await;
    b1.register("billing", &b1.spawn(Billing { instance: 1 }).await.unwrap())
        .unwrap();
    b2.register("billing", &b2.spawn(Billing { instance: 2 }).await.unwrap())
        .unwrap();
    let client = node(&format!("{prefix}-client@localhost")).await;
    client
        .add_route(b1.name(), b1.listen_addr().unwrap())
        .unwrap();
    client
        .add_route(b2.name(), b2.listen_addr().unwrap())
        .unwrap();
    (client, b1, b2)
}

#[tokio::test]
async fn find_all_returns_every_instance_of_a_service() {
    let (client, b1, b2) = cluster("np1").await;
    let mut found: Vec<_> = client
        .find_all::<Billing>("billing")
        .await
        .into_iter()
        .map(|r| r.pid().node_name().to_string())
        .collect();
    found.sort();
    assert_eq!(found, vec![b1.name().to_string(), b2.name().to_string()]);
    let one = client.find::<Billing>("billing").await.unwrap();
    assert!(!one.is_local());
    assert!(client.find::<Billing>("nobody").await.is_err());
}

#[tokio::test]
async fn a_pool_of_remote_workers_routes_and_survives_a_lost_node() {
    let (client, b1, _b2) = cluster("np2").await;
    let workers = client.find_all::<Billing>("billing").await;
    let pool = Pool::from_workers(Routing::RoundRobin, workers);
    assert_eq!(pool.len(), 2);

    let mut by_instance = [0u32; 3];
    for order in 0..10 {
        let (o, instance) = pool.call(|w| w.bill(order, 0)).await.unwrap();
        assert_eq!(o, order);
        by_instance[instance as usize] += 1;
    }
    assert_eq!(by_instance, [0, 5, 5], "round robin over both nodes");

    // Calls in flight on b1 when it goes away fail with an error, not silence.
    let mut in_flight = Vec::new();
    for order in 100..104 {
        let pool = pool.clone();
        in_flight.push(tokio::spawn(async move {
            pool.call(|w| w.bill(order, 500)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    b1.shutdown(Duration::from_millis(50)).await;
    let mut failed = 0;
    let mut done = 0;
    for t in in_flight {
        match t.await.unwrap() {
            Ok((_, 2)) => done += 1,
            Ok(other) => panic!("b1 answered after its shutdown: {other:?}"),
            Err(CallError::NoConnection | CallError::Exited(_)) => failed += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!((done, failed), (2, 2), "half went to each node");

    // The lost worker leaves the pool; work goes on on b2.
    let left = tokio::time::timeout(Duration::from_secs(5), async {
        while pool.len() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(left.is_ok(), "the lost worker was removed");
    for order in 200..210 {
        assert_eq!(pool.call(|w| w.bill(order, 0)).await.unwrap(), (order, 2));
    }
}
