// Registered names are node-wide, so unique in the whole tree, nested supervisors included.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup: one_for_one {
        worker: Worker::default() => permanent, name = "worker",
        inner: one_for_all {
            worker: Worker::default() => permanent, name = "worker",
        } => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
