// Each child option is given once.
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
        worker: Worker::default() => permanent, shutdown = 1s, shutdown = brutal_kill,
    }
}

fn main() {
    let _ = AppSup::new();
}
