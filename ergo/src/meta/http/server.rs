//! The HTTP server: the builder, the request path and graceful shutdown.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{ConnectInfo, RawPathParams, State};
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::serve::{kib, Limits};
use super::{
    Endpoint, HeaderMap, HeaderValue, HttpReply, HttpRequest, HttpResponse, Method, Refused,
    StatusCode, DEFAULT_BODY_BUDGET, DEFAULT_BODY_LIMIT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SHUTDOWN_GRACE,
};
use crate::meta::StartError;
use crate::Node;

/// How long the responses forced by an expired shutdown grace have to be written.
const EXPIRED_GRACE: Duration = Duration::from_secs(1);

/// What every request and WebSocket handler of a server shares.
pub(super) struct Shared {
    request_timeout: Duration,
    body_limit: usize,
    limits: Arc<Limits>,
    /// Cancelled when the server stops; WebSocket connections' tokens are its children.
    pub(super) shutdown: CancellationToken,
    /// Cancelled when the shutdown grace runs out: requests still waiting get 503.
    expired: CancellationToken,
    /// The WebSocket connection tasks.
    pub(super) tracker: TaskTracker,
}

pub(super) type SharedState = Arc<Shared>;

pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Stops a WebSocket route's supervisor and waits for it.
pub(super) type Stopper = Box<dyn Fn() -> BoxFuture<()> + Send + Sync>;

/// Adds a WebSocket route to the router once its supervisor is spawned on the node.
pub(super) type Installer = Box<
    dyn FnOnce(
            Node,
            Router<SharedState>,
        ) -> BoxFuture<Result<(Router<SharedState>, Stopper), StartError>>
        + Send,
>;

/// Configures and starts an HTTP server: `HttpServer::bind(addr).route(..).….start(&node)`.
///
/// Paths use axum's syntax: `/counter/{key}` captures one segment as the parameter `key`,
/// `/files/{*rest}` the rest of the path. One path may have several routes with different
/// methods.
///
/// Defaults: a 2 MiB body limit, a 5 s request timeout, a 10 s shutdown grace, a 10 s header
/// timeout (also the longest a keep-alive connection may sit idle), at most 512 open
/// connections and 64 MiB of request bodies in flight.
///
/// ```no_run
/// # use ergo::meta::http::*;
/// # use ergo::prelude::*;
/// # struct Api;
/// # #[actor] impl Api { #[handle] fn http(&mut self, req: HttpRequest, reply: HttpReply) {} }
/// # impl HttpHandler for Api { fn request(req: HttpRequest, reply: HttpReply) -> ApiMsg { ApiMsg::Http { req, reply } } }
/// # async fn f(node: ergo::Node, api: ergo::pool::Pool<Api>) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
///
/// let server = HttpServer::bind("0.0.0.0:8080".parse()?)
///     .body_limit(64 * 1024)
///     .request_timeout(Duration::from_secs(2))
///     .route(Method::GET, "/items/{id}", &api)
///     .route(Method::PUT, "/items/{id}", &api)
///     .start(&node)
///     .await?;
/// println!("listening on {}", server.local_addr());
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `start` is called"]
pub struct HttpServer {
    addr: SocketAddr,
    body_limit: usize,
    body_budget: usize,
    header_timeout: Duration,
    max_connections: usize,
    request_timeout: Duration,
    shutdown_grace: Duration,
    router: Router<SharedState>,
    pub(super) installers: Vec<Installer>,
}

impl fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .field("body_limit", &self.body_limit)
            .field("body_budget", &self.body_budget)
            .field("header_timeout", &self.header_timeout)
            .field("max_connections", &self.max_connections)
            .field("request_timeout", &self.request_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// A server that will listen on `addr` (port 0: the OS picks one; read it back with
    /// [`HttpServerRef::local_addr`]).
    pub fn bind(addr: SocketAddr) -> Self {
        HttpServer {
            addr,
            body_limit: DEFAULT_BODY_LIMIT,
            body_budget: DEFAULT_BODY_BUDGET,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            router: Router::new(),
            installers: Vec::new(),
        }
    }

    /// The largest request body accepted, in bytes; a larger one gets 413 (before it is read,
    /// when its length is announced).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How many bytes of request bodies may be buffered at once, over all requests in flight
    /// (default 64 MiB). A request is counted from before its body is read (for its announced
    /// length, or the body limit when it announces none) until its response is ready; one that
    /// does not fit gets 503 with `retry-after: 1`, and its body is never read. So memory for
    /// bodies stays bounded however many clients send at once. Counted in
    /// [`HttpStats::over_budget`].
    pub fn body_budget(mut self, bytes: usize) -> Self {
        self.body_budget = bytes;
        self
    }

    /// How long a client has to send a request's whole header (default 10 s), counted from the
    /// connection's start or from the end of the previous response: a client trickling its
    /// header, or a keep-alive connection idle for longer, is closed.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// How many connections may be open at once (default 512; keep it below the process's
    /// file descriptor limit). A connection over it is answered 503 with `retry-after: 1` and
    /// closed at once, and counted in [`HttpStats::refused_connections`].
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// How long a handler has to reply; after it the client gets 504.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long [`HttpServerRef::stop`] waits for requests in flight and WebSocket connections
    /// to finish before dropping them.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Sends `method` requests for `path` to `endpoint`: an [`Endpoint`], or the `&ActorRef`,
    /// `ActorRef` or `Pool` of an [`HttpHandler`](super::HttpHandler).
    ///
    /// # Panics
    ///
    /// When `method` is not one of the standard ones (`GET`, `POST`, `PUT`, `DELETE`, `PATCH`,
    /// `HEAD`, `OPTIONS`, `TRACE`, `CONNECT`), when `path` is not a valid route path, or when
    /// it already has a route for `method`.
    pub fn route(mut self, method: Method, path: &str, endpoint: impl Into<Endpoint>) -> Self {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("cannot route the method `{method}`"));
        let endpoint = endpoint.into();
        self.router = self.router.route(
            path,
            on(
                filter,
                move |state: State<SharedState>,
                      peer: ConnectInfo<SocketAddr>,
                      params: Result<RawPathParams, RawPathParamsRejection>,
                      method: Method,
                      uri: Uri,
                      headers: HeaderMap,
                      body: Body| {
                    serve_request(
                        endpoint.clone(),
                        state,
                        peer,
                        params,
                        method,
                        uri,
                        headers,
                        body,
                    )
                },
            ),
        );
        self
    }

    /// Binds the address, starts the WebSocket routes' supervisors on `node` and starts serving.
    ///
    /// # Errors
    ///
    /// [`StartError::Io`] when the address cannot be bound, [`StartError::Spawn`] when the node
    /// is shutting down.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped after a supervisor started, that supervisor is left running.
    pub async fn start(self, node: &Node) -> Result<HttpServerRef, StartError> {
        let listener = TcpListener::bind(self.addr).await?;
        let local_addr = listener.local_addr()?;
        let limits = Arc::new(Limits::new(
            self.header_timeout,
            self.max_connections,
            self.body_budget,
        ));
        let shared = Arc::new(Shared {
            request_timeout: self.request_timeout,
            body_limit: self.body_limit,
            limits: limits.clone(),
            shutdown: CancellationToken::new(),
            expired: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let mut router = self.router;
        let mut stoppers = Vec::new();
        for install in self.installers {
            match install(node.clone(), router).await {
                Ok((r, stop)) => {
                    router = r;
                    stoppers.push(stop);
                }
                Err(e) => {
                    for stop in &stoppers {
                        stop().await;
                    }
                    return Err(e);
                }
            }
        }
        let app = router.with_state(shared.clone());
        let task = tokio::spawn(super::serve::serve(
            listener,
            app,
            limits,
            shared.shutdown.clone(),
        ));
        tracing::info!(addr = %local_addr, "http server listening");
        Ok(HttpServerRef {
            inner: Arc::new(ServerInner {
                local_addr,
                shared,
                grace: self.shutdown_grace,
                task: Mutex::new(Some(task)),
                stoppers,
                stopped: tokio::sync::OnceCell::new(),
            }),
        })
    }
}

/// Turns one HTTP request into a message and its reply into the response.
#[allow(clippy::too_many_arguments)]
async fn serve_request(
    endpoint: Endpoint,
    State(shared): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = announced.filter(|n| *n > shared.body_limit as u64) {
        // A client that is still sending when the connection closes sees a broken pipe, not
        // the 413: take (and drop) a body up to twice the limit first, for at most a second.
        if n <= 2 * shared.body_limit as u64 {
            discard(body, Duration::from_secs(1)).await;
        }
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
    }
    // The body's share of the budget, held until the response is ready.
    let share = match announced {
        Some(0) => None,
        Some(n) => Some(kib(n as usize)),
        None if headers.contains_key(header::TRANSFER_ENCODING) => Some(kib(shared.body_limit)),
        None => None,
    };
    let _reserved = match share {
        Some(n) => match shared.limits.bodies.clone().try_acquire_many_owned(n) {
            Ok(permit) => Some(permit),
            Err(_) => {
                shared.limits.over_budget.fetch_add(1, Ordering::Relaxed);
                return unavailable();
            }
        },
        None => None,
    };
    let read =
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, shared.body_limit))
            .await;
    let body = match read {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return if e.is::<http_body_util::LengthLimitError>() {
                plain(StatusCode::PAYLOAD_TOO_LARGE, "payload too large")
            } else {
                plain(StatusCode::BAD_REQUEST, "bad request body")
            };
        }
    };
    let params = params
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let req = HttpRequest {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        params,
        body,
        peer,
    };
    let (reply, rx) = HttpReply::pair();
    if let Err(refused) = endpoint.0.dispatch(req, reply) {
        if matches!(refused, Refused::Gone) {
            tracing::warn!(path = %uri.path(), "http endpoint has no live actor");
        }
        return unavailable();
    }
    let answered = tokio::select! {
        answered = tokio::time::timeout(shared.request_timeout, rx) => answered,
        _ = shared.expired.cancelled() => {
            // The shutdown grace has run out: answer now rather than hold the stop up.
            return plain(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
        }
    };
    match answered {
        Ok(Ok(response)) => response.into_response(),
        Ok(Err(_)) => {
            // The details stay in the log: the handler's actor ended or dropped the reply.
            tracing::warn!(path = %uri.path(), "http handler ended without replying");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
        }
        Err(_) => plain(StatusCode::GATEWAY_TIMEOUT, "gateway timeout"),
    }
}

/// Reads `body` to its end and drops it chunk by chunk, for at most `bound`.
async fn discard(mut body: Body, bound: Duration) {
    use http_body_util::BodyExt;
    let _ = tokio::time::timeout(bound, async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
}

/// 503 with `retry-after: 1`.
fn unavailable() -> Response {
    let mut res = plain(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

pub(super) fn plain(status: StatusCode, text: &'static str) -> Response {
    HttpResponse::text(status, text).into_response()
}

/// A server's counters ([`HttpServerRef::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpStats {
    /// Connections open now.
    pub connections: usize,
    /// Connections refused because [`HttpServer::max_connections`] were open.
    pub refused_connections: u64,
    /// Requests answered 503 because their body did not fit in [`HttpServer::body_budget`].
    pub over_budget: u64,
}

struct ServerInner {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    grace: Duration,
    task: Mutex<Option<JoinHandle<()>>>,
    stoppers: Vec<Stopper>,
    stopped: tokio::sync::OnceCell<()>,
}

/// A running HTTP server; cheap to clone. It serves until [`HttpServerRef::stop`], not merely
/// until this ref is dropped.
#[derive(Clone)]
pub struct HttpServerRef {
    inner: Arc<ServerInner>,
}

impl fmt::Debug for HttpServerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServerRef")
            .field("local_addr", &self.inner.local_addr)
            .field("running", &self.is_running())
            .finish()
    }
}

impl HttpServerRef {
    /// The address the server listens on (with the port the OS picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// What the server's limits have turned away so far, and its open connections.
    ///
    /// ```no_run
    /// # async fn f(server: ergo::meta::http::HttpServerRef) {
    /// let stats = server.stats();
    /// println!("{} open, {} refused", stats.connections, stats.refused_connections);
    /// # }
    /// ```
    pub fn stats(&self) -> HttpStats {
        let limits = &self.inner.shared.limits;
        HttpStats {
            connections: limits.max_connections - limits.connections.available_permits(),
            refused_connections: limits.refused_connections.load(Ordering::Relaxed),
            over_budget: limits.over_budget.load(Ordering::Relaxed),
        }
    }

    /// Whether the server still accepts connections.
    pub fn is_running(&self) -> bool {
        !self.inner.shared.shutdown.is_cancelled()
    }

    /// Stops the server gracefully: stops accepting, lets requests in flight finish and sends
    /// their responses, closes WebSocket connections ([`CloseReason::Shutdown`] delivered to
    /// their actors, which are then stopped), and returns when all is done. When the shutdown
    /// grace runs out first, requests still waiting for their actor are answered 503 at once.
    /// Calling it again waits for the same end.
    ///
    /// # Cancel safety
    ///
    /// The stop goes on if the future is dropped; only the waiting is cancelled.
    ///
    /// [`CloseReason::Shutdown`]: crate::meta::CloseReason::Shutdown
    pub async fn stop(&self) {
        let inner = self.inner.clone();
        inner.shared.shutdown.cancel();
        inner.shared.tracker.close();
        let done = tokio::spawn(async move {
            let inner2 = inner.clone();
            inner
                .stopped
                .get_or_init(|| async move {
                    let task = inner2.task.lock().take();
                    let deadline = tokio::time::Instant::now() + inner2.grace;
                    if let Some(mut task) = task {
                        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                            tracing::warn!("http shutdown grace ran out; answering 503");
                            inner2.shared.expired.cancel();
                            if tokio::time::timeout(EXPIRED_GRACE, &mut task)
                                .await
                                .is_err()
                            {
                                task.abort();
                            }
                        }
                    }
                    let _ = tokio::time::timeout_at(deadline, inner2.shared.tracker.wait()).await;
                    for stop in &inner2.stoppers {
                        stop().await;
                    }
                    tracing::info!(addr = %inner2.local_addr, "http server stopped");
                })
                .await;
        });
        let _ = done.await;
    }
}
