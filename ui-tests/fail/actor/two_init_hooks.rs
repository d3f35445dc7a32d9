use ergo::prelude::*;

struct Db {
    open: bool,
    warm: bool,
}

#[actor]
impl Db {
    #[init]
    fn open(&mut self) {
        self.open = true;
    }

    #[init]
    fn warm_up(&mut self) {
        self.warm = true;
    }

    #[handle]
    fn ready(&self) -> bool {
        self.open && self.warm
    }
}

fn main() {}
