//! The orders side: places orders, publishes them, and bills each through a pool of billing
//! instances.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ergo::events::{EventOptions, EventToken, RegisterEventError};
use ergo::pool::{Pool, Routing};
use ergo::prelude::*;
use tokio::time::Instant;

use self::desk::{OrderDesk, OrderDeskApi};
use super::{
    BillError, Billing, BillingApi, BrokerFreeError, Ledger, LedgerApi, LedgerEntry, OrderPlaced,
    BILLING, LEDGER_TIMEOUT, LOOKUP_TIMEOUT, ORDERS,
};

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
