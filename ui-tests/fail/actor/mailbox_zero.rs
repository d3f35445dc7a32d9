use ergo::prelude::*;

struct Counter;

#[actor(mailbox = 0)]
impl Counter {
    #[handle]
    fn ping(&self) {}
}

fn main() {}
