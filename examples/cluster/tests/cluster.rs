//! The distributed backend (`cluster`, run by `src/main.rs`) with real
//! OS processes: a SIGKILLed back node loses no job, the survivor carries the work, and the
//! restarted node serves again.
//!
//! The back nodes are this very test binary, run again: [`back_node_entry`] returns at once
//! unless `ERGO_CLUSTER_ROLE` is set (to `back NAME IP:PORT`), in which case it is a back node
//! until its stdin closes. So no other binary has to be built, and a child never outlives this
//! process (its stdin is a pipe from here; its `ChildProcess` guard also kills it on drop).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use cluster::{
    self, BackConfig, ClusterEvent, Front, FrontConfig, Job, JobError, LoadConfig, ScenarioConfig,
    BACK1, BACK2, COOKIE_ENV,
};
use ergo::{ExitReason, Node};
use ergo_testkit::process::{self, SelfExe};

const ROLE_ENV: &str = "ERGO_CLUSTER_ROLE";

/// The back-node role of this binary (a no-op in a normal test run).
#[test]
fn back_node_entry() {
    let Some(role) = process::role_from_env(ROLE_ENV) else {
        return;
    };
    let ["back", name, addr] = role.iter().map(String::as_str).collect::<Vec<_>>()[..] else {
        panic!(
            "{ROLE_ENV} is `back NAME IP:PORT`, not `{}`",
            role.join(" ")
        );
    };
    let config = BackConfig {
        name: name.to_string(),
        listen: addr.parse().expect("a socket address"),
        cookie: std::env::var(COOKIE_ENV).expect("the cookie is set for a back node"),
    };
    process::block_on(cluster::run_back_node(&config)).expect("the back node runs");
}

/// How the scenario starts a back node: this binary, running only `back_node_entry`.
fn back_command(node: &str, addr: SocketAddr) -> Command {
    SelfExe::current()
        .expect("the test binary's path")
        .test_entry(
            "back_node_entry",
            ROLE_ENV,
            ["back", node, &addr.to_string()],
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_back_node_loses_no_job_and_serves_again_after_restart() {
    let config = ScenarioConfig {
        load: LoadConfig {
            submitters: 6,
            ..LoadConfig::default()
        },
        step_jobs: 30,
        step_timeout: Duration::from_secs(10),
        crash_worker: true,
    };
    let run = cluster::run_scenario(&config, back_command, |line| eprintln!("{line}"));
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the scenario ends within 60 s")
        .unwrap_or_else(|e| panic!("the scenario failed: {e}"));
    eprintln!("{report}");
    let t = &report.tally;

    // No job lost: every one returned to its submitter, done or with an error.
    assert!(t.sent > 0);
    assert_eq!(t.done + t.failed, t.sent, "done + failed == sent");
    assert_eq!(t.wrong_output, 0, "every output is the job's");
    // The only failures are the invalid jobs, each rejected by a worker: no job was lost to the
    // crash, the kill or the restart. (Ids are handed out in order, so 0..sent were sent.)
    let invalid: BTreeSet<u64> = (0..t.sent)
        .filter(|&id| config.load.job(id).output().is_err())
        .collect();
    let failed: BTreeSet<u64> = t.errors.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        failed, invalid,
        "the failed jobs are exactly the invalid ones"
    );
    for (id, error) in &t.errors {
        assert!(
            matches!(error, JobError::Rejected(_)),
            "job {id} failed with {error}"
        );
    }

    // The front's monitors: once for the kill (noconnection), once for the worker crash (its
    // panic), never otherwise.
    assert_eq!(report.downs(BACK1, &ExitReason::NoConnection), 1);
    assert_eq!(report.all_downs(BACK1), 1, "{:#?}", report.events);
    assert_eq!(report.downs(BACK2, &ExitReason::NoConnection), 0);
    assert_eq!(report.all_downs(BACK2), 1, "{:#?}", report.events);
    assert!(report.events.iter().any(|e| matches!(
        e,
        ClusterEvent::Down { node, reason: ExitReason::Panic(m), .. }
            if node == BACK2 && m.starts_with(cluster::CRASH_PANIC)
    )));
    assert!(
        !report
            .events
            .iter()
            .any(|e| matches!(e, ClusterEvent::GaveUp { .. })),
        "the front gave nobody up"
    );

    // back2's supervisor restarted the crashed worker; the front found the new one.
    let (old, new) = report.crashed_worker.expect("the worker was crashed");
    assert_ne!(old, new);
    assert_eq!(
        new.creation(),
        report.back2.creation,
        "same node, new process"
    );
    assert!(t.by_worker.get(&new).copied().unwrap_or(0) > 0);

    // While back1 was down, the work went to back2 and the front kept looking for back1.
    assert!(report.survivor_done_while_down > 0);
    assert!(report
        .events
        .iter()
        .any(|e| matches!(e, ClusterEvent::LookupFailed { node, .. } if node == BACK1)));

    // back1 came back on the same address as a new incarnation, and served again.
    assert_eq!(report.back1_after.addr, report.back1_before.addr);
    assert_ne!(report.back1_after.creation, report.back1_before.creation);
    assert!(t.done_on_creation(BACK1, report.back1_before.creation) > 0);
    assert!(report.restarted_done > 0);
    assert_eq!(
        report.restarted_done,
        t.done_on_creation(BACK1, report.back1_after.creation)
    );

    // At the end the front sees both back nodes up, each having joined twice.
    assert_eq!(report.status.len(), 2);
    for b in &report.status {
        assert_eq!(b.joins, 2, "{b:?}");
        assert!(!b.gave_up, "{b:?}");
        let worker = b.worker.unwrap_or_else(|| panic!("{} is up", b.node));
        if b.node == BACK1 {
            assert_eq!(worker.creation(), report.back1_after.creation);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_fail_with_an_error_when_no_back_node_is_reachable() {
    let cookie = cluster::random_cookie();
    // Nothing listens there.
    let nowhere = process::free_loopback_addr().expect("a free port");
    let node = Node::builder("front-alone@localhost")
        .cookie(&cookie)
        .route("ghost@localhost", nowhere.to_string())
        .start()
        .await
        .expect("the front node starts");
    let config = FrontConfig {
        job_deadline: Duration::from_millis(300),
        relookup_first: Duration::from_millis(10),
        relookup_max: Duration::from_millis(20),
        relookup_attempts: 3,
        ..FrontConfig::new(["ghost@localhost".to_string()])
    };
    let (front, mut events) = Front::start(&node, config).await.expect("the front starts");

    let outcome = tokio::time::timeout(Duration::from_secs(5), front.submit(Job::new(1, 10, 0)))
        .await
        .expect("the submit returns within 5 s");
    assert_eq!(
        outcome.unwrap_err(),
        JobError::NoBackend {
            attempts: 0,
            last: None
        }
    );

    // The lookups are bounded: after the third failure in a row the front gives up.
    let mut failures = Vec::new();
    let gave_up = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await.expect("the front runs") {
                ClusterEvent::LookupFailed { failures: n, .. } => failures.push(n),
                ClusterEvent::GaveUp { failures, .. } => break failures,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("the front gives up within 5 s");
    assert_eq!(gave_up, 3);
    assert_eq!(failures, [1, 2]);
    let status = front.status().await.expect("the front answers");
    assert!(status[0].gave_up && status[0].worker.is_none());

    front.stop().await;
    node.shutdown(Duration::from_secs(1)).await;
}
