//! What a node does with peers it should not trust: wrong cookies, oversized and garbage
//! frames, messages that do not decode, pids of an earlier run, idle sockets.

use std::time::Duration;

use ergo::net::frame::{FrameCodec, FrameKind, Header, WirePid};
use ergo::net::handshake::{handshake, HandshakeConfig, Role};
use ergo::net::{BytesMut, NetError};
use ergo::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const COOKIE: &str = "net-security test cookie, long and random enough";

struct Counter {
    n: u64,
}

#[actor(remote)]
impl Counter {
    #[handle]
    fn add(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }
}

async fn node(name: &str, cookie: &str) -> Node {
    Node::builder(name)
        .cookie(cookie)
        .no_registrar()
        .start()
        .await
        .expect("node starts")
}

/// A node serving a registered counter.
async fn server(name: &str) -> (Node, ActorRef<Counter>) {
    let a = node(name, COOKIE).await;
    let c = a.spawn(Counter { n: 0 }).await.unwrap();
    a.register("counter", &c).unwrap();
    (a, c)
}

/// The node still serves an honest peer.
async fn still_serves(a: &Node, peer: &str) {
    let b = Node::builder(peer)
        .cookie(COOKIE)
        .no_registrar()
        .route(a.name(), a.listen_addr().unwrap().to_string())
        .start()
        .await
        .unwrap();
    let counter = b.lookup::<Counter>("counter", a.name()).await.unwrap();
    counter.add(1).await.unwrap();
}

/// A raw, authenticated connection to `a` as node `name`.
async fn raw_peer(a: &Node, name: &str) -> (TcpStream, u32) {
    let mut stream = TcpStream::connect(a.listen_addr().unwrap()).await.unwrap();
    let config = HandshakeConfig::new(name, 77, COOKIE).unwrap();
    let peer = handshake(&mut stream, Role::Initiator, &config)
        .await
        .unwrap();
    // Every connection opens with an `Attach` naming the dialler's link.
    let attach = Header {
        kind: FrameKind::Attach,
        to: WirePid::NODE,
        from: 0,
        correlation: 1,
    };
    let mut out = BytesMut::new();
    FrameCodec::new()
        .encode_frame(&attach, &[], &mut out)
        .unwrap();
    stream.write_all(&out).await.unwrap();
    (stream, peer.creation)
}

#[tokio::test]
async fn an_authenticated_peer_that_does_not_attach_first_is_refused() {
    let (a, _c) = server("ns-a9@localhost").await;
    let mut stream = TcpStream::connect(a.listen_addr().unwrap()).await.unwrap();
    let config = HandshakeConfig::new("ns-unattached@localhost", 77, COOKIE).unwrap();
    handshake(&mut stream, Role::Initiator, &config)
        .await
        .unwrap();
    // A lookup where the `Attach` must come.
    let lookup = Header {
        kind: FrameKind::Lookup,
        to: WirePid::NODE,
        from: 3,
        correlation: 5,
    };
    let mut out = BytesMut::new();
    FrameCodec::new()
        .encode_frame(&lookup, &[0x61, b'x'], &mut out)
        .unwrap();
    stream.write_all(&out).await.unwrap();
    assert!(closed_by_peer(&mut stream).await, "closed within 3 s");
    assert!(a.connected_nodes().is_empty());
    still_serves(&a, "ns-honest9@localhost").await;
}

/// Reads until the socket closes (`true`) or 3 s pass (`false`).
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3), read)
        .await
        .is_ok()
}

#[tokio::test]
async fn an_empty_cookie_is_refused() {
    let err = Node::builder("ns-empty@localhost")
        .cookie("")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, ergo::Error::Config(_)), "{err:?}");
}

#[tokio::test]
async fn a_wrong_cookie_is_rejected_and_nothing_is_reachable() {
    let (a, _c) = server("ns-a1@localhost").await;
    let intruder = Node::builder("ns-intruder@localhost")
        .cookie("not the cookie")
        .route(a.name(), a.listen_addr().unwrap().to_string())
        .start()
        .await
        .unwrap();
    let err = intruder
        .lookup::<Counter>("counter", a.name())
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::NoConnection { .. }), "{err:?}");
    let err = intruder.connect(a.name()).await.unwrap_err();
    assert!(matches!(err, NetError::NoConnection { .. }), "{err:?}");
    assert!(a.connected_nodes().is_empty());
    still_serves(&a, "ns-honest1@localhost").await;
}

#[tokio::test]
async fn an_oversized_frame_closes_its_connection_and_the_node_goes_on() {
    let (a, _c) = server("ns-a2@localhost").await;
    let (mut raw, _) = raw_peer(&a, "ns-big@localhost").await;
    // Declares 1 GiB and sends a little: the node closes at once, allocating nothing big.
    raw.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
    raw.write_all(&[1; 64]).await.unwrap();
    assert!(closed_by_peer(&mut raw).await);
    still_serves(&a, "ns-honest2@localhost").await;
}

#[tokio::test]
async fn a_garbage_frame_closes_its_connection_and_the_node_goes_on() {
    let (a, _c) = server("ns-a3@localhost").await;
    let (mut raw, _) = raw_peer(&a, "ns-garbage@localhost").await;
    // A frame of an unknown kind.
    let mut bytes = 29u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0xEE; 29]);
    raw.write_all(&bytes).await.unwrap();
    assert!(closed_by_peer(&mut raw).await);
    still_serves(&a, "ns-honest3@localhost").await;
}

#[tokio::test]
async fn a_message_that_does_not_decode_fails_the_call_and_nothing_else() {
    let (a, c) = server("ns-a4@localhost").await;
    let (mut raw, creation) = raw_peer(&a, "ns-confused@localhost").await;
    assert_eq!(creation, a.creation());
    let codec = FrameCodec::new();
    let to = WirePid {
        id: c.pid().id(),
        creation,
    };
    let mut out = BytesMut::new();
    // A cast and a call whose payloads are CBOR, but not a `CounterMsg`.
    let cast = Header {
        kind: FrameKind::Cast,
        to,
        from: 3,
        correlation: 0,
    };
    codec
        .encode_frame(&cast, &[0x63, b'a', b'b', b'c'], &mut out)
        .unwrap();
    let call = Header {
        kind: FrameKind::Call,
        to,
        from: 3,
        correlation: 99,
    };
    codec.encode_frame(&call, &[0x18, 42], &mut out).unwrap();
    raw.write_all(&out).await.unwrap();

    let mut inbox = BytesMut::new();
    let failed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            while let Some(frame) = codec.decode_frame(&mut inbox).unwrap() {
                if frame.header.kind == FrameKind::CallFailed {
                    return frame;
                }
            }
            assert!(
                raw.read_buf(&mut inbox).await.unwrap() > 0,
                "connection stays open"
            );
        }
    })
    .await
    .expect("a CallFailed frame comes back");
    assert_eq!(failed.header.correlation, 99);
    assert_eq!(failed.header.to.id, 3);
    // The process and the node are fine.
    assert_eq!(c.add(5).await.unwrap(), 5);
    still_serves(&a, "ns-honest4@localhost").await;
}

#[tokio::test]
async fn a_pid_of_an_earlier_run_gets_noproc_and_never_reaches_the_new_process() {
    let first = Node::builder("ns-phoenix@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .creation(1)
        .start()
        .await
        .unwrap();
    let c = first.spawn(Counter { n: 0 }).await.unwrap();
    first.register("counter", &c).unwrap();
    let b = node("ns-b5@localhost", COOKIE).await;
    b.add_route(first.name(), first.listen_addr().unwrap())
        .unwrap();
    let old = b.lookup::<Counter>("counter", first.name()).await.unwrap();
    assert_eq!(old.add(1).await.unwrap(), 1);
    first.shutdown(Duration::from_millis(100)).await;

    // The node restarts with the same name: the new process even gets the same id.
    let second = Node::builder("ns-phoenix@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .creation(2)
        .start()
        .await
        .unwrap();
    let c2 = second.spawn(Counter { n: 100 }).await.unwrap();
    second.register("counter", &c2).unwrap();
    assert_eq!(c2.pid().id(), c.pid().id());
    b.add_route(second.name(), second.listen_addr().unwrap())
        .unwrap();

    let fresh = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match b.lookup::<Counter>("counter", second.name()).await {
                Ok(r) => break r,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("the restarted node is reachable");
    assert_eq!(fresh.pid().creation(), 2);
    assert_eq!(old.add(1).await.unwrap_err(), CallError::NoProc);
    assert_eq!(
        fresh.add(1).await.unwrap(),
        101,
        "the old ref never reached it"
    );
}

/// A node with two handshake slots and hello and handshake timeouts far beyond the test: any
/// socket closed here was closed to make room, or refused.
async fn two_slot_server(name: &str) -> Node {
    let a = Node::builder(name)
        .cookie(COOKIE)
        .no_registrar()
        .max_handshakes(2)
        .hello_timeout(Duration::from_secs(120))
        .handshake_timeout(Duration::from_secs(120))
        .start()
        .await
        .unwrap();
    let c = a.spawn(Counter { n: 0 }).await.unwrap();
    a.register("counter", &c).unwrap();
    a
}

#[tokio::test]
async fn silent_sockets_give_their_handshake_slots_to_a_peer() {
    let a = two_slot_server("ns-a6@localhost").await;
    // Two silent sockets take both slots.
    let mut idle1 = TcpStream::connect(a.listen_addr().unwrap()).await.unwrap();
    let mut idle2 = TcpStream::connect(a.listen_addr().unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // An honest peer (two connections) gets in at once, and the silent ones are closed.
    let served = tokio::time::timeout(
        Duration::from_secs(5),
        still_serves(&a, "ns-honest6@localhost"),
    );
    assert!(
        served.await.is_ok(),
        "the peer got in while the slots were held"
    );
    assert!(
        closed_by_peer(&mut idle1).await,
        "the oldest silent socket was closed"
    );
    assert!(closed_by_peer(&mut idle2).await, "and the next");
}

#[tokio::test]
async fn sockets_that_spoke_keep_their_slots_and_a_newcomer_is_refused() {
    let a = two_slot_server("ns-a11@localhost").await;
    // Two sockets send the first byte of a frame, then stall.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(a.listen_addr().unwrap()).await.unwrap();
        s.write_all(&[0]).await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // All slots are held by connections that spoke, all from this address: the third is
    // closed at once, and the slow ones are not.
    let mut third = TcpStream::connect(a.listen_addr().unwrap()).await.unwrap();
    assert!(
        closed_by_peer(&mut third).await,
        "the third socket is closed"
    );
    let mut buf = [0u8; 1];
    let still_open = tokio::time::timeout(Duration::from_millis(200), slow[0].read(&mut buf));
    assert!(still_open.await.is_err(), "a slow socket keeps its slot");
    // Closing them frees their slots.
    drop(slow);
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let peer = Node::builder("ns-honest11@localhost")
                .cookie(COOKIE)
                .no_registrar()
                .route(a.name(), a.listen_addr().unwrap().to_string())
                .start()
                .await
                .unwrap();
            if let Ok(counter) = peer.lookup::<Counter>("counter", a.name()).await {
                break counter.add(1).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the peer gets in once the slots are free");
}

#[tokio::test]
async fn a_socket_that_sends_nothing_is_closed_after_the_hello_timeout() {
    let a = Node::builder("ns-a12@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .hello_timeout(Duration::from_millis(100))
        .handshake_timeout(Duration::from_secs(120))
        .start()
        .await
        .unwrap();
    let mut idle = TcpStream::connect(a.listen_addr().unwrap()).await.unwrap();
    assert!(
        closed_by_peer(&mut idle).await,
        "closed within 3 s, not 120"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_sockets_cannot_keep_a_reconnecting_peer_out() {
    // Default slots (64), hello timeout (1 s) and handshake timeout (5 s).
    let (a, _) = server("ns-a13@localhost").await;
    let addr = a.listen_addr().unwrap();
    let b = Node::builder("ns-b13@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .route(a.name(), addr.to_string())
        .start()
        .await
        .unwrap();
    let counter = b.lookup::<Counter>("counter", a.name()).await.unwrap();
    counter.add(1).await.unwrap();
    // 100 silent sockets, each reopened 10 ms after the node closes it, for at most 60 s (the
    // set is aborted when the test ends, also on failure).
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..100 {
        flood.spawn(async move {
            let end = tokio::time::Instant::now() + Duration::from_secs(60);
            while tokio::time::Instant::now() < end {
                if let Ok(mut s) = TcpStream::connect(addr).await {
                    let _ = tokio::time::timeout_at(end, s.read(&mut [0; 1])).await;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The peer must reconnect while the flood goes on, and its calls succeed.
    b.disconnect(a.name());
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        let mut failed = 0u32;
        loop {
            match counter.add(1).await {
                Ok(_) => return failed,
                Err(_) => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        back.is_ok(),
        "the peer got back in within 10 s of a sustained flood"
    );
    for _ in 0..20 {
        counter
            .add(1)
            .await
            .expect("calls succeed during the flood");
    }
    flood.abort_all();
}

#[tokio::test]
async fn a_silent_peer_is_dropped_after_the_heartbeat_timeout() {
    let a = Node::builder("ns-a7@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .heartbeat(Duration::from_millis(100), Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    // Authenticates, then says nothing (not even heartbeats).
    let (mut raw, _) = raw_peer(&a, "ns-silent@localhost").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(a.connected_nodes(), vec!["ns-silent@localhost".to_string()]);
    assert!(closed_by_peer(&mut raw).await, "dropped within 3 s");
    assert!(a.connected_nodes().is_empty());
}

/// Decodes as a number, but panics on 13 (a `Deserialize` impl with a bug).
#[derive(Debug, serde::Serialize)]
struct Brittle(u32);

impl<'de> serde::Deserialize<'de> for Brittle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        assert!(n != 13, "unlucky number");
        Ok(Brittle(n))
    }
}

struct Fragile;

#[actor(remote)]
impl Fragile {
    #[handle]
    fn take(&self, b: Brittle) -> u32 {
        b.0
    }
}

#[tokio::test]
async fn a_panic_while_decoding_takes_the_link_down_cleanly_and_the_next_use_reconnects() {
    let a = node("ns-a8@localhost", COOKIE).await;
    let f = a.spawn(Fragile).await.unwrap();
    a.register("fragile", &f).unwrap();
    let b = Node::builder("ns-b8@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .route(a.name(), a.listen_addr().unwrap().to_string())
        .start()
        .await
        .unwrap();
    let remote = b.lookup::<Fragile>("fragile", a.name()).await.unwrap();
    assert_eq!(remote.take(Brittle(1)).await.unwrap(), 1);
    // The panic on a's reader ends the link: the call fails with NoConnection (not Timeout).
    let err = remote
        .take(Brittle(13))
        .timeout(Duration::from_secs(20))
        .await
        .unwrap_err();
    assert_eq!(err, CallError::NoConnection);
    // The process is fine and the next use reconnects (after the dial backoff, if any).
    let again = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(n) = remote.take(Brittle(2)).await {
                break n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("reconnects");
    assert_eq!(again, 2);
}

struct Slowpoke {
    seen: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

#[actor(remote, mailbox = 1)]
impl Slowpoke {
    #[handle]
    async fn chew(&mut self) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_full_bounded_mailbox_does_not_hold_up_the_connection() {
    let a = node("ns-a9@localhost", COOKIE).await;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let s = a.spawn(Slowpoke { seen: seen.clone() }).await.unwrap();
    a.register("slow", &s).unwrap();
    let c = a.spawn(Counter { n: 0 }).await.unwrap();
    a.register("counter", &c).unwrap();
    let b = Node::builder("ns-b9@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .connections_per_peer(1)
        .route(a.name(), a.listen_addr().unwrap().to_string())
        .start()
        .await
        .unwrap();
    let slow = b.lookup::<Slowpoke>("slow", a.name()).await.unwrap();
    let counter = b.lookup::<Counter>("counter", a.name()).await.unwrap();
    for _ in 0..10 {
        slow.chew().await.unwrap();
    }
    // Ten messages for a mailbox of one, and the same connection still answers before the
    // slow process has worked through them (a reader waiting for room would have made the
    // call wait behind at least nine of them).
    assert_eq!(counter.add(1).await.unwrap(), 1);
    let chewed = seen.load(std::sync::atomic::Ordering::SeqCst);
    assert!(chewed < 9, "the call waited behind {chewed} messages");
    // And nothing was lost.
    let all = tokio::time::timeout(Duration::from_secs(5), async {
        while seen.load(std::sync::atomic::Ordering::SeqCst) < 10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(all.is_ok());
}

#[tokio::test]
async fn a_failed_connect_reports_why_also_while_backing_off() {
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let b = Node::builder("ns-b14@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .route("ns-nobody@localhost", addr.to_string())
        .start()
        .await
        .unwrap();
    let first = b.connect("ns-nobody@localhost").await.unwrap_err();
    assert!(
        first.to_string().contains(&format!("connecting to {addr}")),
        "{first}"
    );
    // At once again: the node waits before dialling again, and says why.
    let again = b.connect("ns-nobody@localhost").await.unwrap_err();
    let text = again.to_string();
    assert!(matches!(again, NetError::NoConnection { .. }), "{again:?}");
    assert!(text.contains(&format!("connecting to {addr}")), "{text}");
    assert!(text.contains("the next attempt in"), "{text}");
}
