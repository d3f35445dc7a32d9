//! Events on one node: registration, subscription by monitor and by link, buffer, types,
//! ordering and bounded mailboxes.

mod common;

use common::{eventually, node, within};
use ergo::events::{
    Event, EventDown, EventOptions, PublishError, RegisterEventError, SubscribeError, Subscription,
};
use ergo::prelude::*;
use tokio::sync::oneshot;

const NUMBERS: Event<u64> = Event::new("numbers");

/// What a subscriber saw, in arrival order.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Value(u64),
    Down(EventDown),
    Exit(Pid, ExitReason),
}

#[derive(Default)]
struct Recorder {
    log: Vec<Seen>,
}

#[actor]
impl Recorder {
    #[handle]
    fn value(&mut self, v: u64) {
        self.log.push(Seen::Value(v));
    }

    #[handle]
    fn down(&mut self, down: EventDown) {
        self.log.push(Seen::Down(down));
    }

    #[handle]
    fn log(&self) -> Vec<Seen> {
        self.log.clone()
    }

    /// A call, so trapping is on before anything sent after it.
    #[handle]
    fn trap(&mut self, ctx: &mut Ctx<Self>) -> bool {
        ctx.trap_exit(true);
        true
    }

    /// Blocks the mailbox until `release` (a cast); says when it has started.
    #[handle]
    async fn block(&self, started: oneshot::Sender<()>, release: oneshot::Receiver<()>) {
        let _ = started.send(());
        let _ = release.await;
    }

    #[on_exit]
    fn on_exit(&mut self, from: Pid, reason: ExitReason) {
        self.log.push(Seen::Exit(from, reason));
    }
}

struct Producer;

#[actor]
impl Producer {
    #[handle]
    fn quit(&mut self, reason: ExitReason, ctx: &mut Ctx<Self>) {
        ctx.stop_with(reason);
    }

    #[handle]
    fn crash(&mut self) {
        panic!("producer crashed");
    }
}

fn monitor(node: &Node, event: &Event<u64>, r: &ActorRef<Recorder>) -> Subscription {
    node.monitor_event(
        event,
        r,
        |v| RecorderMsg::Value { v },
        |down| RecorderMsg::Down { down },
    )
    .expect("subscribes")
}

fn values(log: &[Seen]) -> Vec<u64> {
    log.iter()
        .filter_map(|s| match s {
            Seen::Value(v) => Some(*v),
            _ => None,
        })
        .collect()
}

async fn producer_and_token(
    node: &Node,
    options: EventOptions,
) -> (ActorRef<Producer>, ergo::events::EventToken<u64>) {
    let producer = node.spawn(Producer).await.unwrap();
    let token = node
        .register_event(&NUMBERS, producer.pid(), options)
        .expect("registers");
    (producer, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_every_value_in_order() {
    let node = node("ev-order").await;
    let (_producer, token) = producer_and_token(&node, EventOptions::new()).await;
    let mut subs = Vec::new();
    for _ in 0..5 {
        let r = node.spawn(Recorder::default()).await.unwrap();
        monitor(&node, &NUMBERS, &r);
        subs.push(r);
    }
    for v in 0..1_000 {
        assert_eq!(token.publish(v).unwrap(), 5);
    }
    for r in &subs {
        let log = within("log", r.log()).await.unwrap();
        assert_eq!(values(&log), (0..1_000).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_through_token_clones_keep_each_ones_order_and_one_order_for_all() {
    let node = node("ev-concurrent").await;
    let (_producer, token) = producer_and_token(&node, EventOptions::new()).await;
    let mut subs = Vec::new();
    for _ in 0..3 {
        let r = node.spawn(Recorder::default()).await.unwrap();
        monitor(&node, &NUMBERS, &r);
        subs.push(r);
    }
    let mut tasks = Vec::new();
    for p in 0..2u64 {
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..2_000u64 {
                token.publish(p * 1_000_000 + i).unwrap();
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        within("publishers", t).await.unwrap();
    }
    let first = values(&within("log", subs[0].log()).await.unwrap());
    assert_eq!(first.len(), 4_000);
    for p in 0..2u64 {
        let mine: Vec<u64> = first
            .iter()
            .copied()
            .filter(|v| v / 1_000_000 == p)
            .collect();
        assert_eq!(
            mine,
            (0..2_000).map(|i| p * 1_000_000 + i).collect::<Vec<_>>()
        );
    }
    for r in &subs[1..] {
        assert_eq!(values(&within("log", r.log()).await.unwrap()), first);
    }
}

#[tokio::test]
async fn monitor_subscriber_gets_event_down_after_the_last_value_when_producer_exits() {
    let node = node("ev-down").await;
    let (producer, token) = producer_and_token(&node, EventOptions::new()).await;
    let r = node.spawn(Recorder::default()).await.unwrap();
    monitor(&node, &NUMBERS, &r);
    token.publish(1).unwrap();
    token.publish(2).unwrap();
    let reason = ExitReason::Error("out of numbers".into());
    producer.quit(reason.clone()).await.unwrap();
    let log = eventually("the down notice", || async {
        let log = r.log().await.unwrap();
        (log.len() == 3).then_some(log)
    })
    .await;
    assert_eq!(
        log,
        vec![
            Seen::Value(1),
            Seen::Value(2),
            Seen::Down(EventDown {
                event: "numbers".into(),
                producer: producer.pid(),
                reason,
            }),
        ]
    );
    assert!(r.is_alive(), "a monitor never kills the subscriber");
}

#[tokio::test]
async fn link_subscriber_exits_with_the_producers_reason() {
    let node = node("ev-link").await;
    let (producer, _token) = producer_and_token(&node, EventOptions::new()).await;
    let r = node.spawn(Recorder::default()).await.unwrap();
    node.link_event(&NUMBERS, &r, |v| RecorderMsg::Value { v })
        .unwrap();
    let _ = producer.crash().await;
    assert_eq!(
        within("the link subscriber's exit", r.wait()).await,
        ExitReason::Panic("producer crashed".into())
    );
}

#[tokio::test]
async fn link_subscriber_that_traps_exits_gets_the_producers_exit_signal() {
    let node = node("ev-link-trap").await;
    let (producer, token) = producer_and_token(&node, EventOptions::new()).await;
    let r = node.spawn(Recorder::default()).await.unwrap();
    assert!(r.trap().await.unwrap());
    node.link_event(&NUMBERS, &r, |v| RecorderMsg::Value { v })
        .unwrap();
    token.publish(7).unwrap();
    producer.kill();
    let log = eventually("the exit signal", || async {
        let log = r.log().await.unwrap();
        (log.len() == 2).then_some(log)
    })
    .await;
    assert_eq!(
        log,
        vec![
            Seen::Value(7),
            Seen::Exit(producer.pid(), ExitReason::Killed)
        ]
    );
}

#[tokio::test]
async fn late_subscriber_first_gets_the_last_n_buffered_values() {
    let node = node("ev-buffer").await;
    let (_producer, token) = producer_and_token(&node, EventOptions::new().buffer(3)).await;
    for v in 0..10 {
        assert_eq!(token.publish(v).unwrap(), 0);
    }
    let r = node.spawn(Recorder::default()).await.unwrap();
    monitor(&node, &NUMBERS, &r);
    token.publish(10).unwrap();
    let log = within("log", r.log()).await.unwrap();
    assert_eq!(values(&log), vec![7, 8, 9, 10]);
}

#[tokio::test]
async fn subscribing_with_another_payload_type_is_a_typed_error() {
    let node = node("ev-types").await;
    let (_producer, _token) = producer_and_token(&node, EventOptions::new()).await;
    let r = node.spawn(Recorder::default()).await.unwrap();
    let as_text: Event<String> = Event::new("numbers");
    let err = node
        .link_event(&as_text, &r, |_s| RecorderMsg::Value { v: 0 })
        .unwrap_err();
    assert_eq!(
        err,
        SubscribeError::TypeMismatch {
            event: "numbers".into(),
            registered: "u64".into(),
            requested: std::any::type_name::<String>().into(),
        }
    );
    assert!(err.to_string().contains("carries `u64`"), "{err}");
}

#[tokio::test]
async fn subscribing_to_an_unregistered_event_is_an_error() {
    let node = node("ev-unregistered-sub").await;
    let r = node.spawn(Recorder::default()).await.unwrap();
    let err = node
        .monitor_event(
            &NUMBERS,
            &r,
            |v| RecorderMsg::Value { v },
            |down| RecorderMsg::Down { down },
        )
        .unwrap_err();
    assert_eq!(err, SubscribeError::NotRegistered("numbers".into()));
}

#[tokio::test]
async fn publish_to_an_unregistered_event_is_an_error_that_hands_the_value_back() {
    let node = node("ev-unregistered-pub").await;
    let (_producer, token) = producer_and_token(&node, EventOptions::new()).await;
    let r = node.spawn(Recorder::default()).await.unwrap();
    monitor(&node, &NUMBERS, &r);
    token.unregister();
    assert!(!token.is_registered());
    assert_eq!(token.publish(5), Err(PublishError::Unregistered(5)));
    let log = within("log", r.log()).await.unwrap();
    assert!(
        matches!(&log[..], [Seen::Down(d)] if d.reason == ExitReason::Normal),
        "{log:?}"
    );
}

#[tokio::test]
async fn registration_ends_when_the_owner_exits_and_the_name_can_be_registered_again() {
    let node = node("ev-reregister").await;
    let (producer, token) = producer_and_token(&node, EventOptions::new()).await;
    let other = node.spawn(Producer).await.unwrap();
    assert_eq!(
        node.register_event(&NUMBERS, other.pid(), EventOptions::new())
            .unwrap_err(),
        RegisterEventError::Taken("numbers".into())
    );
    producer.quit(ExitReason::Normal).await.unwrap();
    within("the producer's exit", producer.wait()).await;
    assert_eq!(token.publish(1), Err(PublishError::Unregistered(1)));
    let again = node
        .register_event(&NUMBERS, other.pid(), EventOptions::new())
        .expect("the name is free once the owner has exited");
    let r = node.spawn(Recorder::default()).await.unwrap();
    monitor(&node, &NUMBERS, &r);
    assert_eq!(again.publish(2).unwrap(), 1);
    assert_eq!(values(&within("log", r.log()).await.unwrap()), vec![2]);
}

#[tokio::test]
async fn registering_for_an_ended_process_is_an_error() {
    let node = node("ev-noproc").await;
    let producer = node.spawn(Producer).await.unwrap();
    producer.kill();
    within("the kill", producer.wait()).await;
    assert_eq!(
        node.register_event(&NUMBERS, producer.pid(), EventOptions::new())
            .unwrap_err(),
        RegisterEventError::NoProc
    );
}

#[tokio::test]
async fn unsubscribed_and_ended_subscribers_get_nothing_more() {
    let node = node("ev-unsubscribe").await;
    let (_producer, token) = producer_and_token(&node, EventOptions::new()).await;
    let stays = node.spawn(Recorder::default()).await.unwrap();
    let leaves = node.spawn(Recorder::default()).await.unwrap();
    let dies = node.spawn(Recorder::default()).await.unwrap();
    monitor(&node, &NUMBERS, &stays);
    let sub = monitor(&node, &NUMBERS, &leaves);
    monitor(&node, &NUMBERS, &dies);
    assert_eq!(token.publish(1).unwrap(), 3);
    assert!(sub.unsubscribe());
    assert!(!sub.unsubscribe());
    dies.kill();
    within("the kill", dies.wait()).await;
    assert_eq!(token.publish(2).unwrap(), 1);
    assert_eq!(token.subscribers(), 1);
    token.unregister();
    assert_eq!(values(&within("log", leaves.log()).await.unwrap()), vec![1]);
    let log = within("log", stays.log()).await.unwrap();
    assert_eq!(values(&log), vec![1, 2]);
    assert_eq!(log.len(), 3, "values then the down notice: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_bounded_mailbox_drops_values_and_counts_them_but_never_the_down_notice() {
    let node = node("ev-bounded").await;
    let (_producer, token) = producer_and_token(&node, EventOptions::new()).await;
    let r = node
        .spawn_opts(Recorder::default(), SpawnOptions::new().mailbox_capacity(1))
        .await
        .unwrap();
    monitor(&node, &NUMBERS, &r);
    let (started_tx, started) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    r.block(started_tx, release_rx).await.unwrap();
    within("the block to start", started).await.unwrap();
    let queued: usize = (0..5).map(|v| token.publish(v).unwrap()).sum();
    assert_eq!(queued, 1, "one place in the mailbox");
    assert_eq!(token.dropped(), 4);
    token.unregister(); // the mailbox is still full: the notice waits for room
    release.send(()).unwrap();
    let log = eventually("the down notice", || async {
        let log = r.log().await.unwrap();
        (log.len() == 2).then_some(log)
    })
    .await;
    assert_eq!(log[0], Seen::Value(0));
    assert!(matches!(&log[1], Seen::Down(d) if d.reason == ExitReason::Normal));
}
