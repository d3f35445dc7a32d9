use ergo::prelude::*;

struct Clock;

#[actor]
impl Clock {
    #[handle]
    fn now(offset: u64) -> u64 {
        offset
    }
}

fn main() {}
