use ergo::prelude::*;

struct Raw;

#[actor]
impl Raw {
    #[handle]
    unsafe fn poke(&mut self, addr: usize) {
        let _ = addr;
    }
}

fn main() {}
