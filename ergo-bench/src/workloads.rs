//! The workloads: the one list of what `ergo-bench` runs, in the order it runs them, with what
//! each measures (printed by `--help`) and the function that runs it.

use std::future::Future;
use std::pin::Pin;

use crate::cli::Config;
use crate::measure::BenchResult;
use crate::{ask, net, pool, publish_local, publish_remote, remote, restart, ring, spawn, tell};

/// A workload's runner: it runs ergo and its baseline and prints their lines.
type Runner = for<'a> fn(&'a Config) -> Pin<Box<dyn Future<Output = BenchResult<()>> + 'a>>;

/// One workload.
pub(crate) struct Workload {
    /// Its name on the command line and in every printed line.
    pub(crate) name: &'static str,
    /// What it measures, at full counts (`--quick` divides them by 10).
    pub(crate) about: &'static str,
    run: Runner,
}

impl Workload {
    /// Runs it under `cfg`.
    pub(crate) async fn run(&self, cfg: &Config) -> BenchResult<()> {
        (self.run)(cfg).await
    }
}

/// Every workload, in the order they run. `spawn` runs first so its memory figures are taken
/// before other workloads have grown (and freed) the heap.
pub(crate) const WORKLOADS: &[Workload] = &[
    Workload {
        name: "spawn",
        about: "100 000 idle actors spawned from one task, with resident memory per actor",
        run: |cfg| Box::pin(spawn::spawn_workload(cfg)),
    },
    Workload {
        name: "tell_p1",
        about: "one producer task casts 1 000 000 messages to one actor",
        run: |cfg| {
            Box::pin(tell::tell_workload(
                cfg,
                "tell_p1",
                1,
                1,
                cfg.count(1_000_000),
            ))
        },
    },
    Workload {
        name: "tell_p2",
        about: "two independent producer -> actor pairs, 1 000 000 casts each",
        run: |cfg| {
            Box::pin(tell::tell_workload(
                cfg,
                "tell_p2",
                2,
                1,
                cfg.count(1_000_000),
            ))
        },
    },
    Workload {
        name: "fan_in",
        about: "two producers cast 500 000 messages each to one actor",
        run: |cfg| {
            Box::pin(tell::tell_workload(
                cfg,
                "fan_in",
                1,
                2,
                cfg.count(1_000_000) / 2,
            ))
        },
    },
    Workload {
        name: "ask_roundtrip",
        about: "200 000 sequential calls from one task, with p50 and p99 latency",
        run: |cfg| Box::pin(ask::ask_workload(cfg)),
    },
    Workload {
        name: "ring",
        about: "1 000 actors in a ring pass a token 1 000 000 hops (the ring size is never scaled)",
        run: |cfg| Box::pin(ring::ring_workload(cfg)),
    },
    Workload {
        name: "restart",
        about: "a child under a one_for_one supervisor is crashed 20 000 times, one at a time; \
                p50/p99 from asking it to crash to its replacement's first reply",
        run: |cfg| Box::pin(restart::restart_workload(cfg)),
    },
    Workload {
        name: "publish_local",
        about: "one producer publishes 20 000 events to 100 local subscribers (2 M deliveries), \
                timed until every subscriber has every event, in order",
        run: |cfg| Box::pin(publish_local::publish_workload(cfg)),
    },
    Workload {
        name: "pool_call",
        about: "8 caller tasks make 200 000 calls through a round-robin pool of 4 workers; \
                least_busy_rate: the same with least-busy routing",
        run: |cfg| Box::pin(pool::pool_workload(cfg)),
    },
    Workload {
        name: "tcp_echo_c1",
        about: "1 client connection sends 50 000 lines to a TcpServer whose connection actor \
                echoes them, one round trip at a time, with p50 and p99",
        run: |cfg| {
            Box::pin(net::tcp_echo_workload(
                cfg,
                "tcp_echo_c1",
                1,
                cfg.count(50_000),
            ))
        },
    },
    Workload {
        name: "tcp_echo_c50",
        about: "50 client connections send 200 000 lines in all, as tcp_echo_c1",
        run: |cfg| {
            Box::pin(net::tcp_echo_workload(
                cfg,
                "tcp_echo_c50",
                50,
                cfg.count(200_000),
            ))
        },
    },
    Workload {
        name: "http_rps",
        about: "16 keep-alive clients make 100 000 GET requests to an HttpServer route served by \
                one actor; baseline: a plain axum handler",
        run: |cfg| Box::pin(net::http_rps_workload(cfg, cfg.count(100_000))),
    },
    Workload {
        name: "chaos_reconnect",
        about: "one sender casts flat out to a remote sink while the client disconnects every \
                200 ms, 50 times; reorders, duplicates, failed and silent losses",
        run: |cfg| Box::pin(remote::chaos::chaos_workload(cfg)),
    },
    Workload {
        name: "remote_tell_p1",
        about: "one sender casts 1 000 000 messages to a remote sink in another OS process",
        run: |cfg| {
            Box::pin(remote::tell::remote_tell_workload(
                cfg,
                "remote_tell_p1",
                1,
                cfg.count(1_000_000),
            ))
        },
    },
    Workload {
        name: "remote_tell_p2",
        about: "two sender -> remote sink pairs, 1 000 000 casts in all",
        run: |cfg| {
            Box::pin(remote::tell::remote_tell_workload(
                cfg,
                "remote_tell_p2",
                2,
                cfg.count(1_000_000),
            ))
        },
    },
    Workload {
        name: "remote_ask",
        about: "50 000 sequential remote calls after 5 000 warm-up ones, with p50 and p99",
        run: |cfg| Box::pin(remote::ask::remote_ask_workload(cfg, cfg.count(50_000))),
    },
    Workload {
        name: "remote_tell_p1_tls",
        about: "remote_tell_p1 with mutual TLS; ratio_vs_plain against interleaved plain runs",
        run: |cfg| {
            Box::pin(remote::tell::remote_tell_tls_workload(
                cfg,
                "remote_tell_p1_tls",
                "remote_tell_p1",
                cfg.count(1_000_000),
            ))
        },
    },
    Workload {
        name: "remote_ask_tls",
        about: "remote_ask with mutual TLS; ratio_vs_plain against interleaved plain runs",
        run: |cfg| Box::pin(remote::ask::remote_ask_tls_workload(cfg, cfg.count(50_000))),
    },
    Workload {
        name: "publish_remote",
        about: "one producer publishes 1 000 000 remote events to 10 subscribers on each of 2 \
                nodes in 2 other OS processes (20 M deliveries), at most 50 000 ahead",
        run: |cfg| Box::pin(publish_remote::publish_remote_workload(cfg)),
    },
];
