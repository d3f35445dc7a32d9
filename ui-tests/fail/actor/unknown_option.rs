use ergo::prelude::*;

struct Counter;

#[actor(mailbox = 8, capacity = 8)]
impl Counter {
    #[handle]
    fn ping(&self) {}
}

fn main() {}
