//! HTTP server meta process: routes dispatch each request as a message to an actor (or a pool of
//! workers), and the actor's reply becomes the response. WebSocket routes give every connection
//! an actor of its own ([`ws`]).
//!
//! The server is axum over hyper, owned by tasks of its own; actors only ever see messages.
//!
//! # Serving a request from an `#[actor]`
//!
//! A request arrives as an [`HttpRequest`] together with an [`HttpReply`], the slot its
//! response goes to. The actor type says how the pair becomes one of its messages, either for
//! all its routes with [`HttpHandler`] (then the actor ref itself is the endpoint) or per route
//! with [`Endpoint::actor`] and a constructor (one actor, several handlers). The handler answers
//! with [`HttpReply::send`], now or later (it may hand the reply to a task).
//!
//! # Status codes the server gives
//!
//! | what happened | status |
//! | --- | --- |
//! | the actor replied | the reply's |
//! | no reply within the request timeout (5 s unless set) | 504 Gateway Timeout |
//! | the actor ended (a panic among others) or dropped the reply without answering | 500 Internal Server Error, body `internal server error`, no details |
//! | the actor's bounded mailbox is full (every worker's, for a pool), or it has ended before the request was queued | 503 Service Unavailable, with `retry-after: 1` |
//! | the body is larger than the limit (2 MiB unless set) | 413 Payload Too Large |
//! | the body does not fit in the budget for bodies in flight (64 MiB unless set) | 503 Service Unavailable, with `retry-after: 1` |
//! | the server has its maximum of open connections (512 unless set) | 503 Service Unavailable, with `retry-after: 1`, and the connection closed |
//!
//! A client that takes longer than the header timeout (10 s unless set) to send a request's
//! header, or leaves a keep-alive connection idle that long, is disconnected.
//! | no route matches | 404, or 405 for a path served with other methods |
//!
//! Requests are queued with a non-waiting send ([`ActorRef::try_cast`]): the server sheds load
//! with 503 rather than queueing requests in memory without bound. A request that timed out may
//! still be handled later; its reply then goes nowhere ([`HttpReply::is_waiting`] tells).
//!
//! # Shutdown
//!
//! [`HttpServerRef::stop`] stops accepting at once, lets requests in flight finish (their
//! responses are sent) and closes idle connections, closes every WebSocket connection with
//! [`CloseReason::Shutdown`](super::CloseReason::Shutdown), and returns once all is done. All
//! of it is bounded by the shutdown grace (10 s unless set): requests still waiting for their
//! actor when it runs out are answered 503 at once.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::meta::http::{HttpHandler, HttpReply, HttpRequest, HttpResponse, HttpServer, Method};
//! use ergo::prelude::*;
//!
//! struct Hello;
//!
//! #[actor]
//! impl Hello {
//!     #[handle]
//!     fn http(&mut self, req: HttpRequest, reply: HttpReply) {
//!         let name = req.param("name").unwrap_or("world");
//!         reply.send(HttpResponse::text(200, format!("hello, {name}")));
//!     }
//! }
//!
//! impl HttpHandler for Hello {
//!     fn request(req: HttpRequest, reply: HttpReply) -> HelloMsg { HelloMsg::Http { req, reply } }
//! }
//!
//! let node = Node::builder("http-doc@localhost").start().await?;
//! let hello = node.spawn(Hello).await?;
//! let server = HttpServer::bind("127.0.0.1:0".parse()?)
//!     .route(Method::GET, "/hello/{name}", &hello)
//!     .start(&node)
//!     .await?;
//! // Any HTTP client will do; a raw request keeps this example free of one.
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut conn = tokio::net::TcpStream::connect(server.local_addr()).await?;
//! conn.write_all(b"GET /hello/ada HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
//! let mut response = String::new();
//! conn.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 200 OK"));
//! assert!(response.ends_with("hello, ada"));
//! server.stop().await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderName};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use super::Bytes;
use crate::pool::Pool;
use crate::{Actor, ActorRef, Node, TrySendError};

mod serve;
mod server;
pub mod ws;

pub use server::{HttpServer, HttpServerRef, HttpStats};

/// HTTP types used in requests and responses (re-exported from the `http` crate, through axum).
pub use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};

/// The default body size limit: 2 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The default time a handler has to reply before the response is 504: 5 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The default budget for request bodies buffered at once, over all requests: 64 MiB.
pub const DEFAULT_BODY_BUDGET: usize = 64 * 1024 * 1024;

/// The default time a client has to send a request's header (also the longest a keep-alive
/// connection may sit idle): 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The default cap on open connections: 512.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The default bound on a graceful shutdown: 10 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Request, response, reply
// ---------------------------------------------------------------------------------------------

/// An HTTP request, with its whole body, as an actor receives it.
///
/// ```
/// use ergo::meta::http::{HttpRequest, Method};
/// let req = HttpRequest::new(Method::POST, "/counter/a").with_param("key", "a").with_body("1");
/// assert_eq!(req.param("key"), Some("a"));
/// assert_eq!(req.text(), Some("1"));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query string (after `?`), if any.
    pub query: Option<String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The route's path parameters (`{key}` in `/counter/{key}`), percent-decoded, in order.
    pub params: Vec<(String, String)>,
    /// The body (at most the server's body limit).
    pub body: Bytes,
    /// The client's address.
    pub peer: SocketAddr,
}

impl HttpRequest {
    /// A request with no headers, parameters or body, from `0.0.0.0:0` (for testing handlers
    /// without a server).
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        HttpRequest {
            method,
            path: path.into(),
            query: None,
            headers: HeaderMap::new(),
            params: Vec::new(),
            body: Bytes::new(),
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// Adds a path parameter.
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The path parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The header `name` (case-insensitive), if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

/// An HTTP response, as an actor gives it.
///
/// ```
/// use ergo::meta::http::{HttpResponse, StatusCode};
/// let res = HttpResponse::text(201, "created").with_header("x-id", "7");
/// assert_eq!(res.status, StatusCode::CREATED);
/// assert_eq!(&res.body[..], b"created");
/// assert_eq!(res.headers["x-id"], "7");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers (`content-length` is set by the server).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// An empty response with `status`.
    ///
    /// # Panics
    ///
    /// When `status` is a number outside 100..=999.
    pub fn new(status: impl TryInto<StatusCode, Error: fmt::Debug>) -> Self {
        HttpResponse {
            status: status.try_into().expect("an HTTP status code"),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    ///
    /// # Panics
    ///
    /// When `status` is a number outside 100..=999.
    pub fn text(
        status: impl TryInto<StatusCode, Error: fmt::Debug>,
        body: impl Into<String>,
    ) -> Self {
        Self::new(status)
            .with_header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a header.
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header name or value.
    pub fn with_header(
        mut self,
        name: impl TryInto<HeaderName, Error: fmt::Debug>,
        value: impl TryInto<HeaderValue, Error: fmt::Debug>,
    ) -> Self {
        self.headers.append(
            name.try_into().expect("a valid header name"),
            value.try_into().expect("a valid header value"),
        );
        self
    }
}

impl From<StatusCode> for HttpResponse {
    fn from(status: StatusCode) -> Self {
        HttpResponse::new(status)
    }
}

impl IntoResponse for HttpResponse {
    fn into_response(self) -> Response {
        (self.status, self.headers, self.body).into_response()
    }
}

/// Where the response to one request goes; the handler answers with [`HttpReply::send`].
///
/// Dropped without an answer (the handler forgot it, or its actor ended), the client gets 500.
pub struct HttpReply(Option<oneshot::Sender<HttpResponse>>);

impl HttpReply {
    /// Sends the response. Does nothing if the request has timed out or the client is gone.
    pub fn send(mut self, response: impl Into<HttpResponse>) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(response.into());
        }
    }

    /// Whether the server still waits for this response.
    pub fn is_waiting(&self) -> bool {
        self.0.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    /// A reply slot and the receiver of what is sent to it.
    pub(super) fn pair() -> (HttpReply, oneshot::Receiver<HttpResponse>) {
        let (tx, rx) = oneshot::channel();
        (HttpReply(Some(tx)), rx)
    }
}

impl fmt::Debug for HttpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_waiting() {
            "HttpReply(waiting)"
        } else {
            "HttpReply(done)"
        })
    }
}

/// An actor that serves HTTP requests: turns a request and its reply slot into its message.
///
/// With `#[actor]`, give the actor a handler taking `(HttpRequest, HttpReply)` and wrap them in
/// its generated variant; then `&ActorRef<A>`, `ActorRef<A>` and `Pool<A>` are [`Endpoint`]s.
///
/// ```
/// use ergo::meta::http::{HttpHandler, HttpReply, HttpRequest, HttpResponse};
/// use ergo::prelude::*;
///
/// struct Echo;
/// #[actor]
/// impl Echo {
///     #[handle]
///     fn http(&mut self, req: HttpRequest, reply: HttpReply) {
///         reply.send(HttpResponse::new(200).with_body(req.body));
///     }
/// }
/// impl HttpHandler for Echo {
///     fn request(req: HttpRequest, reply: HttpReply) -> EchoMsg { EchoMsg::Http { req, reply } }
/// }
/// ```
pub trait HttpHandler: Actor {
    /// Wraps a request and its reply slot in the actor's message.
    fn request(req: HttpRequest, reply: HttpReply) -> Self::Msg;
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

/// Why a request could not be queued.
pub(super) enum Refused {
    /// Every candidate mailbox is full.
    Full,
    /// No live actor to send to.
    Gone,
}

/// Queues a request with its reply slot; never waits.
pub(super) trait Dispatch: Send + Sync + 'static {
    fn dispatch(&self, req: HttpRequest, reply: HttpReply) -> Result<(), Refused>;
}

type MakeMsg<A> = Arc<dyn Fn(HttpRequest, HttpReply) -> <A as Actor>::Msg + Send + Sync>;

struct ToActor<A: Actor> {
    actor: ActorRef<A>,
    make: MakeMsg<A>,
}

impl<A: Actor> Dispatch for ToActor<A> {
    fn dispatch(&self, req: HttpRequest, reply: HttpReply) -> Result<(), Refused> {
        match self.actor.try_cast((self.make)(req, reply)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Refused::Full),
            Err(TrySendError::Closed(_)) => Err(Refused::Gone),
        }
    }
}

struct ToPool<A: Actor> {
    pool: Pool<A>,
    make: MakeMsg<A>,
}

impl<A: Actor> Dispatch for ToPool<A> {
    fn dispatch(&self, req: HttpRequest, reply: HttpReply) -> Result<(), Refused> {
        let mut msg = (self.make)(req, reply);
        let mut full = false;
        // One attempt per worker: routing picks the next one after a full or ended worker.
        for _ in 0..self.pool.len().max(1) {
            let Some(worker) = self.pool.pick() else {
                break;
            };
            match worker.try_cast(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    full = true;
                    msg = back;
                }
                Err(TrySendError::Closed(back)) => msg = back,
            }
        }
        Err(if full { Refused::Full } else { Refused::Gone })
    }
}

struct ToNamed<A: Actor> {
    node: Node,
    name: String,
    make: MakeMsg<A>,
}

impl<A: Actor> Dispatch for ToNamed<A> {
    fn dispatch(&self, req: HttpRequest, reply: HttpReply) -> Result<(), Refused> {
        let actor = self.node.whereis::<A>(&self.name).ok_or(Refused::Gone)?;
        match actor.try_cast((self.make)(req, reply)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Refused::Full),
            Err(TrySendError::Closed(_)) => Err(Refused::Gone),
        }
    }
}

/// Where a route's requests go: an actor, a pool of workers, or a registered name.
///
/// An [`HttpHandler`]'s `ActorRef` (or `&ActorRef`) and `Pool` convert into one; the
/// constructors take a closure building the message instead, for an actor that serves several
/// routes with different handlers.
///
/// ```no_run
/// # use ergo::meta::http::*;
/// # use ergo::prelude::*;
/// # #[derive(Default)] struct Counter { n: u64 }
/// # #[actor] impl Counter {
/// #     #[handle] fn bump(&mut self, req: HttpRequest, reply: HttpReply) {}
/// #     #[handle] fn read(&mut self, req: HttpRequest, reply: HttpReply) {}
/// # }
/// # async fn f(node: Node, counter: ActorRef<Counter>) -> Result<(), Box<dyn std::error::Error>> {
/// let server = HttpServer::bind("127.0.0.1:8080".parse()?)
///     .route(Method::POST, "/count", Endpoint::actor(counter.clone(), |req, reply| {
///         CounterMsg::Bump { req, reply }
///     }))
///     .route(Method::GET, "/count", Endpoint::actor(counter, |req, reply| {
///         CounterMsg::Read { req, reply }
///     }))
///     .start(&node)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Endpoint(pub(super) Arc<dyn Dispatch>);

impl Endpoint {
    /// Requests go to `actor`, as the message `make` builds.
    pub fn actor<A: Actor>(
        actor: ActorRef<A>,
        make: impl Fn(HttpRequest, HttpReply) -> A::Msg + Send + Sync + 'static,
    ) -> Self {
        Endpoint(Arc::new(ToActor {
            actor,
            make: Arc::new(make),
        }))
    }

    /// Requests go to the worker `pool` routes to, as the message `make` builds; a worker with
    /// a full mailbox is passed over for the next one (503 only when all are full).
    pub fn pool<A: Actor>(
        pool: Pool<A>,
        make: impl Fn(HttpRequest, HttpReply) -> A::Msg + Send + Sync + 'static,
    ) -> Self {
        Endpoint(Arc::new(ToPool {
            pool,
            make: Arc::new(make),
        }))
    }

    /// Requests go to whichever actor is registered as `name` on `node` when each arrives (so a
    /// supervised actor restarted under its name keeps serving), as the message `make` builds.
    /// Name the actor type: `Endpoint::named::<Counter>(&node, "counter", ..)`.
    pub fn named<A: Actor>(
        node: &Node,
        name: impl Into<String>,
        make: impl Fn(HttpRequest, HttpReply) -> A::Msg + Send + Sync + 'static,
    ) -> Self {
        Endpoint(Arc::new(ToNamed::<A> {
            node: node.clone(),
            name: name.into(),
            make: Arc::new(make),
        }))
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Endpoint(..)")
    }
}

impl<A: HttpHandler> From<ActorRef<A>> for Endpoint {
    fn from(actor: ActorRef<A>) -> Self {
        Endpoint::actor(actor, A::request)
    }
}

impl<A: HttpHandler> From<&ActorRef<A>> for Endpoint {
    fn from(actor: &ActorRef<A>) -> Self {
        Endpoint::actor(actor.clone(), A::request)
    }
}

impl<A: HttpHandler> From<Pool<A>> for Endpoint {
    fn from(pool: Pool<A>) -> Self {
        Endpoint::pool(pool, A::request)
    }
}

impl<A: HttpHandler> From<&Pool<A>> for Endpoint {
    fn from(pool: &Pool<A>) -> Self {
        Endpoint::pool(pool.clone(), A::request)
    }
}
