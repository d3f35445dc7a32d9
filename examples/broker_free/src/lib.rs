//! Rust services that route work to each other through actors and pub/sub, with no broker.
//!
//! Three services, each on its own node (its own OS process in [`run_scenario`]), sharing a
//! cookie on loopback:
//!
//! - **orders** ([`Orders`], node [`ORDERS_NODE`]): an order desk actor owns the remote event
//!   [`ORDERS`] and publishes one [`OrderPlaced`] per order, in id order. Each order's billing job
//!   then goes through a [`Pool`](ergo::pool::Pool) of the billing instances found by name
//!   ([`Node::find_all`](ergo::Node::find_all)`::<`[`Billing`]`>(`[`BILLING`]`)`), as a *call*: the reply is the
//!   acknowledgement. A failed call is tried again on another instance.
//! - **billing** ([`Billing`], two instances [`BILLING_1`] and [`BILLING_2`]): an
//!   `#[actor(remote)]` registered as [`BILLING`] under a one_for_one supervisor on each node.
//! - **audit** ([`Audit`], node [`AUDIT_NODE`]): subscribes to [`ORDERS`] with
//!   [`Node::monitor_event_at`](ergo::Node::monitor_event_at) and keeps the id of every event it sees, in arrival order.
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
//! machine through the host's embedded registrar (with it, [`Node::find_all`](ergo::Node::find_all) would also ask
//! every node registered on the host).
//!
//! # Events
//!
//! [`ORDERS`] is delivered at most once per subscriber, in publish order, one copy per
//! subscribing node. A subscriber sees the events published while it is subscribed: there is no
//! replay for one that was down (a buffer of the last `n`, [`EventOptions::buffer`](ergo::events::EventOptions::buffer), is the only
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
//! use broker_free::{self, BillingConfig, Orders, OrdersConfig};
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

// The services' messages and actors (ledger, billing, audit) in `services`, the orders side in
// `orders`, a service as an OS process in `role`, the scenario in `scenario`; the child-process
// machinery is `ergo_testkit::process`'s.

mod error;
mod orders;
mod role;
mod scenario;
mod services;

use std::time::Duration;

use ergo::events::Event;

pub use self::error::BrokerFreeError;
pub use self::orders::{Billed, OrderError, Orders, OrdersConfig};
pub use self::role::{run_role, Role};
pub use self::scenario::{run_scenario, ScenarioConfig, ScenarioReport};
pub use self::services::{
    start_audit, start_billing, Audit, AuditApi, AuditMsg, AuditReport, BillError, Billing,
    BillingApi, BillingConfig, BillingMsg, Charge, Ledger, LedgerApi, LedgerEntry, LedgerMsg,
    LedgerStats, OrderPlaced, Receipt,
};
pub use ergo_testkit::process::random_cookie;

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

/// The bound on a billing instance's call to the ledger, and on the orders side's settle.
const LEDGER_TIMEOUT: Duration = Duration::from_secs(2);
/// The bound on one round of service lookups.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
