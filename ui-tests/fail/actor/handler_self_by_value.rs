use ergo::prelude::*;

struct Counter {
    n: u64,
}

#[actor]
impl Counter {
    #[handle]
    fn take(self) -> u64 {
        self.n
    }
}

fn main() {}
