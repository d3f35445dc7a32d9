// `supervisor!` declares the type itself.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub struct AppSup: one_for_one {
        worker: Worker::default() => permanent,
    }
}

fn main() {}
