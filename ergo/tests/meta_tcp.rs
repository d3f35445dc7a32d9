//! TCP meta processes (`ergo::meta::tcp`) against real sockets on 127.0.0.1: the server's
//! limits and failure isolation, stopping, and a client that reconnects.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{eventually, node, within};
use ergo::meta::tcp::{Backoff, TcpClient, TcpConn, TcpEvent, TcpHandle, TcpHandler, TcpServer};
use ergo::meta::{Bytes, CloseReason, Codec, TrySendError};
use ergo::prelude::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What test actors report: `(connection's peer port, event)`.
type Probe = mpsc::UnboundedSender<(u16, TcpEvent)>;

/// Reports every event; echoes frames when `echo`; panics on `crash`; floods the peer on
/// `fill`; stops on `Closed` when it echoes (as a server's connection actor).
struct Echo {
    conn: TcpHandle,
    probe: Probe,
    echo: bool,
}

#[actor]
impl Echo {
    #[handle]
    async fn tcp(&mut self, event: TcpEvent, ctx: &mut Ctx<Self>) {
        let _ = self
            .probe
            .send((self.conn.peer_addr().port(), event.clone()));
        match event {
            TcpEvent::Data(data) if &data[..] == b"crash" => panic!("asked to crash"),
            TcpEvent::Data(data) if &data[..] == b"fill" => {
                let filled = match self.fill(64 * 1024, 4096).await {
                    Some(n) => format!("filled {n}"),
                    None => "filled never".to_owned(),
                };
                let port = self.conn.peer_addr().port();
                let _ = self.probe.send((port, TcpEvent::Data(Bytes::from(filled))));
            }
            TcpEvent::Data(data) if self.echo => {
                let _ = self.conn.send(data).await;
            }
            // A server's connection actor ends with its connection; a client's outlives it.
            TcpEvent::Closed(_) if self.echo => ctx.stop(),
            _ => {}
        }
    }
}

impl Echo {
    /// Sends frames of `size` bytes until a `send` has waited 1 s for room (the peer is not
    /// reading and every buffer is full); returns how many went in, or `None` if `limit`
    /// frames went through without ever waiting that long.
    async fn fill(&mut self, size: usize, limit: usize) -> Option<usize> {
        let chunk = Bytes::from(vec![b'x'; size]);
        for i in 0..limit {
            match tokio::time::timeout(Duration::from_secs(1), self.conn.send(chunk.clone())).await
            {
                Ok(Ok(())) => {}
                Err(_) => {
                    // Blocked: `try_send` now reports the full buffer too.
                    assert!(matches!(
                        self.conn.try_send(chunk.clone()),
                        Err(TrySendError::Full(_))
                    ));
                    return Some(i);
                }
                Ok(Err(_)) => return None,
            }
        }
        None
    }
}

impl TcpHandler for Echo {
    fn event(event: TcpEvent) -> EchoMsg {
        EchoMsg::Tcp { event }
    }
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn echo_factory(probe: Probe) -> impl FnMut(TcpConn) -> Echo + Send + 'static {
    move |conn: TcpConn| Echo {
        conn: conn.handle,
        probe: probe.clone(),
        echo: true,
    }
}

/// A line client: connect, then send and read lines.
struct LineClient {
    reader: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    port: u16,
}

impl LineClient {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = within("connect", TcpStream::connect(addr))
            .await
            .expect("connects");
        let port = stream.local_addr().unwrap().port();
        let (r, w) = stream.into_split();
        LineClient {
            reader: BufReader::new(r).lines(),
            writer: w,
            port,
        }
    }

    async fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write");
    }

    async fn recv(&mut self) -> String {
        within("a line", self.reader.next_line())
            .await
            .expect("read")
            .expect("a line, not end of stream")
    }

    /// Waits for the server to close the connection (end of stream or reset).
    async fn closed(&mut self) {
        loop {
            match within("the server closing", self.reader.next_line()).await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    }
}

/// Waits for the probe's event on connection `port` that `pick` selects.
async fn event_for<T>(
    rx: &mut mpsc::UnboundedReceiver<(u16, TcpEvent)>,
    port: u16,
    mut pick: impl FnMut(&TcpEvent) -> Option<T>,
) -> T {
    within("a connection event", async {
        loop {
            let (p, ev) = rx.recv().await.expect("probe open");
            if p == port {
                if let Some(v) = pick(&ev) {
                    return v;
                }
            }
        }
    })
    .await
}

fn closed_reason(ev: &TcpEvent) -> Option<CloseReason> {
    match ev {
        TcpEvent::Closed(r) => Some(r.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_each_get_their_own_echo() {
    let node = node("tcp-concurrent").await;
    let (probe, _rx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::Lines)
        .start(&node, echo_factory(probe))
        .await
        .expect("server starts");
    let addr = server.local_addr();
    let mut tasks = Vec::new();
    for c in 0..20 {
        tasks.push(tokio::spawn(async move {
            let mut client = LineClient::connect(addr).await;
            for i in 0..20 {
                let line = format!("client {c} line {i}");
                client.send(&line).await;
                assert_eq!(client.recv().await, line);
            }
        }));
    }
    for t in tasks {
        within("a client", t).await.expect("client task");
    }
    within("server stop", server.stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_is_first_event_and_peer_close_is_last() {
    let node = node("tcp-events").await;
    let (probe, mut rx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::Lines)
        .start(&node, echo_factory(probe))
        .await
        .unwrap();
    let mut client = LineClient::connect(server.local_addr()).await;
    client.send("hi").await;
    assert_eq!(client.recv().await, "hi");
    let port = client.port;
    drop(client);
    let mut events = Vec::new();
    within("events", async {
        while let Some((p, ev)) = rx.recv().await {
            if p == port {
                let last = matches!(ev, TcpEvent::Closed(_));
                events.push(ev);
                if last {
                    break;
                }
            }
        }
    })
    .await;
    assert!(matches!(events[0], TcpEvent::Connected(a) if a.port() == port));
    assert_eq!(events[1], TcpEvent::Data(Bytes::from("hi")));
    assert_eq!(events[2], TcpEvent::Closed(CloseReason::PeerClosed));
    eventually("connection count back to 0", || async {
        (server.connections() == 0).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_maximum_are_refused_and_the_others_served() {
    let node = node("tcp-max").await;
    let (probe, _rx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::Lines)
        .max_connections(2)
        .start(&node, echo_factory(probe))
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut a = LineClient::connect(addr).await;
    let mut b = LineClient::connect(addr).await;
    a.send("a").await;
    assert_eq!(a.recv().await, "a");
    b.send("b").await;
    assert_eq!(b.recv().await, "b");

    let mut refused = LineClient::connect(addr).await;
    refused.closed().await;
    assert_eq!(server.connections(), 2);

    // The two served ones still work; once one leaves, a new connection is served again.
    a.send("still here").await;
    assert_eq!(a.recv().await, "still here");
    drop(b);
    eventually("a slot to free up", || async {
        (server.connections() < 2).then_some(())
    })
    .await;
    let mut c = LineClient::connect(addr).await;
    c.send("c").await;
    assert_eq!(c.recv().await, "c");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes_only_that_connection() {
    let node = node("tcp-frame").await;
    let (probe, mut rx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::Lines)
        .max_frame_size(32)
        .start(&node, echo_factory(probe))
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut good = LineClient::connect(addr).await;
    let mut bad = LineClient::connect(addr).await;
    bad.send(&"x".repeat(1000)).await;
    bad.closed().await;
    let reason = event_for(&mut rx, bad.port, closed_reason).await;
    assert_eq!(reason, CloseReason::FrameTooLarge);

    good.send("fine").await;
    assert_eq!(good.recv().await, "fine");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_delimited_frames_round_trip_and_oversized_length_closes() {
    let node = node("tcp-length").await;
    let (probe, mut rx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::LengthDelimited)
        .max_frame_size(64)
        .start(&node, echo_factory(probe))
        .await
        .unwrap();
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(&[0, 0, 0, 5]).await.unwrap();
    s.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 9];
    within("echoed frame", s.read_exact(&mut back))
        .await
        .unwrap();
    assert_eq!(&back, b"\0\0\0\x05hello");

    // A header announcing 1 MiB is refused before the body is sent.
    let port = s.local_addr().unwrap().port();
    s.write_all(&[0, 0x10, 0, 0]).await.unwrap();
    let reason = event_for(&mut rx, port, closed_reason).await;
    assert_eq!(reason, CloseReason::FrameTooLarge);
    let mut rest = Vec::new();
    let _ = within("close", s.read_to_end(&mut rest)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed_with_idle_timeout() {
    let node = node("tcp-idle").await;
    let (probe, mut rx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::Lines)
        .idle_timeout(Duration::from_millis(200))
        .start(&node, echo_factory(probe))
        .await
        .unwrap();
    let mut silent = LineClient::connect(server.local_addr()).await;
    silent.closed().await;
    let reason = event_for(&mut rx, silent.port, closed_reason).await;
    assert_eq!(reason, CloseReason::IdleTimeout);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_connection_actor_closes_only_its_socket() {
    let node = node("tcp-crash").await;
    let (probe, mut rx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::Lines)
        .start(&node, echo_factory(probe))
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut other = LineClient::connect(addr).await;
    other.send("before").await;
    assert_eq!(other.recv().await, "before");

    let mut crasher = LineClient::connect(addr).await;
    crasher.send("crash").await;
    crasher.closed().await;
    // The crashed actor was not restarted (temporary child) and got no `Closed`.
    eventually("the crashed connection to be gone", || async {
        (server.connections() == 1).then_some(())
    })
    .await;
    let children = server.supervisor().count_children().await.unwrap();
    assert_eq!(children.active, 1);
    while let Ok((p, ev)) = rx.try_recv() {
        assert!(
            !(p == crasher.port && matches!(ev, TcpEvent::Closed(_))),
            "a crashed actor gets no Closed"
        );
    }

    other.send("after").await;
    assert_eq!(other.recv().await, "after");
    let mut fresh = LineClient::connect(addr).await;
    fresh.send("new").await;
    assert_eq!(fresh.recv().await, "new");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_closes_clients_stops_actors_and_releases_the_port() {
    let node = node("tcp-stop").await;
    let (probe, mut rx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::Lines)
        .start(&node, echo_factory(probe))
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut a = LineClient::connect(addr).await;
    let mut b = LineClient::connect(addr).await;
    a.send("a").await;
    assert_eq!(a.recv().await, "a");
    b.send("b").await;
    assert_eq!(b.recv().await, "b");
    let before = node.process_count();
    assert!(before >= 3, "supervisor + 2 connection actors");

    within("server stop", server.stop()).await;
    a.closed().await;
    b.closed().await;
    assert_eq!(
        event_for(&mut rx, a.port, closed_reason).await,
        CloseReason::Shutdown
    );
    assert_eq!(server.connections(), 0);
    assert!(!server.supervisor().is_alive());
    assert!(!server.is_running());
    assert_eq!(node.process_count(), 0, "connection actors stopped");
    // The listening socket is gone: the port can be bound again.
    let again = tokio::net::TcpListener::bind(addr).await;
    assert!(again.is_ok(), "port released: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_read_fills_the_write_buffer_instead_of_memory() {
    let node = node("tcp-backpressure").await;
    let (probe, mut rx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::Lines)
        .write_buffer(8)
        .start(&node, echo_factory(probe))
        .await
        .unwrap();
    // Ask for a flood, then never read. 64 KiB frames: the kernel's socket buffers take a few
    // MiB at most, then the 8-frame write buffer fills and `try_send` says `Full`; 4096 frames
    // (256 MiB) without `Full` would mean writes are not bounded.
    let mut client = LineClient::connect(server.local_addr()).await;
    client.send("fill").await;
    let filled = event_for(&mut rx, client.port, |e| match e {
        TcpEvent::Data(d) if d.starts_with(b"filled") => Some(d.clone()),
        _ => None,
    })
    .await;
    let filled = String::from_utf8_lossy(&filled).into_owned();
    let n: usize = filled
        .strip_prefix("filled ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the write buffer never filled up: {filled}"));
    assert!(n < 4096, "{n}");
    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gets_the_same_events_and_reconnects_after_the_server_restarts() {
    let node = node("tcp-client").await;
    let (sprobe, _srx) = mpsc::unbounded_channel();
    let server = TcpServer::bind(localhost())
        .codec(Codec::Lines)
        .start(&node, echo_factory(sprobe.clone()))
        .await
        .unwrap();
    let addr = server.local_addr();

    let (probe, mut rx) = mpsc::unbounded_channel();
    let probe2 = probe.clone();
    let client = TcpClient::connect(addr)
        .codec(Codec::Lines)
        .reconnect(Some(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(200),
        )))
        .start(&node, move |conn| Echo {
            conn,
            probe: probe2,
            echo: false,
        })
        .await
        .expect("client starts");
    let port = addr.port();
    event_for(&mut rx, port, |e| {
        matches!(e, TcpEvent::Connected(_)).then_some(())
    })
    .await;
    // Client → server → client → server …: send one line and watch it come back once.
    client.handle().send("ping").await.unwrap();
    let got = event_for(&mut rx, port, |e| match e {
        TcpEvent::Data(d) => Some(d.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, Bytes::from("ping"));

    within("server stop", server.stop()).await;
    let reason = event_for(&mut rx, port, closed_reason).await;
    assert_eq!(reason, CloseReason::PeerClosed);

    // Restart on the same port; the client connects again by itself.
    let server = TcpServer::bind(addr)
        .codec(Codec::Lines)
        .start(&node, echo_factory(sprobe))
        .await
        .expect("rebinds the same port");
    event_for(&mut rx, port, |e| {
        matches!(e, TcpEvent::Connected(_)).then_some(())
    })
    .await;
    client.handle().send("again").await.unwrap();
    let got = event_for(&mut rx, port, |e| match e {
        TcpEvent::Data(d) => Some(d.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, Bytes::from("again"));

    within("client stop", client.stop()).await;
    assert!(!client.actor().is_alive());
    assert!(client.handle().is_closed());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_reconnect_fails_to_start_when_nobody_listens() {
    let node = node("tcp-client-refused").await;
    // Bind and drop a listener to get a port nobody listens on.
    let addr = tokio::net::TcpListener::bind(localhost())
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (probe, _rx) = mpsc::unbounded_channel();
    let started = TcpClient::connect(addr)
        .start(&node, move |conn| Echo {
            conn,
            probe,
            echo: false,
        })
        .await;
    assert!(matches!(started, Err(ergo::meta::StartError::Io(_))));
    assert_eq!(node.process_count(), 0);
}
