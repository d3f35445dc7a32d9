use ergo::prelude::*;

#[actor]
struct Counter {
    n: u64,
}

fn main() {}
