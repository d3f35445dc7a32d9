// A zero period counts no restarts, whatever the intensity.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup: one_for_one, intensity = 5, period = 0ms {
        worker: Worker::default() => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
