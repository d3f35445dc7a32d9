//! Supervisors: strategies, restart types, intensity, ordered start and stop, escalation.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, node, within};
use ergo::prelude::*;
use ergo::supervisor::{
    ChildSpec, Restart, Shutdown, Strategy, Supervisor, SupervisorApi, SupervisorError,
};

type Log = Arc<Mutex<Vec<String>>>;

struct Worker {
    id: &'static str,
    log: Log,
    fail_init: bool,
}

#[actor]
impl Worker {
    #[init]
    fn init(&mut self) -> Result<(), String> {
        if self.fail_init {
            return Err(format!("{} cannot start", self.id));
        }
        self.log.lock().unwrap().push(format!("start {}", self.id));
        Ok(())
    }

    #[handle]
    fn crash(&mut self) {
        panic!("{} crashed", self.id);
    }

    #[handle]
    fn quit(&mut self, ctx: &mut Ctx<Self>) {
        ctx.stop();
    }

    #[handle]
    async fn hang(&mut self) {
        std::future::pending::<()>().await;
    }

    #[handle]
    fn ping(&self) -> String {
        self.id.to_owned()
    }

    #[terminate]
    fn terminate(&mut self, reason: &ExitReason) {
        self.log
            .lock()
            .unwrap()
            .push(format!("stop {} {reason}", self.id));
    }
}

fn spec(log: &Log, id: &'static str) -> ChildSpec {
    let log = log.clone();
    ChildSpec::new(id, move || Worker {
        id,
        log: log.clone(),
        fail_init: false,
    })
    .register(id)
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn clear(log: &Log) {
    log.lock().unwrap().clear();
}

/// The current incarnation of child `id`, once it is a different process than `old`.
async fn next_incarnation(node: &Node, id: &str, old: Option<Pid>) -> ActorRef<Worker> {
    eventually(&format!("child {id} running"), || async {
        node.whereis::<Worker>(id).filter(|w| Some(w.pid()) != old)
    })
    .await
}

async fn crash(node: &Node, id: &str) -> Pid {
    let w = node.whereis::<Worker>(id).expect("child running");
    w.crash().await.unwrap();
    within("crashed child exits", w.wait()).await;
    w.pid()
}

fn sup(strategy: Strategy, log: &Log, ids: &[&'static str]) -> Supervisor {
    ids.iter().fold(
        Supervisor::new(strategy).intensity(10, Duration::from_secs(5)),
        |s, id| s.child(spec(log, id)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_start_in_order() {
    let node = node("sup-order").await;
    let log = Log::default();
    let s = node
        .spawn(sup(Strategy::OneForOne, &log, &["a", "b", "c"]))
        .await
        .unwrap();
    assert_eq!(entries(&log), ["start a", "start b", "start c"]);
    let ids: Vec<String> = s
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_one_restarts_only_the_crashed_child() {
    let node = node("sup-one-for-one").await;
    let log = Log::default();
    let _s = node
        .spawn(sup(Strategy::OneForOne, &log, &["a", "b", "c"]))
        .await
        .unwrap();
    let a = node.whereis_pid("a");
    let c = node.whereis_pid("c");
    clear(&log);
    let old_b = crash(&node, "b").await;
    let b = next_incarnation(&node, "b", Some(old_b)).await;
    assert_eq!(b.ping().await.unwrap(), "b");
    assert_eq!(node.whereis_pid("a"), a);
    assert_eq!(node.whereis_pid("c"), c);
    assert_eq!(entries(&log), ["stop b panic: b crashed", "start b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_all_restarts_every_child_in_order() {
    let node = node("sup-one-for-all").await;
    let log = Log::default();
    let _s = node
        .spawn(sup(Strategy::OneForAll, &log, &["a", "b", "c"]))
        .await
        .unwrap();
    let old_a = node.whereis_pid("a");
    clear(&log);
    let old_b = crash(&node, "b").await;
    next_incarnation(&node, "b", Some(old_b)).await;
    next_incarnation(&node, "a", old_a).await;
    eventually("all restarted", || async {
        (entries(&log).len() == 6).then_some(())
    })
    .await;
    assert_eq!(
        entries(&log),
        [
            "stop b panic: b crashed",
            "stop c shutdown",
            "stop a shutdown",
            "start a",
            "start b",
            "start c"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_for_one_restarts_later_siblings_in_order() {
    let node = node("sup-rest-for-one").await;
    let log = Log::default();
    let _s = node
        .spawn(sup(Strategy::RestForOne, &log, &["a", "b", "c", "d"]))
        .await
        .unwrap();
    let a = node.whereis_pid("a");
    clear(&log);
    let old_b = crash(&node, "b").await;
    next_incarnation(&node, "b", Some(old_b)).await;
    eventually("rest restarted", || async {
        (entries(&log).len() == 6).then_some(())
    })
    .await;
    assert_eq!(
        entries(&log),
        [
            "stop b panic: b crashed",
            "stop d shutdown",
            "stop c shutdown",
            "start b",
            "start c",
            "start d"
        ]
    );
    assert_eq!(node.whereis_pid("a"), a, "earlier siblings are untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_child_not_restarted_after_normal_exit() {
    let node = node("sup-transient-normal").await;
    let log = Log::default();
    let s = node
        .spawn(
            Supervisor::new(Strategy::OneForOne).child(spec(&log, "t").restart(Restart::Transient)),
        )
        .await
        .unwrap();
    let t = node.whereis::<Worker>("t").unwrap();
    t.quit().await.unwrap();
    assert_eq!(within("exit", t.wait()).await, ExitReason::Normal);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let children = s.which_children().await.unwrap();
    assert_eq!(children.len(), 1, "the spec stays");
    assert_eq!(children[0].pid, None, "but it is not restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_child_restarted_after_crash() {
    let node = node("sup-transient-crash").await;
    let log = Log::default();
    let _s = node
        .spawn(
            Supervisor::new(Strategy::OneForOne).child(spec(&log, "t").restart(Restart::Transient)),
        )
        .await
        .unwrap();
    let old = crash(&node, "t").await;
    next_incarnation(&node, "t", Some(old)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_child_never_restarted_and_its_spec_removed() {
    let node = node("sup-temporary").await;
    let log = Log::default();
    let s = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .child(spec(&log, "keep"))
                .child(spec(&log, "temp").restart(Restart::Temporary)),
        )
        .await
        .unwrap();
    crash(&node, "temp").await;
    eventually("spec removed", || async {
        (s.which_children().await.unwrap().len() == 1).then_some(())
    })
    .await;
    assert!(node.whereis_pid("temp").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intensity_exceeded_stops_supervisor_with_shutdown() {
    let node = node("sup-intensity").await;
    let log = Log::default();
    let s = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .intensity(2, Duration::from_secs(60))
                .child(spec(&log, "a"))
                .child(spec(&log, "b")),
        )
        .await
        .unwrap();
    // Two restarts are within the limit.
    let mut old = None;
    for _ in 0..2 {
        next_incarnation(&node, "a", old).await;
        old = Some(crash(&node, "a").await);
    }
    next_incarnation(&node, "a", old).await;
    assert!(
        s.is_alive(),
        "exactly at the limit the supervisor still restarts"
    );
    // The third within the period is one too many.
    crash(&node, "a").await;
    assert_eq!(
        within("supervisor gives up", s.wait()).await,
        ExitReason::Shutdown
    );
    assert!(node.whereis_pid("a").is_none());
    assert!(node.whereis_pid("b").is_none(), "all children are stopped");
    assert!(entries(&log).contains(&"stop b shutdown".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_supervisor_stops_children_in_reverse_order() {
    let node = node("sup-stop").await;
    let log = Log::default();
    let s = node
        .spawn(sup(Strategy::OneForOne, &log, &["a", "b", "c"]))
        .await
        .unwrap();
    clear(&log);
    assert!(s.stop(ExitReason::Shutdown));
    assert_eq!(
        within("supervisor exits", s.wait()).await,
        ExitReason::Shutdown
    );
    assert_eq!(
        entries(&log),
        ["stop c shutdown", "stop b shutdown", "stop a shutdown"]
    );
    assert_eq!(node.process_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_kills_a_child_that_does_not_stop() {
    let node = node("sup-shutdown-timeout").await;
    let log = Log::default();
    let s = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .child(spec(&log, "stuck").shutdown(Shutdown::Timeout(Duration::from_millis(50)))),
        )
        .await
        .unwrap();
    let stuck = node.whereis::<Worker>("stuck").unwrap();
    stuck.hang().await.unwrap();
    eventually("handler running", || async {
        (stuck.mailbox_len() == 0).then_some(())
    })
    .await;
    assert!(s.stop(ExitReason::Shutdown));
    within("supervisor exits", s.wait()).await;
    assert_eq!(stuck.wait().await, ExitReason::Killed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_init_failure_fails_supervisor_start() {
    let node = node("sup-init-fail").await;
    let log = Log::default();
    let bad_log = log.clone();
    let err = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .child(spec(&log, "a"))
                .child(ChildSpec::new("bad", move || Worker {
                    id: "bad",
                    log: bad_log.clone(),
                    fail_init: true,
                }))
                .child(spec(&log, "c")),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SpawnError::Init(ExitReason::Error("bad cannot start".into()))
    );
    assert_eq!(
        entries(&log),
        ["start a", "stop a shutdown"],
        "started children are stopped, later ones never start"
    );
    eventually("nothing left", || async {
        (node.process_count() == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_and_restart_child_by_id() {
    let node = node("sup-by-id").await;
    let log = Log::default();
    let s = node
        .spawn(sup(Strategy::OneForOne, &log, &["a"]))
        .await
        .unwrap();
    let old = node.whereis_pid("a");
    assert_eq!(s.terminate_child("a".into()).await.unwrap(), Ok(()));
    assert!(node.whereis_pid("a").is_none());
    assert_eq!(
        s.terminate_child("zz".into()).await.unwrap(),
        Err(SupervisorError::NotFound("zz".into()))
    );
    let pid = s.restart_child("a".into()).await.unwrap().unwrap();
    assert_ne!(Some(pid), old);
    assert_eq!(node.whereis_pid("a"), Some(pid));
    assert_eq!(
        s.restart_child("a".into()).await.unwrap(),
        Err(SupervisorError::Running("a".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_supervisor_that_gives_up_is_restarted_by_its_parent() {
    let node = node("sup-escalate").await;
    let log = Log::default();
    let inner_log = log.clone();
    let top = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .intensity(5, Duration::from_secs(60))
                .child(ChildSpec::supervisor("inner", move || {
                    Supervisor::new(Strategy::OneForOne)
                        .intensity(0, Duration::from_secs(60))
                        .child(spec(&inner_log, "leaf"))
                })),
        )
        .await
        .unwrap();
    let inner_before = top.which_children().await.unwrap()[0].pid;
    let old_leaf = crash(&node, "leaf").await;
    // The inner supervisor may not restart (intensity 0): it exits with Shutdown, and the top
    // supervisor restarts it, which starts a fresh leaf.
    next_incarnation(&node, "leaf", Some(old_leaf)).await;
    let inner_after = top.which_children().await.unwrap()[0].pid;
    assert!(inner_after.is_some());
    assert_ne!(inner_after, inner_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_restarts_leave_no_tasks_processes_or_names_behind() {
    let node = node("sup-churn").await;
    let log = Log::default();
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let s = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .intensity(20_000, Duration::from_secs(3600))
                .child(
                    ChildSpec::new("w", {
                        let log = log.clone();
                        move || Worker {
                            id: "w",
                            log: log.clone(),
                            fail_init: false,
                        }
                    })
                    .register("w"),
                ),
        )
        .await
        .unwrap();
    let mut current = s.which_children().await.unwrap()[0].pid.unwrap();
    within("10 000 restarts", async {
        for _ in 0..10_000 {
            let w = node.whereis::<Worker>("w").expect("child registered");
            assert_eq!(w.pid(), current);
            // A kill: no terminate hook, so the log stays small.
            w.kill();
            w.wait().await;
            // The exit signal is on the supervisor's system lane, served before this call:
            // the reply already shows the replacement.
            let next = s.which_children().await.unwrap()[0].pid.unwrap();
            assert_ne!(next, current);
            current = next;
        }
    })
    .await;
    assert_eq!(node.process_count(), 2, "the supervisor and one child");
    assert_eq!(node.registered(), ["w".to_owned()]);
    s.stop(ExitReason::Shutdown);
    s.wait().await;
    assert_eq!(node.process_count(), 0);
    assert!(node.registered().is_empty());
    let tasks_after = eventually("tasks finished", || async {
        let n = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        (n <= tasks_before).then_some(n)
    })
    .await;
    assert!(tasks_after <= tasks_before);
}
