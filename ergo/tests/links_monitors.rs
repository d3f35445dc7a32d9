//! Links, trapped exits, monitors, kill, spawn_link.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, node, within};
use ergo::prelude::*;

type Events = Arc<Mutex<Vec<String>>>;

/// A process that can link, monitor, trap exits, and records what it receives.
struct Watcher {
    events: Events,
}

#[actor]
impl Watcher {
    #[handle]
    fn link(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.link(pid);
    }

    #[handle]
    fn unlink(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.unlink(pid);
    }

    /// A call (not a cast), so it is in force before any signal sent after it.
    #[handle]
    fn trap(&mut self, on: bool, ctx: &mut Ctx<Self>) -> bool {
        let was = ctx.is_trapping_exits();
        ctx.trap_exit(on);
        was
    }

    #[handle]
    fn monitor(&mut self, pid: Pid, ctx: &mut Ctx<Self>) -> MonitorRef {
        ctx.monitor(pid)
    }

    #[handle]
    fn demonitor(&mut self, monitor: MonitorRef, ctx: &mut Ctx<Self>) -> bool {
        ctx.demonitor(monitor)
    }

    #[handle]
    async fn spawn_child(&mut self, ctx: &mut Ctx<Self>) -> Result<ActorRef<Watcher>, SpawnError> {
        let events = self.events.clone();
        ctx.spawn_link(Watcher { events }).await
    }

    #[handle]
    fn links(&self, ctx: &mut Ctx<Self>) -> Vec<Pid> {
        ctx.links()
    }

    #[handle]
    fn crash(&mut self, why: String) {
        panic!("{why}");
    }

    #[handle]
    fn quit(&mut self, reason: ExitReason, ctx: &mut Ctx<Self>) {
        ctx.stop_with(reason);
    }

    #[handle]
    fn whereis_name(&self, name: String, ctx: &mut Ctx<Self>) -> Option<Pid> {
        ctx.node().whereis_pid(&name)
    }

    #[on_exit]
    fn on_exit(&mut self, from: Pid, reason: ExitReason) {
        self.events
            .lock()
            .unwrap()
            .push(format!("exit {} {reason}", from.id()));
    }

    #[on_down]
    fn on_down(&mut self, down: Down, ctx: &mut Ctx<Self>) {
        // Record whether the name of the dead process was still registered when Down arrived.
        let still_named = ctx
            .node()
            .whereis_pid("named")
            .is_some_and(|p| p == down.pid);
        self.events.lock().unwrap().push(format!(
            "down {} {} named={still_named}",
            down.pid.id(),
            down.reason
        ));
    }
}

fn watcher() -> (Watcher, Events) {
    let events = Events::default();
    (
        Watcher {
            events: events.clone(),
        },
        events,
    )
}

fn events(e: &Events) -> Vec<String> {
    e.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_propagates_abnormal_exit_both_ways() {
    let node = node("link-abnormal").await;
    let (a, _) = watcher();
    let (b, _) = watcher();
    let a = node.spawn(a).await.unwrap();
    let b = node.spawn(b).await.unwrap();
    a.link(b.pid()).await.unwrap();
    eventually("link on both sides", || async {
        (b.links().await.unwrap() == vec![a.pid()]).then_some(())
    })
    .await;
    b.crash("boom".into()).await.unwrap();
    let reason = ExitReason::Panic("boom".into());
    assert_eq!(within("b exits", b.wait()).await, reason);
    assert_eq!(within("a follows", a.wait()).await, reason);

    // And from the other side.
    let (c, _) = watcher();
    let (d, _) = watcher();
    let c = node.spawn(c).await.unwrap();
    let d = node.spawn(d).await.unwrap();
    c.link(d.pid()).await.unwrap();
    eventually("link", || async {
        (d.links().await.unwrap().len() == 1).then_some(())
    })
    .await;
    c.quit(ExitReason::Error("bad".into())).await.unwrap();
    assert_eq!(
        within("d follows", d.wait()).await,
        ExitReason::Error("bad".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_exit_does_not_stop_linked_process() {
    let node = node("link-normal").await;
    let (a, _) = watcher();
    let (b, _) = watcher();
    let a = node.spawn(a).await.unwrap();
    let b = node.spawn(b).await.unwrap();
    a.link(b.pid()).await.unwrap();
    eventually("link", || async {
        (b.links().await.unwrap().len() == 1).then_some(())
    })
    .await;
    b.quit(ExitReason::Normal).await.unwrap();
    assert_eq!(within("b exits", b.wait()).await, ExitReason::Normal);
    // The link is gone and `a` lives on.
    eventually("link removed", || async {
        a.links().await.unwrap().is_empty().then_some(())
    })
    .await;
    assert!(a.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapped_exit_arrives_as_a_message() {
    let node = node("link-trap").await;
    let (a, a_events) = watcher();
    let (b, _) = watcher();
    let a = node.spawn(a).await.unwrap();
    let b = node.spawn(b).await.unwrap();
    a.trap(true).await.unwrap();
    a.link(b.pid()).await.unwrap();
    eventually("link", || async {
        (b.links().await.unwrap().len() == 1).then_some(())
    })
    .await;
    b.crash("kaput".into()).await.unwrap();
    within("b exits", b.wait()).await;
    let want = format!("exit {} panic: kaput", b.pid().id());
    eventually("trapped exit", || async {
        events(&a_events).contains(&want).then_some(())
    })
    .await;
    assert!(a.is_alive());
    assert!(a.links().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_cannot_be_trapped_but_killed_propagates_trappably() {
    let node = node("link-kill").await;
    let (a, _) = watcher();
    let (b, b_events) = watcher();
    let a = node.spawn(a).await.unwrap();
    let b = node.spawn(b).await.unwrap();
    a.trap(true).await.unwrap();
    b.trap(true).await.unwrap();
    a.link(b.pid()).await.unwrap();
    eventually("link", || async {
        (b.links().await.unwrap().len() == 1).then_some(())
    })
    .await;
    assert!(a.kill());
    assert_eq!(within("a killed", a.wait()).await, ExitReason::Killed);
    let want = format!("exit {} killed", a.pid().id());
    eventually("b trapped killed", || async {
        events(&b_events).contains(&want).then_some(())
    })
    .await;
    assert!(b.is_alive());
}

#[tokio::test]
async fn exit_signal_stops_a_process_unless_trapped() {
    let node = node("link-exit-signal").await;
    let (a, a_events) = watcher();
    let (b, _) = watcher();
    let a = node.spawn(a).await.unwrap();
    let b = node.spawn(b).await.unwrap();
    a.trap(true).await.unwrap();
    assert!(a.exit(b.pid(), ExitReason::Error("go away".into())));
    eventually("trapped", || async {
        (!events(&a_events).is_empty()).then_some(())
    })
    .await;
    assert!(a.is_alive());
    assert!(
        b.exit(a.pid(), ExitReason::Normal),
        "normal exit signal is delivered"
    );
    assert!(b.exit(a.pid(), ExitReason::Error("go away".into())));
    assert_eq!(
        within("b exits", b.wait()).await,
        ExitReason::Error("go away".into())
    );
}

#[tokio::test]
async fn link_to_ended_process_sends_noproc() {
    let node = node("link-noproc").await;
    let (a, a_events) = watcher();
    let (b, _) = watcher();
    let a = node.spawn(a).await.unwrap();
    let b = node.spawn(b).await.unwrap();
    b.kill();
    b.wait().await;
    a.trap(true).await.unwrap();
    a.link(b.pid()).await.unwrap();
    let want = format!("exit {} noproc", b.pid().id());
    eventually("noproc exit", || async {
        events(&a_events).contains(&want).then_some(())
    })
    .await;

    // Without trapping, the same link ends the process with NoProc.
    let (c, _) = watcher();
    let c = node.spawn(c).await.unwrap();
    c.link(b.pid()).await.unwrap();
    assert_eq!(within("c exits", c.wait()).await, ExitReason::NoProc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_stops_propagation() {
    let node = node("link-unlink").await;
    let (a, _) = watcher();
    let (b, _) = watcher();
    let a = node.spawn(a).await.unwrap();
    let b = node.spawn(b).await.unwrap();
    a.link(b.pid()).await.unwrap();
    eventually("link", || async {
        (b.links().await.unwrap().len() == 1).then_some(())
    })
    .await;
    a.unlink(b.pid()).await.unwrap();
    eventually("unlinked", || async {
        b.links().await.unwrap().is_empty().then_some(())
    })
    .await;
    b.crash("alone".into()).await.unwrap();
    within("b exits", b.wait()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(a.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_link_links_parent_and_child() {
    let node = node("link-spawn-link").await;
    let (parent, _) = watcher();
    let parent = node.spawn(parent).await.unwrap();
    let child = parent.spawn_child().await.unwrap().unwrap();
    assert_eq!(parent.links().await.unwrap(), vec![child.pid()]);
    assert_eq!(child.links().await.unwrap(), vec![parent.pid()]);
    parent.crash("parent down".into()).await.unwrap();
    assert_eq!(
        within("child follows", child.wait()).await,
        ExitReason::Panic("parent down".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_delivers_down_once_with_the_reason() {
    let node = node("monitor-once").await;
    let (m, m_events) = watcher();
    let (t, _) = watcher();
    let m = node.spawn(m).await.unwrap();
    let t = node.spawn(t).await.unwrap();
    // Two monitors on the same target: each fires once.
    m.monitor(t.pid()).await.unwrap();
    m.monitor(t.pid()).await.unwrap();
    t.crash("gone".into()).await.unwrap();
    within("t exits", t.wait()).await;
    let want = format!("down {} panic: gone named=false", t.pid().id());
    eventually("two downs", || async {
        (events(&m_events).iter().filter(|e| **e == want).count() == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(events(&m_events).len(), 2, "{:?}", events(&m_events));
    assert!(m.is_alive(), "a monitor never kills");
}

#[tokio::test]
async fn monitoring_an_ended_process_yields_noproc_at_once() {
    let node = node("monitor-noproc").await;
    let (m, m_events) = watcher();
    let (t, _) = watcher();
    let m = node.spawn(m).await.unwrap();
    let t = node.spawn(t).await.unwrap();
    t.kill();
    t.wait().await;
    m.monitor(t.pid()).await.unwrap();
    let want = format!("down {} noproc named=false", t.pid().id());
    eventually("noproc down", || async {
        events(&m_events).contains(&want).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demonitor_suppresses_down() {
    let node = node("monitor-demonitor").await;
    let (m, m_events) = watcher();
    let (t, _) = watcher();
    let m = node.spawn(m).await.unwrap();
    let t = node.spawn(t).await.unwrap();
    let mref = m.monitor(t.pid()).await.unwrap();
    assert_eq!(m.demonitor(mref).await, Ok(true));
    assert_eq!(m.demonitor(mref).await, Ok(false));
    t.crash("quiet".into()).await.unwrap();
    within("t exits", t.wait()).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(events(&m_events).is_empty(), "{:?}", events(&m_events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_is_released_before_monitors_see_down() {
    let node = node("monitor-name").await;
    let (m, m_events) = watcher();
    let (t, _) = watcher();
    let m = node.spawn(m).await.unwrap();
    let t = node.spawn(t).await.unwrap();
    node.register("named", &t).unwrap();
    m.monitor(t.pid()).await.unwrap();
    t.crash("bye".into()).await.unwrap();
    let want = format!("down {} panic: bye named=false", t.pid().id());
    eventually("down", || async {
        events(&m_events).contains(&want).then_some(())
    })
    .await;
    assert_eq!(node.whereis_pid("named"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_leave_no_links_monitors_or_processes_behind() {
    let node = node("link-churn").await;
    let (hub, _) = watcher();
    let hub = node.spawn(hub).await.unwrap();
    hub.trap(true).await.unwrap();
    for round in 0..200 {
        let (w, _) = watcher();
        let w = node.spawn(w).await.unwrap();
        hub.link(w.pid()).await.unwrap();
        hub.monitor(w.pid()).await.unwrap();
        if round % 2 == 0 {
            w.crash("churn".into()).await.unwrap();
        } else {
            w.kill();
        }
        within("worker exits", w.wait()).await;
    }
    eventually("hub links cleared", || async {
        hub.links().await.unwrap().is_empty().then_some(())
    })
    .await;
    assert_eq!(node.process_count(), 1);
}
