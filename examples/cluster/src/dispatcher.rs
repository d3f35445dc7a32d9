//! The front's dispatcher actor. Private: its generated message enum and API trait stay inside
//! the cluster module.

use std::collections::BTreeMap;
use std::sync::Arc;

use ergo::net::NetError;
use ergo::prelude::*;
use tokio::sync::mpsc;

use super::front::reason_kind;
use super::{BackStatus, ClusterEvent, FrontConfig, Worker, WORKER};

enum State {
    /// A lookup is running or scheduled.
    LookingUp { failures: u32 },
    /// The worker is monitored and gets jobs.
    Up {
        worker: ActorRef<Worker>,
        monitor: MonitorRef,
    },
    /// Too many lookups failed in a row.
    GaveUp,
}

struct Back {
    node: Arc<str>,
    state: State,
    joins: u32,
    downs: BTreeMap<String, u32>,
}

/// Knows which back nodes' workers are live: looks them up, monitors them, looks again
/// after a monitor fired; hands out workers round robin.
pub(super) struct Dispatcher {
    config: Arc<FrontConfig>,
    backs: Vec<Back>,
    next: usize,
    events: mpsc::UnboundedSender<ClusterEvent>,
}

impl Dispatcher {
    pub(super) fn new(
        config: Arc<FrontConfig>,
        events: mpsc::UnboundedSender<ClusterEvent>,
    ) -> Self {
        let backs = config
            .backs
            .iter()
            .map(|node| Back {
                node: Arc::from(node.as_str()),
                state: State::LookingUp { failures: 0 },
                joins: 0,
                downs: BTreeMap::new(),
            })
            .collect();
        Dispatcher {
            config,
            backs,
            next: 0,
            events,
        }
    }

    fn emit(&self, event: ClusterEvent) {
        let _ = self.events.send(event);
    }

    /// Looks back node `back`'s worker up, from a task (the mailbox keeps serving).
    fn look_up(&mut self, back: usize, ctx: &mut Ctx<Self>) {
        let node = ctx.node().clone();
        let name = self.backs[back].node.clone();
        ctx.spawn_task(
            async move { node.lookup::<Worker>(WORKER, &name).await },
            move |result| DispatcherMsg::LookedUp { back, result },
        );
    }
}

#[actor]
impl Dispatcher {
    #[init]
    fn init(&mut self, ctx: &mut Ctx<Self>) {
        for back in 0..self.backs.len() {
            self.look_up(back, ctx);
        }
    }

    /// A live worker, round robin, other than those in `avoid` (the ones a job already
    /// failed on); `None` when there is none.
    #[handle]
    fn pick(&mut self, avoid: Vec<Pid>) -> Option<ActorRef<Worker>> {
        let n = self.backs.len();
        for step in 0..n {
            let i = (self.next + step) % n;
            if let State::Up { worker, .. } = &self.backs[i].state {
                if !avoid.contains(&worker.pid()) {
                    self.next = (i + 1) % n;
                    return Some(worker.clone());
                }
            }
        }
        None
    }

    /// The back nodes as seen from here.
    #[handle]
    fn status(&self) -> Vec<BackStatus> {
        self.backs
            .iter()
            .map(|b| BackStatus {
                node: b.node.to_string(),
                worker: match &b.state {
                    State::Up { worker, .. } => Some(worker.pid()),
                    _ => None,
                },
                joins: b.joins,
                downs: b.downs.clone(),
                gave_up: matches!(b.state, State::GaveUp),
            })
            .collect()
    }

    /// A lookup ended (sent by its task).
    #[handle]
    fn looked_up(
        &mut self,
        back: usize,
        result: Result<ActorRef<Worker>, NetError>,
        ctx: &mut Ctx<Self>,
    ) {
        let State::LookingUp { failures } = self.backs[back].state else {
            return; // only one lookup runs per back node; nothing else is expected
        };
        match result {
            Ok(worker) => {
                let monitor = ctx.monitor(worker.pid());
                let b = &mut self.backs[back];
                b.joins += 1;
                let event = ClusterEvent::Joined {
                    node: b.node.to_string(),
                    worker: worker.pid(),
                    joins: b.joins,
                };
                b.state = State::Up { worker, monitor };
                self.emit(event);
            }
            Err(error) => {
                let failures = failures + 1;
                let node = self.backs[back].node.to_string();
                if failures >= self.config.relookup_attempts {
                    self.backs[back].state = State::GaveUp;
                    self.emit(ClusterEvent::GaveUp { node, failures });
                    return;
                }
                self.backs[back].state = State::LookingUp { failures };
                let retry_in = self.config.relookup_delay(failures);
                ctx.send_after(retry_in, DispatcherMsg::LookUpAgain { back });
                self.emit(ClusterEvent::LookupFailed {
                    node,
                    failures,
                    error: error.to_string(),
                    retry_in,
                });
            }
        }
    }

    /// Runs the next lookup of back node `back` (a timer).
    #[handle]
    fn look_up_again(&mut self, back: usize, ctx: &mut Ctx<Self>) {
        if matches!(self.backs[back].state, State::LookingUp { .. }) {
            self.look_up(back, ctx);
        }
    }

    /// A worker's monitor fired: stop routing to it and look its back node up again.
    #[on_down]
    fn worker_down(&mut self, down: Down, ctx: &mut Ctx<Self>) {
        let Some(back) = self.backs.iter().position(
            |b| matches!(&b.state, State::Up { monitor, .. } if *monitor == down.monitor),
        ) else {
            return;
        };
        let b = &mut self.backs[back];
        b.state = State::LookingUp { failures: 0 };
        *b.downs.entry(reason_kind(&down.reason)).or_insert(0) += 1;
        let event = ClusterEvent::Down {
            node: b.node.to_string(),
            worker: down.pid,
            reason: down.reason,
        };
        self.emit(event);
        ctx.send_after(
            self.config.relookup_delay(0),
            DispatcherMsg::LookUpAgain { back },
        );
    }
}
