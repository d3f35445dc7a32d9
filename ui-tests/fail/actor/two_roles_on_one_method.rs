use ergo::prelude::*;

struct Cache;

#[actor]
impl Cache {
    #[handle]
    #[init]
    fn warm(&mut self) {}
}

fn main() {}
