//! Calls: replies, handler errors, timeouts (default and per call), late replies, dead targets.

mod common;

use std::time::Duration;

use common::{node, within};
use ergo::prelude::*;

#[derive(Debug, PartialEq)]
struct Overdrawn {
    short_by: u64,
}

impl std::fmt::Display for Overdrawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "overdrawn by {}", self.short_by)
    }
}

#[derive(Default)]
struct Account {
    balance: u64,
}

#[actor]
impl Account {
    #[handle]
    fn deposit(&mut self, amount: u64) -> u64 {
        self.balance += amount;
        self.balance
    }

    #[handle]
    fn withdraw(&mut self, amount: u64) -> Result<u64, Overdrawn> {
        if amount > self.balance {
            return Err(Overdrawn {
                short_by: amount - self.balance,
            });
        }
        self.balance -= amount;
        Ok(self.balance)
    }

    /// Replies with `tag` after `ms` milliseconds.
    #[handle]
    async fn slow_echo(&self, tag: u32, ms: u64) -> u32 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        tag
    }

    #[handle]
    fn crash(&self) -> u32 {
        panic!("crash requested")
    }
}

#[tokio::test]
async fn call_returns_the_handlers_value() {
    let node = node("call-value").await;
    let acc = node.spawn(Account::default()).await.unwrap();
    assert_eq!(acc.deposit(10).await, Ok(10));
    assert_eq!(acc.deposit(5).await, Ok(15));
}

#[tokio::test]
async fn handler_error_reaches_the_caller_as_the_reply() {
    let node = node("call-handler-error").await;
    let acc = node.spawn(Account::default()).await.unwrap();
    acc.deposit(3).await.unwrap();
    assert_eq!(acc.withdraw(5).await, Ok(Err(Overdrawn { short_by: 2 })));
    assert_eq!(acc.withdraw(2).await, Ok(Ok(1)));
}

#[tokio::test(start_paused = true)]
async fn default_call_timeout_is_five_seconds() {
    let node = node("call-default-timeout").await;
    assert_eq!(node.call_timeout(), Duration::from_secs(5));
    let acc = node.spawn(Account::default()).await.unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(acc.slow_echo(1, 60_000).await, Err(CallError::Timeout));
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn node_call_timeout_sets_the_default() {
    let node = ergo::Node::builder("call-node-timeout@localhost")
        .call_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let acc = node.spawn(Account::default()).await.unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(acc.slow_echo(1, 60_000).await, Err(CallError::Timeout));
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn per_call_timeout_overrides_the_default() {
    let node = node("call-override").await;
    let acc = node.spawn(Account::default()).await.unwrap();
    let started = tokio::time::Instant::now();
    let short = acc
        .slow_echo(1, 1_000)
        .timeout(Duration::from_millis(10))
        .await;
    assert_eq!(short, Err(CallError::Timeout));
    assert_eq!(started.elapsed(), Duration::from_millis(10));
    // A longer timeout than the default works too.
    let long = acc
        .slow_echo(2, 7_000)
        .timeout(Duration::from_secs(60))
        .await;
    assert_eq!(long, Ok(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_reply_is_dropped() {
    let node = node("call-late").await;
    let acc = node.spawn(Account::default()).await.unwrap();
    // The first call gives up long before its reply (tag 1) is produced.
    let first = acc
        .slow_echo(1, 100)
        .timeout(Duration::from_millis(5))
        .await;
    assert_eq!(first, Err(CallError::Timeout));
    // The next call, queued behind the slow one, gets its own reply, never the late one.
    let second = within("second call", acc.slow_echo(2, 0)).await;
    assert_eq!(second, Ok(2));
    let third = within("third call", acc.deposit(0)).await;
    assert_eq!(third, Ok(0));
}

#[tokio::test]
async fn call_to_ended_process_is_noproc() {
    let node = node("call-noproc").await;
    let acc = node.spawn(Account::default()).await.unwrap();
    assert!(acc.stop(ExitReason::Normal));
    assert_eq!(acc.wait().await, ExitReason::Normal);
    assert_eq!(acc.deposit(1).await, Err(CallError::NoProc));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_call_fails_with_exited_when_handler_panics() {
    let node = node("call-panic").await;
    let acc = node.spawn(Account::default()).await.unwrap();
    let err = within("crashing call", acc.crash()).await.unwrap_err();
    assert_eq!(
        err,
        CallError::Exited(ExitReason::Panic("crash requested".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_call_fails_at_once_when_target_is_killed_mid_handler() {
    let node = node("call-killed").await;
    let acc = node.spawn(Account::default()).await.unwrap();
    let pending = {
        let acc = acc.clone();
        tokio::spawn(async move { acc.slow_echo(9, 60_000).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(acc.kill());
    let result = within("killed call", pending).await.unwrap();
    assert_eq!(result, Err(CallError::Exited(ExitReason::Killed)));
}

#[tokio::test(start_paused = true)]
async fn a_huge_timeout_means_wait_as_long_as_it_takes() {
    let node = node("call-huge-timeout").await;
    let acc = node.spawn(Account::default()).await.unwrap();
    let reply = acc.slow_echo(5, 10_000).timeout(Duration::MAX).await;
    assert_eq!(reply, Ok(5));
}

struct SlowToDie;

#[actor]
impl SlowToDie {
    #[handle]
    fn crash(&self) -> u32 {
        panic!("crashed before replying")
    }

    #[terminate]
    async fn terminate(&mut self, _reason: &ExitReason) {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn crashed_call_fails_with_exited_without_waiting_for_terminate() {
    let node = node("call-slow-terminate").await;
    let a = node.spawn(SlowToDie).await.unwrap();
    let err = a
        .crash()
        .timeout(Duration::from_millis(500))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CallError::Exited(ExitReason::Panic("crashed before replying".into()))
    );
}
