//! Services without a broker (`broker_free`, run by `src/main.rs`):
//! orders published on a remote event, billed through a pool of remote instances with
//! acknowledged calls; a SIGKILLed billing process loses no order and bills none twice.
//!
//! The billing and audit services of the multi-process test are this very test binary, run
//! again: [`child_entry`] returns at once unless `ERGO_BROKER_FREE_ROLE` is set, in which case
//! it is that service until its stdin closes. So no other binary has to be built, and a child
//! never outlives this process (its stdin is a pipe from here; its `ChildProcess` guard also
//! kills it on drop).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::process::Command;
use std::time::Duration;

use broker_free::{
    self, Billing, BillingApi, BillingConfig, LedgerApi, LedgerEntry, OrderError, Orders,
    OrdersConfig, Role, ScenarioConfig, BILLING, BILLING_1, BILLING_2, COOKIE_ENV,
};
use ergo::prelude::*;
use ergo_testkit::process::{self, SelfExe};

const ROLE_ENV: &str = "ERGO_BROKER_FREE_ROLE";

/// The service role of this binary (a no-op in a normal test run).
#[test]
fn child_entry() {
    let Some(args) = process::role_from_env(ROLE_ENV) else {
        return;
    };
    let role = Role::parse(&args).unwrap_or_else(|e| panic!("{ROLE_ENV}: {e}"));
    let cookie = std::env::var(COOKIE_ENV).expect("the cookie is set for a child");
    process::block_on(broker_free::run_role(&role, &cookie)).expect("the service runs");
}

/// How the scenario starts a service: this binary, running only `child_entry`.
fn child_command(role: &Role) -> Command {
    SelfExe::current()
        .expect("the test binary's path")
        .test_entry("child_entry", ROLE_ENV, role.args())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_billing_process_loses_no_order_and_bills_none_twice() {
    let config = ScenarioConfig {
        orders: 300,
        concurrency: 8,
        kill_after: 100,
        ..ScenarioConfig::default()
    };
    let run = broker_free::run_scenario(&config, child_command, |line| eprintln!("{line}"));
    let r = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the scenario ends within 30 s")
        .unwrap_or_else(|e| panic!("the scenario failed: {e}"));
    eprintln!("{r}");

    // Every order ended exactly once for its sender: billed or failed.
    assert_eq!(r.placed, config.orders);
    assert_eq!(r.not_placed, 0);
    assert!(r.reported_twice.is_empty(), "{:?}", r.reported_twice);
    assert_eq!(r.billed.len() + r.failed.len(), r.placed as usize);
    let billed: BTreeSet<u64> = r.billed.keys().copied().collect();
    let failed: BTreeSet<u64> = r.failed.keys().copied().collect();
    assert!(billed.is_disjoint(&failed));
    let all: BTreeSet<u64> = billed.union(&failed).copied().collect();
    assert_eq!(all, (0..r.placed).collect::<BTreeSet<u64>>());

    // Billed == charged exactly once, by the instance the sender was told; failed == voided.
    let mut charged: BTreeMap<u64, &str> = BTreeMap::new();
    let mut voided = BTreeSet::new();
    for (id, entry) in &r.ledger {
        match entry {
            LedgerEntry::Charged { by, .. } => {
                charged.insert(*id, by);
            }
            LedgerEntry::Voided => {
                voided.insert(*id);
            }
        }
    }
    assert_eq!(charged.keys().copied().collect::<BTreeSet<_>>(), billed);
    assert_eq!(voided, failed);
    for (id, b) in &r.billed {
        assert_eq!(charged[id], b.charged_by, "order {id}");
        assert!(b.charged_by == BILLING_1 || b.charged_by == BILLING_2);
    }
    assert_eq!(r.ledger_stats.charged, billed.len() as u64);

    // No acknowledged order was lost with the killed process.
    assert!(r.billed_before_kill.len() as u64 >= config.kill_after);
    assert!(r.billed_before_kill.is_subset(&billed));
    assert!(
        r.charged_by(BILLING_1) > 0,
        "billing-1 worked before the kill"
    );

    // The kill cut calls off; they were tried again, not lost.
    assert!(
        r.retried() + r.failed.len() > 0,
        "calls in flight to the killed instance were retried"
    );

    // The survivor's own account matches the ledger, with no order twice, and it took work
    // after the kill.
    let survivor: BTreeSet<u64> = r.survivor_charged.iter().copied().collect();
    assert_eq!(
        survivor.len(),
        r.survivor_charged.len(),
        "no order charged twice"
    );
    let by_survivor: BTreeSet<u64> = charged
        .iter()
        .filter(|(_, by)| **by == BILLING_2)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(survivor, by_survivor);
    assert!(r.survivor_acks_after_kill > 0);
    assert!(r.survivor_charged.len() > r.survivor_charged_at_kill);

    // The audit stayed up: it saw every order, in order, once.
    assert_eq!(r.audit.seen, (0..r.placed).collect::<Vec<u64>>());
    assert_eq!(r.audit.out_of_order, 0);
    assert!(r.audit.downs.is_empty(), "{:?}", r.audit.downs);
}

// ---------------------------------------------------------------------------------------------
// The delivery guarantee, step by step, with every node in this process
// ---------------------------------------------------------------------------------------------

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for: {what}"),
    }
}

async fn billing_node(name: &str, cookie: &str, config: BillingConfig) -> Node {
    let node = Node::builder(name)
        .cookie(cookie)
        .no_registrar()
        .start()
        .await
        .expect("a billing node starts");
    broker_free::start_billing(&node, config)
        .await
        .expect("billing starts");
    node
}

fn local_billing(node: &Node) -> ActorRef<Billing> {
    node.whereis::<Billing>(BILLING).expect("billing runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_lost_acknowledgement_does_not_charge_again() {
    let cookie = broker_free::random_cookie();
    // `a` charges at once, then holds the acknowledgement back for a second.
    let a = billing_node(
        "bf-lost-a@localhost",
        &cookie,
        BillingConfig {
            hold_before: Duration::ZERO,
            hold_after: Duration::from_secs(1),
        },
    )
    .await;
    let b = billing_node("bf-lost-b@localhost", &cookie, BillingConfig::default()).await;
    let node = Node::builder("bf-lost-orders@localhost")
        .cookie(&cookie)
        .no_registrar()
        .route(a.name(), a.listen_addr().unwrap().to_string())
        .start()
        .await
        .unwrap();
    let orders = Orders::start(&node, OrdersConfig::default()).await.unwrap();
    assert_eq!(orders.discover(1, Duration::from_secs(5)).await, 1);

    let placing = tokio::spawn({
        let orders = orders.clone();
        async move { orders.place(4_200, "grace").await }
    });
    // `a` has charged order 0 and not acknowledged it yet...
    within("a to charge order 0", async {
        while !orders.ledger().entries().await.unwrap().contains_key(&0) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    // ...when `b` joins and the connection to `a` is lost.
    node.add_route(b.name(), b.listen_addr().unwrap()).unwrap();
    assert_eq!(orders.refresh().await, 1);
    assert!(node.disconnect(a.name()));

    let billed = within("the order to end", placing)
        .await
        .unwrap()
        .expect("billed");
    assert_eq!(billed.order.id, 0);
    assert_eq!(billed.attempts, 2);
    assert_eq!(billed.charged_by, a.name(), "charged once, by a");
    assert_eq!(
        billed.acked_by.as_deref(),
        Some(b.name()),
        "acknowledged by b"
    );
    let stats = orders.ledger().stats().await.unwrap();
    assert_eq!((stats.charged, stats.repeats), (1, 1));
    assert_eq!(local_billing(&a).charged().await.unwrap(), vec![0]);
    assert_eq!(
        local_billing(&b).charged().await.unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(local_billing(&b).calls().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_no_attempt_acknowledges_is_voided_and_never_charged_later() {
    let cookie = broker_free::random_cookie();
    // Slower than the orders side waits: every call times out.
    let a = billing_node(
        "bf-void-a@localhost",
        &cookie,
        BillingConfig {
            hold_before: Duration::from_millis(300),
            hold_after: Duration::ZERO,
        },
    )
    .await;
    let node = Node::builder("bf-void-orders@localhost")
        .cookie(&cookie)
        .no_registrar()
        .route(a.name(), a.listen_addr().unwrap().to_string())
        .start()
        .await
        .unwrap();
    let config = OrdersConfig {
        max_attempts: 2,
        call_timeout: Duration::from_millis(50),
        retry_backoff: Duration::from_millis(10),
    };
    let orders = Orders::start(&node, config).await.unwrap();
    assert_eq!(orders.discover(1, Duration::from_secs(5)).await, 1);

    let err = within("the order to fail", orders.place(700, "linus"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OrderError::Failed { order, attempts: 2, .. } if order.id == 0),
        "{err:?}"
    );
    let entries = orders.ledger().entries().await.unwrap();
    assert_eq!(entries.get(&0), Some(&LedgerEntry::Voided));

    // Both attempts were still queued at `a`; each reaches the ledger after the void and is
    // refused, so nothing is charged.
    within("both late attempts to be refused", async {
        while orders.ledger().stats().await.unwrap().refused < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let stats = orders.ledger().stats().await.unwrap();
    assert_eq!((stats.charged, stats.voided, stats.refused), (0, 1, 2));
    assert_eq!(
        local_billing(&a).charged().await.unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(
        orders.ledger().entries().await.unwrap().get(&0),
        Some(&LedgerEntry::Voided)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_billing_actor_restarted_by_its_supervisor_is_found_again_by_name() {
    let cookie = broker_free::random_cookie();
    let a = billing_node("bf-restart-a@localhost", &cookie, BillingConfig::default()).await;
    let node = Node::builder("bf-restart-orders@localhost")
        .cookie(&cookie)
        .no_registrar()
        .route(a.name(), a.listen_addr().unwrap().to_string())
        .start()
        .await
        .unwrap();
    let orders = Orders::start(&node, OrdersConfig::default()).await.unwrap();
    assert_eq!(orders.discover(1, Duration::from_secs(5)).await, 1);
    let first = within("order 0", orders.place(100, "ken")).await.unwrap();
    assert_eq!(first.attempts, 1);

    let old = local_billing(&a);
    old.kill();
    assert_eq!(
        within("the old billing to end", old.wait()).await,
        ExitReason::Killed
    );
    let new = within("the supervisor to restart billing", async {
        loop {
            match a.whereis::<Billing>(BILLING) {
                Some(new) if new.pid() != old.pid() => break new,
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    })
    .await;

    // The pool's only worker is gone; the next order finds the new incarnation by name.
    let second = within("order 1", orders.place(200, "ken")).await.unwrap();
    assert_eq!(second.charged_by, a.name());
    assert!(orders.pool().workers().iter().any(|w| w.pid() == new.pid()));
    assert_eq!(new.charged().await.unwrap(), vec![1]);
}
