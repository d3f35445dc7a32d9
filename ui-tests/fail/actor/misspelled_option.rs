// A misspelled `#[actor]` option gets a suggestion.
use ergo::prelude::*;

struct Counter;

#[actor(remot, mailbx = 8)]
impl Counter {
    #[handle]
    fn ping(&self) {}
}

fn main() {}
