// One build reports every mistake of the tree, and nothing else: the type is generated from
// the valid parts, so spawning it and calling it add no errors.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    /// The application's root.
    pub AppSup: one_for_each, intensity = 3, period = 10 {
        worker: Worker::default() => permanent, shutdown = forever,
        twin: Worker::default() => temporary,
        twin: Worker::default() => transient, significant,
        inner: rest_for_one {
            leaf: => transient,
        } => permanent,
    }
}

#[tokio::main]
async fn main() {
    let node = Node::builder("app@localhost").start().await.unwrap();
    let sup = node.spawn(AppSup::new()).await.unwrap();
    let _ = sup.which_children().await.unwrap();
}
