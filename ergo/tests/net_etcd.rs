//! Discovery through etcd, against a real etcd server: nodes find each other by name, a dead
//! node's name goes when its lease expires, a watch sees nodes join and leave, and losing etcd
//! takes no connection down (the node registers again when etcd is back).
//!
//! Each test starts its own `etcd` (Debian package `etcd-server`) on free loopback ports with a
//! data dir of its own under the temporary dir, and kills it at the end. Without the `etcd`
//! binary the tests fail, saying how to install it.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ergo::net::{EtcdRegistrar, Membership};
use ergo::prelude::*;

const COOKIE: &str = "net-etcd test cookie, long and random enough";

/// The bound of every wait of these tests.
const WAIT: Duration = Duration::from_secs(15);

struct Echo;

#[actor(remote)]
impl Echo {
    #[handle]
    fn echo(&self, s: String) -> String {
        s
    }
}

// ---------------------------------------------------------------------------------------------
// A real etcd server
// ---------------------------------------------------------------------------------------------

/// An `etcd` child process on loopback ports, killed (and its data dir removed) on drop.
struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    async fn start() -> Etcd {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ergo-net-etcd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the etcd test dir");
        // Two free ports (held together so they differ).
        let (l1, l2) = (free_listener(), free_listener());
        let (client_port, peer_port) = (port(&l1), port(&l2));
        drop((l1, l2));
        let mut etcd = Etcd {
            child: None,
            dir,
            client_port,
            peer_port,
        };
        etcd.spawn();
        etcd.ready().await;
        etcd
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self) {
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .expect("open the etcd log");
        let spawned = Command::new("etcd")
            .arg("--name=ergo-test")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=ergo-test={peer}"))
            .arg("--initial-cluster-state=new")
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn();
        match spawned {
            Ok(child) => self.child = Some(child),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "the `etcd` binary is not on PATH: these tests need a real etcd server; \
                 install it with `apt-get install etcd-server` (.ci/run does)"
            ),
            Err(e) => panic!("cannot start etcd: {e}"),
        }
    }

    /// Waits (bounded) until etcd answers a registrar.
    async fn ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("etcd exited ({status}):\n{}", self.log());
            }
            if EtcdRegistrar::connect([self.url()], "/ergo-test/probe")
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not answer within {WAIT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills etcd (SIGKILL) and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data dir.
    async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.ready().await;
    }

    fn log(&self) -> String {
        let log = fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A runtime that a test kills at once (and that goes the same way if the test fails first: a
/// runtime must not be dropped inside another).
struct Doomed(Option<tokio::runtime::Runtime>);

impl Doomed {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("the runtime is alive")
    }

    fn kill(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Doomed {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")
}

fn port(listener: &TcpListener) -> u16 {
    listener.local_addr().expect("a bound address").port()
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A registrar for `cluster` on `etcd`, with a short lease.
async fn registrar(etcd: &Etcd, cluster: &str, ttl: Duration) -> EtcdRegistrar {
    within(
        "the registrar connects",
        EtcdRegistrar::connect([etcd.url()], format!("/ergo-test/{cluster}")),
    )
    .await
    .expect("etcd is reachable")
    .ttl(ttl)
}

async fn node(name: &str, registrar: EtcdRegistrar) -> Node {
    Node::builder(name)
        .cookie(COOKIE)
        .registrar(registrar)
        .start()
        .await
        .expect("node starts")
}

/// Awaits `fut` for at most [`WAIT`].
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting until {what}"),
    }
}

/// Waits (bounded) until `f` holds.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    within(what, async {
        while !f().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// The names `n`'s registrar lists (empty when it cannot be asked).
async fn names(n: &Node) -> Vec<String> {
    let mut names: Vec<String> = n
        .registered_nodes()
        .await
        .map(|all| all.into_iter().map(|(n, _)| n).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The next change `changes` reports that `pick` accepts (bounded).
async fn next_change(
    changes: &mut tokio::sync::broadcast::Receiver<Membership>,
    what: &str,
    pick: impl Fn(&Membership) -> bool,
) -> Membership {
    within(what, async {
        loop {
            match changes.recv().await {
                Ok(change) if pick(&change) => return change,
                Ok(_) => {}
                Err(e) => panic!("the watch ended: {e}"),
            }
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_registered_in_etcd_find_each_other_by_name() {
    let etcd = Etcd::start().await;
    let ttl = Duration::from_secs(2);
    let a = node("ne1-a@localhost", registrar(&etcd, "t1", ttl).await).await;
    let b = node("ne1-b@localhost", registrar(&etcd, "t1", ttl).await).await;
    eventually("both are registered", || async {
        names(&a).await == ["ne1-a@localhost", "ne1-b@localhost"]
    })
    .await;
    let listed = b.registered_nodes().await.unwrap();
    assert!(listed.contains(&(a.name().to_string(), a.listen_addr().unwrap())));

    // b knows a only by name: the registrar gives the address.
    a.register("echo", &a.spawn(Echo).await.unwrap()).unwrap();
    let echo = within("lookup", b.lookup::<Echo>("echo", a.name()))
        .await
        .unwrap();
    assert_eq!(echo.echo("found".into()).await.unwrap(), "found");

    // Another cluster (prefix) on the same etcd does not see them.
    let other = node("ne1-c@localhost", registrar(&etcd, "t1-other", ttl).await).await;
    eventually("c is registered", || async {
        names(&other).await == ["ne1-c@localhost"]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_disappears_when_its_lease_expires() {
    let etcd = Etcd::start().await;
    let ttl = Duration::from_secs(3);
    let b = node("ne2-b@localhost", registrar(&etcd, "t2", ttl).await).await;
    let mut changes = b.watch_nodes().expect("a registrar");

    // a runs in a runtime of its own, so that it can die at once, as a crashed process does:
    // nothing of it runs afterwards, its keep-alive task included, and nothing deregisters it.
    let mut doomed = Doomed(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap(),
    ));
    let (started, is_started) = tokio::sync::oneshot::channel();
    let url = etcd.url();
    doomed.runtime().spawn(async move {
        let registrar = EtcdRegistrar::connect([url], "/ergo-test/t2")
            .await
            .expect("etcd is reachable")
            .ttl(ttl);
        let a = node("ne2-a@localhost", registrar).await;
        let _ = started.send(());
        std::future::pending::<()>().await;
        drop(a);
    });
    within("a starts", is_started).await.unwrap();
    next_change(
        &mut changes,
        "b sees a join",
        |c| matches!(c, Membership::Joined { node, .. } if node == "ne2-a@localhost"),
    )
    .await;

    // b registers in the background too: wait until both are listed.
    within("both are registered", async {
        while names(&b).await != ["ne2-a@localhost", "ne2-b@localhost"] {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    doomed.kill();
    // Its lease has most of its time to live left: a is still listed...
    assert_eq!(names(&b).await, ["ne2-a@localhost", "ne2-b@localhost"]);
    // ...until etcd expires the lease, which deletes the key.
    next_change(
        &mut changes,
        "b sees a leave",
        |c| matches!(c, Membership::Left { node } if node == "ne2-a@localhost"),
    )
    .await;
    assert_eq!(names(&b).await, ["ne2-b@localhost"]);
    assert!(b.lookup::<Echo>("echo", "ne2-a@localhost").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_nodes_join_and_leave() {
    let etcd = Etcd::start().await;
    let ttl = Duration::from_secs(2);
    let a = node("ne3-a@localhost", registrar(&etcd, "t3", ttl).await).await;
    let mut changes = a.watch_nodes().expect("a registrar");

    let b = node("ne3-b@localhost", registrar(&etcd, "t3", ttl).await).await;
    let joined = next_change(
        &mut changes,
        "a sees b join",
        |c| matches!(c, Membership::Joined { node, .. } if node == "ne3-b@localhost"),
    )
    .await;
    assert_eq!(
        joined,
        Membership::Joined {
            node: "ne3-b@localhost".into(),
            addr: b.listen_addr().unwrap()
        }
    );

    // A node that stops revokes its lease: it leaves at once, without waiting for the TTL.
    b.shutdown(Duration::from_millis(50)).await;
    next_change(
        &mut changes,
        "a sees b leave",
        |c| matches!(c, Membership::Left { node } if node == "ne3-b@localhost"),
    )
    .await;
    // (a's own registration runs in the background: wait for it rather than race it.)
    within("only a is listed", async {
        while names(&a).await != ["ne3-a@localhost"] {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_etcd_keeps_connections_and_the_node_registers_again() {
    let mut etcd = Etcd::start().await;
    let ttl = Duration::from_secs(2);
    let a_registrar = registrar(&etcd, "t4", ttl).await;
    let a = node("ne4-a@localhost", a_registrar.clone()).await;
    let b = node("ne4-b@localhost", registrar(&etcd, "t4", ttl).await).await;
    eventually("both are registered", || async {
        a_registrar.lease().is_some() && names(&b).await == ["ne4-a@localhost", "ne4-b@localhost"]
    })
    .await;
    let mut changes = b.watch_nodes().expect("a registrar");
    a.register("echo", &a.spawn(Echo).await.unwrap()).unwrap();
    let echo = within("lookup", b.lookup::<Echo>("echo", a.name()))
        .await
        .unwrap();
    assert_eq!(echo.echo("before".into()).await.unwrap(), "before");
    let first_lease = a_registrar.lease().unwrap();

    // etcd dies. For longer than the lease's time to live, the connection b -> a carries calls
    // as before.
    etcd.kill();
    let outage = Instant::now();
    while outage.elapsed() < ttl + Duration::from_secs(1) {
        let reply = within("a call while etcd is down", echo.echo("during".into())).await;
        assert_eq!(reply.unwrap(), "during");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(b.connected_nodes().contains(&a.name().to_string()));
    // The registrar itself says etcd is gone (and does not hang).
    assert!(within("registered_nodes fails", b.registered_nodes())
        .await
        .is_err());

    // etcd comes back (same data dir, same ports): a registers again with a new lease.
    etcd.restart().await;
    eventually("a is registered again", || async {
        a_registrar
            .lease()
            .is_some_and(|lease| lease != first_lease)
            && names(&b).await == ["ne4-a@localhost", "ne4-b@localhost"]
    })
    .await;
    assert_eq!(echo.echo("after".into()).await.unwrap(), "after");

    // b's watch follows the new etcd too: it sees a newcomer join.
    let _c = node("ne4-c@localhost", registrar(&etcd, "t4", ttl).await).await;
    next_change(
        &mut changes,
        "b sees c join after the outage",
        |c| matches!(c, Membership::Joined { node, .. } if node == "ne4-c@localhost"),
    )
    .await;
}
