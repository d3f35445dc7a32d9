//! Every process runs inside a tracing span naming its pid and actor type, so a log line written
//! from a handler says who wrote it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ergo::prelude::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A current-thread runtime keeps the whole test on this thread, where the subscriber is set.
    let node = Node::builder("trace@localhost").start().await.unwrap();
    let chatty = node.spawn(Chatty).await.unwrap();
    assert_eq!(chatty.say("hello".into()).await, Ok(true));

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
