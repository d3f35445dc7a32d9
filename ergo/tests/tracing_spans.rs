//! Every process runs inside a tracing span naming its pid and actor type, so a log line written
//! from a handler says who wrote it.

mod common;

use common::logs::Captured;
use ergo::prelude::*;

struct Chatty;

#[actor]
impl Chatty {
    #[handle]
    fn say(&self, what: String) -> bool {
        tracing::info!(%what, "handler speaking");
        true
    }
}

#[tokio::test]
async fn handler_logs_carry_the_process_span() {
    let captured = Captured::default();
    let _guard = captured.install();

    // A current-thread runtime keeps the whole test on this thread, where the subscriber is set.
    let node = Node::builder("trace@localhost").start().await.unwrap();
    let chatty = node.spawn(Chatty).await.unwrap();
    assert_eq!(chatty.say("hello".into()).await, Ok(true));

    let text = captured.text();
    let line = text
        .lines()
        .find(|l| l.contains("handler speaking"))
        .unwrap_or_else(|| panic!("no handler log in:\n{text}"));
    assert!(line.contains(&format!("pid={}", chatty.pid())), "{line}");
    assert!(
        line.contains("actor=\"Chatty\"") || line.contains("actor=Chatty"),
        "{line}"
    );
    assert!(line.contains("what=hello"), "{line}");
}
