// A supervisor declared inline is checked like the root.
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
        inner: all_for_one, period = 0s {
            worker: Worker::default() => permanant,
        } => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
