// Ids are unique within a supervisor; the error is on the second one.
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
        worker: Worker::default() => permanent,
        other: Worker::default() => transient,
        worker: Worker::default() => temporary,
    }
}

fn main() {
    let _ = AppSup::new();
}
