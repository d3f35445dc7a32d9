//! An HTTP API of per-key counters backed by actors, with a WebSocket endpoint streaming every
//! change (use case 4). The logic lives in `http_counter`.
//!
//! Run with `cargo run -p example-http-counter` (or `cargo run -p example-http-counter -- 8080`
//! for a fixed port), then in another terminal:
//!
//! ```text
//! curl -X POST http://127.0.0.1:PORT/counter/visits          # 1
//! curl -X POST -d 5 http://127.0.0.1:PORT/counter/visits     # 6
//! curl http://127.0.0.1:PORT/counter/visits                  # 6
//! websocat ws://127.0.0.1:PORT/updates                       # subscribed, then visits=7 ...
//! ```
//!
//! Stop the server with Ctrl-C: requests in flight are answered, watchers disconnected.

use std::net::SocketAddr;

use ergo::Node;
use http_counter::{self, HttpCounterConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse()?,
        None => 0,
    };
    let node = Node::builder("http-counter@localhost").start().await?;
    let app = http_counter::start(
        &node,
        HttpCounterConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ..HttpCounterConfig::default()
        },
    )
    .await?;
    let addr = app.local_addr();
    println!("counter API on http://{addr}");
    println!("  curl -X POST http://{addr}/counter/visits");
    println!("  curl http://{addr}/counter/visits");
    println!("  websocat ws://{addr}/updates   (every change, as KEY=COUNT)");
    println!("Ctrl-C stops the server");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("cannot listen for Ctrl-C ({e}); serving until killed");
        std::future::pending::<()>().await;
    }
    println!("stopping");
    app.stop().await;
    Ok(())
}
