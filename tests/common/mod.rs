//! Helpers shared by the behaviour tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use ergo::Node;

/// A fresh node with a unique name.
pub async fn node(name: &str) -> Node {
    Node::builder(format!("{name}@localhost"))
        .start()
        .await
        .expect("node starts")
}

/// Awaits `fut`, failing the test with `what` if it takes longer than 5 s (a hang becomes a
/// failure, never a stuck CI).
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for: {what}"),
    }
}

/// Polls `check` until it returns `Some`, for up to 5 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(what, async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
}

/// Log capture (the tests of what the runtime logs).
pub mod logs;

/// Nodes on the network (the `net_*` tests).
pub mod net;
