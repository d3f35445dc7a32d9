// `auto_shutdown` watches significant children; without one it does nothing.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup: one_for_one, auto_shutdown = all_significant {
        job: Worker::default() => transient,
    }
}

fn main() {
    let _ = AppSup::new();
}
