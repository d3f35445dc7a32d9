// A child needs the expression that makes it.
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
        worker: => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
