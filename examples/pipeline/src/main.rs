//! A background worker pipeline that heals itself.
//!
//! A producer feeds 2 000 jobs to a dispatcher, which hands them to 4 workers (`worker-0` ..
//! `worker-3`) running under a one_for_one supervisor. About one job in ten is poisoned: the
//! worker that takes it panics. The supervisor restarts the worker under the same name; the
//! dispatcher counts the attempt and queues the job again, or records it as failed after
//! `MAX_ATTEMPTS` attempts. Every job ends up completed or failed — none is lost or done twice.
//!
//! The poison plan comes from a seeded generator, so every run crashes the same jobs. The
//! pipeline itself is `pipeline` (shared with `tests/pipeline_heals.rs`).
//!
//! Run with `cargo run -p example-pipeline`.

use std::time::Duration;

use ergo::Node;
use pipeline::{self, PipelineConfig, Poison, MAX_ATTEMPTS};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The workers' panics are the point of the demo; keep them off stderr.
    pipeline::silence_poison_panics();
    let node = Node::builder("pipeline@localhost").start().await?;

    let config = PipelineConfig::default();
    let plan = config.plan();
    let always = plan.iter().filter(|j| j.poison == Poison::Always).count();
    let transient = plan
        .iter()
        .filter(|j| matches!(j.poison, Poison::Transient { .. }))
        .count();
    println!(
        "pipeline: {} jobs, {} workers under a one_for_one supervisor, at most {MAX_ATTEMPTS} \
         attempts per job",
        config.jobs, config.workers
    );
    println!(
        "poison plan (seed {:#x}): {always} jobs crash every attempt, {transient} crash only \
         on their first attempt(s)",
        config.seed
    );

    let report = pipeline::run(&node, &config).await?;
    println!("{report}");

    let shown: Vec<String> = report
        .failed
        .iter()
        .take(3)
        .map(|(id, f)| format!("job {id} after {} attempts: {}", f.attempts, f.last_error))
        .collect();
    for line in shown {
        println!("failed: {line}");
    }
    let retried = report.completed.values().filter(|c| c.attempts > 1).count();
    println!("{retried} jobs completed on a retry, after their worker had been restarted");

    node.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
