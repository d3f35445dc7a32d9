use ergo::prelude::*;

struct Counter;

#[actor(remote = true)]
impl Counter {
    #[handle]
    fn ping(&self) {}
}

fn main() {}
