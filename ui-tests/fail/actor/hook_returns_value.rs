use ergo::prelude::*;

struct Conn;

#[actor]
impl Conn {
    #[terminate]
    fn close(&mut self, reason: &ExitReason) -> bool {
        let _ = reason;
        true
    }
}

fn main() {}
