use ergo::prelude::*;

struct Counter;

#[actor(crate = ergo)]
impl Counter {
    #[handle]
    fn ping(&self) {}
}

fn main() {}
