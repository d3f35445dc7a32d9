// OTP's `simple_one_for_one` is not a strategy of a declared tree.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub Pool: simple_one_for_one {
        worker: Worker::default() => temporary,
    }
}

fn main() {
    let _ = Pool::new();
}
