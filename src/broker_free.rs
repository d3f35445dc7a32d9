//! Rust services that route work to each other through actors and pub/sub, with no broker.
//!
//! Three services, each on its own node (its own OS process in [`run_scenario`]), sharing a
//! cookie on loopback:
//!
//! - **orders** ([`Orders`], node [`ORDERS_NODE`]): an order desk actor owns the remote event
//!   [`ORDERS`] and publishes one [`OrderPlaced`] per order, in id order. Each order's billing job
//!   then goes through a [`Pool`] of the billing instances found by name
//!   ([`Node::find_all`]`::<`[`Billing`]`>(`[`BILLING`]`)`), as a *call*: the reply is the
//!   acknowledgement. A failed call is tried again on another instance.
//! - **billing** ([`Billing`], two instances [`BILLING_1`] and [`BILLING_2`]): an
//!   `#[actor(remote)]` registered as [`BILLING`] under a one_for_one supervisor on each node.
//! - **audit** ([`Audit`], node [`AUDIT_NODE`]): subscribes to [`ORDERS`] with
//!   [`Node::monitor_event_at`] and keeps the id of every event it sees, in arrival order.
//!
//! ```text
//!  place ──▶ desk ──── OrderPlaced on `orders` (one network copy per node) ──▶ audit
//!    │
//!    └── bill(order, ledger) ──▶ pool ──▶ billing-1 | billing-2 ──charge(id)──▶ ledger
//!    ◀──────────── Receipt (the acknowledgement) ───────┘           (on the orders node)
//! ```
//!
//! # Delivery
//!
//! Every order placed ends exactly once for its sender: [`Orders::place`] returns [`Billed`] or
//! [`OrderError::Failed`], and the order was charged exactly once if and only if it is
//! [`Billed`]. How:
//!
//! - Charging *is* writing the order's entry in the [`Ledger`], keyed by order id (the
//!   idempotency key a payment provider offers). A billing instance calls
//!   [`LedgerApi::charge`] before it acknowledges; the ledger charges an id at most once and
//!   answers a repeated charge with the original one ([`Charge::first`] `== false`).
//! - So the orders side may try a job again after *any* call error: `NoConnection` and
//!   `Exited` (the instance or its node died, maybe after charging), `NoProc`, `Timeout` (it
//!   may still be working). A retry that reaches an order a dead instance had charged but not
//!   acknowledged is acknowledged without a second charge, naming the instance that charged.
//! - After [`OrdersConfig::max_attempts`] failed attempts the orders side *settles* the order
//!   with the ledger ([`LedgerApi::settle`]): an order charged by an attempt whose reply was lost
//!   is [`Billed`] (with no acknowledging instance), any other is voided and reported
//!   failed. A voided order can never be charged later (a late attempt still queued at a slow
//!   instance is refused with [`BillError::Voided`]). The ledger is one actor, so charge and
//!   settle are serialized: an order ends charged or voided, never both.
//!
//! The ledger is a process of the orders node, which stands here for the payment provider's
//! idempotency store. It is reachable whenever an order's sender is (they share a node); if the
//! orders node dies, its senders and their orders die with it. The one gap: a settle the ledger
//! does not answer within 2 s (only while the orders node is shutting down) reports the order
//! failed without knowing whether it was charged; the error says so.
//!
//! # Discovery
//!
//! The orders node knows the billing nodes by static routes
//! ([`NodeBuilder::route`](ergo::NodeBuilder::route)) and finds the instances on them by name.
//! The nodes here start with [`NodeBuilder::no_registrar`](ergo::NodeBuilder::no_registrar):
//! the scenario picks their ports itself, and its nodes never meet the other nodes of the
//! machine through the host's embedded registrar (with it, [`Node::find_all`] would also ask
//! every node registered on the host).
//!
//! # Events
//!
//! [`ORDERS`] is delivered at most once per subscriber, in publish order, one copy per
//! subscribing node. A subscriber sees the events published while it is subscribed: there is no
//! replay for one that was down (a buffer of the last `n`, [`EventOptions::buffer`], is the only
//! history). The end of the registration, or the loss of the orders node, reaches the audit as
//! one [`AuditApi::producer_down`] with the reason.
//!
//! # Failure
//!
//! A SIGKILLed billing node closes its sockets: the calls in flight to it fail at once with
//! `NoConnection`, the pool drops the instance (its remote monitor fires), and the jobs go on
//! on the other instance. A billing actor that crashes is restarted by its node's supervisor
//! under the same name; [`Orders::refresh`] (run after a `NoProc` or `Exited`) finds the new
//! incarnation and adds it to the pool.
//!
//! # Examples
//!
//! All three services in one process (the scenario runs them as separate processes):
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::Node;
//! use ergo_workspace::broker_free::{self, BillingConfig, Orders, OrdersConfig};
//!
//! let cookie = broker_free::random_cookie();
//! let billing = Node::builder("doc-billing@localhost")
//!     .cookie(&cookie)
//!     .no_registrar()
//!     .start()
//!     .await?;
//! broker_free::start_billing(&billing, BillingConfig::default()).await?;
//! let node = Node::builder("doc-orders@localhost")
//!     .cookie(&cookie)
//!     .no_registrar()
//!     .route("doc-billing@localhost", billing.listen_addr().unwrap().to_string())
//!     .start()
//!     .await?;
//! let orders = Orders::start(&node, OrdersConfig::default()).await?;
//! assert_eq!(orders.discover(1, std::time::Duration::from_secs(5)).await, 1);
//! let billed = orders.place(1_250, "ada").await?;
//! assert_eq!(billed.order.id, 0);
//! assert_eq!(billed.charged_by, "doc-billing@localhost");
//! assert_eq!(billed.acked_by.as_deref(), Some("doc-billing@localhost"));
//! # orders.stop().await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ergo::events::{Event, EventOptions, EventToken, RegisterEventError};
use ergo::pool::{Pool, Routing};
use ergo::prelude::*;
use ergo::supervisor::{ChildSpec, Strategy, Supervisor};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::desk::{OrderDesk, OrderDeskApi};

/// The event every placed order is published on (registered on the orders node).
pub const ORDERS: Event<OrderPlaced> = Event::remote("orders");

/// The name each billing node registers its [`Billing`] instance under.
pub const BILLING: &str = "billing";

/// The name the audit node registers its [`Audit`] under.
pub const AUDIT: &str = "audit";

/// The orders node of the scenario.
pub const ORDERS_NODE: &str = "orders@localhost";
/// The billing instance the scenario kills.
pub const BILLING_1: &str = "billing-1@localhost";
/// The billing instance that survives.
pub const BILLING_2: &str = "billing-2@localhost";
/// The audit node of the scenario.
pub const AUDIT_NODE: &str = "audit@localhost";

/// The environment variable that hands the cookie to a service started as a child process
/// (the command line is visible to every user of the machine; the environment is not).
pub const COOKIE_ENV: &str = "ERGO_BROKER_FREE_COOKIE";

/// The start of the line a service process prints once it serves:
/// `broker-free-ready node=NAME addr=IP:PORT`.
pub const READY: &str = "broker-free-ready";

/// How often an idle connection between nodes sends a heartbeat.
const HEARTBEAT: Duration = Duration::from_millis(250);
/// How long a silent connection lasts before its peer counts as gone.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);
/// The bound on a billing instance's call to the ledger, and on the orders side's settle.
const LEDGER_TIMEOUT: Duration = Duration::from_secs(2);
/// The bound on one round of service lookups.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/// An order, as published on [`ORDERS`] and sent to billing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// Unique per orders node, from 0, in publish order.
    pub id: u64,
    /// What to charge.
    pub amount_cents: u64,
    /// Who ordered.
    pub customer: String,
}

/// A billing instance's acknowledgement of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order's id.
    pub order: u64,
    /// The node whose instance charged it (an earlier attempt's, on a retry).
    pub charged_by: String,
    /// The node whose instance acknowledged it.
    pub acked_by: String,
}

/// Why a billing instance did not bill an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum BillError {
    /// The orders side has given up on the order and voided it: it must not be charged.
    Voided,
    /// The ledger could not be asked (the call failed).
    Ledger(String),
}

impl fmt::Display for BillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BillError::Voided => f.write_str("the order was voided"),
            BillError::Ledger(e) => write!(f, "the ledger did not answer: {e}"),
        }
    }
}

impl std::error::Error for BillError {}

// ---------------------------------------------------------------------------------------------
// The ledger
// ---------------------------------------------------------------------------------------------

/// What the ledger holds for an order id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerEntry {
    /// Charged once, by the billing instance of node `by`.
    Charged {
        /// The node whose instance charged it.
        by: String,
        /// The amount charged.
        amount_cents: u64,
    },
    /// Given up by the orders side: never to be charged.
    Voided,
}

/// The answer to [`LedgerApi::charge`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The node whose instance charged the order.
    pub by: String,
    /// Whether this request charged it (`false`: it had been charged before, nothing changed).
    pub first: bool,
}

/// Counters of the ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerStats {
    /// Orders charged.
    pub charged: u64,
    /// Orders voided.
    pub voided: u64,
    /// Charge requests for an order already charged (answered without charging).
    pub repeats: u64,
    /// Charge requests for a voided order (refused).
    pub refused: u64,
}

/// The payment ledger: one entry per order id, written once. Billing instances charge through
/// it; the orders side settles with it. Runs on the orders node.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: BTreeMap<u64, LedgerEntry>,
    stats: LedgerStats,
}

#[actor(remote)]
impl Ledger {
    /// Charges order `order` on behalf of node `by`, unless it was charged before (then answers
    /// with that charge) or voided ([`BillError::Voided`]).
    #[handle]
    fn charge(&mut self, order: u64, amount_cents: u64, by: String) -> Result<Charge, BillError> {
        match self.entries.get(&order) {
            Some(LedgerEntry::Charged { by, .. }) => {
                self.stats.repeats += 1;
                Ok(Charge {
                    by: by.clone(),
                    first: false,
                })
            }
            Some(LedgerEntry::Voided) => {
                self.stats.refused += 1;
                Err(BillError::Voided)
            }
            None => {
                self.stats.charged += 1;
                self.entries.insert(
                    order,
                    LedgerEntry::Charged {
                        by: by.clone(),
                        amount_cents,
                    },
                );
                Ok(Charge { by, first: true })
            }
        }
    }

    /// The final word on order `order`: its charge if it has one, otherwise it is voided now.
    #[handle]
    fn settle(&mut self, order: u64) -> LedgerEntry {
        self.entries
            .entry(order)
            .or_insert_with(|| {
                self.stats.voided += 1;
                LedgerEntry::Voided
            })
            .clone()
    }

    /// Every entry, by order id.
    #[handle]
    fn entries(&self) -> BTreeMap<u64, LedgerEntry> {
        self.entries.clone()
    }

    /// The counters.
    #[handle]
    fn stats(&self) -> LedgerStats {
        self.stats
    }
}

// ---------------------------------------------------------------------------------------------
// Billing
// ---------------------------------------------------------------------------------------------

/// How long a billing instance works on an order (standing for the payment provider's latency).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BillingConfig {
    /// Before charging.
    pub hold_before: Duration,
    /// After charging, before acknowledging (sending the receipt, say): an instance that dies
    /// in this window has charged an order it never acknowledged.
    pub hold_after: Duration,
}

impl Default for BillingConfig {
    /// 1 ms before, 6 ms after.
    fn default() -> Self {
        BillingConfig {
            hold_before: Duration::from_millis(1),
            hold_after: Duration::from_millis(6),
        }
    }
}

/// A billing instance: bills one order at a time through the ledger it is handed, and keeps
/// the ids of the orders it charged itself.
#[derive(Debug)]
pub struct Billing {
    config: BillingConfig,
    charged: Vec<u64>,
    calls: u64,
}

impl Billing {
    /// A fresh instance.
    pub fn new(config: BillingConfig) -> Self {
        Billing {
            config,
            charged: Vec::new(),
            calls: 0,
        }
    }
}

#[actor(remote)]
impl Billing {
    /// Bills `order`: charges it through `ledger` (at most once per order id, whoever asks),
    /// then acknowledges with a [`Receipt`].
    #[handle]
    async fn bill(
        &mut self,
        order: OrderPlaced,
        ledger: ActorRef<Ledger>,
        ctx: &mut Ctx<Self>,
    ) -> Result<Receipt, BillError> {
        self.calls += 1;
        let me = ctx.node().name().to_string();
        tokio::time::sleep(self.config.hold_before).await;
        let charge = ledger
            .charge(order.id, order.amount_cents, me.clone())
            .timeout(LEDGER_TIMEOUT)
            .await
            .map_err(|e| BillError::Ledger(e.to_string()))??;
        if charge.first {
            self.charged.push(order.id);
        }
        tokio::time::sleep(self.config.hold_after).await;
        Ok(Receipt {
            order: order.id,
            charged_by: charge.by,
            acked_by: me,
        })
    }

    /// The ids of the orders this incarnation charged, in order.
    #[handle]
    fn charged(&self) -> Vec<u64> {
        self.charged.clone()
    }

    /// The bill requests this incarnation has taken.
    #[handle]
    fn calls(&self) -> u64 {
        self.calls
    }
}

/// Starts a billing instance on `node`: a one_for_one supervisor whose child is a [`Billing`]
/// registered as [`BILLING`] (each restarted incarnation under the same name).
///
/// # Errors
///
/// When the supervisor or its child cannot start (the name is taken, the node is stopping).
pub async fn start_billing(
    node: &Node,
    config: BillingConfig,
) -> Result<ActorRef<Supervisor>, SpawnError> {
    let tree = Supervisor::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(1))
        .child(ChildSpec::new(BILLING, move || Billing::new(config)).register(BILLING));
    node.spawn(tree).await
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

/// What the audit has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The id of every [`OrderPlaced`] seen, in arrival order.
    pub seen: Vec<u64>,
    /// Events whose id was not the previous one plus 1 (a gap, a repeat, a reordering).
    pub out_of_order: u64,
    /// Why the subscription ended, each time it did.
    pub downs: Vec<ExitReason>,
}

/// The audit service: counts every order event it sees while it is up, in order.
#[derive(Debug, Default)]
pub struct Audit {
    report: AuditReport,
}

#[actor(remote)]
impl Audit {
    /// One event of [`ORDERS`].
    #[handle]
    fn order(&mut self, order: OrderPlaced) {
        if let Some(last) = self.report.seen.last() {
            if order.id != last + 1 {
                self.report.out_of_order += 1;
            }
        }
        self.report.seen.push(order.id);
    }

    /// The subscription ended (the desk stopped, or the orders node was lost).
    #[handle]
    fn producer_down(&mut self, reason: ExitReason) {
        self.report.downs.push(reason);
    }

    /// What it has seen so far.
    #[handle]
    fn report(&self) -> AuditReport {
        self.report.clone()
    }
}

/// Starts the audit on `node`, registered as [`AUDIT`], and subscribes it by monitor to
/// [`ORDERS`] on node `orders_node`, trying for up to `within` (the event may not be registered
/// yet).
///
/// # Errors
///
/// [`BrokerFreeError::Start`] if the audit cannot start or subscribe in time.
pub async fn start_audit(
    node: &Node,
    orders_node: &str,
    within: Duration,
) -> Result<ActorRef<Audit>, BrokerFreeError> {
    let audit = node
        .spawn(Audit::default())
        .await
        .map_err(|e| BrokerFreeError::Start(format!("the audit: {e}")))?;
    node.register(AUDIT, &audit)
        .map_err(|e| BrokerFreeError::Start(format!("the audit's name: {e}")))?;
    let deadline = Instant::now() + within;
    loop {
        let subscribed = node
            .monitor_event_at(
                &ORDERS,
                orders_node,
                &audit,
                |order| AuditMsg::Order { order },
                |down| AuditMsg::ProducerDown {
                    reason: down.reason,
                },
            )
            .await;
        match subscribed {
            Ok(_) => return Ok(audit),
            Err(e) if Instant::now() >= deadline => {
                return Err(BrokerFreeError::Start(format!(
                    "the audit could not subscribe to `{}` on {orders_node}: {e}",
                    ORDERS.name()
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/// How the orders side bills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrdersConfig {
    /// Billing calls per order before it is settled with the ledger (at least 1).
    pub max_attempts: u32,
    /// The bound on each billing call.
    pub call_timeout: Duration,
    /// The pause after failed attempt `k` is `k` times this.
    pub retry_backoff: Duration,
}

impl Default for OrdersConfig {
    /// 4 attempts, 2 s per call, 10 ms backoff step.
    fn default() -> Self {
        OrdersConfig {
            max_attempts: 4,
            call_timeout: Duration::from_secs(2),
            retry_backoff: Duration::from_millis(10),
        }
    }
}

/// An order that was billed: charged exactly once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Billed {
    /// The order.
    pub order: OrderPlaced,
    /// The node whose instance charged it.
    pub charged_by: String,
    /// The node whose instance acknowledged it; `None` when every attempt failed but the
    /// ledger showed the order charged (an acknowledgement lost with its connection).
    pub acked_by: Option<String>,
    /// Billing calls made (1 unless retried).
    pub attempts: u32,
}

/// Why an order did not end [`Billed`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderError {
    /// The desk did not take the order: it was not placed (no id, no event, no charge).
    NotPlaced(CallError),
    /// The order was placed, every billing attempt failed, and the ledger voided it: it was
    /// not charged and never will be.
    Failed {
        /// The order.
        order: OrderPlaced,
        /// Billing calls made.
        attempts: u32,
        /// Why the last one failed.
        last: String,
    },
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::NotPlaced(e) => write!(f, "the order was not placed: {e}"),
            OrderError::Failed {
                order,
                attempts,
                last,
            } => write!(
                f,
                "order {} failed after {attempts} attempt(s), the last with: {last}",
                order.id
            ),
        }
    }
}

impl std::error::Error for OrderError {}

mod desk {
    use super::*;

    /// Owns the [`ORDERS`] registration: numbers orders and publishes them, one at a time, so
    /// ids and events are in the same order.
    #[derive(Default)]
    pub(super) struct OrderDesk {
        next: u64,
        token: Option<EventToken<OrderPlaced>>,
    }

    #[actor]
    impl OrderDesk {
        #[init]
        fn init(&mut self, ctx: &mut Ctx<Self>) -> Result<(), RegisterEventError> {
            self.token = Some(ctx.register_event(&ORDERS, EventOptions::new())?);
            Ok(())
        }

        /// Places an order: gives it the next id and publishes it.
        #[handle]
        fn place(&mut self, amount_cents: u64, customer: String) -> OrderPlaced {
            let order = OrderPlaced {
                id: self.next,
                amount_cents,
                customer,
            };
            self.next += 1;
            if let Some(token) = &self.token {
                // Fails only once the registration has ended, i.e. after this process.
                let _ = token.publish(order.clone());
            }
            order
        }
    }
}

/// The orders service: places orders (publishing them on [`ORDERS`]) and bills each through a
/// pool of billing instances. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Orders {
    node: Node,
    desk: ActorRef<OrderDesk>,
    ledger: ActorRef<Ledger>,
    pool: Pool<Billing>,
    config: OrdersConfig,
    /// Serializes [`Orders::refresh`], so an instance is added once.
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

impl Orders {
    /// Starts the ledger and the desk (which registers [`ORDERS`]) on `node`, with an empty
    /// pool: fill it with [`Orders::discover`].
    ///
    /// # Errors
    ///
    /// [`BrokerFreeError::Start`] if an actor cannot start or [`ORDERS`] is registered already.
    pub async fn start(node: &Node, config: OrdersConfig) -> Result<Orders, BrokerFreeError> {
        let ledger = node
            .spawn(Ledger::default())
            .await
            .map_err(|e| BrokerFreeError::Start(format!("the ledger: {e}")))?;
        let desk = node
            .spawn(OrderDesk::default())
            .await
            .map_err(|e| BrokerFreeError::Start(format!("the order desk: {e}")))?;
        Ok(Orders {
            node: node.clone(),
            desk,
            ledger,
            pool: Pool::from_workers(Routing::RoundRobin, []),
            config: OrdersConfig {
                max_attempts: config.max_attempts.max(1),
                ..config
            },
            refreshing: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The pool of billing instances.
    pub fn pool(&self) -> &Pool<Billing> {
        &self.pool
    }

    /// The ledger.
    pub fn ledger(&self) -> &ActorRef<Ledger> {
        &self.ledger
    }

    /// Looks [`BILLING`] up on every known node once and adds the instances the pool does not
    /// have yet. Returns how many were added.
    pub async fn refresh(&self) -> usize {
        let _one_at_a_time = self.refreshing.lock().await;
        let Ok(found) =
            tokio::time::timeout(LOOKUP_TIMEOUT, self.node.find_all::<Billing>(BILLING)).await
        else {
            return 0;
        };
        let mut known: BTreeSet<Pid> = self.pool.workers().iter().map(ActorRef::pid).collect();
        let mut added = 0;
        for worker in found {
            if known.insert(worker.pid()) && worker.is_alive() {
                self.pool.add_worker(worker);
                added += 1;
            }
        }
        added
    }

    /// Refreshes until the pool has `want` instances or `within` has passed; returns the pool's
    /// size.
    pub async fn discover(&self, want: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            self.refresh().await;
            if self.pool.len() >= want || Instant::now() >= deadline {
                return self.pool.len();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Places an order and bills it (see the module's "Delivery").
    ///
    /// # Errors
    ///
    /// [`OrderError::NotPlaced`] when the desk does not answer; [`OrderError::Failed`] when the
    /// order was placed but not charged (and now never will be).
    pub async fn place(
        &self,
        amount_cents: u64,
        customer: impl Into<String>,
    ) -> Result<Billed, OrderError> {
        let order = self
            .desk
            .place(amount_cents, customer.into())
            .await
            .map_err(OrderError::NotPlaced)?;
        self.bill(order).await
    }

    /// Bills a placed order: up to [`OrdersConfig::max_attempts`] calls, each preferring an
    /// instance not tried yet for this order, then, if all failed, the ledger's settlement.
    /// The instance comes from [`Pool::pick`] (round robin over the live instances) rather
    /// than [`Pool::call`], so that a retry can be steered away from the instance that failed.
    async fn bill(&self, order: OrderPlaced) -> Result<Billed, OrderError> {
        let mut tried: Vec<Pid> = Vec::new();
        let mut last = String::from("no billing instance");
        let mut attempts = 0;
        while attempts < self.config.max_attempts {
            attempts += 1;
            match self.choose(&tried) {
                None => {
                    last = "no billing instance is reachable".into();
                    self.refresh().await;
                }
                Some(worker) => {
                    tried.push(worker.pid());
                    let call = worker
                        .bill(order.clone(), self.ledger.clone())
                        .timeout(self.config.call_timeout)
                        .await;
                    match call {
                        Ok(Ok(receipt)) => {
                            return Ok(Billed {
                                order,
                                charged_by: receipt.charged_by,
                                acked_by: Some(receipt.acked_by),
                                attempts,
                            })
                        }
                        Ok(Err(BillError::Voided)) => {
                            last = BillError::Voided.to_string();
                            break;
                        }
                        Ok(Err(e)) => last = format!("{} said: {e}", worker.pid().node_name()),
                        Err(e) => {
                            last = format!("calling {}: {e}", worker.pid().node_name());
                            if matches!(e, CallError::NoProc | CallError::Exited(_)) {
                                // Its supervisor may have started a new incarnation.
                                self.refresh().await;
                            }
                        }
                    }
                }
            }
            if attempts < self.config.max_attempts {
                tokio::time::sleep(self.config.retry_backoff * attempts).await;
            }
        }
        match self.ledger.settle(order.id).timeout(LEDGER_TIMEOUT).await {
            Ok(LedgerEntry::Charged { by, .. }) => Ok(Billed {
                order,
                charged_by: by,
                acked_by: None,
                attempts,
            }),
            Ok(LedgerEntry::Voided) => Err(OrderError::Failed {
                order,
                attempts,
                last,
            }),
            Err(e) => Err(OrderError::Failed {
                order,
                attempts,
                last: format!(
                    "{last}; then the ledger did not answer the settlement ({e}): whether the \
                     order was charged is unknown"
                ),
            }),
        }
    }

    /// An alive instance not in `tried` if routing offers one within a round, else any alive one.
    fn choose(&self, tried: &[Pid]) -> Option<ActorRef<Billing>> {
        let mut fallback = None;
        for _ in 0..self.pool.len().max(1) {
            let worker = self.pool.pick()?;
            if !tried.contains(&worker.pid()) {
                return Some(worker);
            }
            fallback.get_or_insert(worker);
        }
        fallback
    }

    /// Stops the desk (ending the [`ORDERS`] registration: subscribers get their end notice)
    /// and the ledger, and waits (at most 2 s) for them.
    pub async fn stop(&self) {
        self.desk.stop(ExitReason::Shutdown);
        self.ledger.stop(ExitReason::Shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            self.desk.wait().await;
            self.ledger.wait().await;
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a service or the scenario could not be started or driven.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrokerFreeError {
    /// A node, or an actor on it, could not start; or a role is unusable.
    Start(String),
    /// Starting or stopping a service's OS process failed.
    Process {
        /// The service's node.
        node: String,
        /// What went wrong.
        error: io::Error,
    },
    /// A service's process ended, or did not say it was ready, in time.
    NotReady {
        /// The service's node.
        node: String,
        /// Why.
        why: String,
    },
    /// A step did not happen within its timeout.
    Timeout(String),
}

impl fmt::Display for BrokerFreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerFreeError::Start(why) => write!(f, "cannot start: {why}"),
            BrokerFreeError::Process { node, error } => {
                write!(f, "the process of `{node}`: {error}")
            }
            BrokerFreeError::NotReady { node, why } => write!(f, "`{node}` is not ready: {why}"),
            BrokerFreeError::Timeout(what) => write!(f, "timed out waiting for: {what}"),
        }
    }
}

impl std::error::Error for BrokerFreeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BrokerFreeError::Process { error, .. } => Some(error),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Services as OS processes
// ---------------------------------------------------------------------------------------------

/// What a service process runs: its role, its node's name and where it listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A billing instance ([`start_billing`]).
    Billing {
        /// The node's name.
        node: String,
        /// Where it accepts peers (loopback).
        listen: SocketAddr,
    },
    /// The audit ([`start_audit`]), subscribed to [`ORDERS`] on the orders node.
    Audit {
        /// The node's name.
        node: String,
        /// Where it accepts peers (loopback).
        listen: SocketAddr,
        /// The orders node's name.
        orders_node: String,
        /// Where the orders node listens.
        orders_addr: SocketAddr,
    },
}

impl Role {
    /// The node's name.
    pub fn node(&self) -> &str {
        match self {
            Role::Billing { node, .. } | Role::Audit { node, .. } => node,
        }
    }

    /// Where the node listens.
    pub fn listen(&self) -> SocketAddr {
        match self {
            Role::Billing { listen, .. } | Role::Audit { listen, .. } => *listen,
        }
    }

    /// The role as arguments: `billing NODE IP:PORT` or
    /// `audit NODE IP:PORT ORDERS_NODE ORDERS_IP:PORT` (what [`Role::parse`] reads).
    pub fn args(&self) -> Vec<String> {
        match self {
            Role::Billing { node, listen } => {
                vec!["billing".into(), node.clone(), listen.to_string()]
            }
            Role::Audit {
                node,
                listen,
                orders_node,
                orders_addr,
            } => vec![
                "audit".into(),
                node.clone(),
                listen.to_string(),
                orders_node.clone(),
                orders_addr.to_string(),
            ],
        }
    }

    /// Reads a role from the arguments [`Role::args`] makes.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong: an unknown role, a missing argument, an address that
    /// does not parse or is not a loopback address.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Role, String> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let addr = |s: &str| -> Result<SocketAddr, String> {
            let a: SocketAddr = s.parse().map_err(|e| format!("address `{s}`: {e}"))?;
            if a.ip().is_loopback() {
                Ok(a)
            } else {
                Err(format!("`{s}` is not a loopback address"))
            }
        };
        match args[..] {
            ["billing", node, listen] => Ok(Role::Billing {
                node: node.into(),
                listen: addr(listen)?,
            }),
            ["audit", node, listen, orders_node, orders_addr] => Ok(Role::Audit {
                node: node.into(),
                listen: addr(listen)?,
                orders_node: orders_node.into(),
                orders_addr: addr(orders_addr)?,
            }),
            _ => Err(format!(
                "expected `billing NODE IP:PORT` or `audit NODE IP:PORT ORDERS_NODE IP:PORT`, \
                 got `{}`",
                args.join(" ")
            )),
        }
    }
}

/// A service's whole life as an OS process: starts its node and service, prints the
/// [`READY`] line on stdout, serves until stdin reaches its end (the parent closed it, or died)
/// or Ctrl-C, then shuts the node down.
///
/// # Errors
///
/// [`BrokerFreeError::Start`] if the node or the service cannot start.
pub async fn run_role(role: &Role, cookie: &str) -> Result<(), BrokerFreeError> {
    let mut builder = Node::builder(role.node())
        .cookie(cookie)
        .no_registrar()
        .listen(role.listen().to_string())
        .heartbeat(HEARTBEAT, HEARTBEAT_TIMEOUT);
    if let Role::Audit {
        orders_node,
        orders_addr,
        ..
    } = role
    {
        builder = builder.route(orders_node.as_str(), orders_addr.to_string());
    }
    let node = builder
        .start()
        .await
        .map_err(|e| BrokerFreeError::Start(format!("node `{}`: {e}", role.node())))?;
    let started = match role {
        Role::Billing { .. } => start_billing(&node, BillingConfig::default())
            .await
            .map(drop)
            .map_err(|e| BrokerFreeError::Start(format!("billing on `{}`: {e}", role.node()))),
        Role::Audit { orders_node, .. } => start_audit(&node, orders_node, Duration::from_secs(10))
            .await
            .map(drop),
    };
    if let Err(e) = started {
        node.shutdown(Duration::from_secs(1)).await;
        return Err(e);
    }
    {
        let addr = node
            .listen_addr()
            .map_or_else(|| "none".to_string(), |a| a.to_string());
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{READY} node={} addr={addr}", node.name());
        let _ = out.flush();
    }
    // A plain thread, not `spawn_blocking`: a read blocked on stdin must not hold the runtime's
    // shutdown up after Ctrl-C.
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        });
    if watcher.is_ok() {
        tokio::select! {
            _ = eof_rx => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    node.shutdown(Duration::from_secs(1)).await;
    watcher
        .map(drop)
        .map_err(|e| BrokerFreeError::Start(format!("cannot watch stdin: {e}")))
}

/// A service running as a child OS process. Dropping it kills the process (SIGKILL on unix)
/// and reaps it, so no child outlives its guard; and since the child's stdin is a pipe from
/// this guard, a child whose parent died without dropping it stops on its own.
pub struct ServiceProcess {
    node: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    reaped: bool,
}

impl ServiceProcess {
    /// Starts `command` (which must run [`run_role`] for node `node`), handing it `cookie`
    /// through [`COOKIE_ENV`]; its stdin and stdout become pipes to this guard, its stderr is
    /// inherited.
    ///
    /// # Errors
    ///
    /// [`BrokerFreeError::Process`] if the process cannot start.
    pub fn spawn(mut command: Command, node: &str, cookie: &str) -> Result<Self, BrokerFreeError> {
        let failed = |error| BrokerFreeError::Process {
            node: node.to_string(),
            error,
        };
        command
            .env(COOKIE_ENV, cookie)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().map_err(failed)?;
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take();
        let guard = ServiceProcess {
            node: node.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            reaped: false,
        };
        if let Some(stdout) = stdout {
            // Forwards the child's stdout line by line; ends with it.
            std::thread::Builder::new()
                .name(format!("{node}-stdout"))
                .spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                })
                .map_err(failed)?; // the guard, dropped, kills the child
        }
        Ok(guard)
    }

    /// The service's node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The OS process id.
    pub fn os_pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `within`) for the child's [`READY`] line (the marker may follow other
    /// output on its line, as a test harness's `test name ... `); returns where it listens.
    ///
    /// # Errors
    ///
    /// [`BrokerFreeError::NotReady`] if the process ends first or the time runs out.
    pub async fn ready(&mut self, within: Duration) -> Result<SocketAddr, BrokerFreeError> {
        let deadline = Instant::now() + within;
        let not_ready = |why: String| BrokerFreeError::NotReady {
            node: self.node.clone(),
            why,
        };
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    let Some(at) = line.find(READY) else { continue };
                    let addr = line[at..]
                        .split_whitespace()
                        .find_map(|f| f.strip_prefix("addr="))
                        .and_then(|a| a.parse().ok());
                    return addr.ok_or_else(|| not_ready(format!("a malformed line `{line}`")));
                }
                Ok(None) => {
                    return Err(not_ready(
                        "the process ended (or closed its stdout) before it was ready".into(),
                    ))
                }
                Err(_) => return Err(not_ready(format!("no ready line within {within:?}"))),
            }
        }
    }

    /// Kills the process (SIGKILL on unix: no clean-up runs in it) and reaps it.
    ///
    /// # Errors
    ///
    /// [`BrokerFreeError::Process`] if it cannot be killed or reaped.
    pub fn kill(&mut self) -> Result<(), BrokerFreeError> {
        if self.reaped {
            return Ok(());
        }
        let killed = self.child.kill();
        self.stdin = None;
        let reaped = self.child.wait();
        self.reaped = true;
        killed
            .and(reaped.map(drop))
            .map_err(|error| BrokerFreeError::Process {
                node: self.node.clone(),
                error,
            })
    }

    /// Stops the process cleanly: closes its stdin (the service then shuts down), waits for it
    /// up to `grace`, then kills it. Returns whether it ended by itself.
    pub async fn stop(&mut self, grace: Duration) -> bool {
        if self.reaped {
            return true;
        }
        self.stdin = None;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.reaped = true;
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.kill();
        false
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A free loopback address: binds `127.0.0.1:0`, reads the port, lets it go. (Another program
/// could take the port before the service binds it; on a test machine it does not.)
///
/// # Errors
///
/// When no socket can be bound.
pub fn free_loopback_addr() -> io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// A fresh cookie: 32 random bytes from the OS (`/dev/urandom`), in hex; where that file is
/// missing, 256 bits of SipHash output keyed by the standard library's per-process random keys.
pub fn random_cookie() -> String {
    let mut bytes = [0u8; 32];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u32(std::process::id());
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

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

/// Polls `check` every 2 ms until it holds, for at most `within`.
async fn until(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> bool,
) -> Result<(), BrokerFreeError> {
    let deadline = Instant::now() + within;
    while !check() {
        if Instant::now() >= deadline {
            return Err(BrokerFreeError::Timeout(what.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// The whole story with real OS processes (shared by `examples/broker_free.rs` and
/// `tests/broker_free.rs`): the orders service runs here; [`BILLING_1`], [`BILLING_2`] and
/// [`AUDIT_NODE`] run as child processes made by `command` (which must run [`run_role`] for the
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
    let mut children: Vec<ServiceProcess> = Vec::new();
    let outcome = async {
        for role in &roles {
            let mut child = ServiceProcess::spawn(command(role), role.node(), &cookie)?;
            let addr = child.ready(config.step_timeout).await?;
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
    children: &mut [ServiceProcess],
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
    let reached = until("orders to be billed before the kill", step, || {
        lock(&tally).billed.len() as u64 >= kill_at
    })
    .await;
    if let Err(e) = reached {
        abort_all();
        return Err(e);
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
        return Err(e);
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
