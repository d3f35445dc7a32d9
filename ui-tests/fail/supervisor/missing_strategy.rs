// The name is followed by `:` and a strategy.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup {
        worker: Worker::default() => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
