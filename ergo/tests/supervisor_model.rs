//! Model-based property test of [`Supervisor`]: random child crash/exit sequences run against a
//! real supervisor and against a small reference model of OTP's semantics, compared after every
//! event.
//!
//! The model (see [`Model::apply`]):
//!
//! - `permanent` children are always restarted, `transient` ones unless the reason is `normal`
//!   or `shutdown`, `temporary` ones never (their spec is removed, also when they are stopped as a
//!   sibling by `one_for_all` / `rest_for_one`);
//! - a restart-worthy exit first records a restart; more than `intensity` restarts within the
//!   sliding `period` make the supervisor give up: it stops the remaining children in reverse
//!   order and exits with `shutdown`;
//! - otherwise `one_for_one` restarts only the child, `one_for_all` stops the others in reverse
//!   order and starts all specs in order, `rest_for_one` does the same with the child and the
//!   ones after it (as OTP's `start_children`, this also starts specs that were not running,
//!   e.g. a transient child that had ended normally);
//! - an exit that is not restart-worthy changes nothing else.
//!
//! Generated: the strategy, 1 to 4 children (each with a random restart type and shutdown:
//! the workers' default 5 s timeout, `brutal_kill` or `infinity`), the intensity (0 to 3) and 1
//! to 8 events. An event ends one child: a panic, `ctx.stop()`, `ctx.stop_with(Shutdown)`,
//! `ctx.stop_with(Error(..))` or a kill from outside; events on a child that is not running are
//! skipped. `terminate` runs (and logs) for all of them but a kill, and for children the
//! supervisor stops, unless it kills them (`brutal_kill`).
//!
//! What is compared after each event: the children (ids in order, running or not, which pids
//! changed), the log of `init`/`terminate` hooks (so the order of stops and starts), and whether
//! the supervisor is alive (and, after it gave up, that it exited with `shutdown` leaving no
//! process behind).
//!
//! Time is deterministic: the runtime's clock is paused, and before each event the test moves it
//! forward by the event's generated gap (0, 4, 6 or 10 s against a 10 s period, so restarts
//! fall inside, outside and exactly on the edge of the window).
//!
//! No sleeps and no polling: once the child's `wait()` returns, its exit signal is on the
//! supervisor's system lane, and the supervisor serves that lane before the `which_children`
//! call sent next, so the reply already reflects the restart. Every wait is bounded (and, the
//! clock being paused, a hang fails at once instead of after 5 s of wall time).
//!
//! All cases share one current-thread tokio runtime, each on a fresh node. `PROPTEST_CASES` sets
//! the number of cases (10 000 by default).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ergo::prelude::*;
use ergo::supervisor::{
    ChildInfo, ChildSpec, Restart, Shutdown, Strategy as SupStrategy, Supervisor, SupervisorApi,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Child ids (and registered names), by spec index.
const IDS: [&str; 4] = ["c0", "c1", "c2", "c3"];

/// Ends the message of the workers' panics, so the panic hook can keep them quiet.
const PANIC_MARKER: &str = "[supervisor_model]";

/// The bound on every wait: a hang becomes a failure, never a stuck CI.
const WAIT: Duration = Duration::from_secs(5);

/// How prop_assert_eq!'s sides read.
const SIDES: &str = "(left: runtime, right: model)";

/// The supervisor's restart period.
const PERIOD: Duration = Duration::from_secs(10);

/// One line of the hooks' log.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    /// `init` of child `i` ran.
    Start(usize),
    /// `terminate` of child `i` ran with this reason.
    Stop(usize, ExitReason),
}

type Log = Arc<Mutex<Vec<Entry>>>;

fn take(log: &Log) -> Vec<Entry> {
    std::mem::take(&mut *log.lock().unwrap())
}

struct Worker {
    i: usize,
    log: Log,
}

#[actor]
impl Worker {
    #[init]
    fn init(&mut self) {
        self.log.lock().unwrap().push(Entry::Start(self.i));
    }

    #[handle]
    fn crash(&mut self) {
        panic!("{} crashed {PANIC_MARKER}", IDS[self.i]);
    }

    #[handle]
    fn quit(&mut self, ctx: &mut Ctx<Self>) {
        ctx.stop();
    }

    #[handle]
    fn shut(&mut self, ctx: &mut Ctx<Self>) {
        ctx.stop_with(ExitReason::Shutdown);
    }

    #[handle]
    fn fail(&mut self, ctx: &mut Ctx<Self>) {
        ctx.stop_with(ExitReason::Error(format!("{} failed", IDS[self.i])));
    }

    #[terminate]
    fn terminate(&mut self, reason: &ExitReason) {
        self.log
            .lock()
            .unwrap()
            .push(Entry::Stop(self.i, reason.clone()));
    }
}

/// How a child ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Its handler panics.
    Panic,
    /// `ctx.stop()`.
    Normal,
    /// `ctx.stop_with(ExitReason::Shutdown)`.
    Shutdown,
    /// `ctx.stop_with(ExitReason::Error(..))`.
    Error,
    /// Killed from outside: ends with `Killed`, without running `terminate`.
    Kill,
}

impl Kind {
    /// The reason child `i` ends with.
    fn reason(self, i: usize) -> ExitReason {
        match self {
            Kind::Panic => ExitReason::Panic(format!("{} crashed {PANIC_MARKER}", IDS[i])),
            Kind::Normal => ExitReason::Normal,
            Kind::Shutdown => ExitReason::Shutdown,
            Kind::Error => ExitReason::Error(format!("{} failed", IDS[i])),
            Kind::Kill => ExitReason::Killed,
        }
    }
}

/// After the clock moves forward by `after` seconds, child `child` (a spec index) ends as `kind`
/// says.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Event {
    after: u64,
    child: usize,
    kind: Kind,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.after > 0 {
            write!(f, "+{}s ", self.after)?;
        }
        write!(f, "{} {:?}", IDS[self.child], self.kind)
    }
}

/// One child's spec: its restart type, and how the supervisor stops it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Child {
    restart: Restart,
    shutdown: Shutdown,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.restart)?;
        match self.shutdown {
            Shutdown::Timeout(_) => Ok(()),
            other => write!(f, " {other:?}"),
        }
    }
}

/// One generated case. Children are `c0`, `c1`, ... in spec order.
#[derive(Clone, Debug)]
struct Scenario {
    strategy: SupStrategy,
    intensity: u32,
    children: Vec<Child>,
    events: Vec<Event>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let strategy = prop_oneof![
        Just(SupStrategy::OneForOne),
        Just(SupStrategy::OneForAll),
        Just(SupStrategy::RestForOne),
    ];
    let restart = prop_oneof![
        Just(Restart::Permanent),
        Just(Restart::Transient),
        Just(Restart::Temporary),
    ];
    // Mostly the workers' default (ask, then kill after 5 s: they always stop in time).
    let shutdown = prop_oneof![
        3 => Just(Shutdown::Timeout(Duration::from_secs(5))),
        1 => Just(Shutdown::BrutalKill),
        1 => Just(Shutdown::Infinity),
    ];
    let child = (restart, shutdown).prop_map(|(restart, shutdown)| Child { restart, shutdown });
    (
        strategy,
        0u32..=3,
        proptest::collection::vec(child, 1..=IDS.len()),
    )
        .prop_flat_map(|(strategy, intensity, children)| {
            let kind = prop_oneof![
                2 => Just(Kind::Panic),
                2 => Just(Kind::Normal),
                2 => Just(Kind::Shutdown),
                2 => Just(Kind::Error),
                1 => Just(Kind::Kill),
            ];
            // Seconds between events: mostly none, so the intensity matters; 4 + 6 lands exactly
            // on the 10 s period.
            let after = prop_oneof![5 => Just(0u64), 2 => Just(4), 2 => Just(6), 1 => Just(10)];
            let event = (after, 0..children.len(), kind).prop_map(|(after, child, kind)| Event {
                after,
                child,
                kind,
            });
            let events = proptest::collection::vec(event, 1..=8);
            (Just(strategy), Just(intensity), Just(children), events)
        })
        .prop_map(|(strategy, intensity, children, events)| Scenario {
            strategy,
            intensity,
            children,
            events,
        })
}

/// One child spec of the model.
#[derive(Debug)]
struct ModelChild {
    /// Spec index (so the id is `IDS[i]`).
    i: usize,
    restart: Restart,
    shutdown: Shutdown,
    running: bool,
}

/// The reference: what OTP's supervisor does.
#[derive(Debug)]
struct Model {
    strategy: SupStrategy,
    intensity: u32,
    /// The time now (since the supervisor started).
    clock: Duration,
    /// When the restarts still within the period happened.
    restarts: Vec<Duration>,
    /// The specs, in start order.
    children: Vec<ModelChild>,
    alive: bool,
}

impl Model {
    fn new(s: &Scenario) -> Self {
        Model {
            strategy: s.strategy,
            intensity: s.intensity,
            clock: Duration::ZERO,
            restarts: Vec::new(),
            children: s
                .children
                .iter()
                .enumerate()
                .map(|(i, c)| ModelChild {
                    i,
                    restart: c.restart,
                    shutdown: c.shutdown,
                    running: false,
                })
                .collect(),
            alive: true,
        }
    }

    /// Starts the children among `positions` (indices into `children`), in order.
    fn start(&mut self, positions: &[usize], log: &mut Vec<Entry>) {
        for &p in positions {
            self.children[p].running = true;
            log.push(Entry::Start(self.children[p].i));
        }
    }

    /// Stops the running children among `positions`, last first. A brutal kill skips
    /// `terminate`.
    fn stop(&mut self, positions: &[usize], log: &mut Vec<Entry>) {
        for &p in positions.iter().rev() {
            let c = &mut self.children[p];
            if std::mem::replace(&mut c.running, false) && c.shutdown != Shutdown::BrutalKill {
                log.push(Entry::Stop(c.i, ExitReason::Shutdown));
            }
        }
    }

    /// The supervisor's start: every child, in order.
    fn start_all(&mut self) -> Vec<Entry> {
        let mut log = Vec::new();
        let all: Vec<usize> = (0..self.children.len()).collect();
        self.start(&all, &mut log);
        log
    }

    /// The supervisor stops (gives up, or is asked to): every child, last first.
    fn stop_all(&mut self) -> Vec<Entry> {
        let mut log = Vec::new();
        let all: Vec<usize> = (0..self.children.len()).collect();
        self.stop(&all, &mut log);
        self.alive = false;
        log
    }

    /// Records a restart now; `false` when it is one too many within the period.
    ///
    /// The window is `(now - period, now]`: a restart exactly `period` ago no longer counts.
    /// (OTP compares whole seconds, `R >= Now - Period`, so its window is somewhere between
    /// `period` and `period + 1 s` of real time; with a sub-second clock, "within `period`" is
    /// the natural reading, and this pins it.)
    fn record_restart(&mut self) -> bool {
        let now = self.clock;
        self.restarts.push(now);
        self.restarts.retain(|&t| now - t < PERIOD);
        self.restarts.len() <= self.intensity as usize
    }

    fn running(&self, i: usize) -> bool {
        self.children.iter().any(|c| c.i == i && c.running)
    }

    /// Applies `ev` (the child must be running) and returns the hooks' log it produces.
    fn apply(&mut self, ev: Event) -> Vec<Entry> {
        let pos = self
            .children
            .iter()
            .position(|c| c.i == ev.child && c.running)
            .expect("events target running children");
        let reason = ev.kind.reason(ev.child);
        // `terminate` runs for every kind but a kill (a panic included).
        let mut log = Vec::new();
        if ev.kind != Kind::Kill {
            log.push(Entry::Stop(ev.child, reason.clone()));
        }
        self.children[pos].running = false;
        let restart = match self.children[pos].restart {
            Restart::Permanent => true,
            Restart::Transient => !matches!(reason, ExitReason::Normal | ExitReason::Shutdown),
            Restart::Temporary => false,
        };
        if !restart {
            if self.children[pos].restart == Restart::Temporary {
                self.children.remove(pos);
            }
            return log;
        }
        if !self.record_restart() {
            log.extend(self.stop_all());
            return log;
        }
        let affected: Vec<usize> = match self.strategy {
            SupStrategy::OneForOne => vec![pos],
            SupStrategy::OneForAll => (0..self.children.len()).collect(),
            SupStrategy::RestForOne => (pos..self.children.len()).collect(),
            other => unreachable!("strategy {other:?} is not generated"),
        };
        self.stop(&affected, &mut log);
        // Temporary siblings that were stopped are removed, not restarted.
        let restarted: Vec<usize> = affected
            .iter()
            .copied()
            .filter(|&p| self.children[p].restart != Restart::Temporary)
            .collect();
        self.start(&restarted, &mut log);
        self.children
            .retain(|c| c.running || c.restart != Restart::Temporary);
        log
    }
}

fn fail(what: impl fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

/// Awaits `fut` for at most [`WAIT`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> Result<T, TestCaseError> {
    tokio::time::timeout(WAIT, fut)
        .await
        .map_err(|_| fail(format!("timed out waiting for: {what}")))
}

/// Compares the supervisor's children with the model's, and the pids with `before` (the pids
/// seen after the previous step): a child has a new pid exactly when its `init` ran in this
/// step. Returns the pids now.
fn compare_children(
    node: &Node,
    model: &Model,
    actual: &[ChildInfo],
    before: &[(usize, Option<Pid>)],
    entries: &[Entry],
    step: &str,
) -> Result<Vec<(usize, Option<Pid>)>, TestCaseError> {
    let expected: Vec<(&str, bool)> = model
        .children
        .iter()
        .map(|c| (IDS[c.i], c.running))
        .collect();
    let got: Vec<(&str, bool)> = actual
        .iter()
        .map(|c| (c.id.as_str(), c.pid.is_some()))
        .collect();
    prop_assert_eq!(&got, &expected, "children (id, running) {} {}", step, SIDES);
    let now: Vec<(usize, Option<Pid>)> = model
        .children
        .iter()
        .zip(actual)
        .map(|(c, a)| (c.i, a.pid))
        .collect();
    for &(i, pid) in &now {
        prop_assert_eq!(
            node.whereis_pid(IDS[i]),
            pid,
            "the name {} is registered to the current incarnation {}",
            IDS[i],
            step
        );
        let old = before.iter().find(|(j, _)| *j == i).and_then(|(_, p)| *p);
        let started = entries.contains(&Entry::Start(i));
        prop_assert_eq!(
            started,
            pid.is_some() && pid != old,
            "{} has a new pid exactly when it was started {}",
            IDS[i],
            step
        );
    }
    Ok(now)
}

/// Runs one scenario on a fresh node, comparing with the model after every event.
async fn check(node: &Node, s: &Scenario) -> Result<(), TestCaseError> {
    let log = Log::default();
    let sup = s.children.iter().enumerate().fold(
        Supervisor::new(s.strategy).intensity(s.intensity, PERIOD),
        |sup, (i, c)| {
            let log = log.clone();
            sup.child(
                ChildSpec::new(IDS[i], move || Worker {
                    i,
                    log: log.clone(),
                })
                .restart(c.restart)
                .shutdown(c.shutdown)
                .register(IDS[i]),
            )
        },
    );
    let sup = within("supervisor starts", node.spawn(sup))
        .await?
        .map_err(fail)?;
    let mut model = Model::new(s);
    let entries = take(&log);
    prop_assert_eq!(
        &entries,
        &model.start_all(),
        "children start in order {}",
        SIDES
    );
    let children = within("which_children", sup.which_children())
        .await?
        .map_err(fail)?;
    let mut pids = compare_children(node, &model, &children, &[], &entries, "at start")?;

    for (n, &ev) in s.events.iter().enumerate() {
        let gap = Duration::from_secs(ev.after);
        tokio::time::advance(gap).await;
        model.clock += gap;
        if !model.running(ev.child) {
            continue;
        }
        let step = format!("after event #{n} ({ev:?})");
        let expected = model.apply(ev);

        let child = node
            .whereis::<Worker>(IDS[ev.child])
            .ok_or_else(|| fail(format!("{} is not registered before {step}", IDS[ev.child])))?;
        let sent = match ev.kind {
            Kind::Panic => child.crash().await.is_ok(),
            Kind::Normal => child.quit().await.is_ok(),
            Kind::Shutdown => child.shut().await.is_ok(),
            Kind::Error => child.fail().await.is_ok(),
            Kind::Kill => child.kill(),
        };
        prop_assert!(sent, "{} is reachable {}", IDS[ev.child], step);
        let reason = within("the child exits", child.wait()).await?;
        prop_assert_eq!(&reason, &ev.kind.reason(ev.child), "exit reason {}", step);

        // Served after the supervisor's system lane, which holds the exit signal by now.
        let reply = within("which_children", sup.which_children()).await?;
        let entries = take(&log);
        if model.alive {
            let children = reply.map_err(|e| {
                fail(format!(
                    "the supervisor should be alive {step}, but which_children failed: {e}; \
                     hooks log: {entries:?}"
                ))
            })?;
            prop_assert_eq!(&entries, &expected, "stops and starts {} {}", step, SIDES);
            pids = compare_children(node, &model, &children, &pids, &entries, &step)?;
        } else {
            prop_assert!(
                reply.is_err(),
                "the supervisor should have given up {}, but it answered {:?}",
                step,
                reply
            );
            let reason = within("the supervisor exits", sup.wait()).await?;
            prop_assert_eq!(reason, ExitReason::Shutdown, "supervisor exit {}", step);
            prop_assert_eq!(&entries, &expected, "stops {} {}", step, SIDES);
            prop_assert_eq!(node.process_count(), 0, "no process left {}", step);
            prop_assert!(node.registered().is_empty(), "no name left {}", step);
            return Ok(());
        }
    }

    // Still alive after all events: stopping it stops the running children, last first.
    prop_assert!(sup.stop(ExitReason::Shutdown), "the supervisor is alive");
    let reason = within("the supervisor stops", sup.wait()).await?;
    prop_assert_eq!(reason, ExitReason::Shutdown);
    prop_assert_eq!(&take(&log), &model.stop_all(), "stops at the end {}", SIDES);
    prop_assert_eq!(node.process_count(), 0, "no process left at the end");
    prop_assert!(node.registered().is_empty(), "no name left at the end");
    Ok(())
}

async fn run_case(s: &Scenario) -> Result<(), TestCaseError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let node = Node::builder(format!("sup-model-{n}@localhost"))
        .start()
        .await
        .map_err(fail)?;
    let result = check(&node, s).await;
    // After a failure, end whatever is left so it does not linger in the shared runtime (a
    // no-op after a passing case).
    node.shutdown(Duration::from_secs(1)).await;
    result
}

/// Keeps the workers' deliberate panics quiet; any other panic is reported as usual.
fn quiet_worker_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !msg.ends_with(PANIC_MARKER) {
            default(info);
        }
    }));
}

#[test]
fn supervisor_matches_otp_model() {
    quiet_worker_panics();
    // One runtime for all cases, its clock paused (it moves only when the test advances it, or
    // when every task is idle, which only a hang would cause).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let config = ProptestConfig {
        cases,
        ..ProptestConfig::default()
    };
    proptest!(config, |(s in scenario())| {
        rt.block_on(run_case(&s))?;
    });
}
