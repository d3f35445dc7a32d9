// The restart type is a word, not the runtime's enum.
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
        worker: Worker::default() => Restart::Transient,
    }
}

fn main() {
    let _ = AppSup::new();
}
