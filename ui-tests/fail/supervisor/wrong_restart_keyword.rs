// The restart type is `permanent`, `transient` or `temporary`.
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
        worker: Worker::default() => permanant,
    }
}

fn main() {
    let _ = AppSup::new();
}
