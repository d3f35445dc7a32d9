//! A line-based chat server over TCP (use case 4): every client is an actor, every room is an
//! actor. The logic lives in `tcp_chat`.
//!
//! Run with `cargo run -p example-tcp-chat` (or `cargo run -p example-tcp-chat -- 7000` for a
//! fixed port), then in other terminals `nc 127.0.0.1 PORT` and type:
//!
//! ```text
//! /nick ada
//! /join rust
//! hello everyone
//! /quit
//! ```
//!
//! Stop the server with Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use ergo::Node;
use tcp_chat::{self, ChatConfig};

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
    let node = Node::builder("tcp-chat@localhost").start().await?;
    let server = tcp_chat::start(
        &node,
        ChatConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            idle_timeout: Some(Duration::from_secs(600)),
            ..ChatConfig::default()
        },
    )
    .await?;
    let addr = server.local_addr();
    println!("chat server listening on {addr}");
    println!("try it: nc {} {}", addr.ip(), addr.port());
    println!("commands: /nick NAME, /join ROOM, /quit; Ctrl-C stops the server");
    // Serve until Ctrl-C, then close every connection and stop every actor gracefully.
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("cannot listen for Ctrl-C ({e}); serving until killed");
        std::future::pending::<()>().await;
    }
    println!("stopping");
    server.stop().await;
    Ok(())
}
