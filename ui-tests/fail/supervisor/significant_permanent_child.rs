// OTP forbids `significant` on a permanent child.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup: one_for_one, auto_shutdown = any_significant {
        worker: Worker::default() => permanent, significant,
        job: Worker::default() => transient, significant,
    }
}

fn main() {
    let _ = AppSup::new();
}
