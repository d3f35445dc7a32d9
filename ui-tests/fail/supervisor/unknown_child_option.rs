// Child options are `shutdown`, `name` and `significant`.
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
        worker: Worker::default() => permanent, timeout = 2s,
    }
}

fn main() {
    let _ = AppSup::new();
}
