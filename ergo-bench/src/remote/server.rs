//! The server process of the remote workloads (this binary re-executed with [`SERVE_ARG`]),
//! and the parent's handle on it, [`ServerProcess`].

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use ergo::net::tls::TlsConfig;
use ergo::prelude::*;
use ergo::NodeBuilder;
use ergo_testkit::process::{self, ChildProcess, SelfExe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{RemoteEcho, RemoteSink, ECHO_NAME, SINK_NAMES};
use crate::measure::BenchResult;

/// The hidden first argument that turns this binary into a remote workload's server process:
/// `--remote-server node NAME` (an ergo node called `NAME`), `--remote-server tokio`, or
/// `--remote-server subscribers NAME PRODUCER ADDR` (the subscriber node of `publish_remote`).
pub(crate) const SERVE_ARG: &str = "--remote-server";

/// The cookie shared by the two nodes, handed to the server process in its environment.
const COOKIE_ENV: &str = "ERGO_BENCH_COOKIE";

/// The TLS identity of a server node, in PEM, handed to it in its environment by the TLS
/// workloads (and removed from the environment of every other server process): the CA
/// certificate, the node's certificate and its private key (of a throwaway development CA).
pub(crate) const TLS_ENV: [&str; 3] = [
    "ERGO_BENCH_TLS_CA",
    "ERGO_BENCH_TLS_CERT",
    "ERGO_BENCH_TLS_KEY",
];

/// Optional: connections per peer of both nodes (default: ergo's, 2), to compare layouts.
const CONNS_ENV: &str = "ERGO_BENCH_REMOTE_CONNS";

/// How long a server process has to print its address.
const SERVER_START_DEADLINE: Duration = Duration::from_secs(20);

/// How long a server process lives at most (it normally ends when the parent closes its stdin).
const SERVER_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// When this process was started as a server, runs it and returns its exit code.
pub(crate) fn serve_if_asked() -> Option<ExitCode> {
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
                crate::publish_remote::serve_subscribers(name, producer, addr).await
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
pub(crate) async fn announce_and_wait(addr: SocketAddr) -> BenchResult<()> {
    process::announce_ready(&addr.to_string());
    match tokio::time::timeout(SERVER_MAX_LIFETIME, process::wait_for_release()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("watching stdin: {e}")),
        Err(_) => Err(format!(
            "still running after {SERVER_MAX_LIFETIME:?}; the parent never closed stdin"
        )),
    }
}

pub(crate) fn cookie_from_env() -> BenchResult<String> {
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

pub(crate) fn networked(builder: NodeBuilder, cookie: &str) -> BenchResult<NodeBuilder> {
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
    let chaos = node
        .spawn(super::chaos::ChaosSink::new())
        .await
        .map_err(|e| format!("spawn {}: {e}", super::chaos::CHAOS_NAME))?;
    node.register(super::chaos::CHAOS_NAME, &chaos)
        .map_err(|e| format!("register {}: {e}", super::chaos::CHAOS_NAME))?;
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
pub(crate) const TOKIO_TELL: u8 = b'T';
pub(crate) const TOKIO_ASK: u8 = b'A';
/// `publish_remote`'s baseline: see [`crate::publish_remote::tokio_fan_out`].
pub(crate) const TOKIO_FAN_OUT: u8 = b'F';

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
/// `x + 1` until the client closes. Fan-out: see [`crate::publish_remote::tokio_fan_out`].
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
        TOKIO_FAN_OUT => crate::publish_remote::tokio_fan_out(r, w).await?,
        other => {
            return Err(std::io::Error::other(format!("unknown mode byte {other}")));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

/// A running server process; killed (and reaped) when dropped, whatever the exit path (the
/// guard is the testkit's [`ChildProcess`]).
pub(crate) struct ServerProcess {
    child: ChildProcess,
    /// The server's address, from its ready line.
    pub(crate) addr: SocketAddr,
}

impl ServerProcess {
    /// Starts this binary as a server (`args` after [`SERVE_ARG`]) and reads its address.
    /// `env` is added to its environment (and the [`TLS_ENV`] variables are removed from it
    /// unless `env` sets them).
    pub(crate) async fn start(
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
    pub(crate) fn check_alive(&mut self) -> BenchResult<()> {
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
pub(crate) fn new_cookie() -> String {
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
