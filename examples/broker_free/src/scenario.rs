//! The scenario: the whole story with real OS processes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ergo::prelude::*;
use tokio::time::Instant;

use super::role::service_ready;
use super::{
    random_cookie, Audit, AuditApi, AuditReport, Billed, Billing, BillingApi, BrokerFreeError,
    LedgerApi, LedgerEntry, LedgerStats, OrderError, Orders, OrdersConfig, Role, AUDIT, AUDIT_NODE,
    BILLING, BILLING_1, BILLING_2, COOKIE_ENV, LOOKUP_TIMEOUT, ORDERS, ORDERS_NODE,
};
use ergo_testkit::process::{
    free_loopback_addr, poll_until, ChildProcess, HEARTBEAT, HEARTBEAT_TIMEOUT,
};

/// The scenario's shape.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioConfig {
    /// Orders to place.
    pub orders: u64,
    /// Orders in flight at once (one placing task each).
    pub concurrency: usize,
    /// [`BILLING_1`] is SIGKILLed once this many orders are billed.
    pub kill_after: u64,
    /// How the orders side bills.
    pub billing: OrdersConfig,
    /// The bound on each step (a service getting ready, the kill point, the end of the load).
    pub step_timeout: Duration,
}

impl Default for ScenarioConfig {
    /// 600 orders, 8 at a time, the kill after 200, 10 s per step.
    fn default() -> Self {
        ScenarioConfig {
            orders: 600,
            concurrency: 8,
            kill_after: 200,
            billing: OrdersConfig::default(),
            step_timeout: Duration::from_secs(10),
        }
    }
}

/// The outcomes the placing tasks record.
#[derive(Debug, Default)]
struct Tally {
    billed: BTreeMap<u64, Billed>,
    failed: BTreeMap<u64, OrderError>,
    not_placed: u64,
    reported_twice: Vec<u64>,
    survivor_acks_after_kill: u64,
}

impl Tally {
    fn record(&mut self, outcome: Result<Billed, OrderError>, killed: bool) {
        let id = match outcome {
            Ok(billed) => {
                let id = billed.order.id;
                if killed && billed.acked_by.as_deref() == Some(BILLING_2) {
                    self.survivor_acks_after_kill += 1;
                }
                if self.billed.insert(id, billed).is_some() {
                    self.reported_twice.push(id);
                }
                id
            }
            Err(OrderError::NotPlaced(_)) => {
                self.not_placed += 1;
                return;
            }
            Err(OrderError::Failed {
                order,
                attempts,
                last,
            }) => {
                let id = order.id;
                let failed = OrderError::Failed {
                    order,
                    attempts,
                    last,
                };
                if self.failed.insert(id, failed).is_some() {
                    self.reported_twice.push(id);
                }
                id
            }
        };
        if self.billed.contains_key(&id) && self.failed.contains_key(&id) {
            self.reported_twice.push(id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a scenario run did; [`fmt::Display`] prints the counts.
#[derive(Debug)]
pub struct ScenarioReport {
    /// Orders placed (given an id and published).
    pub placed: u64,
    /// The billed orders, by id, as their senders got them.
    pub billed: BTreeMap<u64, Billed>,
    /// The failed orders ([`OrderError::Failed`]), by id.
    pub failed: BTreeMap<u64, OrderError>,
    /// Orders the desk did not take (0 unless the orders node is stopping).
    pub not_placed: u64,
    /// Ids whose sender got an outcome more than once (must be empty).
    pub reported_twice: Vec<u64>,
    /// The ids billed (acknowledged to their senders) before the kill.
    pub billed_before_kill: BTreeSet<u64>,
    /// Orders acknowledged by [`BILLING_2`] after [`BILLING_1`] was killed.
    pub survivor_acks_after_kill: u64,
    /// How many orders [`BILLING_2`] had charged just before the kill.
    pub survivor_charged_at_kill: usize,
    /// The orders [`BILLING_2`] charged, by its own account, at the end.
    pub survivor_charged: Vec<u64>,
    /// The ledger at the end.
    pub ledger: BTreeMap<u64, LedgerEntry>,
    /// The ledger's counters at the end.
    pub ledger_stats: LedgerStats,
    /// What the audit saw.
    pub audit: AuditReport,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl ScenarioReport {
    /// Orders the ledger shows charged by the instance of node `node`.
    pub fn charged_by(&self, node: &str) -> usize {
        self.ledger
            .values()
            .filter(|e| matches!(e, LedgerEntry::Charged { by, .. } if by == node))
            .count()
    }

    /// Billed orders that needed more than one attempt.
    pub fn retried(&self) -> usize {
        self.billed.values().filter(|b| b.attempts > 1).count()
    }

    /// Billed orders acknowledged by another instance than the one that charged them (a retry
    /// after a lost acknowledgement), or by none (settled with the ledger).
    pub fn acked_without_charging(&self) -> usize {
        self.billed
            .values()
            .filter(|b| b.acked_by.as_deref() != Some(b.charged_by.as_str()))
            .count()
    }
}

impl fmt::Display for ScenarioReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "placed {}: billed {} (charged by {BILLING_1}: {}, by {BILLING_2}: {}), failed {}, \
             not placed {}",
            self.placed,
            self.billed.len(),
            self.charged_by(BILLING_1),
            self.charged_by(BILLING_2),
            self.failed.len(),
            self.not_placed
        )?;
        writeln!(
            f,
            "retried: {} orders; {} charged by one instance and acknowledged by another \
             (the ledger answered the retry with the first charge: {} repeat(s), no second \
             charge)",
            self.retried(),
            self.acked_without_charging(),
            self.ledger_stats.repeats
        )?;
        writeln!(
            f,
            "after the kill {BILLING_2} acknowledged {} orders and charged {} ({} before)",
            self.survivor_acks_after_kill,
            self.survivor_charged.len()
                - self
                    .survivor_charged_at_kill
                    .min(self.survivor_charged.len()),
            self.survivor_charged_at_kill
        )?;
        write!(
            f,
            "audit saw {} events ({} out of order), ids {}..={}; took {:.2} s",
            self.audit.seen.len(),
            self.audit.out_of_order,
            self.audit.seen.first().map_or(0, |v| *v),
            self.audit.seen.last().map_or(0, |v| *v),
            self.elapsed.as_secs_f64()
        )
    }
}

/// The whole story with real OS processes (shared by `src/main.rs` and
/// `tests/broker_free.rs`): the orders service runs here; [`BILLING_1`], [`BILLING_2`] and
/// [`AUDIT_NODE`] run as child processes made by `command` (which must run [`run_role`](super::run_role) for the
/// role it is given), on free loopback ports, with a fresh cookie in [`COOKIE_ENV`]. Orders
/// flow `concurrency` at a time; once `kill_after` are billed, [`BILLING_1`] is SIGKILLed; the
/// rest go to [`BILLING_2`]. `say` hears what happens, one line at a time.
///
/// The children are stopped (stdin closed, then killed after a grace) before this returns,
/// whatever the outcome.
///
/// # Errors
///
/// [`BrokerFreeError`] when a service does not start or a step does not happen in time.
pub async fn run_scenario<C, S>(
    config: &ScenarioConfig,
    mut command: C,
    mut say: S,
) -> Result<ScenarioReport, BrokerFreeError>
where
    C: FnMut(&Role) -> Command,
    S: FnMut(&str),
{
    let started = Instant::now();
    let cookie = random_cookie();
    let free = || {
        free_loopback_addr()
            .map_err(|e| BrokerFreeError::Start(format!("no free loopback port: {e}")))
    };
    let (addr1, addr2, audit_addr) = (free()?, free()?, free()?);
    let node = Node::builder(ORDERS_NODE)
        .cookie(&cookie)
        .no_registrar()
        .heartbeat(HEARTBEAT, HEARTBEAT_TIMEOUT)
        .route(BILLING_1, addr1.to_string())
        .route(BILLING_2, addr2.to_string())
        .route(AUDIT_NODE, audit_addr.to_string())
        .start()
        .await
        .map_err(|e| BrokerFreeError::Start(format!("the orders node: {e}")))?;
    let orders_addr = node
        .listen_addr()
        .ok_or_else(|| BrokerFreeError::Start("the orders node does not listen".into()))?;
    let orders = Orders::start(&node, config.billing).await?;
    say(&format!(
        "{ORDERS_NODE} at {orders_addr}: the desk registered `{}`",
        ORDERS.name()
    ));

    let roles = [
        Role::Billing {
            node: BILLING_1.into(),
            listen: addr1,
        },
        Role::Billing {
            node: BILLING_2.into(),
            listen: addr2,
        },
        Role::Audit {
            node: AUDIT_NODE.into(),
            listen: audit_addr,
            orders_node: ORDERS_NODE.into(),
            orders_addr,
        },
    ];
    let mut children: Vec<ChildProcess> = Vec::new();
    let outcome = async {
        for role in &roles {
            let mut child = ChildProcess::spawn(command(role), role.node(), COOKIE_ENV, &cookie)?;
            let addr = service_ready(&mut child, config.step_timeout).await?;
            say(&format!(
                "{} is up at {addr} (OS pid {})",
                role.node(),
                child.os_pid()
            ));
            children.push(child);
        }
        drive(config, &node, &orders, &mut children, &mut say).await
    }
    .await;

    orders.stop().await;
    let grace = Duration::from_secs(2);
    for child in &mut children {
        child.stop(grace).await;
    }
    node.shutdown(Duration::from_secs(1)).await;
    let mut report = outcome?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Looks `name` up on node `at`, within [`LOOKUP_TIMEOUT`].
async fn lookup<A: RemoteActor>(
    node: &Node,
    name: &str,
    at: &str,
) -> Result<ActorRef<A>, BrokerFreeError> {
    tokio::time::timeout(LOOKUP_TIMEOUT, node.lookup(name, at))
        .await
        .map_err(|_| BrokerFreeError::Timeout(format!("looking `{name}` up on {at}")))?
        .map_err(|e| BrokerFreeError::Start(format!("looking `{name}` up on {at}: {e}")))
}

/// The scenario once every service is up: `children` are billing-1, billing-2, audit.
async fn drive<S: FnMut(&str)>(
    config: &ScenarioConfig,
    node: &Node,
    orders: &Orders,
    children: &mut [ChildProcess],
    say: &mut S,
) -> Result<ScenarioReport, BrokerFreeError> {
    let step = config.step_timeout;
    let found = orders.discover(2, step).await;
    if found < 2 {
        return Err(BrokerFreeError::Timeout(format!(
            "both billing instances to be found (found {found})"
        )));
    }
    say(&format!("found {found} instances of `{BILLING}` by name"));
    let audit: ActorRef<Audit> = lookup(node, AUDIT, AUDIT_NODE).await?;
    let survivor: ActorRef<Billing> = lookup(node, BILLING, BILLING_2).await?;

    // The load: `concurrency` tasks placing orders until `orders` are placed.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..config.concurrency.max(1))
        .map(|_| {
            let (orders, tally, next, killed) =
                (orders.clone(), tally.clone(), next.clone(), killed.clone());
            let total = config.orders;
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let outcome = orders
                        .place(100 + (i * 37) % 900, format!("customer-{}", i % 17))
                        .await;
                    lock(&tally).record(outcome, killed.load(Ordering::SeqCst));
                }
            })
        })
        .collect();
    let aborts: Vec<_> = tasks
        .iter()
        .map(tokio::task::JoinHandle::abort_handle)
        .collect();
    let abort_all = || aborts.iter().for_each(tokio::task::AbortHandle::abort);

    let kill_at = config.kill_after.min(config.orders);
    let reached = poll_until(step, Duration::from_millis(2), || {
        lock(&tally).billed.len() as u64 >= kill_at
    })
    .await;
    if !reached {
        abort_all();
        return Err(BrokerFreeError::Timeout(
            "orders to be billed before the kill".into(),
        ));
    }
    let survivor_charged_at_kill = match survivor.charged().await {
        Ok(charged) => charged.len(),
        Err(e) => {
            abort_all();
            return Err(BrokerFreeError::Start(format!("asking {BILLING_2}: {e}")));
        }
    };
    let billed_before_kill: BTreeSet<u64> = lock(&tally).billed.keys().copied().collect();
    let killing = children[0].kill();
    killed.store(true, Ordering::SeqCst);
    if let Err(e) = killing {
        abort_all();
        return Err(e.into());
    }
    say(&format!(
        "SIGKILLed {BILLING_1} after {} orders were billed",
        billed_before_kill.len()
    ));

    let deadline = Instant::now() + step;
    for task in tasks {
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            abort_all();
            return Err(BrokerFreeError::Timeout("every order to end".into()));
        }
    }
    let tally = std::mem::take(&mut *lock(&tally));
    let placed = tally.billed.len() as u64 + tally.failed.len() as u64;
    say(&format!(
        "every order ended: {} billed, {} failed",
        tally.billed.len(),
        tally.failed.len()
    ));

    // The audit's events travel on their own connection: wait until the last one is in.
    let deadline = Instant::now() + step;
    let audit_report = loop {
        let report = audit
            .report()
            .await
            .map_err(|e| BrokerFreeError::Start(format!("asking the audit: {e}")))?;
        if report.seen.len() as u64 >= placed || Instant::now() >= deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let asked = |what: &str, e: CallError| BrokerFreeError::Start(format!("asking {what}: {e}"));
    let ledger = orders
        .ledger()
        .entries()
        .await
        .map_err(|e| asked("the ledger", e))?;
    let ledger_stats = orders
        .ledger()
        .stats()
        .await
        .map_err(|e| asked("the ledger", e))?;
    let survivor_charged = survivor.charged().await.map_err(|e| asked(BILLING_2, e))?;
    Ok(ScenarioReport {
        placed,
        billed: tally.billed,
        failed: tally.failed,
        not_placed: tally.not_placed,
        reported_twice: tally.reported_twice,
        billed_before_kill,
        survivor_acks_after_kill: tally.survivor_acks_after_kill,
        survivor_charged_at_kill,
        survivor_charged,
        ledger,
        ledger_stats,
        audit: audit_report,
        elapsed: Duration::ZERO,
    })
}
