//! Lifecycle: init (and its failure), terminate, ctx.stop, panics, kills, node shutdown.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, node, within};
use ergo::prelude::*;

type Log = Arc<Mutex<Vec<String>>>;

struct Life {
    log: Log,
    fail_init: Option<&'static str>,
    panic_init: bool,
}

impl Life {
    fn new(log: &Log) -> Self {
        Life {
            log: log.clone(),
            fail_init: None,
            panic_init: false,
        }
    }
}

#[actor]
impl Life {
    #[init]
    async fn init(&mut self, ctx: &mut Ctx<Self>) -> Result<(), String> {
        if self.panic_init {
            panic!("init exploded");
        }
        if let Some(why) = self.fail_init {
            return Err(why.to_owned());
        }
        self.log
            .lock()
            .unwrap()
            .push(format!("init {}", ctx.pid().id()));
        Ok(())
    }

    #[handle]
    fn note(&mut self, text: String) {
        self.log.lock().unwrap().push(text);
    }

    #[handle]
    fn quit(&mut self, ctx: &mut Ctx<Self>) {
        ctx.stop();
    }

    #[handle]
    fn quit_with(&mut self, reason: ExitReason, ctx: &mut Ctx<Self>) {
        ctx.stop_with(reason);
    }

    #[handle]
    fn explode(&mut self) {
        panic!("handler exploded");
    }

    #[handle]
    async fn hang(&mut self) {
        std::future::pending::<()>().await;
    }

    #[handle]
    fn ping(&self) -> String {
        "pong".to_owned()
    }

    /// Logs, waits `ms` (an await point), logs again.
    #[handle]
    async fn nap(&mut self, ms: u64) {
        self.log.lock().unwrap().push("nap start".into());
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.log.lock().unwrap().push("nap end".into());
    }

    #[handle]
    fn trap(&mut self, on: bool, ctx: &mut Ctx<Self>) {
        ctx.trap_exit(on);
    }

    #[handle]
    fn link_to(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.link(pid);
    }

    #[handle]
    fn unlink_from(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.unlink(pid);
    }

    /// Counts; at `n == at`, sends itself an exit signal (untrapped: ends it before the next).
    #[handle]
    fn count(&mut self, n: u32, at: u32, ctx: &mut Ctx<Self>) {
        self.log.lock().unwrap().push(format!("count {n}"));
        if n == at {
            ctx.exit(ctx.pid(), ExitReason::Error("enough".into()));
        }
    }

    #[on_exit]
    fn on_exit(&mut self, _from: Pid, reason: ExitReason) {
        self.log.lock().unwrap().push(format!("on_exit {reason}"));
    }

    #[terminate]
    fn terminate(&mut self, reason: &ExitReason) {
        self.log.lock().unwrap().push(format!("terminate {reason}"));
    }
}

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn init_runs_before_the_first_message() {
    let node = node("life-init").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    a.note("first".into()).await.unwrap();
    assert_eq!(a.ping().await, Ok("pong".to_owned()));
    let got = entries(&l);
    assert_eq!(
        got,
        vec![format!("init {}", a.pid().id()), "first".to_owned()]
    );
}

#[tokio::test]
async fn init_error_fails_spawn_and_ends_the_process() {
    let node = node("life-init-error").await;
    let l = log();
    let before = node.process_count();
    let err = node
        .spawn(Life {
            fail_init: Some("no database"),
            ..Life::new(&l)
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SpawnError::Init(ExitReason::Error("no database".into()))
    );
    assert_eq!(node.process_count(), before);
    assert!(
        entries(&l).is_empty(),
        "terminate must not run after a failed init"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_panic_fails_spawn_with_the_panic_message() {
    let node = node("life-init-panic").await;
    let l = log();
    let err = node
        .spawn(Life {
            panic_init: true,
            ..Life::new(&l)
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SpawnError::Init(ExitReason::Panic("init exploded".into()))
    );
}

#[tokio::test]
async fn ctx_stop_ends_normally_and_runs_terminate() {
    let node = node("life-stop").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    a.quit().await.unwrap();
    assert_eq!(within("exit", a.wait()).await, ExitReason::Normal);
    assert_eq!(entries(&l).last().unwrap(), "terminate normal");
    assert!(!a.is_alive());
}

#[tokio::test]
async fn stop_with_reason_is_the_exit_reason() {
    let node = node("life-stop-with").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    a.quit_with(ExitReason::Error("disk full".into()))
        .await
        .unwrap();
    assert_eq!(
        within("exit", a.wait()).await,
        ExitReason::Error("disk full".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_ends_only_its_own_process() {
    let node = node("life-panic").await;
    let l = log();
    let victim = node.spawn(Life::new(&l)).await.unwrap();
    let bystander = node.spawn(Life::new(&log())).await.unwrap();
    victim.explode().await.unwrap();
    assert_eq!(
        within("exit", victim.wait()).await,
        ExitReason::Panic("handler exploded".into())
    );
    assert_eq!(
        entries(&l).last().unwrap(),
        "terminate panic: handler exploded"
    );
    assert_eq!(bystander.ping().await, Ok("pong".to_owned()));
    let fresh = node.spawn(Life::new(&log())).await.unwrap();
    assert_eq!(fresh.ping().await, Ok("pong".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_a_process_stuck_in_a_handler_without_terminate() {
    let node = node("life-kill").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    a.hang().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(a.kill());
    assert_eq!(within("exit", a.wait()).await, ExitReason::Killed);
    assert!(
        !entries(&l).iter().any(|e| e.starts_with("terminate")),
        "terminate must not run on kill"
    );
    assert!(!node.is_alive(a.pid()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_waits_for_the_current_handler_then_runs_terminate() {
    let node = node("life-graceful").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    a.note("one".into()).await.unwrap();
    assert!(a.stop(ExitReason::Shutdown));
    assert_eq!(within("exit", a.wait()).await, ExitReason::Shutdown);
    assert_eq!(entries(&l).last().unwrap(), "terminate shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_process_and_refuses_new_ones() {
    let node = node("life-shutdown").await;
    let l = log();
    let mut refs = Vec::new();
    for _ in 0..10 {
        refs.push(node.spawn(Life::new(&l)).await.unwrap());
    }
    let stuck = node.spawn(Life::new(&l)).await.unwrap();
    stuck.hang().await.unwrap();
    eventually("hang started", || async {
        (stuck.mailbox_len() == 0).then_some(())
    })
    .await;
    within("shutdown", node.shutdown(Duration::from_millis(200))).await;
    assert_eq!(node.process_count(), 0);
    for r in &refs {
        assert_eq!(r.wait().await, ExitReason::Shutdown);
    }
    assert_eq!(stuck.wait().await, ExitReason::Killed);
    let terminated = entries(&l)
        .iter()
        .filter(|e| *e == "terminate shutdown")
        .count();
    assert_eq!(terminated, 10);
    assert_eq!(
        node.spawn(Life::new(&l)).await.unwrap_err(),
        SpawnError::NodeDown
    );
}

#[tokio::test]
async fn pids_are_unique_printable_and_ordered() {
    let node = node("life-pids").await;
    let a = node.spawn(Life::new(&log())).await.unwrap();
    let b = node.spawn(Life::new(&log())).await.unwrap();
    assert_ne!(a.pid(), b.pid());
    assert!(a.pid() < b.pid());
    let shown = a.pid().to_string();
    assert!(shown.starts_with("<life-pids@localhost."), "{shown}");
    assert_eq!(a.pid().node_name().as_ref(), "life-pids@localhost");
    assert_eq!(a.pid().creation(), node.creation());
    let copy = a.pid();
    assert_eq!(copy, a.pid());
    eventually("process listed", || async {
        node.processes().contains(&copy).then_some(())
    })
    .await;
}

#[tokio::test]
async fn malformed_node_names_are_rejected() {
    for bad in ["", "a b@host", "name@", "@host", "x@h@y"] {
        let err = ergo::Node::builder(bad).start().await;
        assert!(err.is_err(), "`{bad}` should be rejected");
    }
    let ok = ergo::Node::builder("plain").start().await.unwrap();
    assert_eq!(ok.name(), "plain@localhost");
}

struct SlowExit {
    log: Log,
}

#[actor]
impl SlowExit {
    #[handle]
    fn crash(&mut self) {
        panic!("going down");
    }

    #[handle]
    fn ping(&self) -> u8 {
        1
    }

    #[terminate]
    async fn terminate(&mut self, reason: &ExitReason) {
        self.log
            .lock()
            .unwrap()
            .push(format!("terminate begins {reason}"));
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.log.lock().unwrap().push("terminate ends".into());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ending_process_refuses_messages_and_frees_its_name_before_terminate() {
    let node = node("life-ending").await;
    let l = log();
    let a = node.spawn(SlowExit { log: l.clone() }).await.unwrap();
    node.register("slow", &a).unwrap();
    a.crash().await.unwrap();
    eventually("terminate running", || async {
        entries(&l)
            .first()
            .is_some_and(|e| e.starts_with("terminate begins"))
            .then_some(())
    })
    .await;
    // `terminate` is still running (it sleeps 1 s), yet the process no longer takes work.
    assert!(
        node.whereis_pid("slow").is_none(),
        "the name is free at once"
    );
    assert!(!a.is_alive());
    assert_eq!(a.ping().await, Err(CallError::NoProc));
    assert!(
        entries(&l).len() == 1,
        "terminate has not finished: {:?}",
        entries(&l)
    );
    // A new process may take the name right away.
    let b = node.spawn(SlowExit { log: log() }).await.unwrap();
    node.register("slow", &b).unwrap();
    assert_eq!(
        within("exit", a.wait()).await,
        ExitReason::Panic("going down".into())
    );
    assert_eq!(entries(&l).last().unwrap(), "terminate ends");
}

/// Waits until the log has `entry`.
async fn logged(l: &Log, entry: &str) {
    eventually(entry, || async {
        entries(l).iter().any(|e| e == entry).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_signal_ends_a_process_waiting_inside_a_handler() {
    let node = node("life-exit-mid").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    // A handler that would wait for an hour.
    a.nap(3_600_000).await.unwrap();
    logged(&l, "nap start").await;
    assert!(a.exit(a.pid(), ExitReason::Error("shut it".into())));
    assert_eq!(
        within("exit", a.wait()).await,
        ExitReason::Error("shut it".into())
    );
    let got = entries(&l);
    assert_eq!(got.last().unwrap(), "terminate error: shut it", "{got:?}");
    assert!(!got.iter().any(|e| e == "nap end"), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_link_ends_a_process_waiting_inside_a_handler() {
    let node = node("life-link-mid").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    let b = node.spawn(Life::new(&log())).await.unwrap();
    a.link_to(b.pid()).await.unwrap();
    a.nap(3_600_000).await.unwrap();
    logged(&l, "nap start").await;
    b.explode().await.unwrap();
    assert_eq!(
        within("exit", a.wait()).await,
        ExitReason::Panic("handler exploded".into())
    );
    assert_eq!(
        entries(&l).last().unwrap(),
        "terminate panic: handler exploded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_exit_waits_for_the_handler_then_reaches_on_exit() {
    let node = node("life-trap-mid").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    a.trap(true).await.unwrap();
    a.nap(200).await.unwrap();
    logged(&l, "nap start").await;
    assert!(a.exit(a.pid(), ExitReason::Error("trapped".into())));
    logged(&l, "on_exit error: trapped").await;
    let got = entries(&l);
    let end = got.iter().position(|e| e == "nap end");
    let trapped = got.iter().position(|e| e == "on_exit error: trapped");
    assert!(end.is_some() && end < trapped, "{got:?}");
    assert_eq!(a.ping().await, Ok("pong".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_from_a_removed_link_does_not_cut_a_handler_short() {
    let node = node("life-unlinked-mid").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    let b = node.spawn(Life::new(&log())).await.unwrap();
    a.link_to(b.pid()).await.unwrap();
    a.unlink_from(b.pid()).await.unwrap();
    a.nap(200).await.unwrap();
    logged(&l, "nap start").await;
    b.explode().await.unwrap();
    within("b ends", b.wait()).await;
    logged(&l, "nap end").await;
    assert_eq!(a.ping().await, Ok("pong".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_the_running_handler_finish() {
    let node = node("life-stop-mid").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    a.nap(100).await.unwrap();
    logged(&l, "nap start").await;
    assert!(a.stop(ExitReason::Shutdown));
    assert_eq!(within("exit", a.wait()).await, ExitReason::Shutdown);
    let got = entries(&l);
    assert_eq!(
        &got[got.len() - 2..],
        ["nap end", "terminate shutdown"],
        "{got:?}"
    );
}

#[tokio::test]
async fn an_exit_signal_sent_by_a_handler_stops_the_batch_it_is_in() {
    let node = node("life-exit-batch").await;
    let l = log();
    let a = node.spawn(Life::new(&l)).await.unwrap();
    for n in 1..=50 {
        a.count(n, 10).await.unwrap();
    }
    assert_eq!(
        within("exit", a.wait()).await,
        ExitReason::Error("enough".into())
    );
    let counted = entries(&l)
        .iter()
        .filter(|e| e.starts_with("count"))
        .count();
    assert_eq!(counted, 10, "{:?}", entries(&l));
}
