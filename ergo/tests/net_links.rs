//! Links and monitors across nodes behave as locally; losing the connection fires each once
//! with `NoConnection`.

mod common;

use common::net::pair;
use std::time::Duration;

use ergo::prelude::*;
use tokio::sync::mpsc;

struct Target;

#[actor(remote)]
impl Target {
    #[handle]
    fn ping(&self) -> u32 {
        7
    }

    #[handle]
    fn crash(&mut self, ctx: &mut Ctx<Self>) {
        ctx.stop_with(ExitReason::Error("asked to crash".into()));
    }
}

/// Reports what happens to it: downs, exit signals (it traps exits), its own end.
struct Watcher {
    events: mpsc::UnboundedSender<Event>,
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Down(Pid, ExitReason),
    Exit(Pid, ExitReason),
    Ended(ExitReason),
}

#[actor]
impl Watcher {
    #[init]
    fn init(&mut self, ctx: &mut Ctx<Self>) {
        ctx.trap_exit(true);
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
    fn link(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.link(pid);
    }

    #[handle]
    fn untrap(&mut self, ctx: &mut Ctx<Self>) {
        ctx.trap_exit(false);
    }

    #[on_down]
    fn down(&mut self, down: Down) {
        let _ = self.events.send(Event::Down(down.pid, down.reason));
    }

    #[on_exit]
    fn exit(&mut self, from: Pid, reason: ExitReason) {
        let _ = self.events.send(Event::Exit(from, reason));
    }

    #[terminate]
    fn terminate(&mut self, reason: &ExitReason) {
        let _ = self.events.send(Event::Ended(reason.clone()));
    }
}

async fn watcher(node: &Node) -> (ActorRef<Watcher>, mpsc::UnboundedReceiver<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (node.spawn(Watcher { events: tx }).await.unwrap(), rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("watcher alive")
}

/// Nothing more arrives for a while.
async fn quiet(rx: &mut mpsc::UnboundedReceiver<Event>) {
    if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("unexpected event {e:?}");
    }
}

async fn target(a: &Node, b: &Node, name: &str) -> (ActorRef<Target>, ActorRef<Target>) {
    let t = a.spawn(Target).await.unwrap();
    a.register(name, &t).unwrap();
    let remote = b.lookup::<Target>(name, a.name()).await.unwrap();
    (t, remote)
}

#[tokio::test]
async fn a_remote_monitor_fires_once_with_the_exit_reason() {
    let (a, b) = pair("nl-a1@localhost", "nl-b1@localhost").await;
    let (_t, remote) = target(&a, &b, "t").await;
    let (w, mut events) = watcher(&b).await;
    w.monitor(remote.pid()).await.unwrap();
    assert_eq!(remote.ping().await.unwrap(), 7);
    remote.crash().await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Down(remote.pid(), ExitReason::Error("asked to crash".into()))
    );
    quiet(&mut events).await;
}

#[tokio::test]
async fn monitoring_a_dead_remote_pid_gives_noproc() {
    let (a, b) = pair("nl-a2@localhost", "nl-b2@localhost").await;
    let (t, remote) = target(&a, &b, "t").await;
    t.kill();
    t.wait().await;
    let (w, mut events) = watcher(&b).await;
    w.monitor(remote.pid()).await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Down(remote.pid(), ExitReason::NoProc)
    );
    // Linking to it sends an exit signal with NoProc (trapped here).
    w.link(remote.pid()).await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Exit(remote.pid(), ExitReason::NoProc)
    );
}

#[tokio::test]
async fn a_demonitored_remote_process_sends_no_down() {
    let (a, b) = pair("nl-a3@localhost", "nl-b3@localhost").await;
    let (_t, remote) = target(&a, &b, "t").await;
    let (w, mut events) = watcher(&b).await;
    let m = w.monitor(remote.pid()).await.unwrap();
    assert!(w.demonitor(m).await.unwrap());
    remote.crash().await.unwrap();
    quiet(&mut events).await;
}

#[tokio::test]
async fn a_remote_link_propagates_exits_both_ways() {
    let (a, b) = pair("nl-a4@localhost", "nl-b4@localhost").await;
    // b's watcher links to a's target; the target crashes: the watcher (trapping) sees it.
    let (_t, remote) = target(&a, &b, "t").await;
    let (w, mut events) = watcher(&b).await;
    w.link(remote.pid()).await.unwrap();
    assert_eq!(remote.ping().await.unwrap(), 7); // the link frame went first
    remote.crash().await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Exit(remote.pid(), ExitReason::Error("asked to crash".into()))
    );

    // The other way: a watcher on a, not trapping, linked to b's target, dies with it.
    a.add_route(b.name(), b.listen_addr().unwrap()).unwrap();
    let t2_on_b = b.spawn(Target).await.unwrap();
    b.register("t2", &t2_on_b).unwrap();
    let (w2, mut events2) = watcher(&a).await;
    w2.link(t2_on_b.pid()).await.unwrap();
    w2.untrap().await.unwrap();
    let remote_t2 = a.lookup::<Target>("t2", b.name()).await.unwrap();
    assert_eq!(remote_t2.ping().await.unwrap(), 7);
    remote_t2.crash().await.unwrap();
    assert_eq!(
        next(&mut events2).await,
        Event::Ended(ExitReason::Error("asked to crash".into()))
    );
    assert_eq!(w2.wait().await, ExitReason::Error("asked to crash".into()));
}

#[tokio::test]
async fn losing_the_connection_fires_links_and_monitors_once_with_noconnection() {
    let (a, b) = pair("nl-a5@localhost", "nl-b5@localhost").await;
    let (t, remote) = target(&a, &b, "t").await;
    let (w, mut events) = watcher(&b).await;
    w.monitor(remote.pid()).await.unwrap();
    w.link(remote.pid()).await.unwrap();
    assert_eq!(remote.ping().await.unwrap(), 7);

    // A slow call in flight fails at once too.
    struct Slow;
    #[actor(remote)]
    impl Slow {
        #[handle]
        async fn nap(&self) -> u8 {
            tokio::time::sleep(Duration::from_secs(30)).await;
            1
        }
    }
    let slow = a.spawn(Slow).await.unwrap();
    a.register("slow", &slow).unwrap();
    let remote_slow = b.lookup::<Slow>("slow", a.name()).await.unwrap();
    let call =
        tokio::spawn(async move { remote_slow.nap().timeout(Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;

    assert!(b.disconnect(a.name()));
    let mut got = vec![next(&mut events).await, next(&mut events).await];
    got.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        got,
        vec![
            Event::Down(remote.pid(), ExitReason::NoConnection),
            Event::Exit(remote.pid(), ExitReason::NoConnection),
        ]
    );
    assert_eq!(call.await.unwrap(), Err(CallError::NoConnection));
    quiet(&mut events).await;
    // The target on a lost its link to b's watcher too (a saw the connection close), and
    // stays alive: a link exit of NoConnection... it does not trap: it ended with it.
    assert_eq!(t.wait().await, ExitReason::NoConnection);

    // The next use reconnects.
    let t2 = a.spawn(Target).await.unwrap();
    a.register("t-again", &t2).unwrap();
    let again = b.lookup::<Target>("t-again", a.name()).await.unwrap();
    assert_eq!(again.ping().await.unwrap(), 7);
}

#[tokio::test]
async fn a_peer_node_going_away_fires_monitors_once() {
    // The peer "dies" by shutting its network down abruptly: its sockets close.
    let (a, b) = pair("nl-a6@localhost", "nl-b6@localhost").await;
    let (_t, remote) = target(&a, &b, "t").await;
    let (w, mut events) = watcher(&b).await;
    w.monitor(remote.pid()).await.unwrap();
    assert_eq!(remote.ping().await.unwrap(), 7);
    a.shutdown(Duration::from_millis(100)).await;
    let e = next(&mut events).await;
    // The target was stopped by the shutdown before the sockets closed: either notice is
    // right, but only one arrives.
    assert!(
        e == Event::Down(remote.pid(), ExitReason::Shutdown)
            || e == Event::Down(remote.pid(), ExitReason::NoConnection),
        "{e:?}"
    );
    quiet(&mut events).await;
    assert_eq!(remote.ping().await.unwrap_err(), CallError::NoConnection);
}

#[tokio::test]
async fn remote_wait_returns_the_exit_reason() {
    let (a, b) = pair("nl-a7@localhost", "nl-b7@localhost").await;
    let (_t, remote) = target(&a, &b, "t").await;
    let waiter = {
        let remote = remote.clone();
        tokio::spawn(async move { remote.wait().await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    remote.crash().await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap(),
        ExitReason::Error("asked to crash".into())
    );
}
