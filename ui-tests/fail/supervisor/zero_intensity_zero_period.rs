// A zero period counts no restarts: it would lift the limit, not set one.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup: one_for_one, intensity = 0, period = 0s {
        worker: Worker::default() => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
