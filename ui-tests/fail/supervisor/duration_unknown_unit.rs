// Durations are in `ms`, `s` or `m`.
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
        worker: Worker::default() => permanent, shutdown = 2sec,
    }
}

fn main() {
    let _ = AppSup::new();
}
