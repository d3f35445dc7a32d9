use ergo::prelude::*;

struct Counter;

#[actor(msg = "CounterMessage")]
impl Counter {
    #[handle]
    fn ping(&self) {}
}

fn main() {}
