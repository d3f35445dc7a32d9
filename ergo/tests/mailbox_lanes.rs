//! Mailbox lanes: system signals first, per-sender order, bounded capacity.

mod common;

use std::time::Duration;

use common::{node, within};
use ergo::prelude::*;
use tokio::sync::oneshot;

/// Records what it handled; blocks on a gate when told to.
#[derive(Default)]
struct Recorder {
    seen: Vec<(u32, u32)>,
    stopped_by: Option<ExitReason>,
    report: Option<ReportTx>,
}

#[actor]
impl Recorder {
    #[handle]
    fn record(&mut self, sender: u32, seq: u32) {
        self.seen.push((sender, seq));
    }

    #[handle]
    async fn block_until(&mut self, gate: Gate) {
        let _ = gate.0.lock().await.take().expect("gate").await;
    }

    #[handle]
    fn seen(&self) -> Vec<(u32, u32)> {
        self.seen.clone()
    }

    #[handle]
    fn report_to(&mut self, tx: Reporter) {
        self.report = tx.0.lock().unwrap().take();
    }

    #[terminate]
    fn terminate(&mut self, reason: &ExitReason) {
        self.stopped_by = Some(reason.clone());
        if let Some(tx) = self.report.take() {
            let _ = tx.send((self.seen.clone(), reason.clone()));
        }
    }
}

/// A one-shot gate a handler waits on (wrapped so the message is `Send`).
struct Gate(tokio::sync::Mutex<Option<oneshot::Receiver<()>>>);
/// What the recorder saw and why it stopped, sent from its `terminate` hook.
type ReportTx = oneshot::Sender<(Vec<(u32, u32)>, ExitReason)>;
struct Reporter(std::sync::Mutex<Option<ReportTx>>);

fn gate() -> (oneshot::Sender<()>, Gate) {
    let (tx, rx) = oneshot::channel();
    (tx, Gate(tokio::sync::Mutex::new(Some(rx))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_lane_exit_overtakes_queued_messages() {
    let node = node("lanes-overtake").await;
    let rec = node.spawn(Recorder::default()).await.unwrap();
    let (tx, rx) = oneshot::channel();
    rec.report_to(Reporter(std::sync::Mutex::new(Some(tx))))
        .await
        .unwrap();
    let (open, g) = gate();
    rec.block_until(g).await.unwrap();
    common::eventually("handler blocked", || async {
        (rec.mailbox_len() == 0).then_some(())
    })
    .await;
    for i in 0..100 {
        rec.record(1, i).await.unwrap();
    }
    // Queued behind 100 normal messages, the stop request is still served first.
    assert!(rec.stop(ExitReason::Shutdown));
    open.send(()).unwrap();
    let (seen, reason) = within("terminate report", rx).await.unwrap();
    assert_eq!(reason, ExitReason::Shutdown);
    assert!(
        seen.is_empty(),
        "stop should overtake queued messages, but {} were handled",
        seen.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_keep_per_sender_order() {
    let node = node("lanes-order").await;
    let rec = node.spawn(Recorder::default()).await.unwrap();
    let mut senders = Vec::new();
    for s in 0..4u32 {
        let rec = rec.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..5_000u32 {
                rec.record(s, i).await.unwrap();
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let seen = rec.seen().await.unwrap();
    assert_eq!(seen.len(), 20_000);
    for s in 0..4u32 {
        let mine: Vec<u32> = seen.iter().filter(|m| m.0 == s).map(|m| m.1).collect();
        assert_eq!(
            mine,
            (0..5_000).collect::<Vec<_>>(),
            "sender {s} out of order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_try_cast_fails_full_and_hands_message_back() {
    let node = node("lanes-full").await;
    let rec = node
        .spawn_opts(Recorder::default(), SpawnOptions::new().mailbox_capacity(2))
        .await
        .unwrap();
    let (open, g) = gate();
    rec.block_until(g).await.unwrap();
    // Wait until the blocking message was taken, so the two permits are free again.
    common::eventually("gate message taken", || async {
        (rec.mailbox_len() == 0).then_some(())
    })
    .await;
    rec.try_cast(RecorderMsg::Record { sender: 0, seq: 0 })
        .unwrap();
    rec.try_cast(RecorderMsg::Record { sender: 0, seq: 1 })
        .unwrap();
    match rec.try_cast(RecorderMsg::Record { sender: 0, seq: 2 }) {
        Err(TrySendError::Full(RecorderMsg::Record { sender: 0, seq: 2 })) => {}
        other => panic!("expected Full with the message back, got {other:?}"),
    }
    open.send(()).unwrap();
    let seen = within("seen", rec.seen()).await.unwrap();
    assert_eq!(seen, vec![(0, 0), (0, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_cast_waits_for_room() {
    let node = node("lanes-wait").await;
    let rec = node
        .spawn_opts(Recorder::default(), SpawnOptions::new().mailbox_capacity(1))
        .await
        .unwrap();
    let (open, g) = gate();
    rec.block_until(g).await.unwrap();
    common::eventually("gate message taken", || async {
        (rec.mailbox_len() == 0).then_some(())
    })
    .await;
    rec.record(0, 0).await.unwrap();
    let waiting = {
        let rec = rec.clone();
        tokio::spawn(async move { rec.record(0, 1).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "cast should wait while the mailbox is full"
    );
    open.send(()).unwrap();
    within("waiting cast", waiting).await.unwrap().unwrap();
    assert_eq!(rec.seen().await.unwrap(), vec![(0, 0), (0, 1)]);
}

#[tokio::test]
async fn cast_to_ended_process_hands_message_back() {
    let node = node("lanes-closed").await;
    let rec = node.spawn(Recorder::default()).await.unwrap();
    rec.kill();
    assert_eq!(rec.wait().await, ExitReason::Killed);
    match rec.record(7, 8).await {
        Err(SendError(RecorderMsg::Record { sender: 7, seq: 8 })) => {}
        other => panic!("expected the message back, got {other:?}"),
    }
    assert!(matches!(
        rec.try_cast(RecorderMsg::Record { sender: 1, seq: 1 }),
        Err(TrySendError::Closed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_calls_fail_with_exited_when_process_is_killed() {
    let node = node("lanes-queued-calls").await;
    let rec = node.spawn(Recorder::default()).await.unwrap();
    let (_open, g) = gate();
    rec.block_until(g).await.unwrap();
    let pending = {
        let rec = rec.clone();
        tokio::spawn(async move { rec.seen().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    rec.kill();
    let result = within("queued call", pending).await.unwrap();
    assert_eq!(result, Err(CallError::Exited(ExitReason::Killed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_senders_waiting_for_room_all_get_through() {
    let node = node("lanes-many-waiters").await;
    let rec = node
        .spawn_opts(Recorder::default(), SpawnOptions::new().mailbox_capacity(1))
        .await
        .unwrap();
    let mut senders = Vec::new();
    for s in 0..8u32 {
        let rec = rec.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..500u32 {
                rec.record(s, i).await.unwrap();
            }
        }));
    }
    for s in senders {
        within("bounded senders finish", s).await.unwrap();
    }
    let seen = within("seen", rec.seen()).await.unwrap();
    assert_eq!(seen.len(), 8 * 500);
}

/// Counts `note`s and writes down, for each `Down` and trapped exit, how many it had heard.
#[derive(Default)]
struct Watcher {
    notes: u32,
    ends: Vec<(&'static str, u32)>,
}

#[actor]
impl Watcher {
    #[handle]
    fn note(&mut self) {
        self.notes += 1;
    }

    #[handle]
    fn watch(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.monitor(pid);
    }

    #[handle]
    fn link_trapping(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.trap_exit(true);
        ctx.link(pid);
    }

    #[handle]
    async fn block_until(&mut self, gate: Gate) {
        let _ = gate.0.lock().await.take().expect("gate").await;
    }

    #[handle]
    fn ends(&self) -> Vec<(&'static str, u32)> {
        self.ends.clone()
    }

    #[on_down]
    fn on_down(&mut self, _down: Down) {
        self.ends.push(("down", self.notes));
    }

    #[on_exit]
    fn on_exit(&mut self, _from: Pid, _reason: ExitReason) {
        self.ends.push(("exit", self.notes));
    }
}

/// Casts `n` notes to a watcher, then ends (normally, or by panicking).
struct Talker;

#[actor]
impl Talker {
    #[handle]
    async fn talk_then_end(
        &mut self,
        to: ActorRef<Watcher>,
        n: u32,
        panic: bool,
        ctx: &mut Ctx<Self>,
    ) {
        for _ in 0..n {
            to.note().await.unwrap();
        }
        if panic {
            panic!("talked out");
        }
        ctx.stop();
    }
}

/// A process's end reaches its watcher after everything it sent before ending, while the
/// watcher was busy: the `Down` (monitor) and the trapped exit signal (link) wait for the 50
/// notes queued ahead of them instead of overtaking them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_and_trapped_exit_never_overtake_what_the_ended_process_sent() {
    let node = node("lanes-down-order").await;
    for panic in [false, true] {
        let watcher = node.spawn(Watcher::default()).await.unwrap();
        let talker = node.spawn(Talker).await.unwrap();
        watcher.watch(talker.pid()).await.unwrap();
        watcher.link_trapping(talker.pid()).await.unwrap();
        // `ends` is a call: once it answers, the watch and the link are in place.
        assert!(watcher.ends().await.unwrap().is_empty());
        let (open, g) = gate();
        watcher.block_until(g).await.unwrap();
        common::eventually("the watcher blocked", || async {
            (watcher.mailbox_len() == 0).then_some(())
        })
        .await;
        talker
            .talk_then_end(watcher.clone(), 50, panic)
            .await
            .unwrap();
        within("the talker to end", talker.wait()).await;
        open.send(()).unwrap();
        let mut ends = within("the watcher's record", watcher.ends())
            .await
            .unwrap();
        // Which of the two notices comes first is not promised; each comes after all 50 notes.
        ends.sort();
        assert_eq!(ends, vec![("down", 50), ("exit", 50)], "panic: {panic}");
        watcher.stop(ExitReason::Shutdown);
    }
}
