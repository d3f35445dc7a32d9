//! Calls and their timeouts: the node default, a per-call override, a late reply that is
//! dropped rather than delivered to the next call, and a call to a process that crashes.
//!
//! Run with `cargo run --example call_timeouts`.

use std::time::{Duration, Instant};

use ergo::prelude::*;

struct Oracle;

#[actor]
impl Oracle {
    /// Answers `q` after thinking for `ms` milliseconds.
    #[handle]
    async fn ask(&self, q: String, ms: u64) -> String {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        format!("answer to {q:?}")
    }

    #[handle]
    fn divide(&self, a: i64, b: i64) -> Result<i64, String> {
        a.checked_div(b)
            .ok_or_else(|| format!("cannot divide {a} by {b}"))
    }

    #[handle]
    fn crash(&self) -> String {
        panic!("the oracle fell over")
    }
}

#[tokio::main]
async fn main() -> Result<(), ergo::Error> {
    std::panic::set_hook(Box::new(|info| eprintln!("(a process panicked: {info})")));
    let node = Node::builder("oracle@localhost")
        .call_timeout(Duration::from_millis(200))
        .start()
        .await?;
    let oracle = node.spawn(Oracle).await?;

    let t = Instant::now();
    println!("quick: {:?}", oracle.ask("quick".into(), 10).await);
    println!(
        "slow, node default 200 ms: {:?} after {:?}",
        oracle.ask("slow".into(), 500).await,
        t.elapsed()
    );
    let t = Instant::now();
    println!(
        "slow, per-call timeout 1 s: {:?} after {:?} (behind the abandoned call, which still ran)",
        oracle
            .ask("slow".into(), 500)
            .timeout(Duration::from_secs(1))
            .await,
        t.elapsed()
    );
    // The first call below gives up; its reply is produced later and dropped, and the second
    // call gets its own answer.
    let gave_up = oracle
        .ask("first".into(), 100)
        .timeout(Duration::from_millis(10))
        .await;
    let next = oracle.ask("second".into(), 0).await;
    println!("gave up: {gave_up:?}; next call got: {next:?}");

    println!("handler error: {:?}", oracle.divide(1, 0).await?);
    println!("handler value: {:?}", oracle.divide(10, 2).await?);
    println!("crashing call: {:?}", oracle.crash().await);
    println!(
        "after the crash: {:?}",
        oracle.ask("anyone?".into(), 0).await
    );
    Ok(())
}
