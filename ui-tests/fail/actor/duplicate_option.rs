use ergo::prelude::*;

struct Counter;

#[actor(mailbox = 8, mailbox = 16)]
impl Counter {
    #[handle]
    fn ping(&self) {}
}

fn main() {}
