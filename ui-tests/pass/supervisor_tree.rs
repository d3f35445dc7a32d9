//! `supervisor!` with every option: all strategies, restart types and shutdown forms, a
//! registered name, a significant child with `auto_shutdown`, a supervisor declared inline and a
//! generated type nested in another tree. The tree is spawned and checked while it runs.

use std::time::Duration;

use ergo::prelude::*;
use ergo::supervisor::{ChildInfo, Restart};

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

struct Cache {
    capacity: usize,
}

impl Cache {
    fn new(capacity: usize) -> Self {
        Cache { capacity }
    }
}

#[actor]
impl Cache {
    #[handle]
    fn capacity(&self) -> usize {
        self.capacity
    }
}

const LEAVES: usize = 2;

supervisor! {
    /// The leaves: a tree made by one `supervisor!`, nested in another.
    pub Leaves: rest_for_one, intensity = 2, period = 1m {
        left: Counter::default() => permanent,
        right: Cache::new(LEAVES) => transient, shutdown = brutal_kill,
    }
}

supervisor! {
    /// The root of the test tree.
    pub Root: one_for_one, intensity = 3, period = 5s {
        counter: Counter::default() => permanent, name = "tree-counter",
        cache: Cache::new(10) => transient, shutdown = 2s, name = "tree-cache",
        leaves: Leaves::new() => permanent,
        inner: one_for_all, intensity = 1, period = 500ms, auto_shutdown = any_significant {
            a: Counter::default() => permanent, shutdown = 100ms,
            once: Counter { n: 7 } => temporary, shutdown = infinity, significant,
        } => permanent, shutdown = infinity,
        // A trailing comma is fine.
        last: Leaves::default() => temporary,
    }
}

supervisor! {
    pub(crate) Empty: one_for_all {}
}

fn ids(children: &[ChildInfo]) -> Vec<&str> {
    children.iter().map(|c| c.id.as_str()).collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let node = Node::builder("supervisor-tree@localhost").start().await?;
    let root = node.spawn(Root::new()).await?;

    let children = root.which_children().await?;
    assert_eq!(ids(&children), ["counter", "cache", "leaves", "inner", "last"]);
    assert!(children.iter().all(|c| c.pid.is_some()));
    assert_eq!(children[1].restart, Restart::Transient);
    assert!(children[2].supervisor && children[3].supervisor && !children[0].supervisor);
    let count = root.count_children().await?;
    assert_eq!((count.specs, count.active, count.supervisors, count.workers), (5, 5, 3, 2));

    let cache = node.whereis::<Cache>("tree-cache").expect("registered");
    assert_eq!(cache.capacity().await?, 10);

    // A crashed child comes back under its name, with fresh state.
    let counter = node.whereis::<Counter>("tree-counter").expect("registered");
    assert_eq!(counter.add(5).await?, 5);
    // The crash is on purpose: keep its panic message out of the output.
    std::panic::set_hook(Box::new(|_| {}));
    let _ = counter.crash().await;
    counter.wait().await;
    let mut again = None;
    for _ in 0..1000 {
        if let Some(c) = node.whereis::<Counter>("tree-counter") {
            if c.pid() != counter.pid() {
                again = Some(c);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(again.expect("restarted").add(1).await?, 1);

    // The empty tree is a valid supervisor too.
    let empty = node.spawn(Empty::default()).await?;
    assert!(empty.which_children().await?.is_empty());
    Ok(())
}
