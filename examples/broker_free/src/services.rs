//! The services' messages and actors: the ledger (on the orders node), billing and audit.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use ergo::prelude::*;
use ergo::supervisor::{ChildSpec, Strategy, Supervisor};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{BrokerFreeError, AUDIT, BILLING, LEDGER_TIMEOUT, ORDERS};

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
