//! What the network layer says in the log: a peer's clean shutdown is news, not a warning; a
//! failed dial is one line. Each test captures its own thread's log (`common::logs`).

mod common;

use std::time::Duration;

use common::logs::Captured;
use common::{eventually, net};

#[tokio::test]
async fn a_peer_that_shuts_down_is_logged_as_a_clean_end_not_a_warning() {
    let captured = Captured::default();
    let _guard = captured.install();
    let (a, b) = net::pair("logs-a@localhost", "logs-b@localhost").await;
    b.connect(a.name()).await.expect("b reaches a");
    eventually("a sees b", || async {
        (!a.connected_nodes().is_empty()).then_some(())
    })
    .await;

    b.shutdown(Duration::from_secs(1)).await;
    eventually("a sees b go", || async {
        a.connected_nodes().is_empty().then_some(())
    })
    .await;

    let text = captured.text();
    let end = text
        .lines()
        .find(|l| l.contains("peer=logs-b@localhost") && l.contains("link closed"))
        .unwrap_or_else(|| panic!("no clean end of the link in:\n{text}"));
    assert!(end.contains("INFO"), "{end}");
    assert!(end.contains("the peer shut down"), "{end}");
    assert!(!text.contains("WARN"), "a clean shutdown warned:\n{text}");
}

#[tokio::test]
async fn a_failed_dial_is_one_warning() {
    let captured = Captured::default();
    let _guard = captured.install();
    let a = net::node("logs-dialer@localhost").await;
    // A loopback port that nobody listens on (bound, then released).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    a.add_route("nobody@localhost", closed).unwrap();
    assert!(a.connect("nobody@localhost").await.is_err());

    let text = captured.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("nobody@localhost"))
        .collect();
    assert_eq!(lines.len(), 1, "one line per failed dial, got:\n{text}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("cannot connect"),
        "{}",
        lines[0]
    );
}
