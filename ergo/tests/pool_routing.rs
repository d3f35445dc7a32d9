//! Routing pools: round-robin and least-busy routing, dead workers, replacement.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{eventually, node, within};
use ergo::pool::{Pool, Routing};
use ergo::prelude::*;
use tokio::sync::oneshot;

struct Worker {
    id: usize,
    hits: u32,
}

#[actor]
impl Worker {
    #[handle]
    fn id(&self) -> usize {
        self.id
    }

    #[handle]
    fn hit(&mut self) {
        self.hits += 1;
    }

    #[handle]
    fn hits(&self) -> u32 {
        self.hits
    }

    /// Holds the worker until `release`; says which worker it is once it has started.
    #[handle]
    async fn hold(&self, started: oneshot::Sender<usize>, release: oneshot::Receiver<()>) -> usize {
        let _ = started.send(self.id);
        let _ = release.await;
        self.id
    }

    #[handle]
    fn crash(&self) -> usize {
        panic!("worker {} crashed", self.id)
    }
}

async fn workers(node: &Node, n: usize) -> Vec<ActorRef<Worker>> {
    let mut refs = Vec::new();
    for id in 0..n {
        refs.push(node.spawn(Worker { id, hits: 0 }).await.unwrap());
    }
    refs
}

/// Starts a `hold` call through the pool; returns the held worker's id, the call's task and
/// the release.
async fn hold_one(
    pool: &Pool<Worker>,
) -> (
    usize,
    tokio::task::JoinHandle<Result<usize, CallError>>,
    oneshot::Sender<()>,
) {
    let (started_tx, started) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    let p = pool.clone();
    let call = tokio::spawn(async move { p.call(|w| w.hold(started_tx, release_rx)).await });
    let id = within("the hold to start", started).await.unwrap();
    (id, call, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_calls_and_casts_evenly() {
    let node = node("pool-rr").await;
    let pool = Pool::from_workers(Routing::RoundRobin, workers(&node, 4).await);
    let mut per_worker = [0; 4];
    for _ in 0..400 {
        per_worker[within("call", pool.call(|w| w.id())).await.unwrap()] += 1;
    }
    assert_eq!(per_worker, [100; 4]);
    for _ in 0..400 {
        pool.cast(WorkerMsg::Hit {}).await.unwrap();
    }
    for w in pool.workers() {
        assert_eq!(within("hits", w.hits()).await.unwrap(), 100);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_avoids_a_worker_blocked_in_a_pool_call() {
    let node = node("pool-lb-call").await;
    let pool = Pool::from_workers(Routing::LeastBusy, workers(&node, 3).await);
    let (blocked, call, release) = hold_one(&pool).await;
    for _ in 0..30 {
        let id = within("call", pool.call(|w| w.id())).await.unwrap();
        assert_ne!(id, blocked, "routed to the blocked worker");
    }
    release.send(()).unwrap();
    assert_eq!(within("the held call", call).await.unwrap(), Ok(blocked));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_busy_avoids_a_worker_with_a_deep_mailbox() {
    let node = node("pool-lb-depth").await;
    let refs = workers(&node, 2).await;
    let pool = Pool::from_workers(Routing::LeastBusy, refs.clone());
    // Block worker 0 outside the pool, then queue work behind the block.
    let (started_tx, started) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    let held = refs[0].clone();
    let call = tokio::spawn(async move { held.hold(started_tx, release_rx).await });
    within("the hold to start", started).await.unwrap();
    for _ in 0..5 {
        refs[0].hit().await.unwrap();
    }
    assert_eq!(refs[0].mailbox_len(), 5);
    for _ in 0..20 {
        assert_eq!(within("call", pool.call(|w| w.id())).await.unwrap(), 1);
    }
    release.send(()).unwrap();
    assert_eq!(within("the held call", call).await.unwrap(), Ok(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_worker_stops_receiving_work_and_its_in_flight_call_fails_with_exited() {
    let node = node("pool-dead").await;
    let refs = workers(&node, 3).await;
    let pool = Pool::from_workers(Routing::RoundRobin, refs.clone());
    let (victim, call, _release) = hold_one(&pool).await;
    refs[victim].kill();
    assert_eq!(
        within("the in-flight call", call).await.unwrap(),
        Err(CallError::Exited(ExitReason::Killed))
    );
    for _ in 0..30 {
        let id = within("call", pool.call(|w| w.id())).await.unwrap();
        assert_ne!(id, victim, "routed to the dead worker");
    }
    for _ in 0..30 {
        pool.cast(WorkerMsg::Hit {}).await.unwrap();
    }
    eventually("the dead worker's removal", || async {
        (pool.len() == 2).then_some(())
    })
    .await;
    assert!(pool.workers().iter().all(|w| w.pid() != refs[victim].pid()));
    assert_eq!(pool.replaced(), 0, "a pool without a factory only removes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_replaces_dead_workers_when_given_a_factory() {
    let node = node("pool-factory").await;
    let made = Arc::new(AtomicUsize::new(0));
    let factory = {
        let made = made.clone();
        move || Worker {
            id: made.fetch_add(1, Ordering::SeqCst),
            hits: 0,
        }
    };
    let pool = Pool::spawn(&node, 2, Routing::RoundRobin, factory)
        .await
        .unwrap();
    let before: Vec<Pid> = pool.workers().iter().map(|w| w.pid()).collect();
    let (victim, call, _release) = hold_one(&pool).await;
    pool.workers()[victim].kill();
    assert_eq!(
        within("the in-flight call", call).await.unwrap(),
        Err(CallError::Exited(ExitReason::Killed))
    );
    // A crash is replaced too, and its call fails with the panic.
    let crashed = within("the crashing call", pool.call(|w| w.crash())).await;
    assert!(
        matches!(&crashed, Err(CallError::Exited(ExitReason::Panic(m))) if m.contains("crashed")),
        "{crashed:?}"
    );
    eventually("two replacements", || async {
        (pool.replaced() == 2 && pool.len() == 2).then_some(())
    })
    .await;
    let now: Vec<Pid> = pool.workers().iter().map(|w| w.pid()).collect();
    assert_eq!(now.len(), 2);
    assert!(now.iter().all(|p| node.is_alive(*p)));
    assert!(now.iter().filter(|p| before.contains(p)).count() <= 1);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(within("call", pool.call(|w| w.id())).await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2, "both current workers answer: {ids:?}");
    assert!(
        !ids.contains(&victim),
        "the killed worker answered: {ids:?}"
    );
    assert_eq!(made.load(Ordering::SeqCst), 4);
    within("shutdown", pool.shutdown()).await;
    assert_eq!(node.process_count(), 0);
}

#[tokio::test]
async fn an_empty_pool_fails_calls_with_noproc_and_hands_casts_back() {
    let node = node("pool-empty").await;
    let refs = workers(&node, 1).await;
    let pool = Pool::from_workers(Routing::LeastBusy, refs.clone());
    refs[0].kill();
    within("the kill", refs[0].wait()).await;
    assert_eq!(pool.call(|w| w.id()).await, Err(CallError::NoProc));
    let back = pool.cast(WorkerMsg::Hit {}).await.unwrap_err();
    assert!(matches!(back.0, WorkerMsg::Hit {}));
    assert!(pool.pick().is_none());
}
