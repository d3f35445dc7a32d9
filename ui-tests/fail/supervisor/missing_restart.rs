// A child needs a restart type after its constructor.
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
        worker: Worker::default(), shutdown = 1s,
        other: Worker::default() => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
