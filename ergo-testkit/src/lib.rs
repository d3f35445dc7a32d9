//! Test support shared by ergo's own tests, its example applications and its benchmark binary.
//!
//! - [`process`]: run this very program again as a child OS process in another role, learn
//!   where it serves from one ready line, and never leave it behind (it is killed and reaped
//!   when its guard drops, whatever path the parent takes).
//! - [`wait`]: waits with a bound, so a hang fails the test instead of stalling CI.
//! - [`node`]: a fresh local node for a test.
//!
//! Probes, actor unit tests and simulated clusters will grow here.
//!
//! # Examples
//!
//! ```
//! use ergo_testkit::wait::within;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let answer = within("the answer", async { 42 }).await;
//! assert_eq!(answer, 42);
//! # }
//! ```

pub mod process;
pub mod wait;

use ergo::Node;

/// A fresh local node named `{name}@localhost`, with the builder's defaults (with the `net`
/// feature on, that includes a listener on a free loopback port).
///
/// # Panics
///
/// If the node does not start (a test has nothing to do without it).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = ergo_testkit::node("doc").await;
/// assert_eq!(node.name(), "doc@localhost");
/// node.shutdown(std::time::Duration::from_secs(1)).await;
/// # }
/// ```
pub async fn node(name: &str) -> Node {
    Node::builder(format!("{name}@localhost"))
        .start()
        .await
        .expect("node starts")
}
