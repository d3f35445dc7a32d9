//! An HTTP API of per-key counters backed by actors, with a WebSocket endpoint streaming every
//! change.
//!
//! One [`Counters`] actor owns the counts and serves the HTTP routes (through the
//! [`HttpServer`] meta process); it publishes each change as a [`CounterUpdate`] on the local
//! event [`COUNTER_UPDATES`]. Each WebSocket connection gets a [`Watcher`] actor (made by the
//! server, under its supervisor) that subscribes to the event and forwards the changes.
//!
//! # API
//!
//! | request | effect | response |
//! | --- | --- | --- |
//! | `POST /counter/{key}` | adds the body's number to `key` (1 for an empty body) | `200` with the new count |
//! | `GET /counter/{key}` | reads `key` (0 when never incremented) | `200` with the count |
//! | `GET /updates` (WebSocket) | streams every change | text `subscribed`, then `KEY=COUNT` per change |
//! | `GET /updates/{key}` (WebSocket) | streams the changes of `key` | the same, for `key` only |
//!
//! A key is 1 to [`MAX_KEY`] letters, digits, `-` or `_` (otherwise `400`); a body that is not
//! a number gets `400`. The server's own limits answer `413`, `503` and `504`
//! (see [`ergo::meta::http`]). A watcher whose client reads too slowly to keep up is
//! disconnected rather than buffered without bound.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::Node;
//! use http_counter::{self, CountersApi, HttpCounterConfig};
//!
//! let node = Node::builder("http-counter-doc@localhost").start().await?;
//! let app = http_counter::start(&node, HttpCounterConfig::default()).await?;
//! println!("serving on http://{}", app.local_addr());
//! assert_eq!(app.counters().value("visits".into()).await?, 0);
//! app.stop().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use ergo::events::{
    Event, EventDown, EventOptions, EventToken, RegisterEventError, SubscribeError,
};
use ergo::meta::http::ws::{WsConn, WsEvent, WsHandle, WsHandler};
use ergo::meta::http::{
    Endpoint, HttpReply, HttpRequest, HttpResponse, HttpServer, HttpServerRef, Method, StatusCode,
};
use ergo::meta::{StartError, TrySendError};
use ergo::prelude::*;

/// The longest accepted key.
pub const MAX_KEY: usize = 64;

/// Every change of a counter, published by [`Counters`] (one `Counters` per node owns it).
pub const COUNTER_UPDATES: Event<CounterUpdate> = Event::new("http_counter.updates");

/// A counter's new value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterUpdate {
    /// The counter.
    pub key: String,
    /// Its count after the change.
    pub value: u64,
}

/// Whether `key` is a valid counter name.
///
/// ```
/// use http_counter::valid_key;
/// assert!(valid_key("page-views_2"));
/// assert!(!valid_key("") && !valid_key("a b") && !valid_key(&"x".repeat(65)));
/// ```
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The counters: serves `POST` and `GET /counter/{key}` and publishes every change.
#[derive(Default)]
pub struct Counters {
    counts: HashMap<String, u64>,
    updates: Option<EventToken<CounterUpdate>>,
}

impl Counters {
    /// The request's key, or why it is refused.
    fn key(req: &HttpRequest) -> Result<&str, &'static str> {
        req.param("key")
            .filter(|key| valid_key(key))
            .ok_or("invalid key\n")
    }

    /// How much a `POST` adds: its body's number, or 1 for an empty body.
    fn amount(req: &HttpRequest) -> Result<u64, &'static str> {
        match req.text().map(str::trim) {
            Some("") => Ok(1),
            Some(n) => n.parse().map_err(|_| "the body must be a number\n"),
            None => Err("the body must be a number\n"),
        }
    }
}

#[actor]
impl Counters {
    /// Registers [`COUNTER_UPDATES`].
    #[init]
    fn init(&mut self, ctx: &mut Ctx<Self>) -> Result<(), RegisterEventError> {
        self.updates = Some(ctx.register_event(&COUNTER_UPDATES, EventOptions::new())?);
        Ok(())
    }

    /// `POST /counter/{key}`: adds to the counter and publishes its new value.
    #[handle]
    fn increment(&mut self, req: HttpRequest, reply: HttpReply) {
        let (key, by) = match Self::key(&req).and_then(|k| Ok((k, Self::amount(&req)?))) {
            Ok(v) => v,
            Err(why) => return reply.send(HttpResponse::text(400, why)),
        };
        let count = self.counts.entry(key.to_owned()).or_default();
        *count = count.saturating_add(by);
        let value = *count;
        if let Some(updates) = &self.updates {
            let _ = updates.publish(CounterUpdate {
                key: key.to_owned(),
                value,
            });
        }
        reply.send(HttpResponse::text(StatusCode::OK, format!("{value}\n")));
    }

    /// `GET /counter/{key}`: the counter's value.
    #[handle]
    fn read(&mut self, req: HttpRequest, reply: HttpReply) {
        match Self::key(&req) {
            Ok(key) => {
                let value = self.counts.get(key).copied().unwrap_or(0);
                reply.send(HttpResponse::text(StatusCode::OK, format!("{value}\n")));
            }
            Err(why) => reply.send(HttpResponse::text(400, why)),
        }
    }

    /// A counter's value (0 when never incremented).
    #[handle]
    fn value(&self, key: String) -> u64 {
        self.counts.get(&key).copied().unwrap_or(0)
    }
}

/// A WebSocket client's actor: forwards counter changes (all, or one key's) as `KEY=COUNT`.
pub struct Watcher {
    conn: WsHandle,
    key: Option<String>,
}

#[actor]
impl Watcher {
    /// Subscribes to [`COUNTER_UPDATES`] (before the client is told `subscribed`).
    #[init]
    fn init(&mut self, ctx: &mut Ctx<Self>) -> Result<(), SubscribeError> {
        ctx.monitor_event(
            &COUNTER_UPDATES,
            |update| WatcherMsg::Update { update },
            |down| WatcherMsg::CountersGone { down },
        )?;
        Ok(())
    }

    /// The connection's events: greets on connect, stops when it closes; what the client
    /// sends is ignored.
    #[handle]
    fn ws(&mut self, event: WsEvent, ctx: &mut Ctx<Self>) {
        match event {
            WsEvent::Connected(_) => self.push("subscribed".to_owned()),
            WsEvent::Closed(_) => ctx.stop(),
            _ => {}
        }
    }

    /// A counter changed.
    #[handle]
    fn update(&mut self, update: CounterUpdate) {
        if self.key.as_ref().is_none_or(|k| *k == update.key) {
            self.push(format!("{}={}", update.key, update.value));
        }
    }

    /// The counters are gone: nothing more to stream.
    #[handle]
    fn counters_gone(&mut self, down: EventDown) {
        let _ = down;
        self.conn.close();
    }
}

impl Watcher {
    /// Sends `text`, disconnecting a client too slow to keep up.
    fn push(&self, text: String) {
        if let Err(TrySendError::Full(_)) = self.conn.try_send(text) {
            tracing::info!(peer = %self.conn.peer_addr(), "watcher too slow; disconnecting");
            self.conn.close();
        }
    }
}

impl WsHandler for Watcher {
    fn event(event: WsEvent) -> WatcherMsg {
        WatcherMsg::Ws { event }
    }
}

/// How the counter server is run.
#[derive(Clone, Debug)]
pub struct HttpCounterConfig {
    /// Where to listen (port 0: the OS picks one).
    pub addr: SocketAddr,
    /// Requests queued for the counters before the server answers `503`.
    pub queue: usize,
    /// How long a request may wait for the counters before the server answers `504`.
    pub request_timeout: Duration,
    /// The largest request body, in bytes (`413` past it).
    pub body_limit: usize,
    /// Changes queued per WebSocket client before it counts as too slow and is disconnected.
    pub watcher_buffer: usize,
}

impl Default for HttpCounterConfig {
    /// 127.0.0.1 on a free port, 1024 queued requests, a 5 s timeout, 4 KiB bodies, 256
    /// queued changes per watcher.
    fn default() -> Self {
        HttpCounterConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            queue: 1024,
            request_timeout: Duration::from_secs(5),
            body_limit: 4096,
            watcher_buffer: 256,
        }
    }
}

/// A running counter server.
#[derive(Clone, Debug)]
pub struct HttpCounter {
    server: HttpServerRef,
    counters: ActorRef<Counters>,
}

impl HttpCounter {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The counters actor.
    pub fn counters(&self) -> &ActorRef<Counters> {
        &self.counters
    }

    /// Stops the server gracefully (requests in flight are answered, watchers disconnected),
    /// then the counters.
    pub async fn stop(&self) {
        self.server.stop().await;
        self.counters.stop(ExitReason::Shutdown);
        self.counters.wait().await;
    }
}

/// Starts the counters and the HTTP server on `node`.
///
/// # Errors
///
/// [`StartError::Io`] when the address cannot be bound, [`StartError::Spawn`] when an actor
/// cannot start (among others: another `Counters` already owns [`COUNTER_UPDATES`] on `node`).
pub async fn start(node: &Node, config: HttpCounterConfig) -> Result<HttpCounter, StartError> {
    let counters = node
        .spawn_opts(
            Counters::default(),
            SpawnOptions::new().mailbox_capacity(config.queue),
        )
        .await?;
    let increment = Endpoint::actor(counters.clone(), |req, reply| CountersMsg::Increment {
        req,
        reply,
    });
    let read = Endpoint::actor(counters.clone(), |req, reply| CountersMsg::Read {
        req,
        reply,
    });
    let watcher_buffer = config.watcher_buffer;
    let ws = ergo::meta::http::ws::WsConfig::default().write_buffer(watcher_buffer);
    let watcher = |conn: WsConn| Watcher {
        key: conn.param("key").map(str::to_owned),
        conn: conn.handle,
    };
    let started = HttpServer::bind(config.addr)
        .body_limit(config.body_limit)
        .request_timeout(config.request_timeout)
        .route(Method::POST, "/counter/{key}", increment)
        .route(Method::GET, "/counter/{key}", read)
        .websocket_with("/updates", ws, watcher)
        .websocket_with("/updates/{key}", ws, watcher)
        .start(node)
        .await;
    match started {
        Ok(server) => Ok(HttpCounter { server, counters }),
        Err(e) => {
            counters.stop(ExitReason::Shutdown);
            counters.wait().await;
            Err(e)
        }
    }
}
