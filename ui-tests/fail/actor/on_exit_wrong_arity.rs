use ergo::prelude::*;

struct Supervisor;

#[actor]
impl Supervisor {
    #[on_exit]
    fn on_exit(&mut self, reason: ExitReason) {
        let _ = reason;
    }
}

fn main() {}
