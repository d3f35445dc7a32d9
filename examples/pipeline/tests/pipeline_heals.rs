//! The self-healing pipeline (`pipeline`, run by `src/main.rs`):
//! workers crash on poisoned jobs, the supervisor restarts them, and every job is accounted for.

use std::collections::BTreeSet;
use std::time::Duration;

use ergo::CallError;
use ergo::ExitReason;
use ergo_testkit::node;
use pipeline::{self, Job, PipelineConfig, PipelineError, Poison, MAX_ATTEMPTS};

/// Bounds a whole run (the pipeline also bounds each of its own waits).
async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(10), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for: {what}"),
    }
}

fn small(seed: u64, workers: usize) -> PipelineConfig {
    PipelineConfig {
        jobs: 400,
        workers,
        seed,
        rounds: 200,
        ..PipelineConfig::default()
    }
}

/// Checks a finished run against its plan.
fn check_report(config: &PipelineConfig, plan: &[Job], report: &pipeline::Report) {
    let total = config.jobs;
    assert_eq!(report.total, total);
    assert_eq!(plan.len() as u64, total);
    assert_eq!(
        report.completed.len() + report.failed.len(),
        total as usize,
        "completed + failed == total"
    );

    // Every job id exactly once in completed ∪ failed: no job lost, none duplicated.
    let completed: BTreeSet<u64> = report.completed.keys().copied().collect();
    let failed: BTreeSet<u64> = report.failed.keys().copied().collect();
    assert!(
        completed.is_disjoint(&failed),
        "jobs both completed and failed: {:?}",
        completed.intersection(&failed).collect::<Vec<_>>()
    );
    let all: BTreeSet<u64> = completed.union(&failed).copied().collect();
    assert_eq!(all, (0..total).collect::<BTreeSet<u64>>(), "every job once");
    assert_eq!(report.duplicates, 0, "no result arrived twice");
    assert!(report.accounts_for_every_job());

    // The always-poisoned jobs are exactly the failed ones, each after MAX_ATTEMPTS attempts.
    let always: BTreeSet<u64> = plan
        .iter()
        .filter(|j| j.poison == Poison::Always)
        .map(|j| j.id)
        .collect();
    assert!(!always.is_empty(), "the plan poisons some jobs for good");
    assert_eq!(failed, always, "failed == always poisoned");
    for (id, f) in &report.failed {
        assert_eq!(f.attempts, MAX_ATTEMPTS, "attempts of failed job {id}");
        match &f.last_error {
            CallError::Exited(ExitReason::Panic(msg)) => assert!(
                msg.starts_with(&format!("{} {id} ", pipeline::POISON_PANIC)),
                "job {id} failed with {msg}"
            ),
            other => panic!("job {id} failed with {other:?}, not a worker panic"),
        }
    }

    // Completed jobs: the right output, after exactly the planned number of crashes.
    let mut retried = 0;
    for job in plan.iter().filter(|j| j.poison != Poison::Always) {
        let done = &report.completed[&job.id];
        assert_eq!(done.output, job.run(), "output of job {}", job.id);
        let expected = 1 + job.poison.crashes_within(MAX_ATTEMPTS);
        assert_eq!(done.attempts, expected, "attempts of job {}", job.id);
        if expected > 1 {
            retried += 1;
        }
    }
    assert!(retried > 0, "the plan has transiently poisoned jobs");

    // Restarts: one per crash, counted on both sides, and as planned.
    let planned: u64 = plan
        .iter()
        .map(|j| u64::from(j.poison.crashes_within(MAX_ATTEMPTS)))
        .sum();
    assert!(report.restarts > 0, "workers were restarted");
    assert_eq!(report.crashes, planned, "crashes seen by the dispatcher");
    assert_eq!(report.restarts, report.crashes, "one restart per crash");
    assert_eq!(report.other_errors, 0, "no timeouts or other call errors");
    // Every crash but a failed job's last one is followed by another attempt.
    assert_eq!(
        report.attempts,
        total + planned - always.len() as u64,
        "one attempt per job plus one per retry"
    );
    assert_eq!(report.restarts_per_worker.len(), config.workers);
    assert_eq!(
        report.restarts_per_worker.iter().sum::<u64>(),
        report.restarts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_settles_every_job_and_restarts_every_crashed_worker() {
    pipeline::silence_poison_panics();
    for (seed, workers) in [(7, 4), (0xC0FFEE, 3)] {
        let node = node(&format!("pipeline-heals-{seed}")).await;
        let config = small(seed, workers);
        let plan = config.plan();
        let report = bounded("the pipeline", pipeline::run(&node, &config))
            .await
            .expect("the pipeline finishes");
        check_report(&config, &plan, &report);
        // Everything it started is stopped.
        bounded("node shutdown", node.shutdown(Duration::from_secs(1))).await;
        assert_eq!(node.process_count(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_run() {
    pipeline::silence_poison_panics();
    let config = small(99, 2);
    let mut outcomes = Vec::new();
    for run in 0..2 {
        let node = node(&format!("pipeline-seed-{run}")).await;
        let report = bounded("the pipeline", pipeline::run(&node, &config))
            .await
            .expect("the pipeline finishes");
        check_report(&config, &config.plan(), &report);
        let failed: Vec<u64> = report.failed.keys().copied().collect();
        let attempts: Vec<u32> = report.completed.values().map(|c| c.attempts).collect();
        outcomes.push((failed, attempts, report.crashes, report.restarts));
        bounded("node shutdown", node.shutdown(Duration::from_secs(1))).await;
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_that_gives_up_fails_the_run_instead_of_hanging() {
    pipeline::silence_poison_panics();
    let node = node("pipeline-gives-up").await;
    let config = PipelineConfig {
        intensity: 2,
        intensity_period: Duration::from_secs(60),
        ..small(7, 2)
    };
    match bounded("the pipeline", pipeline::run(&node, &config)).await {
        Err(PipelineError::WorkersGone { unsettled }) => {
            assert!(
                !unsettled.is_empty(),
                "jobs were left when the workers went"
            );
        }
        other => panic!("expected WorkersGone, got {other:?}"),
    }
    assert!(node.whereis_pid(&pipeline::worker_name(0)).is_none());
    bounded("node shutdown", node.shutdown(Duration::from_secs(1))).await;
    assert_eq!(node.process_count(), 0);
}
