use ergo::prelude::*;
use ergo_macros::on_down;

struct Watcher {
    seen: usize,
}

impl Watcher {
    #[on_down]
    fn on_down(&mut self, down: Down) {
        let _ = down;
        self.seen += 1;
    }
}

fn main() {}
