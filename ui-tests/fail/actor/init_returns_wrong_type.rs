use ergo::prelude::*;

struct Db;

#[actor]
impl Db {
    #[init]
    fn open(&mut self) -> bool {
        true
    }
}

fn main() {}
