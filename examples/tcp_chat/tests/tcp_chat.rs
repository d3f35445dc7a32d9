//! The TCP chat of `src/main.rs` (`tcp_chat`), driven by real TCP clients.

use std::net::SocketAddr;
use std::time::Duration;

use ergo_testkit::node;
use ergo_testkit::wait::{eventually, within};
use tcp_chat::{self, ChatConfig, ChatServer, RoomsApi};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A chat user on a real socket.
struct User {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl User {
    /// Connects, reads the welcome, and takes `nick`.
    async fn join(addr: SocketAddr, nick: &str) -> User {
        let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
        let (r, w) = stream.into_split();
        let mut user = User {
            lines: BufReader::new(r).lines(),
            w,
        };
        assert!(user.next().await.starts_with("* welcome"));
        user.say(&format!("/nick {nick}")).await;
        assert_eq!(user.next().await, format!("* you are now {nick}"));
        user
    }

    async fn say(&mut self, line: &str) {
        self.w
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn next(&mut self) -> String {
        within("a chat line", self.lines.next_line())
            .await
            .expect("read")
            .expect("a line, not end of stream")
    }

    /// Reads lines until `want` arrives (skipping join notices and the like).
    async fn expect(&mut self, want: &str) {
        within(&format!("the line {want:?}"), async {
            loop {
                let line = self
                    .lines
                    .next_line()
                    .await
                    .expect("read")
                    .unwrap_or_else(|| panic!("end of stream before {want:?}"));
                if line == want {
                    return;
                }
            }
        })
        .await
    }

    /// Waits for the server to close the connection.
    async fn closed(&mut self) {
        within("the server closing", async {
            while let Ok(Some(_)) = self.lines.next_line().await {}
        })
        .await
    }
}

async fn server(name: &str, config: ChatConfig) -> (ergo::Node, ChatServer) {
    let node = node(name).await;
    let server = tcp_chat::start(&node, config).await.expect("chat starts");
    (node, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_in_a_room_receive_each_others_lines_and_other_rooms_do_not() {
    let (_node, server) = server("chat-rooms", ChatConfig::default()).await;
    let addr = server.local_addr();
    let mut ada = User::join(addr, "ada").await;
    let mut bob = User::join(addr, "bob").await;
    let mut cy = User::join(addr, "cy").await;

    ada.say("/join rust").await;
    ada.expect("* ada joined #rust (1 here)").await;
    bob.say("/join rust").await;
    bob.expect("* bob joined #rust (2 here)").await;
    ada.expect("* bob joined #rust (2 here)").await;
    cy.say("/join erlang").await;
    cy.expect("* cy joined #erlang (1 here)").await;

    ada.say("hello from ada").await;
    bob.expect("[rust] ada: hello from ada").await;
    bob.say("hi ada").await;
    ada.expect("[rust] bob: hi ada").await;
    cy.say("anyone?").await;

    // cy is in another room: the next thing cy hears is bob arriving there, not rust talk.
    bob.say("/join erlang").await;
    ada.expect("* bob left #rust").await;
    cy.expect("* bob joined #erlang (2 here)").await;
    bob.say("moved").await;
    cy.expect("[erlang] bob: moved").await;

    let mut rooms = server.rooms().names().await.unwrap();
    rooms.sort();
    assert_eq!(rooms, vec!["erlang", "rust"]);
    within("chat stop", server.stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients_all_hear_every_line() {
    let (_node, server) = server("chat-many", ChatConfig::default()).await;
    let addr = server.local_addr();
    const N: usize = 12;
    let mut users = Vec::new();
    for i in 0..N {
        let mut u = User::join(addr, &format!("u{i}")).await;
        u.say("/join all").await;
        u.expect(&format!("* u{i} joined #all ({} here)", i + 1))
            .await;
        users.push(u);
    }
    // Everyone talks at once; everyone else hears every line, in each speaker's order.
    let tasks: Vec<_> = users
        .into_iter()
        .enumerate()
        .map(|(i, mut u)| {
            tokio::spawn(async move {
                for k in 0..5 {
                    u.say(&format!("m{k}")).await;
                }
                let mut heard = [0usize; N];
                let want = (N - 1) * 5;
                let mut got = 0;
                while got < want {
                    let line = u.next().await;
                    if let Some(rest) = line.strip_prefix("[all] u") {
                        let (who, msg) = rest.split_once(": ").unwrap();
                        let who: usize = who.parse().unwrap();
                        assert_ne!(who, i, "a speaker does not hear itself");
                        assert_eq!(msg, format!("m{}", heard[who]), "per-speaker order");
                        heard[who] += 1;
                        got += 1;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        within("a user", t).await.unwrap();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_leaves_its_room() {
    let (_node, server) = server("chat-leave", ChatConfig::default()).await;
    let addr = server.local_addr();
    let mut ada = User::join(addr, "ada").await;
    let mut bob = User::join(addr, "bob").await;
    ada.say("/join r").await;
    ada.expect("* ada joined #r (1 here)").await;
    bob.say("/join r").await;
    ada.expect("* bob joined #r (2 here)").await;
    drop(bob);
    ada.expect("* bob left #r").await;
    eventually("bob's connection to be gone", || async {
        (server.clients() == 1).then_some(())
    })
    .await;
    ada.say("/quit").await;
    ada.expect("* bye").await;
    ada.closed().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_long_line_disconnects_only_its_sender() {
    let config = ChatConfig {
        max_line: 64,
        ..ChatConfig::default()
    };
    let (_node, server) = server("chat-long", config).await;
    let addr = server.local_addr();
    let mut ada = User::join(addr, "ada").await;
    let mut eve = User::join(addr, "eve").await;
    ada.say("/join r").await;
    ada.expect("* ada joined #r (1 here)").await;
    eve.say("/join r").await;
    ada.expect("* eve joined #r (2 here)").await;
    eve.say(&"x".repeat(500)).await;
    eve.closed().await;
    ada.expect("* eve left #r").await;
    let mut bob = User::join(addr, "bob").await;
    bob.say("/join r").await;
    ada.expect("* bob joined #r (2 here)").await;
    bob.say("still up").await;
    ada.expect("[r] bob: still up").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_beyond_the_limit_are_refused_and_idle_ones_dropped() {
    let config = ChatConfig {
        max_clients: 1,
        idle_timeout: Some(Duration::from_millis(300)),
        ..ChatConfig::default()
    };
    let (_node, server) = server("chat-limits", config).await;
    let addr = server.local_addr();
    let mut ada = User::join(addr, "ada").await;
    let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let mut refused = BufReader::new(stream).lines();
    let first = within("refusal", refused.next_line()).await;
    assert!(matches!(first, Ok(None) | Err(_)), "{first:?}");
    // ada says nothing more: the idle timeout drops her.
    ada.closed().await;
    eventually("the slot to free up", || async {
        (server.clients() == 0).then_some(())
    })
    .await;
    let _bob = User::join(addr, "bob").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_disconnects_everyone() {
    let (node, server) = server("chat-stop", ChatConfig::default()).await;
    let addr = server.local_addr();
    let mut ada = User::join(addr, "ada").await;
    let mut bob = User::join(addr, "bob").await;
    ada.say("/join r").await;
    ada.expect("* ada joined #r (1 here)").await;
    within("chat stop", server.stop()).await;
    ada.closed().await;
    bob.closed().await;
    assert_eq!(
        node.process_count(),
        0,
        "clients, rooms and supervisor all ended"
    );
}
