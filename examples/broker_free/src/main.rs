//! Rust services routing work to each other through actors and pub/sub instead of a broker.
//!
//! With no argument this runs the whole demo: it starts itself three times as separate OS
//! processes on free loopback ports — two billing instances (`billing-1`, `billing-2`, each a
//! `Billing` actor under a supervisor, registered as `billing`) and an audit (subscribed to the
//! `orders` event) — and runs the orders service in this process. Orders are published on the
//! `orders` event and billed through a pool of the billing instances found by name, with calls
//! that return only once the order is charged. Mid-run billing-1 is SIGKILLed: the calls cut off
//! fail with `noconnection` and are tried again on billing-2, where the ledger answers a retry
//! of an order billing-1 had already charged without charging it twice. Then it prints the
//! counts (placed, billed by each instance, failed, what the audit saw) and exits 0 if every
//! order was billed exactly once or reported failed, and the audit saw them all in order.
//!
//! ```sh
//! cargo run -p example-broker-free                                    # the demo
//! ERGO_BROKER_FREE_COOKIE=… cargo run -p example-broker-free -- \
//!     billing billing-1@localhost 127.0.0.1:7101
//! ERGO_BROKER_FREE_COOKIE=… cargo run -p example-broker-free -- \
//!     audit audit@localhost 127.0.0.1:7103 orders@localhost 127.0.0.1:7100
//! ```
//!
//! The other forms are the roles the demo starts; each serves until its stdin closes (or
//! Ctrl-C). The children share a fresh random cookie, passed in their environment, and never
//! outlive the demo (their guards kill them on drop; a closed stdin stops them). The services
//! are `broker_free` (shared with `tests/broker_free.rs`).

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

use broker_free::{
    self, LedgerEntry, Role, ScenarioConfig, ScenarioReport, BILLING_1, BILLING_2, COOKIE_ENV,
};
use ergo_testkit::process::SelfExe;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.is_empty() {
        demo().await
    } else {
        role(&args).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("broker_free: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A service role: `billing NODE IP:PORT` or `audit NODE IP:PORT ORDERS_NODE IP:PORT`.
async fn role(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let role = Role::parse(args).map_err(|e| format!("{e}\n(with no argument: the demo)"))?;
    let cookie = std::env::var(COOKIE_ENV)
        .map_err(|_| format!("set {COOKIE_ENV} to the services' cookie"))?;
    broker_free::run_role(&role, &cookie).await?;
    Ok(())
}

/// The demo: billing and audit as child processes of this one, orders here.
async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let exe = SelfExe::current()?;
    let config = ScenarioConfig::default();
    println!(
        "broker_free: orders here, {BILLING_1}, {BILLING_2} and the audit as child processes on \
         127.0.0.1; {} orders, {} in flight, {BILLING_1} SIGKILLed after {} are billed",
        config.orders, config.concurrency, config.kill_after
    );
    let start = Instant::now();
    let report = broker_free::run_scenario(
        &config,
        |role| exe.command(role.args()),
        |line| println!("[{:>6.3} s] {line}", start.elapsed().as_secs_f64()),
    )
    .await?;
    println!();
    println!("{report}");
    let problems = check(&report);
    if problems.is_empty() {
        println!("every order was billed exactly once or reported failed; the audit saw each one");
        Ok(())
    } else {
        Err(problems.join("; ").into())
    }
}

/// What is wrong with a run (nothing, normally).
fn check(r: &ScenarioReport) -> Vec<String> {
    let mut problems = Vec::new();
    let billed: BTreeSet<u64> = r.billed.keys().copied().collect();
    let charged: BTreeSet<u64> = r
        .ledger
        .iter()
        .filter(|(_, e)| matches!(e, LedgerEntry::Charged { .. }))
        .map(|(id, _)| *id)
        .collect();
    if r.billed.len() + r.failed.len() != r.placed as usize || !r.reported_twice.is_empty() {
        problems.push("an order did not end exactly once".to_string());
    }
    if billed != charged {
        problems.push("the billed orders are not the ones the ledger charged".to_string());
    }
    if !r.billed_before_kill.is_subset(&charged) {
        problems.push("an order acknowledged before the kill was lost".to_string());
    }
    if r.audit.seen != (0..r.placed).collect::<Vec<u64>>() {
        problems.push("the audit did not see every order in order".to_string());
    }
    problems
}
