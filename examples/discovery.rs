//! Discovery and remote spawn: nodes with no routes find each other through the embedded
//! registrar, and one starts a worker on the other.
//!
//! `cargo run --example discovery` starts a second OS process (this binary with the argument
//! `worker`) as node `discovery-worker@localhost`. Neither node is told where the other
//! listens: both register with the host's embedded registrar (the first node on the host
//! serves it on 127.0.0.1:4370, on a port of the example's own here so it does not meet other
//! nodes of the machine). The worker node allow-lists one factory, `"squarer"`; the main
//! node waits until the worker is registered, spawns a `Squarer` there by name, calls it,
//! shows that a name that is not allow-listed is refused, and stops the worker process.
//!
//! The same with etcd instead of the embedded registrar (an etcd server must be running):
//! `cargo run --example discovery --features etcd -- --etcd http://127.0.0.1:2379`. Both
//! processes then register under `/ergo/discovery-example` with a lease, and find each other
//! through etcd.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ergo::net::{EmbeddedRegistrar, RemoteSpawnError};
use ergo::prelude::*;

const COOKIE: &str = "discovery example cookie: use 32 random bytes in real deployments";
const REGISTRAR_PORT: u16 = 15_970;
const WORKER: &str = "discovery-worker@localhost";

/// Squares numbers; started remotely with an offset.
struct Squarer {
    offset: u64,
    served: u64,
}

#[actor(remote)]
impl Squarer {
    /// `n * n + offset`, on the worker node.
    #[handle]
    fn square(&mut self, n: u64) -> u64 {
        self.served += 1;
        n * n + self.offset
    }

    /// How many squares it computed.
    #[handle]
    fn served(&self) -> u64 {
        self.served
    }
}

/// Kills the worker process on every exit path.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The etcd endpoint given with `--etcd URL`, if any.
fn etcd_endpoint() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--etcd")
        .and_then(|i| args.get(i + 1).cloned())
}

/// A node builder with the registrar chosen on the command line.
async fn node(name: &str) -> Result<ergo::NodeBuilder, Box<dyn std::error::Error>> {
    let builder = Node::builder(name).cookie(COOKIE);
    match etcd_endpoint() {
        None => Ok(builder.registrar(EmbeddedRegistrar::with_port(REGISTRAR_PORT))),
        #[cfg(feature = "etcd")]
        Some(url) => {
            let etcd = ergo::net::EtcdRegistrar::connect([url], "/ergo/discovery-example").await?;
            Ok(builder.registrar(etcd))
        }
        #[cfg(not(feature = "etcd"))]
        Some(_) => Err("--etcd needs the `etcd` feature: cargo run --example discovery --features etcd -- --etcd URL".into()),
    }
}

/// The worker node: allow-lists `squarer` and runs until its parent closes stdin.
async fn worker() -> Result<(), Box<dyn std::error::Error>> {
    let node = node(WORKER).await?.start().await?;
    node.allow_spawn("squarer", |offset: u64| Squarer { offset, served: 0 })?;
    println!("worker: up as {WORKER}, allowing `squarer`");
    // The parent holds our stdin; its end (or its death) ends us.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await?;
    node.shutdown(Duration::from_millis(200)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("worker") {
        return worker().await;
    }
    let main = node("discovery-main@localhost").await?.start().await?;
    let mut worker_args = vec!["worker".to_string()];
    if let Some(url) = etcd_endpoint() {
        println!("registrar: etcd at {url}");
        worker_args.extend(["--etcd".to_string(), url]);
    } else {
        println!("registrar: embedded, on 127.0.0.1:{REGISTRAR_PORT}");
    }
    let child = Command::new(std::env::current_exe()?)
        .args(&worker_args)
        .stdin(Stdio::piped())
        .spawn()?;
    let _guard = ChildGuard(child);

    // Wait (bounded) until the worker has registered with the host's registrar.
    let registered = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(nodes) = main.registered_nodes().await {
                if nodes.iter().any(|(n, _)| n == WORKER) {
                    return nodes;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await?;
    for (name, addr) in &registered {
        println!("registrar knows {name} at {addr}");
    }

    let squarer = main
        .spawn_remote::<Squarer, _>(WORKER, "squarer", &1_000u64)
        .await?;
    println!(
        "spawned {} on {WORKER} (no route was configured)",
        squarer.pid()
    );
    for n in [3u64, 4, 12] {
        println!("square({n}) + 1000 = {}", squarer.square(n).await?);
    }
    println!("it served {} calls", squarer.served().await?);

    match main
        .spawn_remote::<Squarer, _>(WORKER, "shell", &0u64)
        .await
    {
        Err(e @ RemoteSpawnError::NotAllowed { .. }) => println!("refused as expected: {e}"),
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }

    main.shutdown(Duration::from_millis(200)).await;
    Ok(())
}
