use ergo::prelude::*;

struct Counter;

#[actor]
impl Counter {
    #[handle(reply)]
    fn get(&self) -> u64 {
        0
    }
}

fn main() {}
