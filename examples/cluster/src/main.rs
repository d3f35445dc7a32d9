//! A distributed backend whose nodes can crash and restart without taking the system down.
//!
//! With no argument this runs the whole demo: it starts itself twice as back nodes (`back1`,
//! `back2`: separate OS processes, each a worker under a supervisor) on free loopback ports,
//! runs the front node in this process and keeps jobs flowing through it. Then it crashes
//! back2's worker (its supervisor restarts it), SIGKILLs back1 mid-run (back2 carries the work,
//! the jobs cut off are retried there), restarts back1 on the same port (a new creation; the
//! front finds it again and routes to it), and prints the counts: every job returns to its
//! submitter, done or with an error. The nodes share a fresh random cookie, passed to the
//! children in their environment.
//!
//! ```sh
//! cargo run -p example-cluster                                 # the demo
//! ERGO_CLUSTER_COOKIE=… cargo run -p example-cluster -- back back1@localhost 127.0.0.1:7001
//! ```
//!
//! The second form is the back-node role the demo starts; it serves until its stdin closes (or
//! Ctrl-C). `RUST_LOG=warn` shows the runtime's connection log lines. The scenario itself is
//! `cluster::run_scenario` (shared with `tests/cluster.rs`).

use std::process::ExitCode;
use std::time::Instant;

use cluster::{self, BackConfig, ScenarioConfig, BACK1, BACK2, COOKIE_ENV};
use ergo::ExitReason;
use ergo_testkit::process::{self, SelfExe};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => demo().await,
        ["back", name, addr] => back(name, addr).await,
        _ => Err(format!(
            "usage: cluster                  (the demo)\n       \
             cluster back NAME IP:PORT   (a back node; the cookie in {COOKIE_ENV})"
        )
        .into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The back-node role.
async fn back(name: &str, addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let cookie = std::env::var(COOKIE_ENV)
        .map_err(|_| format!("set {COOKIE_ENV} to the cluster's cookie"))?;
    let config = BackConfig {
        name: name.to_string(),
        listen: process::parse_loopback_addr(addr)?,
        cookie,
    };
    cluster::run_back_node(&config).await?;
    Ok(())
}

/// The demo: back nodes as child processes of this one, the front here.
async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let exe = SelfExe::current()?;
    let config = ScenarioConfig::default();
    println!(
        "cluster: a front and two back nodes ({BACK1}, {BACK2}) on 127.0.0.1; {} submitters, \
         one job in flight each, {} rounds + {} ms of work per job, one job in {} invalid",
        config.load.submitters, config.load.rounds, config.load.hold_ms, config.load.reject_every
    );
    let start = Instant::now();
    let report = cluster::run_scenario(
        &config,
        |node, addr| exe.command(["back", node, &addr.to_string()]),
        |line| println!("[{:>6.3} s] {line}", start.elapsed().as_secs_f64()),
    )
    .await?;

    println!();
    println!("{report}");
    println!(
        "back1: creation {} before the kill, {} after the restart, same address {}",
        report.back1_before.creation, report.back1_after.creation, report.back1_after.addr
    );
    println!(
        "the front's monitors fired: back1 {} time(s) with noconnection, back2 {} time(s) with a \
         panic",
        report.downs(BACK1, &ExitReason::NoConnection),
        report.all_downs(BACK2)
    );
    println!(
        "while back1 was down back2 completed {} jobs ({} of them retries of jobs cut off by the \
         kill; {} were in flight then); back1 completed {} after its restart",
        report.survivor_done_while_down,
        report.retried_after_kill,
        report.in_flight_at_kill,
        report.restarted_done
    );
    let t = &report.tally;
    if t.done + t.failed != t.sent || t.wrong_output > 0 {
        return Err("some job was lost or wrong".into());
    }
    Ok(())
}
