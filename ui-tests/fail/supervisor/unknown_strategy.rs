// The strategy is one of three words; the type is still generated, so its uses add no errors.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup: one_for_any {
        worker: Worker::default() => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
