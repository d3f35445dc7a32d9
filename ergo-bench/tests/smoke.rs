//! Every workload of the bench runs at quick counts and passes its own checks, so the bench
//! cannot rot between the runs that measure with it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far above a debug build's quick run (about 10 s on two cores).
const LIMIT: Duration = Duration::from_secs(600);

#[test]
fn every_workload_runs_and_checks_its_counts() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ergo-bench"))
        .args(["--quick", "--reps", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ergo-bench");
    let start = Instant::now();
    while child.try_wait().expect("poll ergo-bench").is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ergo-bench --quick did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("ergo-bench output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ergo-bench failed ({}):\n{}\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let help = Command::new(env!("CARGO_BIN_EXE_ergo-bench"))
        .arg("--help")
        .output()
        .expect("ergo-bench --help");
    let help = String::from_utf8_lossy(&help.stderr);
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("workloads"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(listed.len() >= 18, "--help lists the workloads: {help}");
    for workload in listed {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{workload} rate "))),
            "no rate line for {workload} in:\n{stdout}"
        );
    }
}
