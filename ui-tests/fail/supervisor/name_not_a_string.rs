// A registered name is a string.
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
        worker: Worker::default() => permanent, name = worker,
    }
}

fn main() {
    let _ = AppSup::new();
}
