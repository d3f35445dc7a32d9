// `significant` means nothing under `auto_shutdown = never` (the default), and OTP rejects it.
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
        job: Worker::default() => transient, significant,
    }
}

fn main() {
    let _ = AppSup::new();
}
