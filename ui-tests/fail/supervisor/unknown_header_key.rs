// Header options are `intensity`, `period` and `auto_shutdown`.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup: one_for_one, max_restarts = 3 {
        worker: Worker::default() => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
