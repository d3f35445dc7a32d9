//! The server's accept loop: every connection an HTTP/1.1 connection of hyper's with a timer
//! (so the header timeout applies, also to idle keep-alive connections), within a cap on
//! open connections, shut down gracefully.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a connection over the cap is told before it is closed.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 19\r\n\r\nservice unavailable";

/// The limits of one server and what they turned away.
pub(super) struct Limits {
    pub(super) header_timeout: Duration,
    /// One permit per open connection.
    pub(super) connections: Arc<Semaphore>,
    pub(super) max_connections: usize,
    /// One permit per KiB of request bodies buffered in flight.
    pub(super) bodies: Arc<Semaphore>,
    pub(super) refused_connections: AtomicU64,
    pub(super) over_budget: AtomicU64,
}

impl Limits {
    pub(super) fn new(header_timeout: Duration, max_connections: usize, budget: usize) -> Self {
        Limits {
            header_timeout,
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            bodies: Arc::new(Semaphore::new(kib(budget) as usize)),
            refused_connections: AtomicU64::new(0),
            over_budget: AtomicU64::new(0),
        }
    }
}

/// `bytes` in KiB, rounded up (at least 1, at most `u32::MAX`).
pub(super) fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// Accepts and serves connections until `shutdown`, then lets each finish the request it is
/// on and returns once all have closed.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let refusals = crate::log_limit::RateLimit::new(Duration::from_secs(5));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limits.connections.clone().try_acquire_owned() else {
            limits.refused_connections.fetch_add(1, Ordering::Relaxed);
            // The socket's send buffer is empty: this never waits.
            let _ = tcp.try_write(FULL);
            if let Some(more) = refusals.hit() {
                tracing::warn!(
                    %peer,
                    max = limits.max_connections,
                    not_logged = more,
                    "http connection refused: the server has its maximum of open connections"
                );
            }
            continue;
        };
        let (router, limits, shutdown) = (router.clone(), limits.clone(), shutdown.clone());
        connections.spawn(async move {
            serve_connection(tcp, peer, router, &limits, shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: &Limits,
    shutdown: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move {
            // The router is always ready (axum's own server calls it the same way).
            let res = tower_service::Service::call(&mut router, req).await;
            Ok::<_, Infallible>(res.unwrap_or_else(|never| match never {}))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        ended = conn.as_mut() => {
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
            return;
        }
        _ = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "http connection ended");
    }
}
