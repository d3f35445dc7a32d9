//! Network workloads: TCP echo through connection actors, HTTP requests through an actor
//! handler, each beside the same server written without actors (plain tokio, plain axum).
//!
//! Clients are tasks in the same process and runtime as the servers, talking over 127.0.0.1,
//! so the figures include the clients' own cost; the ratio compares the servers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ergo::meta::http::{HttpHandler, HttpReply, HttpRequest, HttpResponse, HttpServer, Method};
use ergo::meta::tcp::{TcpConn, TcpEvent, TcpHandle, TcpHandler, TcpServer};
use ergo::meta::Codec;
use ergo::prelude::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::cli::Config;
use crate::measure::{best_of, check, join, new_node, percentiles, report, BenchResult, Sample};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

// ---------------------------------------------------------------------------------------------
// tcp_echo
// ---------------------------------------------------------------------------------------------

/// A connection actor echoing each line back, counting them.
struct EchoConn {
    conn: TcpHandle,
    echoed: Arc<AtomicU64>,
}

#[actor]
impl EchoConn {
    /// Echoes a line; stops when the connection closes.
    #[handle]
    async fn tcp(&mut self, event: TcpEvent, ctx: &mut Ctx<Self>) {
        match event {
            TcpEvent::Data(line) => {
                self.echoed.fetch_add(1, Ordering::Relaxed);
                let _ = self.conn.send(line).await;
            }
            TcpEvent::Closed(_) => ctx.stop(),
            _ => {}
        }
    }
}

impl TcpHandler for EchoConn {
    fn event(event: TcpEvent) -> EchoConnMsg {
        EchoConnMsg::Tcp { event }
    }
}

/// `conns` connections each echo `per_conn` lines, ergo's server then plain tokio's.
pub(crate) async fn tcp_echo_workload(
    cfg: &Config,
    workload: &str,
    conns: u64,
    total: u64,
) -> BenchResult<()> {
    let per_conn = (total / conns).max(1);
    let ergo = best_of(cfg.reps, |rep| {
        ergo_tcp_echo(workload, rep, conns, per_conn)
    })
    .await?;
    let tokio = best_of(cfg.reps, |_| tokio_tcp_echo(conns, per_conn)).await?;
    report(workload, "msg/s", &ergo, &tokio);
    Ok(())
}

/// Runs `conns` clients against `addr`, each sending `per_conn` lines one at a time and
/// checking each echo; returns the elapsed time and every round trip's latency.
async fn echo_clients(
    addr: SocketAddr,
    conns: u64,
    per_conn: u64,
) -> BenchResult<(std::time::Duration, Vec<u64>)> {
    let mut streams = Vec::new();
    for _ in 0..conns {
        let s = TcpStream::connect(addr).await.map_err(io_err("connect"))?;
        s.set_nodelay(true).map_err(io_err("nodelay"))?;
        streams.push(s);
    }
    let start = Instant::now();
    let clients: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(id, stream)| {
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                let mut latencies = Vec::with_capacity(per_conn as usize);
                let mut line = String::new();
                for seq in 0..per_conn {
                    let msg =
                        format!("client {id} message {seq} ................................\n");
                    let t = Instant::now();
                    w.write_all(msg.as_bytes()).await.map_err(io_err("write"))?;
                    line.clear();
                    r.read_line(&mut line).await.map_err(io_err("read"))?;
                    latencies.push(t.elapsed().as_nanos() as u64);
                    check(
                        format_args!("echo of {id}/{seq}"),
                        line.as_str(),
                        msg.as_str(),
                    )?;
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::with_capacity((conns * per_conn) as usize);
    for client in clients {
        all.extend(join(client).await?);
    }
    Ok((start.elapsed(), all))
}

async fn ergo_tcp_echo(
    workload: &str,
    rep: usize,
    conns: u64,
    per_conn: u64,
) -> BenchResult<Sample> {
    let node = new_node(workload, rep).await?;
    let echoed = Arc::new(AtomicU64::new(0));
    let counter = echoed.clone();
    let server = TcpServer::bind(loopback())
        .codec(Codec::Lines)
        .start(&node, move |conn: TcpConn| EchoConn {
            conn: conn.handle,
            echoed: counter.clone(),
        })
        .await
        .map_err(|e| format!("tcp server: {e}"))?;
    let (elapsed, latencies) = echo_clients(server.local_addr(), conns, per_conn).await?;
    server.stop().await;
    check(
        "lines echoed by actors",
        echoed.load(Ordering::Relaxed),
        conns * per_conn,
    )?;
    check("processes left", node.process_count(), 0)?;
    Ok(Sample {
        elapsed,
        ops: conns * per_conn,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

async fn tokio_tcp_echo(conns: u64, per_conn: u64) -> BenchResult<Sample> {
    let listener = TcpListener::bind(loopback())
        .await
        .map_err(io_err("bind"))?;
    let addr = listener.local_addr().map_err(io_err("local_addr"))?;
    let echoed = Arc::new(AtomicU64::new(0));
    let counter = echoed.clone();
    let acceptor = tokio::spawn(async move {
        let mut served = Vec::new();
        for _ in 0..conns {
            let (stream, _) = listener.accept().await.map_err(io_err("accept"))?;
            let _ = stream.set_nodelay(true);
            let counter = counter.clone();
            served.push(tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let mut out = line.into_bytes();
                    out.push(b'\n');
                    if w.write_all(&out).await.is_err() {
                        break;
                    }
                }
            }));
        }
        Ok(served)
    });
    let (elapsed, latencies) = echo_clients(addr, conns, per_conn).await?;
    for task in join(acceptor).await? {
        task.await.map_err(|e| format!("echo task: {e}"))?;
    }
    check(
        "lines echoed by tasks",
        echoed.load(Ordering::Relaxed),
        conns * per_conn,
    )?;
    Ok(Sample {
        elapsed,
        ops: conns * per_conn,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

// ---------------------------------------------------------------------------------------------
// http_rps
// ---------------------------------------------------------------------------------------------

/// Concurrent keep-alive client connections of `http_rps`.
const HTTP_CLIENTS: u64 = 16;

/// Answers `GET /hello` with `hello`, counting requests.
struct Hello {
    served: u64,
}

#[actor]
impl Hello {
    /// Serves one request.
    #[handle]
    fn http(&mut self, req: HttpRequest, reply: HttpReply) {
        let _ = req;
        self.served += 1;
        reply.send(HttpResponse::text(200, "hello"));
    }

    /// Requests served so far.
    #[handle]
    fn served(&self) -> u64 {
        self.served
    }
}

impl HttpHandler for Hello {
    fn request(req: HttpRequest, reply: HttpReply) -> HelloMsg {
        HelloMsg::Http { req, reply }
    }
}

/// `HTTP_CLIENTS` keep-alive clients make `total` requests, to ergo's server then plain axum's.
pub(crate) async fn http_rps_workload(cfg: &Config, total: u64) -> BenchResult<()> {
    let per_client = (total / HTTP_CLIENTS).max(1);
    let ergo = best_of(cfg.reps, |rep| ergo_http(rep, per_client)).await?;
    let axum = best_of(cfg.reps, |_| axum_http(per_client)).await?;
    println!("# tokio_http_rps is a plain axum server (no actors) on the same runtime");
    report("http_rps", "req/s", &ergo, &axum);
    Ok(())
}

/// One keep-alive HTTP/1.1 client: `n` sequential `GET /hello`, each response checked.
async fn http_client(addr: SocketAddr, n: u64) -> BenchResult<Vec<u64>> {
    let stream = TcpStream::connect(addr).await.map_err(io_err("connect"))?;
    stream.set_nodelay(true).map_err(io_err("nodelay"))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut latencies = Vec::with_capacity(n as usize);
    let mut line = String::new();
    let mut body = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        w.write_all(b"GET /hello HTTP/1.1\r\nhost: bench\r\n\r\n")
            .await
            .map_err(io_err("write"))?;
        line.clear();
        r.read_line(&mut line).await.map_err(io_err("read"))?;
        if !line.starts_with("HTTP/1.1 200 ") {
            return Err(format!("request {i}: status line {line:?}"));
        }
        let mut length = None;
        loop {
            line.clear();
            r.read_line(&mut line).await.map_err(io_err("read"))?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.ok_or_else(|| format!("request {i}: no content-length"))?;
        body.resize(length, 0);
        r.read_exact(&mut body).await.map_err(io_err("read body"))?;
        latencies.push(t.elapsed().as_nanos() as u64);
        check(
            format_args!("body of request {i}"),
            body.as_slice(),
            b"hello".as_slice(),
        )?;
    }
    Ok(latencies)
}

/// Runs the clients against `addr`; returns the elapsed time and every request's latency.
async fn http_clients(
    addr: SocketAddr,
    per_client: u64,
) -> BenchResult<(std::time::Duration, Vec<u64>)> {
    let start = Instant::now();
    let clients: Vec<_> = (0..HTTP_CLIENTS)
        .map(|_| tokio::spawn(http_client(addr, per_client)))
        .collect();
    let mut all = Vec::with_capacity((HTTP_CLIENTS * per_client) as usize);
    for client in clients {
        all.extend(join(client).await?);
    }
    Ok((start.elapsed(), all))
}

async fn ergo_http(rep: usize, per_client: u64) -> BenchResult<Sample> {
    let node = new_node("http_rps", rep).await?;
    let hello = node
        .spawn(Hello { served: 0 })
        .await
        .map_err(|e| e.to_string())?;
    let server = HttpServer::bind(loopback())
        .route(Method::GET, "/hello", &hello)
        .start(&node)
        .await
        .map_err(|e| format!("http server: {e}"))?;
    let (elapsed, latencies) = http_clients(server.local_addr(), per_client).await?;
    server.stop().await;
    let served = hello.served().await.map_err(|e| e.to_string())?;
    check(
        "requests served by the actor",
        served,
        HTTP_CLIENTS * per_client,
    )?;
    hello.stop(ExitReason::Normal);
    hello.wait().await;
    Ok(Sample {
        elapsed,
        ops: HTTP_CLIENTS * per_client,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}

async fn axum_http(per_client: u64) -> BenchResult<Sample> {
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let app = axum::Router::new().route(
        "/hello",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async { ([("content-type", "text/plain; charset=utf-8")], "hello") }
        }),
    );
    let listener = TcpListener::bind(loopback())
        .await
        .map_err(io_err("bind"))?;
    let addr = listener.local_addr().map_err(io_err("local_addr"))?;
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stopped.notified().await })
            .await
            .map_err(io_err("serve"))
    });
    let (elapsed, latencies) = http_clients(addr, per_client).await?;
    stop.notify_one();
    join(server).await?;
    check(
        "requests served by axum",
        served.load(Ordering::Relaxed),
        HTTP_CLIENTS * per_client,
    )?;
    Ok(Sample {
        elapsed,
        ops: HTTP_CLIENTS * per_client,
        latency: Some(percentiles(latencies)),
        rss_per_op: None,
    })
}
