use ergo::prelude::*;

struct Conn;

#[actor]
impl Conn {
    #[terminate]
    fn close(&mut self, reason: ExitReason) {
        let _ = reason;
    }
}

fn main() {}
