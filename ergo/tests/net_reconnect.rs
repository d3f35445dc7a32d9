//! A link re-made under traffic: order per sender→receiver pair holds across any number of
//! reconnections (nothing from an older connection is delivered after anything from a newer
//! one), and each break is one `Down(NoConnection)`, never a second break of the link that
//! replaced it.
//!
//! The first two tests cut through a proxy that holds back what the first connection carries
//! until its successor has delivered: the receiver must not take the old connection's frames
//! after the new one's (a newer link of the peer replaces the old one, which goes down first),
//! and the old connection's end must not break the new link. The last two cut flat-out streams
//! and links many times from either side.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::net::{node, pair};
use ergo::prelude::*;
use parking_lot::Mutex;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Counts what arrives out of order.
#[derive(Default)]
struct Seq {
    received: u64,
    reorders: u64,
    duplicates: u64,
    last: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Tally {
    received: u64,
    reorders: u64,
    duplicates: u64,
    last: Option<u64>,
}

#[actor(remote)]
impl Seq {
    #[handle]
    fn got(&mut self, seq: u64) {
        self.received += 1;
        match self.last {
            Some(last) if seq == last => self.duplicates += 1,
            Some(last) if seq < last => self.reorders += 1,
            _ => self.last = Some(seq),
        }
    }

    #[handle]
    fn tally(&self) -> Tally {
        Tally {
            received: self.received,
            reorders: self.reorders,
            duplicates: self.duplicates,
            last: self.last,
        }
    }
}

/// A call that may meet a link being re-made: retried until it answers, for up to 10 s.
async fn tally(seq: &ActorRef<Seq>) -> Tally {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match seq.tally().await {
            Ok(tally) => return tally,
            Err(e) if Instant::now() < deadline => {
                eprintln!("tally: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no tally within 10 s: {e}"),
        }
    }
}

/// A TCP proxy on loopback in front of `target`. What a client sends on a connection can be
/// held back (`hold`) and let through later (`release`), after which the proxy closes that
/// connection's way to the target.
struct Proxy {
    addr: SocketAddr,
    pipes: Arc<Mutex<Vec<Arc<Pipe>>>>,
}

/// One proxied connection's client-to-target way.
#[derive(Default)]
struct Pipe {
    hold: AtomicBool,
    held: Mutex<Vec<u8>>,
    release: Notify,
    /// Set once the held bytes were offered to the target (taken or refused) and the way closed.
    done: Notify,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pipes: Arc<Mutex<Vec<Arc<Pipe>>>> = Arc::default();
        let list = pipes.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let pipe = Arc::new(Pipe::default());
                list.lock().push(pipe.clone());
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    loop {
                        let n = match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if pipe.hold.load(Ordering::SeqCst) {
                            pipe.held.lock().extend_from_slice(&buf[..n]);
                        } else if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    if pipe.hold.load(Ordering::SeqCst) {
                        pipe.release.notified().await;
                        let held = std::mem::take(&mut *pipe.held.lock());
                        let _ = server_write.write_all(&held).await;
                    }
                    let _ = server_write.shutdown().await;
                    pipe.done.notify_one();
                });
            }
        });
        Proxy { addr, pipes }
    }

    /// Every connection made through the proxy so far.
    fn all(&self) -> Vec<Arc<Pipe>> {
        self.pipes.lock().clone()
    }

    fn count(&self) -> usize {
        self.pipes.lock().len()
    }
}

/// Holds back what the clients send on `pipes`.
fn hold(pipes: &[Arc<Pipe>]) {
    for pipe in pipes {
        pipe.hold.store(true, Ordering::SeqCst);
    }
}

/// Lets what `pipes` held go to the target, then closes them; waits until they did.
async fn release(pipes: &[Arc<Pipe>]) {
    for pipe in pipes {
        pipe.release.notify_one();
        tokio::time::timeout(Duration::from_secs(5), pipe.done.notified())
            .await
            .expect("the proxy let the held bytes go and closed the connection");
    }
}

/// `a` and `b`, `b` reaching `a` through a proxy.
async fn proxied(a: &str, b: &str) -> (Node, Node, Proxy) {
    let a = node(a).await;
    let b = node(b).await;
    let proxy = Proxy::start(a.listen_addr().unwrap()).await;
    b.add_route(a.name(), proxy.addr).unwrap();
    (a, b, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_old_connection_still_carries_is_never_delivered_after_its_successor() {
    let (a, b, proxy) = proxied("nr-a3@localhost", "nr-b3@localhost").await;
    let seq = a.spawn(Seq::default()).await.unwrap();
    a.register("seq", &seq).unwrap();
    let remote = b.lookup::<Seq>("seq", a.name()).await.unwrap();

    // The first link carries 0..1000, held back by the proxy; b breaks it.
    let first = proxy.all();
    hold(&first);
    for i in 0..1_000 {
        remote.got(i).await.unwrap();
    }
    // Nothing is lost on b's side before the cut: the casts are in the proxy.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(b.disconnect(a.name()));

    // The next link carries 1000..2000, delivered at once.
    for i in 1_000..2_000 {
        remote.got(i).await.unwrap();
    }
    let after = tally(&remote).await;
    assert_eq!(after.last, Some(1_999), "{after:?}");
    assert_eq!(proxy.count(), 2 * first.len());

    // Now the old connections' frames reach a, then they close: they must not be delivered.
    release(&first).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let end = tally(&remote).await;
    eprintln!("before the old connections ended: {after:?}; after: {end:?}");
    assert_eq!(
        end.reorders, 0,
        "old frames delivered after new ones: {end:?}"
    );
    assert_eq!(end.duplicates, 0, "{end:?}");
    assert_eq!(end.received, after.received, "{end:?}");
    assert_eq!(proxy.count(), 2 * first.len(), "the new link broke");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_an_old_connection_does_not_break_its_successor() {
    let (a, b, proxy) = proxied("nr-a4@localhost", "nr-b4@localhost").await;
    let t = a.spawn(Target).await.unwrap();
    a.register("t", &t).unwrap();
    let remote = b.lookup::<Target>("t", a.name()).await.unwrap();
    let (tx, mut downs) = mpsc::unbounded_channel();
    let w = b.spawn(Watcher { downs: tx }).await.unwrap();

    w.monitor(remote.pid()).await.unwrap();
    ping(&remote).await;
    // The old connection stays open towards a (the proxy holds it) while b breaks its side.
    let first = proxy.all();
    hold(&first);
    assert!(b.disconnect(a.name()));
    let down = tokio::time::timeout(Duration::from_secs(5), downs.recv())
        .await
        .expect("a Down within 5 s of the break")
        .unwrap();
    assert_eq!(down, (remote.pid(), ExitReason::NoConnection));

    // A new link, monitored again; then the old connection ends towards a.
    w.monitor(remote.pid()).await.unwrap();
    ping(&remote).await;
    assert_eq!(proxy.count(), 2 * first.len());
    release(&first).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        downs.try_recv().is_err(),
        "the old connection's end broke the new link"
    );
    assert_eq!(remote.ping().await.unwrap(), 7);
    assert_eq!(proxy.count(), 2 * first.len(), "the link was made again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_holds_while_the_link_is_remade_under_a_flat_out_stream() {
    let (a, b) = pair("nr-a1@localhost", "nr-b1@localhost").await;
    let seq = a.spawn(Seq::default()).await.unwrap();
    a.register("seq", &seq).unwrap();
    let remote = b.lookup::<Seq>("seq", a.name()).await.unwrap();

    // Casts flat out, in order, until told to stop (then 1 000 more), bounded in count and time.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (remote, stop) = (remote.clone(), stop.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            let (mut sent, mut failed, mut tail) = (0u64, 0u64, 0u32);
            while sent < 5_000_000 && Instant::now() < deadline && tail < 1_000 {
                if stop.load(Ordering::Relaxed) {
                    tail += 1;
                }
                if remote.got(sent).await.is_err() {
                    failed += 1;
                }
                sent += 1;
            }
            (sent, failed)
        })
    };

    // 30 breaks, from either side, while the stream runs.
    for i in 0..30 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        if i % 2 == 0 {
            b.disconnect(a.name());
        } else {
            a.disconnect(b.name());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, failed) = sender.await.unwrap();
    let tally = tally(&remote).await;
    eprintln!(
        "sent {sent} (refused {failed}), received {}, lost {}, reorders {}, duplicates {}",
        tally.received,
        sent - tally.received,
        tally.reorders,
        tally.duplicates
    );
    assert_eq!(tally.reorders, 0, "{tally:?}");
    assert_eq!(tally.duplicates, 0, "{tally:?}");
    // The stream went on after the last break: its end arrived.
    assert_eq!(tally.last, Some(sent - 1), "{tally:?}");
}

struct Target;

#[actor(remote)]
impl Target {
    #[handle]
    fn ping(&self) -> u32 {
        7
    }
}

/// Reports the downs it sees.
struct Watcher {
    downs: mpsc::UnboundedSender<(Pid, ExitReason)>,
}

#[actor]
impl Watcher {
    #[handle]
    fn monitor(&mut self, pid: Pid, ctx: &mut Ctx<Self>) -> MonitorRef {
        ctx.monitor(pid)
    }

    #[on_down]
    fn down(&mut self, down: Down) {
        let _ = self.downs.send((down.pid, down.reason));
    }
}

/// Pings until the link answers (it may be being re-made), for up to 10 s.
async fn ping(target: &ActorRef<Target>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match target.ping().await {
            Ok(7) => return,
            Ok(other) => panic!("ping answered {other}"),
            Err(e) if Instant::now() < deadline => {
                eprintln!("ping: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no answer within 10 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_break_is_one_down_and_never_breaks_the_next_link() {
    let (a, b) = pair("nr-a2@localhost", "nr-b2@localhost").await;
    let t = a.spawn(Target).await.unwrap();
    a.register("t", &t).unwrap();
    let remote = b.lookup::<Target>("t", a.name()).await.unwrap();
    let (tx, mut downs) = mpsc::unbounded_channel();
    let w = b.spawn(Watcher { downs: tx }).await.unwrap();

    for i in 0..12 {
        w.monitor(remote.pid()).await.unwrap();
        ping(&remote).await;
        // The link that was just made stays up until this test breaks it: the end of the one
        // it replaced does not take it down.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            downs.try_recv().is_err(),
            "break {i}: a Down arrived before the link was broken"
        );
        assert_eq!(
            remote.ping().await.unwrap(),
            7,
            "break {i}: the new link broke"
        );
        if i % 2 == 0 {
            assert!(b.disconnect(a.name()));
        } else {
            assert!(a.disconnect(b.name()));
        }
        let down = tokio::time::timeout(Duration::from_secs(5), downs.recv())
            .await
            .expect("a Down within 5 s of the break")
            .unwrap();
        assert_eq!(down, (remote.pid(), ExitReason::NoConnection), "break {i}");
    }
    // One Down per break, nothing after.
    ping(&remote).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(downs.try_recv().is_err(), "a Down no break caused");
}
