// Durations are whole numbers.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup: one_for_one, period = 1.5s {
        worker: Worker::default() => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
