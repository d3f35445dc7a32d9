//! Remote workloads: a client node in this process talks to a server node in another OS process
//! (this binary re-executed with [`SERVE_ARG`]) over 127.0.0.1.
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

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ergo::net::tls::dev::DevCa;
use ergo::net::tls::TlsConfig;
use ergo::prelude::*;
use ergo::NodeBuilder;
use ergo_testkit::process::{self, ChildProcess, SelfExe};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use super::{best_of, check, join, line, percentiles, report, BenchResult, Config, Sample};

/// The hidden first argument that turns this binary into a remote workload's server process:
/// `--remote-server node NAME` (an ergo node called `NAME`), `--remote-server tokio`, or
/// `--remote-server subscribers NAME PRODUCER ADDR` (the subscriber node of `publish_remote`).
const SERVE_ARG: &str = "--remote-server";

/// The cookie shared by the two nodes, handed to the server process in its environment.
const COOKIE_ENV: &str = "ERGO_BENCH_COOKIE";

/// The TLS identity of a server node, in PEM, handed to it in its environment by the TLS
/// workloads (and removed from the environment of every other server process): the CA
/// certificate, the node's certificate and its private key (of a throwaway development CA).
const TLS_ENV: [&str; 3] = [
    "ERGO_BENCH_TLS_CA",
    "ERGO_BENCH_TLS_CERT",
    "ERGO_BENCH_TLS_KEY",
];

/// Optional: connections per peer of both nodes (default: ergo's, 2), to compare layouts.
const CONNS_ENV: &str = "ERGO_BENCH_REMOTE_CONNS";

/// Registered names on the server node: one sink per pair of `remote_tell_p2`, one echo.
const SINK_NAMES: [&str; 2] = ["sink0", "sink1"];
const ECHO_NAME: &str = "echo";

/// How long a server process has to print its address.
const SERVER_START_DEADLINE: Duration = Duration::from_secs(20);

/// How long a server process lives at most (it normally ends when the parent closes its stdin).
const SERVER_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How long the measured part of a run may take before the workload fails as stalled (the
/// full counts normally take a second or two).
pub(super) const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The timeout of each remote call (setup, tallies, every ask).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The targets: `(workload, metric, target, unit)`; rates are floors, latencies ceilings.
const TARGETS: [(&str, &str, u64, &str); 3] = [
    ("remote_tell_p1", "rate", 2_000_000, "msg/s"),
    ("remote_tell_p2", "rate", 2_000_000, "msg/s"),
    ("remote_ask", "p50", 25_000, "ns"),
];

/// Calls made before the measured ones of `remote_ask` (capped by the measured count).
const ASK_WARMUP: u64 = 5_000;

// ---------------------------------------------------------------------------------------------
// The actors served by the server node
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

/// When this process was started as a server, runs it and returns its exit code.
pub(super) fn serve_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(SERVE_ARG) {
        return None;
    }
    let kind = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ergo-bench server: cannot build the runtime: {e}");
            return Some(ExitCode::FAILURE);
        }
    };
    let served = runtime.block_on(async {
        match (kind.as_str(), rest.as_slice()) {
            ("node", [name]) => serve_node(name).await,
            ("tokio", []) => serve_tokio().await,
            ("subscribers", [name, producer, addr]) => {
                super::publish_remote::serve_subscribers(name, producer, addr).await
            }
            _ => Err(format!(
                "usage: {SERVE_ARG} node NAME | {SERVE_ARG} tokio | \
                 {SERVE_ARG} subscribers NAME PRODUCER ADDR"
            )),
        }
    });
    match served {
        Ok(()) => {
            // Some tasks (connections, actors) are still running: end without waiting for them.
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("ergo-bench server: FAILED: {e}");
            Some(ExitCode::FAILURE)
        }
    }
}

/// Prints `addr` as the ready line the parent waits for, then waits until stdin closes (the
/// parent is done, or gone), Ctrl-C, or `SERVER_MAX_LIFETIME` has passed.
pub(super) async fn announce_and_wait(addr: SocketAddr) -> BenchResult<()> {
    process::announce_ready(&addr.to_string());
    match tokio::time::timeout(SERVER_MAX_LIFETIME, process::wait_for_release()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("watching stdin: {e}")),
        Err(_) => Err(format!(
            "still running after {SERVER_MAX_LIFETIME:?}; the parent never closed stdin"
        )),
    }
}

pub(super) fn cookie_from_env() -> BenchResult<String> {
    std::env::var(COOKIE_ENV)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("no cookie in {COOKIE_ENV}"))
}

/// `Some(n)` when `ERGO_BENCH_REMOTE_CONNS` is set.
fn conns_from_env() -> BenchResult<Option<usize>> {
    match std::env::var(CONNS_ENV) {
        Err(_) => Ok(None),
        Ok(v) => v
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .map(Some)
            .ok_or_else(|| format!("{CONNS_ENV} must be a positive number, not {v:?}")),
    }
}

pub(super) fn networked(builder: NodeBuilder, cookie: &str) -> BenchResult<NodeBuilder> {
    let builder = builder.cookie(cookie);
    Ok(match conns_from_env()? {
        Some(n) => builder.connections_per_peer(n),
        None => builder,
    })
}

/// The server's TLS configuration when the parent handed it one ([`TLS_ENV`]).
fn tls_from_env() -> BenchResult<Option<TlsConfig>> {
    let Some(ca) = std::env::var_os(TLS_ENV[0]) else {
        return Ok(None);
    };
    let var = |name: &str| {
        std::env::var(name).map_err(|e| format!("{name} (set with {}): {e}", TLS_ENV[0]))
    };
    let ca = ca
        .into_string()
        .map_err(|_| format!("{} is not UTF-8", TLS_ENV[0]))?;
    let (cert, key) = (var(TLS_ENV[1])?, var(TLS_ENV[2])?);
    TlsConfig::from_pem(ca.as_bytes(), cert.as_bytes(), key.as_bytes())
        .map(Some)
        .map_err(|e| format!("TLS configuration from the environment: {e}"))
}

/// The server node: two sinks and an echo, registered, until stdin closes. With mutual TLS
/// when the parent handed it a certificate.
async fn serve_node(name: &str) -> BenchResult<()> {
    let cookie = cookie_from_env()?;
    let mut builder = networked(Node::builder(name), &cookie)?.listen("127.0.0.1:0");
    if let Some(tls) = tls_from_env()? {
        builder = builder.tls(tls);
    }
    let node = builder
        .start()
        .await
        .map_err(|e| format!("server node start: {e}"))?;
    for sink_name in SINK_NAMES {
        let sink = node
            .spawn(RemoteSink {
                received: 0,
                next_seq: Vec::new(),
                out_of_order: 0,
            })
            .await
            .map_err(|e| format!("spawn {sink_name}: {e}"))?;
        node.register(sink_name, &sink)
            .map_err(|e| format!("register {sink_name}: {e}"))?;
    }
    let echo = node
        .spawn(RemoteEcho { calls: 0 })
        .await
        .map_err(|e| format!("spawn {ECHO_NAME}: {e}"))?;
    node.register(ECHO_NAME, &echo)
        .map_err(|e| format!("register {ECHO_NAME}: {e}"))?;
    let addr = node
        .listen_addr()
        .ok_or("the server node does not listen")?;
    announce_and_wait(addr).await
}

/// First byte of a baseline connection: what it is for.
const TOKIO_TELL: u8 = b'T';
const TOKIO_ASK: u8 = b'A';
/// `publish_remote`'s baseline: see [`super::publish_remote::tokio_fan_out`].
pub(super) const TOKIO_FAN_OUT: u8 = b'F';

/// The baseline server: plain tokio tasks, one per connection.
async fn serve_tokio() -> BenchResult<()> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                if let Err(e) = tokio_conn(stream).await {
                    eprintln!("ergo-bench server: baseline connection: {e}");
                }
            });
        }
    });
    announce_and_wait(addr).await
}

/// A baseline connection. Tell: `expected: u64`, then frames `from: u32, seq: u64`; answers
/// `(received, out_of_order)` once `expected` frames came. Ask: each `x: u64` is answered with
/// `x + 1` until the client closes. Fan-out: see [`super::publish_remote::tokio_fan_out`].
async fn tokio_conn(stream: TcpStream) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = tokio::io::BufReader::with_capacity(64 * 1024, r);
    match r.read_u8().await? {
        TOKIO_TELL => {
            let expected = r.read_u64_le().await?;
            let (mut received, mut out_of_order, mut next) = (0u64, 0u64, Vec::<u64>::new());
            while received < expected {
                let from = r.read_u32_le().await? as usize;
                let seq = r.read_u64_le().await?;
                if from >= next.len() {
                    next.resize(from + 1, 0);
                }
                if seq != next[from] {
                    out_of_order += 1;
                }
                next[from] = seq + 1;
                received += 1;
            }
            w.write_u64_le(received).await?;
            w.write_u64_le(out_of_order).await?;
        }
        TOKIO_ASK => loop {
            let x = match r.read_u64_le().await {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            };
            w.write_u64_le(x + 1).await?;
        },
        TOKIO_FAN_OUT => super::publish_remote::tokio_fan_out(r, w).await?,
        other => {
            return Err(std::io::Error::other(format!("unknown mode byte {other}")));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The parent's side
// ---------------------------------------------------------------------------------------------

/// A running server process; killed (and reaped) when dropped, whatever the exit path (the
/// guard is the testkit's [`ChildProcess`]).
pub(super) struct ServerProcess {
    child: ChildProcess,
    /// The server's address, from its ready line.
    pub(super) addr: SocketAddr,
}

impl ServerProcess {
    /// Starts this binary as a server (`args` after [`SERVE_ARG`]) and reads its address.
    /// `env` is added to its environment (and the [`TLS_ENV`] variables are removed from it
    /// unless `env` sets them).
    pub(super) async fn start(
        args: &[&str],
        cookie: &str,
        env: &[(&str, String)],
    ) -> BenchResult<ServerProcess> {
        let exe = SelfExe::current().map_err(|e| format!("current_exe: {e}"))?;
        let mut command = exe.command(std::iter::once(SERVE_ARG).chain(args.iter().copied()));
        for var in TLS_ENV {
            command.env_remove(var);
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let name = format!("server {}", args.join(" "));
        let mut child =
            ChildProcess::spawn(command, &name, COOKIE_ENV, cookie).map_err(|e| e.to_string())?;
        let addr = child
            .ready(SERVER_START_DEADLINE, |line| line.trim().parse().ok())
            .await
            .map_err(|e| e.to_string())?;
        Ok(ServerProcess { child, addr })
    }

    /// Fails if the server process has already ended (crashed).
    pub(super) fn check_alive(&mut self) -> BenchResult<()> {
        if self.child.has_exited() {
            Err(format!(
                "the process of `{}` ended early",
                self.child.name()
            ))
        } else {
            Ok(())
        }
    }
}

/// A fresh cookie for one run (not a secret worth more: the nodes only listen on loopback).
pub(super) fn new_cookie() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let a = h.finish();
    let b = RandomState::new().build_hasher().finish();
    format!("ergo-bench-{a:016x}{b:016x}")
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

// ---------------------------------------------------------------------------------------------
// remote_tell_p1, remote_tell_p2
// ---------------------------------------------------------------------------------------------

/// `pairs` sender → sink pairs casting `total` messages in all across the processes.
pub(super) async fn remote_tell_workload(
    cfg: &Config,
    workload: &str,
    pairs: usize,
    total: u64,
) -> BenchResult<()> {
    let per_pair = total / pairs as u64;
    println!(
        "# {workload}: {pairs} sender(s) here -> {pairs} sink(s) in a server process, {} casts \
         in all, timed until a tally call after the last cast counts them all; target >= 2 M \
         msg/s; peer: Ergo (Go) 0.8 M tells/s between two node processes over loopback",
        pairs as u64 * per_pair
    );
    let ergo = best_of(cfg.reps, |rep| {
        ergo_remote_tell(workload, rep, pairs, per_pair, false)
    })
    .await?;
    let tokio = best_of(cfg.reps, |_| tokio_remote_tell(pairs, per_pair)).await?;
    report(workload, "msg/s", &ergo, &tokio);
    report_target(workload, "rate", ergo.rate(), true);
    Ok(())
}

/// `plain` (a `remote_tell_p1`-like workload: one sender → sink pair) with mutual TLS on
/// both nodes, `total` casts.
pub(super) async fn remote_tell_tls_workload(
    cfg: &Config,
    workload: &str,
    plain: &str,
    total: u64,
) -> BenchResult<()> {
    println!(
        "# {workload}: {plain} with mutual TLS (rustls, ring provider) on both nodes, a \
         certificate per node from a development CA made per run; {total} casts, timed as \
         {plain}; no target; plain_rate: plain {plain} runs interleaved with the TLS runs \
         (best of {reps} each), ratio_vs_plain = rate / plain_rate",
        reps = cfg.reps
    );
    let (plain, tls) = best_of_interleaved(
        cfg.reps,
        |rep| ergo_remote_tell(plain, rep, 1, total, false),
        |rep| ergo_remote_tell(workload, rep, 1, total, true),
    )
    .await?;
    report_vs_plain(workload, "msg/s", &tls, &plain);
    Ok(())
}

/// A stall's message, with how far each sender got.
fn stalled(what: &str, progress: &[Arc<AtomicU64>], per_pair: u64) -> String {
    let got: Vec<String> = progress
        .iter()
        .map(|p| format!("{}/{per_pair}", p.load(Ordering::Relaxed)))
        .collect();
    format!(
        "{what}: stalled, not done {RUN_DEADLINE:?} after the start (messages sent per sender: {})",
        got.join(", ")
    )
}

async fn ergo_remote_tell(
    workload: &str,
    rep: usize,
    pairs: usize,
    per_pair: u64,
    tls: bool,
) -> BenchResult<Sample> {
    let pair = Pair::start(workload, rep, tls).await?;
    let mut sinks = Vec::with_capacity(pairs);
    for name in &SINK_NAMES[..pairs] {
        let sink = pair.lookup::<RemoteSink>(name).await?;
        let tally = sink
            .tally()
            .timeout(CALL_TIMEOUT)
            .await
            .map_err(|e| format!("tally of {name} before the run: {e}"))?;
        check(format_args!("{name} before the run"), tally, (0, 0))?;
        sinks.push(sink);
    }

    let progress: Vec<Arc<AtomicU64>> = (0..pairs).map(|_| Arc::default()).collect();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(pairs);
    for (i, sink) in sinks.iter().enumerate() {
        let (sink, sent) = (sink.clone(), progress[i].clone());
        tasks.push(tokio::spawn(async move {
            for seq in 0..per_pair {
                sink.hit(0, seq)
                    .await
                    .map_err(|_| format!("cast {seq} to sink {i}: the connection is closed"))?;
                sent.store(seq + 1, Ordering::Relaxed);
            }
            // The tally call follows the casts on the same connection, into the same
            // mailbox: its reply normally already counts every cast. Poll in case not.
            loop {
                let (received, out_of_order) = sink
                    .tally()
                    .timeout(CALL_TIMEOUT)
                    .await
                    .map_err(|e| format!("tally of sink {i}: {e}"))?;
                if received >= per_pair {
                    return Ok((received, out_of_order));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    let all = async {
        let mut tallies = Vec::with_capacity(pairs);
        for task in tasks {
            tallies.push(join(task).await?);
        }
        Ok::<_, String>(tallies)
    };
    let tallies = tokio::time::timeout(RUN_DEADLINE, all)
        .await
        .map_err(|_| stalled(workload, &progress, per_pair))??;
    let elapsed = start.elapsed();

    for (i, tally) in tallies.into_iter().enumerate() {
        check(
            format_args!("sink {i} (received, out of order)"),
            tally,
            (per_pair, 0),
        )?;
    }
    pair.finish().await?;
    Ok(Sample {
        elapsed,
        ops: pairs as u64 * per_pair,
        latency: None,
        rss_per_op: None,
    })
}

async fn tokio_remote_tell(pairs: usize, per_pair: u64) -> BenchResult<Sample> {
    let mut server = ServerProcess::start(&["tokio"], "unused", &[]).await?;
    let mut streams = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        let s = TcpStream::connect(server.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        streams.push(s);
    }
    let progress: Vec<Arc<AtomicU64>> = (0..pairs).map(|_| Arc::default()).collect();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(pairs);
    for (i, stream) in streams.into_iter().enumerate() {
        let sent = progress[i].clone();
        tasks.push(tokio::spawn(async move {
            let io = |e: std::io::Error| format!("baseline connection {i}: {e}");
            let (mut r, w) = stream.into_split();
            let mut w = BufWriter::with_capacity(64 * 1024, w);
            w.write_u8(TOKIO_TELL).await.map_err(io)?;
            w.write_u64_le(per_pair).await.map_err(io)?;
            for seq in 0..per_pair {
                w.write_u32_le(0).await.map_err(io)?;
                w.write_u64_le(seq).await.map_err(io)?;
                sent.store(seq + 1, Ordering::Relaxed);
            }
            w.flush().await.map_err(io)?;
            let received = r.read_u64_le().await.map_err(io)?;
            let out_of_order = r.read_u64_le().await.map_err(io)?;
            Ok((received, out_of_order))
        }));
    }
    let all = async {
        let mut tallies = Vec::with_capacity(pairs);
        for task in tasks {
            tallies.push(join(task).await?);
        }
        Ok::<_, String>(tallies)
    };
    let tallies = tokio::time::timeout(RUN_DEADLINE, all)
        .await
        .map_err(|_| stalled("tokio baseline", &progress, per_pair))??;
    let elapsed = start.elapsed();
    for (i, tally) in tallies.into_iter().enumerate() {
        check(
            format_args!("baseline connection {i} (received, out of order)"),
            tally,
            (per_pair, 0),
        )?;
    }
    server.check_alive()?;
    Ok(Sample {
        elapsed,
        ops: pairs as u64 * per_pair,
        latency: None,
        rss_per_op: None,
    })
}

// ---------------------------------------------------------------------------------------------
// remote_ask
// ---------------------------------------------------------------------------------------------

/// `calls` sequential remote calls after a warm-up, with p50 and p99 latency.
pub(super) async fn remote_ask_workload(cfg: &Config, calls: u64) -> BenchResult<()> {
    let warmup = ASK_WARMUP.min(calls);
    println!(
        "# remote_ask: {calls} sequential calls to an echo in a server process, after {warmup} \
         warm-up calls; target p50 <= 25 us; peer: Ergo (Go) 42 us per remote call"
    );
    let ergo = best_of(cfg.reps, |rep| {
        ergo_remote_ask("remote_ask", rep, warmup, calls, false)
    })
    .await?;
    let tokio = best_of(cfg.reps, |_| tokio_remote_ask(warmup, calls)).await?;
    report("remote_ask", "calls/s", &ergo, &tokio);
    if let Some((p50, _)) = ergo.latency {
        report_target("remote_ask", "p50", p50 as f64, false);
    }
    Ok(())
}

/// `remote_ask` with mutual TLS on both nodes.
pub(super) async fn remote_ask_tls_workload(cfg: &Config, calls: u64) -> BenchResult<()> {
    const WORKLOAD: &str = "remote_ask_tls";
    let warmup = ASK_WARMUP.min(calls);
    println!(
        "# {WORKLOAD}: remote_ask with mutual TLS (rustls, ring provider) on both nodes, a \
         certificate per node from a development CA made per run; {calls} sequential calls \
         after {warmup} warm-up calls; no target; plain_*: plain remote_ask runs interleaved \
         with the TLS runs (best of {reps} each), ratio_vs_plain = rate / plain_rate",
        reps = cfg.reps
    );
    let (plain, tls) = best_of_interleaved(
        cfg.reps,
        |rep| ergo_remote_ask("remote_ask", rep, warmup, calls, false),
        |rep| ergo_remote_ask(WORKLOAD, rep, warmup, calls, true),
    )
    .await?;
    report_vs_plain(WORKLOAD, "calls/s", &tls, &plain);
    Ok(())
}

async fn ergo_remote_ask(
    workload: &str,
    rep: usize,
    warmup: u64,
    calls: u64,
    tls: bool,
) -> BenchResult<Sample> {
    let pair = Pair::start(workload, rep, tls).await?;
    let echo = pair.lookup::<RemoteEcho>(ECHO_NAME).await?;
    let caller = echo.clone();
    let done = Arc::new(AtomicU64::new(0));
    let progress = done.clone();
    let run = join(tokio::spawn(async move {
        for x in 0..warmup {
            let reply = caller
                .echo(x)
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(|e| format!("warm-up call {x}: {e}"))?;
            check(format_args!("reply to warm-up call {x}"), reply, x + 1)?;
        }
        let mut latencies = Vec::with_capacity(calls as usize);
        let start = Instant::now();
        for x in 0..calls {
            let t = Instant::now();
            let reply = caller
                .echo(x)
                .timeout(CALL_TIMEOUT)
                .await
                .map_err(|e| format!("call {x}: {e}"))?;
            latencies.push(t.elapsed().as_nanos() as u64);
            check(format_args!("reply to call {x}"), reply, x + 1)?;
            progress.store(x + 1, Ordering::Relaxed);
        }
        Ok((start.elapsed(), latencies))
    }));
    let (elapsed, latencies) = tokio::time::timeout(RUN_DEADLINE, run)
        .await
        .map_err(|_| {
            format!(
                "{workload}: stalled, not done {RUN_DEADLINE:?} after the start ({}/{calls} timed \
             calls answered)",
                done.load(Ordering::Relaxed)
            )
        })??;
    let answered = echo
        .calls()
        .timeout(CALL_TIMEOUT)
        .await
        .map_err(|e| format!("calls of the echo: {e}"))?;
    check(
        "calls answered by the remote echo",
        answered,
        warmup + calls,
    )?;
    pair.finish().await?;
    Ok(Sample {
        elapsed,
        ops: calls,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

async fn tokio_remote_ask(warmup: u64, calls: u64) -> BenchResult<Sample> {
    let mut server = ServerProcess::start(&["tokio"], "unused", &[]).await?;
    let stream = TcpStream::connect(server.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let done = Arc::new(AtomicU64::new(0));
    let progress = done.clone();
    let run = join(tokio::spawn(async move {
        let io = |e: std::io::Error| format!("baseline connection: {e}");
        let (mut r, mut w) = stream.into_split();
        w.write_u8(TOKIO_ASK).await.map_err(io)?;
        let mut latencies = Vec::with_capacity(calls as usize);
        let mut start = Instant::now();
        for x in 0..warmup + calls {
            if x == warmup {
                start = Instant::now();
            }
            let t = Instant::now();
            w.write_u64_le(x).await.map_err(io)?;
            let reply = r.read_u64_le().await.map_err(io)?;
            if x >= warmup {
                latencies.push(t.elapsed().as_nanos() as u64);
                progress.store(x + 1 - warmup, Ordering::Relaxed);
            }
            check(format_args!("reply to request {x}"), reply, x + 1)?;
        }
        Ok((start.elapsed(), latencies))
    }));
    let (elapsed, latencies) = tokio::time::timeout(RUN_DEADLINE, run)
        .await
        .map_err(|_| {
            format!(
                "tokio_remote_ask: stalled, not done {RUN_DEADLINE:?} after the start ({}/{calls} \
             answered)",
                done.load(Ordering::Relaxed)
            )
        })??;
    server.check_alive()?;
    Ok(Sample {
        elapsed,
        ops: calls,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}
