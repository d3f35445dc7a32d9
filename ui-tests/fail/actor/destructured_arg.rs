use ergo::prelude::*;

struct Plot;

#[actor]
impl Plot {
    #[handle]
    fn point(&mut self, (x, y): (i32, i32)) {
        let _ = (x, y);
    }
}

fn main() {}
