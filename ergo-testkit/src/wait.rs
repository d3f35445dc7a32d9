//! Bounded waits: a test that waits for something names it and gives up after
//! [`DEFAULT_WAIT`], so a hang becomes a failure that says what never happened.
//!
//! Both helpers run on tokio's clock, so they also work (and stay bounded) under
//! `#[tokio::test(start_paused = true)]`.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use ergo_testkit::wait::eventually;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let polls = AtomicU32::new(0);
//! let third = eventually("the third poll", || async {
//!     (polls.fetch_add(1, Ordering::Relaxed) == 2).then_some("ready")
//! })
//! .await;
//! assert_eq!(third, "ready");
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

/// How long [`within`] and [`eventually`] wait before they fail: far above anything a passing
/// test needs on a loaded machine, far below a CI timeout.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// How often [`eventually`] polls.
pub const POLL_EVERY: Duration = Duration::from_millis(2);

/// Awaits `fut`, panicking with `what` if it takes longer than [`DEFAULT_WAIT`].
///
/// # Panics
///
/// With `timed out waiting for: {what}` when the wait is over.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let v = ergo_testkit::wait::within("a ready value", async { 7 }).await;
/// assert_eq!(v, 7);
/// # }
/// ```
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within_for(DEFAULT_WAIT, what, fut).await
}

/// [`within`] with a bound of your choice.
///
/// # Panics
///
/// With `timed out waiting for: {what}` once `bound` has passed.
///
/// # Examples
///
/// ```should_panic
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// ergo_testkit::wait::within_for(Duration::from_millis(10), "never", std::future::pending::<()>())
///     .await;
/// # }
/// ```
pub async fn within_for<T>(bound: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(bound, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for: {what}"),
    }
}

/// Polls `check` every [`POLL_EVERY`] until it returns `Some`, for up to [`DEFAULT_WAIT`].
///
/// # Panics
///
/// With `timed out waiting for: {what}` when the wait is over.
///
/// # Examples
///
/// See [the module](self).
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
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
    .await
}
