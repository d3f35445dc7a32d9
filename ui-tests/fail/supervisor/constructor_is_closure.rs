// The constructor is the expression itself: the macro runs it at every (re)start.
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
        worker: || Worker::default() => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
