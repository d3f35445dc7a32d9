//! Every hook: `#[init]` returning `()` (async, with the context) and `Result` (sync, failing
//! and succeeding), `#[terminate]`, `#[on_exit]` (context first) and `#[on_down]` (async).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ergo::prelude::*;

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, line: String) {
    log.lock().expect("log lock").push(line);
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().expect("log lock").clone()
}

/// Waits (bounded) until `log` has a line starting with `prefix`.
async fn eventually(log: &Log, prefix: &str) {
    for _ in 0..500 {
        if lines(log).iter().any(|l| l.starts_with(prefix)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no `{prefix}` line within 5 s; log: {:?}", lines(log));
}

struct Service {
    log: Log,
}

#[actor]
impl Service {
    #[init]
    async fn start(&mut self, ctx: &mut Ctx<Self>) {
        tokio::task::yield_now().await;
        ctx.trap_exit(true);
        push(&self.log, "init".to_owned());
    }

    /// A call, so the link exists once it returns.
    #[handle]
    fn link(&mut self, pid: Pid, ctx: &mut Ctx<Self>) -> usize {
        ctx.link(pid);
        ctx.links().len()
    }

    #[handle]
    fn watch(&mut self, ctx: &mut Ctx<Self>, pid: Pid) -> MonitorRef {
        ctx.monitor(pid)
    }

    #[on_exit]
    fn exited(&mut self, ctx: &mut Ctx<Self>, from: Pid, reason: ExitReason) {
        assert!(ctx.is_trapping_exits());
        push(&self.log, format!("exit from {from}: {reason}"));
    }

    #[on_down]
    async fn down(&mut self, down: Down) {
        tokio::task::yield_now().await;
        push(&self.log, format!("down {}: {}", down.pid, down.reason));
    }

    #[terminate]
    fn cleanup(&mut self, reason: &ExitReason) {
        push(&self.log, format!("terminate: {reason}"));
    }
}

/// A process that does nothing, to be linked, monitored and ended.
struct Idle;

#[actor]
impl Idle {
    #[handle]
    fn ping(&self) -> bool {
        true
    }
}

/// `#[init]` returning `Result`: an `Err` fails the spawn with its message.
struct Picky {
    ready: bool,
}

#[actor]
impl Picky {
    #[init]
    fn check(&self) -> Result<(), String> {
        if self.ready {
            Ok(())
        } else {
            Err("not ready".to_owned())
        }
    }

    #[handle]
    fn ready(&self) -> bool {
        self.ready
    }
}

#[tokio::main]
async fn main() -> Result<(), ergo::Error> {
    let node = Node::builder("hooks@localhost").start().await?;
    let log = Log::default();
    let service = node.spawn(Service { log: log.clone() }).await?;
    // `spawn` returns after `init` has run.
    assert_eq!(lines(&log), ["init"]);

    let linked = node.spawn(Idle).await?;
    assert!(linked.ping().await?);
    assert_eq!(service.link(linked.pid()).await?, 1);
    linked.kill();
    eventually(&log, "exit from").await;
    let expected = format!("exit from {}: killed", linked.pid());
    assert!(lines(&log).contains(&expected), "{:?}", lines(&log));

    let watched = node.spawn(Idle).await?;
    let _monitor = service.watch(watched.pid()).await?;
    watched.stop(ExitReason::Shutdown);
    eventually(&log, "down").await;
    let expected = format!("down {}: shutdown", watched.pid());
    assert!(lines(&log).contains(&expected), "{:?}", lines(&log));

    // Trapping exits kept the service alive through the kill of its link.
    assert!(service.is_alive());
    service.stop(ExitReason::Shutdown);
    assert_eq!(service.wait().await, ExitReason::Shutdown);
    assert_eq!(
        lines(&log).last().map(String::as_str),
        Some("terminate: shutdown")
    );

    match node.spawn(Picky { ready: false }).await {
        Err(SpawnError::Init(reason)) => {
            assert_eq!(reason, ExitReason::Error("not ready".to_owned()))
        }
        other => panic!("expected an init failure, got {other:?}"),
    }
    let picky = node.spawn(Picky { ready: true }).await?;
    assert!(picky.ready().await?);
    Ok(())
}
