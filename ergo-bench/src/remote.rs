//! Remote workloads: a client node in this process talks to a server node in another OS process
//! (this binary re-executed with [`SERVE_ARG`](server::SERVE_ARG)) over 127.0.0.1.
//!
//! The server process prints its listen address on stdout (its ready line) and serves until its
//! stdin closes (or it is killed); [`ServerProcess`] (over the testkit's child-process guard)
//! kills it on every exit path of the parent.
//! Each measured run starts its own server process, so every run has fresh connections and
//! fresh actors.
//!
//! The baselines (`tokio_remote_…`) are plain tokio TCP streams to a plain tokio server in the
//! same kind of child process: fixed 12-byte frames through a 64 KiB `BufWriter` for the tells,
//! an 8-byte request and reply for the calls. They are the floor of the transport, not a
//! second actor runtime.
//!
//! `remote_tell_p1_tls` and `remote_ask_tls` are `remote_tell_p1` and `remote_ask` with mutual
//! TLS on both nodes: the parent makes a development CA ([`DevCa`]) per run, issues a
//! certificate to each node, and hands the server process the CA certificate and its own
//! certificate and key as PEM in its environment ([`TLS_ENV`]; nothing is written to disk).
//! They are compared with plain runs interleaved with theirs (`ratio_vs_plain`), not with a
//! baseline.

//!
//! Files: `server.rs` is the server process (and the parent's handle on it), `tell.rs` the
//! remote tell workloads, `ask.rs` the remote calls; this file holds what they share (the
//! served actors, the client/server [`Pair`], the targets and the TLS comparison).

use std::time::Duration;

use ergo::net::tls::dev::DevCa;
use ergo::prelude::*;

use crate::measure::{line, BenchResult, Sample};
use server::{networked, new_cookie, ServerProcess, TLS_ENV};

pub(crate) mod ask;
pub(crate) mod chaos;
pub(crate) mod server;
pub(crate) mod tell;

/// Registered names on the server node: one sink per pair of `remote_tell_p2`, one echo.
const SINK_NAMES: [&str; 2] = ["sink0", "sink1"];
/// The registered name of the echo.
const ECHO_NAME: &str = "echo";

/// How long the measured part of a run may take before the workload fails as stalled (the
/// full counts normally take a second or two).
pub(crate) const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The timeout of each remote call (setup, tallies, every ask).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The targets: `(workload, metric, target, unit)`; rates are floors, latencies ceilings.
const TARGETS: [(&str, &str, u64, &str); 3] = [
    ("remote_tell_p1", "rate", 2_000_000, "msg/s"),
    ("remote_tell_p2", "rate", 2_000_000, "msg/s"),
    ("remote_ask", "p50", 25_000, "ns"),
];

/// Calls made before the measured ones of `remote_ask` (capped by the measured count).
const ASK_WARMUP: u64 = 5_000;

/// Receives the casts of the remote tell workloads and checks each sender's order.
struct RemoteSink {
    received: u64,
    next_seq: Vec<u64>,
    out_of_order: u64,
}

#[actor(remote)]
impl RemoteSink {
    /// Message `seq` of sender `from`.
    #[handle]
    fn hit(&mut self, from: u32, seq: u64) {
        let from = from as usize;
        if from >= self.next_seq.len() {
            self.next_seq.resize(from + 1, 0);
        }
        let next = &mut self.next_seq[from];
        if seq != *next {
            self.out_of_order += 1;
        }
        *next = seq + 1;
        self.received += 1;
    }

    /// Messages received, and how many of them arrived out of order.
    #[handle]
    fn tally(&self) -> (u64, u64) {
        (self.received, self.out_of_order)
    }
}

/// Answers the calls of `remote_ask` with their argument plus one.
struct RemoteEcho {
    calls: u64,
}

#[actor(remote)]
impl RemoteEcho {
    /// Replies `x + 1`.
    #[handle]
    fn echo(&mut self, x: u64) -> u64 {
        self.calls += 1;
        x + 1
    }

    /// Calls answered so far (this one excluded).
    #[handle]
    fn calls(&self) -> u64 {
        self.calls
    }
}

/// A server node in its own process and a client node here, routed to it and connected.
struct Pair {
    server: ServerProcess,
    client: Node,
    server_name: String,
}

impl Pair {
    /// With `tls`, both nodes use mutual TLS with certificates of a fresh development CA.
    async fn start(workload: &str, rep: usize, tls: bool) -> BenchResult<Pair> {
        let cookie = new_cookie();
        let tag = format!("{}-{rep}", workload.replace('_', "-"));
        let server_name = format!("bench-server-{tag}@localhost");
        let client_name = format!("bench-client-{tag}@localhost");
        let (server_env, client_tls) = if tls {
            let err = |e: ergo::net::tls::TlsError| format!("TLS certificates: {e}");
            let ca = DevCa::new().map_err(err)?;
            let server_cert = ca.issue(&server_name).map_err(err)?;
            let client_tls = ca.config_for(&ca.issue(&client_name).map_err(err)?);
            let env = vec![
                (TLS_ENV[0], ca.ca_pem()),
                (TLS_ENV[1], server_cert.cert_pem),
                (TLS_ENV[2], server_cert.key_pem),
            ];
            (env, Some(client_tls.map_err(err)?))
        } else {
            (Vec::new(), None)
        };
        let server = ServerProcess::start(&["node", &server_name], &cookie, &server_env).await?;
        let mut builder = networked(Node::builder(client_name), &cookie)?
            .no_listen()
            .route(server_name.clone(), server.addr.to_string());
        if let Some(tls) = client_tls {
            builder = builder.tls(tls);
        }
        let client = builder
            .start()
            .await
            .map_err(|e| format!("client node start: {e}"))?;
        tokio::time::timeout(CALL_TIMEOUT, client.connect(&server_name))
            .await
            .map_err(|_| format!("connecting to {server_name}: timed out"))?
            .map_err(|e| format!("connecting to {server_name}: {e}"))?;
        Ok(Pair {
            server,
            client,
            server_name,
        })
    }

    async fn lookup<A: RemoteActor>(&self, name: &str) -> BenchResult<ActorRef<A>> {
        tokio::time::timeout(
            CALL_TIMEOUT,
            self.client.lookup::<A>(name, &self.server_name),
        )
        .await
        .map_err(|_| format!("lookup of {name}: timed out"))?
        .map_err(|e| format!("lookup of {name}: {e}"))
    }

    /// Checks the server is still up, then shuts the client down (the server process ends
    /// when `self.server` drops).
    async fn finish(mut self) -> BenchResult<()> {
        self.server.check_alive()?;
        self.client.shutdown(Duration::from_secs(1)).await;
        Ok(())
    }
}

/// Runs `plain` and `tls` alternately, `reps` times each, and keeps the fastest run of each:
/// both see the same load, so their ratio is fairer than one against a figure taken earlier.
async fn best_of_interleaved<P, PF, T, TF>(
    reps: usize,
    mut plain: P,
    mut tls: T,
) -> BenchResult<(Sample, Sample)>
where
    P: FnMut(usize) -> PF,
    PF: std::future::Future<Output = BenchResult<Sample>>,
    T: FnMut(usize) -> TF,
    TF: std::future::Future<Output = BenchResult<Sample>>,
{
    let keep = |best: &mut Option<Sample>, sample: Sample| {
        if best.as_ref().is_none_or(|b| sample.elapsed < b.elapsed) {
            *best = Some(sample);
        }
    };
    let (mut best_plain, mut best_tls) = (None, None);
    for rep in 0..reps {
        keep(&mut best_tls, tls(rep).await?);
        keep(&mut best_plain, plain(rep).await?);
    }
    Ok((best_plain.ok_or("no run")?, best_tls.ok_or("no run")?))
}

/// Prints a TLS workload's figures beside those of its plain workload, and their ratio.
fn report_vs_plain(workload: &str, unit: &str, tls: &Sample, plain: &Sample) {
    line(workload, "rate", format!("{:.0}", tls.rate()), unit);
    if let Some((p50, p99)) = tls.latency {
        line(workload, "p50", p50, "ns");
        line(workload, "p99", p99, "ns");
    }
    line(workload, "plain_rate", format!("{:.0}", plain.rate()), unit);
    if let Some((p50, p99)) = plain.latency {
        line(workload, "plain_p50", p50, "ns");
        line(workload, "plain_p99", p99, "ns");
    }
    line(
        workload,
        "ratio_vs_plain",
        format!("{:.2}", tls.rate() / plain.rate()),
        "x",
    );
}

/// Prints the target of `workload` beside its figures, and how far the figure is from it.
fn report_target(workload: &str, metric: &str, got: f64, higher_is_better: bool) {
    if let Some(&(.., target, unit)) = TARGETS
        .iter()
        .find(|(w, m, ..)| *w == workload && *m == metric)
    {
        line(workload, &format!("{metric}_target"), target, unit);
        let ratio = if higher_is_better {
            got / target as f64
        } else {
            target as f64 / got
        };
        line(
            workload,
            &format!("{metric}_vs_target"),
            format!("{ratio:.2}"),
            "x",
        );
    }
}
