use ergo::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Reading {
    value: f64,
}

struct Station;

#[actor(crate = "crate::missing::ergo", remote, mailbox = 4)]
impl Station {
    #[init]
    fn boot(&mut self) {}

    #[handle]
    fn record(&mut self, reading: Reading) -> f64 {
        reading.value
    }

    #[terminate]
    fn stop(&mut self, reason: &ExitReason) {
        let _ = reason;
    }
}

fn main() {}
