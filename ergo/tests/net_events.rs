//! Events across nodes: one network copy per subscribing node, order per producer, typed
//! errors at subscribe time, the end (or a lost connection) reaching every subscriber once.

mod common;

use common::net::node;
use std::time::Duration;

use ergo::events::{Event, EventDown, EventOptions, SubscribeError};
use ergo::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OrderPlaced {
    id: u64,
    amount: u32,
}

const ORDERS: Event<OrderPlaced> = Event::remote("orders");

async fn routed(name: &str, producer: &Node) -> Node {
    let n = node(name).await;
    n.add_route(producer.name(), producer.listen_addr().unwrap())
        .unwrap();
    n
}

struct Shop;

#[actor]
impl Shop {
    #[handle]
    fn close(&mut self, ctx: &mut Ctx<Self>) {
        ctx.stop_with(ExitReason::Error("closed for the day".into()));
    }
}

#[derive(Debug, PartialEq)]
enum Seen {
    Order(u64),
    Down(ExitReason),
    Ended(ExitReason),
}

struct Audit {
    tx: mpsc::UnboundedSender<Seen>,
}

#[actor]
impl Audit {
    #[handle]
    fn order(&mut self, o: OrderPlaced) {
        let _ = self.tx.send(Seen::Order(o.id));
    }

    #[handle]
    fn down(&mut self, d: EventDown) {
        let _ = self.tx.send(Seen::Down(d.reason));
    }

    #[terminate]
    fn terminate(&mut self, reason: &ExitReason) {
        let _ = self.tx.send(Seen::Ended(reason.clone()));
    }
}

async fn audit(n: &Node) -> (ActorRef<Audit>, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (n.spawn(Audit { tx }).await.unwrap(), rx)
}

async fn monitor(n: &Node, producer: &Node, a: &ActorRef<Audit>) -> Result<(), SubscribeError> {
    n.monitor_event_at(
        &ORDERS,
        producer.name(),
        a,
        |o| AuditMsg::Order { o },
        |d| AuditMsg::Down { d },
    )
    .await
    .map(|_| ())
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("within 5 s")
        .expect("open")
}

async fn orders(rx: &mut mpsc::UnboundedReceiver<Seen>, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        match next(rx).await {
            Seen::Order(id) => ids.push(id),
            other => panic!("expected an order, got {other:?}"),
        }
    }
    ids
}

#[tokio::test]
async fn subscribers_on_two_nodes_get_every_value_in_order_one_copy_per_node() {
    let a = node("ne-a1@localhost").await;
    let shop = a.spawn(Shop).await.unwrap();
    let token = a
        .register_event(&ORDERS, shop.pid(), EventOptions::new())
        .unwrap();
    let b = routed("ne-b1@localhost", &a).await;
    let c = routed("ne-c1@localhost", &a).await;
    let (b1, mut rb1) = audit(&b).await;
    let (b2, mut rb2) = audit(&b).await;
    let (c1, mut rc1) = audit(&c).await;
    monitor(&b, &a, &b1).await.unwrap();
    monitor(&b, &a, &b2).await.unwrap();
    monitor(&c, &a, &c1).await.unwrap();
    // Two subscribing nodes: two subscribers on the producer's side, whatever their fan-out.
    assert_eq!(token.subscribers(), 2);
    for id in 0..1000 {
        token.publish(OrderPlaced { id, amount: 5 }).unwrap();
    }
    let all: Vec<u64> = (0..1000).collect();
    assert_eq!(orders(&mut rb1, 1000).await, all);
    assert_eq!(orders(&mut rb2, 1000).await, all);
    assert_eq!(orders(&mut rc1, 1000).await, all);

    // The producer ends: every monitor gets one EventDown with its reason.
    shop.close().await.unwrap();
    let reason = ExitReason::Error("closed for the day".into());
    assert_eq!(next(&mut rb1).await, Seen::Down(reason.clone()));
    assert_eq!(next(&mut rb2).await, Seen::Down(reason.clone()));
    assert_eq!(next(&mut rc1).await, Seen::Down(reason));
}

#[tokio::test]
async fn subscribe_errors_are_typed() {
    let a = node("ne-a2@localhost").await;
    let shop = a.spawn(Shop).await.unwrap();
    let b = routed("ne-b2@localhost", &a).await;
    let (b1, _rb1) = audit(&b).await;

    let err = monitor(&b, &a, &b1).await.unwrap_err();
    assert_eq!(err, SubscribeError::NotRegistered("orders".into()));

    // Registered with another payload type.
    let wrong: Event<String> = Event::remote("orders");
    let token = a
        .register_event(&wrong, shop.pid(), EventOptions::new())
        .unwrap();
    let err = monitor(&b, &a, &b1).await.unwrap_err();
    assert!(
        matches!(&err, SubscribeError::TypeMismatch { registered, requested, .. }
            if registered.contains("String") && requested.contains("OrderPlaced")),
        "{err:?}"
    );
    token.unregister();

    // Registered as a local-only event.
    let local: Event<OrderPlaced> = Event::new("orders");
    let _token = a
        .register_event(&local, shop.pid(), EventOptions::new())
        .unwrap();
    let err = monitor(&b, &a, &b1).await.unwrap_err();
    assert_eq!(err, SubscribeError::NotRemote("orders".into()));

    // A node with no route.
    let err = b
        .monitor_event_at(
            &ORDERS,
            "nowhere@localhost",
            &b1,
            |o| AuditMsg::Order { o },
            |d| AuditMsg::Down { d },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SubscribeError::Net(_)), "{err:?}");
}

#[tokio::test]
async fn a_new_remote_subscriber_gets_the_buffer_first() {
    let a = node("ne-a3@localhost").await;
    let shop = a.spawn(Shop).await.unwrap();
    let token = a
        .register_event(&ORDERS, shop.pid(), EventOptions::new().buffer(3))
        .unwrap();
    for id in 0..5 {
        token.publish(OrderPlaced { id, amount: 1 }).unwrap();
    }
    let b = routed("ne-b3@localhost", &a).await;
    let (b1, mut rb1) = audit(&b).await;
    monitor(&b, &a, &b1).await.unwrap();
    token.publish(OrderPlaced { id: 5, amount: 1 }).unwrap();
    assert_eq!(orders(&mut rb1, 4).await, vec![2, 3, 4, 5]);
}

#[tokio::test]
async fn losing_the_producer_node_ends_the_subscriptions_with_noconnection() {
    let a = node("ne-a4@localhost").await;
    let shop = a.spawn(Shop).await.unwrap();
    let token = a
        .register_event(&ORDERS, shop.pid(), EventOptions::new())
        .unwrap();
    let b = routed("ne-b4@localhost", &a).await;
    let (b1, mut rb1) = audit(&b).await;
    monitor(&b, &a, &b1).await.unwrap();
    // A link subscriber dies with the connection.
    let (b2, mut rb2) = audit(&b).await;
    b.link_event_at(&ORDERS, a.name(), &b2, |o| AuditMsg::Order { o })
        .await
        .unwrap();
    token.publish(OrderPlaced { id: 1, amount: 1 }).unwrap();
    assert_eq!(orders(&mut rb1, 1).await, vec![1]);
    assert_eq!(orders(&mut rb2, 1).await, vec![1]);
    assert!(b.disconnect(a.name()));
    assert_eq!(next(&mut rb1).await, Seen::Down(ExitReason::NoConnection));
    assert_eq!(next(&mut rb2).await, Seen::Ended(ExitReason::NoConnection));
    assert_eq!(b2.wait().await, ExitReason::NoConnection);
    // The producer's side forgets the node as soon as it sees the connection closed, without
    // waiting for a publish to find it gone.
    let forgotten = tokio::time::timeout(Duration::from_secs(5), async {
        while token.subscribers() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(forgotten.is_ok());
    token.publish(OrderPlaced { id: 2, amount: 1 }).unwrap();
}

#[tokio::test]
async fn when_no_local_subscriber_is_left_the_node_unsubscribes() {
    let a = node("ne-a5@localhost").await;
    let shop = a.spawn(Shop).await.unwrap();
    let token = a
        .register_event(&ORDERS, shop.pid(), EventOptions::new())
        .unwrap();
    let b = routed("ne-b5@localhost", &a).await;
    let (b1, mut rb1) = audit(&b).await;
    let sub = b
        .monitor_event_at(
            &ORDERS,
            a.name(),
            &b1,
            |o| AuditMsg::Order { o },
            |d| AuditMsg::Down { d },
        )
        .await
        .unwrap();
    token.publish(OrderPlaced { id: 1, amount: 1 }).unwrap();
    assert_eq!(orders(&mut rb1, 1).await, vec![1]);
    assert!(sub.unsubscribe());
    token.publish(OrderPlaced { id: 2, amount: 1 }).unwrap();
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while token.subscribers() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the producer's node dropped the subscription");
    // Subscribing again works (a fresh remote subscription).
    monitor(&b, &a, &b1).await.unwrap();
    token.publish(OrderPlaced { id: 3, amount: 1 }).unwrap();
    assert_eq!(orders(&mut rb1, 1).await, vec![3]);
}
