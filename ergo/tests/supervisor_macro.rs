//! `supervisor!`: the trees it declares run as declared (names, inline supervisors, nested
//! generated types, intensity, significant children).

mod common;

use common::{eventually, node, within};
use ergo::prelude::*;
use ergo::supervisor::{ChildInfo, Supervisor};

#[derive(Default)]
struct Counter {
    n: u64,
}

#[actor]
impl Counter {
    #[handle]
    fn add(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }

    #[handle]
    fn crash(&mut self) {
        panic!("counter crashed");
    }
}

/// A worker that ends normally when asked.
#[derive(Default)]
struct Job;

#[actor]
impl Job {
    #[handle]
    fn finish(&self, ctx: &mut Ctx<Self>) {
        ctx.stop();
    }
}

supervisor! {
    /// Two registered workers under `one_for_one`.
    Counters: one_for_one, intensity = 5, period = 5s {
        counter: Counter::default() => permanent, name = "counter",
        spare: Counter { n: 100 } => transient, name = "spare", shutdown = 1s,
    }
}

supervisor! {
    /// A root with a supervisor declared inline.
    WithInline: one_for_one {
        before: Counter::default() => permanent,
        inner: rest_for_one, intensity = 3, period = 1m {
            a: Counter::default() => permanent, name = "a",
            b: Counter::default() => permanent, name = "b", shutdown = brutal_kill,
        } => permanent, name = "inner", shutdown = infinity,
    }
}

supervisor! {
    /// A tree nested as a child of `Outer`.
    Leaves: one_for_all {
        left: Counter::default() => permanent, name = "left",
        right: Counter::default() => permanent, name = "right",
    }
}

supervisor! {
    /// A root whose child is another generated tree.
    Outer: one_for_one {
        worker: Counter::default() => permanent,
        leaves: Leaves::new() => permanent, name = "leaves",
    }
}

supervisor! {
    /// At most one restart in a minute.
    Fragile: one_for_one, intensity = 1, period = 1m {
        counter: Counter::default() => permanent, name = "counter",
    }
}

supervisor! {
    /// Ends when its significant job ends.
    UntilDone: one_for_one, auto_shutdown = any_significant {
        counter: Counter::default() => permanent,
        job: Job => temporary, significant, name = "job",
    }
}

fn ids(children: &[ChildInfo]) -> Vec<&str> {
    children.iter().map(|c| c.id.as_str()).collect()
}

/// The incarnation registered under `name` once it is not `old`.
async fn restarted(node: &Node, name: &str, old: Pid) -> ActorRef<Counter> {
    eventually(&format!("{name} restarted"), || async {
        node.whereis::<Counter>(name).filter(|c| c.pid() != old)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macro_tree_restarts_crashed_child_under_its_name() {
    let node = node("macro-restart").await;
    let tree = node.spawn(Counters::new()).await.unwrap();
    assert_eq!(
        ids(&tree.which_children().await.unwrap()),
        ["counter", "spare"]
    );
    let counter = node.whereis::<Counter>("counter").unwrap();
    let spare = node.whereis::<Counter>("spare").unwrap();
    assert_eq!(counter.add(5).await.unwrap(), 5);
    assert_eq!(spare.add(1).await.unwrap(), 101);

    counter.crash().await.unwrap();
    within("counter exits", counter.wait()).await;
    let again = restarted(&node, "counter", counter.pid()).await;
    assert_eq!(
        again.add(1).await.unwrap(),
        1,
        "a restart starts from fresh state"
    );
    assert_eq!(
        spare.add(1).await.unwrap(),
        102,
        "one_for_one leaves the sibling alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_nested_supervisor_starts_its_children() {
    let node = node("macro-inline").await;
    let tree = node.spawn(WithInline::new()).await.unwrap();
    let children = tree.which_children().await.unwrap();
    assert_eq!(ids(&children), ["before", "inner"]);
    assert!(children[1].supervisor && !children[0].supervisor);

    let inner = node.whereis::<Supervisor>("inner").unwrap();
    let grandchildren = inner.which_children().await.unwrap();
    assert_eq!(ids(&grandchildren), ["a", "b"]);
    assert!(grandchildren.iter().all(|c| c.pid.is_some()));

    // `rest_for_one` inside: a crash of `a` restarts `a` and `b`, and the root is untouched.
    let (a, b) = (
        node.whereis::<Counter>("a").unwrap(),
        node.whereis::<Counter>("b").unwrap(),
    );
    a.crash().await.unwrap();
    restarted(&node, "a", a.pid()).await;
    restarted(&node, "b", b.pid()).await;
    assert_eq!(
        node.whereis::<Supervisor>("inner").unwrap().pid(),
        inner.pid()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_type_nests_in_another_tree() {
    let node = node("macro-nested").await;
    let outer = node.spawn(Outer::new()).await.unwrap();
    let count = outer.count_children().await.unwrap();
    assert_eq!((count.specs, count.supervisors, count.workers), (2, 1, 1));

    let leaves = node.whereis::<Leaves>("leaves").unwrap();
    assert_eq!(
        ids(&leaves.which_children().await.unwrap()),
        ["left", "right"]
    );
    let left = node.whereis::<Counter>("left").unwrap();
    assert_eq!(left.add(2).await.unwrap(), 2);

    // Stopping the nested tree through the root's API stops its children with it.
    outer
        .terminate_child("leaves".into())
        .await
        .unwrap()
        .unwrap();
    within("nested tree stops", leaves.wait()).await;
    within("its children stop", left.wait()).await;
    outer.restart_child("leaves".into()).await.unwrap().unwrap();
    let left = eventually("left started again", || async {
        node.whereis::<Counter>("left")
    })
    .await;
    assert_eq!(left.add(1).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_intensity_limits_restarts() {
    let node = node("macro-intensity").await;
    let tree = node.spawn(Fragile::new()).await.unwrap();
    let first = node.whereis::<Counter>("counter").unwrap();
    first.crash().await.unwrap();
    let second = restarted(&node, "counter", first.pid()).await;
    second.crash().await.unwrap();
    assert_eq!(
        within("tree gives up", tree.wait()).await,
        ExitReason::Shutdown,
        "a second restart within the period exceeds `intensity = 1`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn significant_child_ending_stops_tree_with_auto_shutdown() {
    let node = node("macro-significant").await;
    let tree = node.spawn(UntilDone::new()).await.unwrap();
    node.whereis::<Job>("job").unwrap().finish().await.unwrap();
    assert_eq!(
        within("auto shutdown", tree.wait()).await,
        ExitReason::Shutdown
    );
}
