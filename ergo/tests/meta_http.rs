//! The HTTP and WebSocket meta processes (`ergo::meta::http`), driven by real clients on
//! 127.0.0.1: reqwest for HTTP, tokio-tungstenite for WebSocket.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, node, within};
use ergo::meta::http::ws::{WsConfig, WsConn, WsEvent, WsHandle, WsHandler};
use ergo::meta::http::{
    Endpoint, HttpHandler, HttpReply, HttpRequest, HttpResponse, HttpServer, HttpServerRef, Method,
    DEFAULT_BODY_LIMIT,
};
use ergo::meta::{Bytes, CloseReason, TrySendError};
use ergo::pool::{Pool, Routing};
use ergo::prelude::*;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::Message;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds")
}

fn url(server: &HttpServerRef, path: &str) -> String {
    format!("http://{}{path}", server.local_addr())
}

async fn get(server: &HttpServerRef, path: &str) -> (u16, String) {
    let res = within(path, client().get(url(server, path)).send())
        .await
        .expect("response");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

// ---------------------------------------------------------------------------------------------
// Actors under test
// ---------------------------------------------------------------------------------------------

/// Answers `worker N: PATH BODY`; panics on `/boom` with a secret in the message.
struct Worker {
    id: usize,
}

#[actor]
impl Worker {
    #[handle]
    fn http(&mut self, req: HttpRequest, reply: HttpReply) {
        if req.path == "/boom" {
            panic!("secret detail 42");
        }
        let body = format!(
            "worker {}: {} {}",
            self.id,
            req.path,
            req.text().unwrap_or("")
        );
        reply.send(HttpResponse::text(200, body));
    }
}

impl HttpHandler for Worker {
    fn request(req: HttpRequest, reply: HttpReply) -> WorkerMsg {
        WorkerMsg::Http { req, reply }
    }
}

async fn worker_pool(node: &Node, size: usize) -> Pool<Worker> {
    let mut n = 0;
    Pool::spawn(node, size, Routing::RoundRobin, move || {
        n += 1;
        Worker { id: n }
    })
    .await
    .expect("pool spawns")
}

/// Holds each request until the test hands out a permit; tells the test when it has one.
struct Gated {
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<String>,
    parked: Vec<HttpReply>,
}

#[actor]
impl Gated {
    #[handle]
    async fn http(&mut self, req: HttpRequest, reply: HttpReply) {
        let _ = self.entered.send(req.path.clone());
        if req.path == "/never" {
            // Keeps the reply without answering: the server's timeout decides.
            self.parked.push(reply);
            return;
        }
        self.gate.acquire().await.expect("gate open").forget();
        reply.send(HttpResponse::text(200, format!("done {}", req.path)));
    }
}

impl HttpHandler for Gated {
    fn request(req: HttpRequest, reply: HttpReply) -> GatedMsg {
        GatedMsg::Http { req, reply }
    }
}

struct Gate {
    permits: Arc<Semaphore>,
    entered: mpsc::UnboundedReceiver<String>,
}

impl Gate {
    async fn entered(&mut self) -> String {
        within("a request reaching the handler", self.entered.recv())
            .await
            .expect("handler alive")
    }
}

async fn gated(node: &Node, capacity: Option<usize>) -> (ActorRef<Gated>, Gate) {
    let permits = Arc::new(Semaphore::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let actor = Gated {
        gate: permits.clone(),
        entered: tx,
        parked: Vec::new(),
    };
    let opts = match capacity {
        Some(n) => SpawnOptions::new().mailbox_capacity(n),
        None => SpawnOptions::new(),
    };
    let actor = node.spawn_opts(actor, opts).await.expect("spawns");
    (
        actor,
        Gate {
            permits,
            entered: rx,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_each_answered_through_a_pool() {
    let node = node("http-concurrent").await;
    let pool = worker_pool(&node, 4).await;
    let server = HttpServer::bind(local())
        .route(Method::POST, "/echo/{n}", &pool)
        .start(&node)
        .await
        .expect("starts");
    let http = client();
    let requests = (0..64).map(|i| {
        let http = http.clone();
        let url = url(&server, &format!("/echo/{i}"));
        tokio::spawn(async move {
            let res = http.post(url).body(format!("body {i}")).send().await?;
            Ok::<_, reqwest::Error>((res.status().as_u16(), res.text().await?))
        })
    });
    let mut workers = std::collections::HashSet::new();
    for (i, task) in requests.enumerate() {
        let (status, body) = within("a response", task).await.unwrap().expect("ok");
        assert_eq!(status, 200);
        assert!(body.ends_with(&format!(": /echo/{i} body {i}")), "{body}");
        workers.insert(body.split(':').next().unwrap().to_owned());
    }
    assert_eq!(
        workers.len(),
        4,
        "round-robin spreads the requests: {workers:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_params_query_and_headers_reach_the_handler() {
    struct Inspect;
    #[actor]
    impl Inspect {
        #[handle]
        fn http(&mut self, req: HttpRequest, reply: HttpReply) {
            let text = format!(
                "{} {} {} {:?} {:?}",
                req.method,
                req.param("a").unwrap_or("-"),
                req.param("b").unwrap_or("-"),
                req.query,
                req.header("x-test"),
            );
            reply.send(HttpResponse::text(200, text).with_header("x-served-by", "inspect"));
        }
    }
    let node = node("http-params").await;
    let actor = node.spawn(Inspect).await.unwrap();
    let endpoint = Endpoint::actor(actor, |req, reply| InspectMsg::Http { req, reply });
    let server = HttpServer::bind(local())
        .route(Method::PUT, "/x/{a}/y/{b}", endpoint)
        .start(&node)
        .await
        .unwrap();
    let res = within(
        "a response",
        client()
            .put(url(&server, "/x/one%20two/y/3?q=1"))
            .header("x-test", "hi")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-served-by"], "inspect");
    assert_eq!(
        res.text().await.unwrap(),
        r#"PUT one two 3 Some("q=1") Some("hi")"#
    );
    // Another method on the same path is not routed.
    let res = within("a response", client().get(url(&server, "/x/1/y/2")).send())
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_limit_gets_413_and_the_server_keeps_serving() {
    let node = node("http-413").await;
    let pool = worker_pool(&node, 1).await;
    let server = HttpServer::bind(local())
        .body_limit(1024)
        .route(Method::POST, "/echo", &pool)
        .start(&node)
        .await
        .unwrap();
    let http = client();
    let res = within(
        "413",
        http.post(url(&server, "/echo"))
            .body(vec![b'x'; 2048])
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.text().await.unwrap(), "payload too large");
    let res = within("200", http.post(url(&server, "/echo")).body("small").send())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_body_limit_is_2_mib() {
    let node = node("http-2mib").await;
    let pool = worker_pool(&node, 1).await;
    let server = HttpServer::bind(local())
        .route(Method::POST, "/echo", &pool)
        .start(&node)
        .await
        .unwrap();
    assert_eq!(DEFAULT_BODY_LIMIT, 2 * 1024 * 1024);
    let http = client();
    let at_limit = http
        .post(url(&server, "/echo"))
        .body(vec![b'x'; DEFAULT_BODY_LIMIT])
        .send();
    assert_eq!(within("200", at_limit).await.unwrap().status(), 200);
    let over = http
        .post(url(&server, "/echo"))
        .body(vec![b'x'; DEFAULT_BODY_LIMIT + 1])
        .send();
    assert_eq!(within("413", over).await.unwrap().status(), 413);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_that_does_not_reply_in_time_gets_504() {
    let node = node("http-504").await;
    let (actor, mut gate) = gated(&node, None).await;
    let server = HttpServer::bind(local())
        .request_timeout(Duration::from_millis(100))
        .route(Method::GET, "/{p}", &actor)
        .start(&node)
        .await
        .unwrap();
    let (status, body) = get(&server, "/never").await;
    assert_eq!((status, body.as_str()), (504, "gateway timeout"));
    assert_eq!(gate.entered().await, "/never");
    // A handler still working when its time is up also gives 504; its late reply goes nowhere.
    let (status, _) = get(&server, "/slow").await;
    assert_eq!(status, 504);
    gate.permits.add_permits(1);
    assert_eq!(gate.entered().await, "/slow");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_handler_gets_500_without_details_and_the_server_keeps_serving() {
    let node = node("http-500").await;
    let pool = worker_pool(&node, 2).await;
    let server = HttpServer::bind(local())
        .route(Method::GET, "/{p}", &pool)
        .start(&node)
        .await
        .unwrap();
    for crashed in 1..=3 {
        let res = within("500", client().get(url(&server, "/boom")).send())
            .await
            .unwrap();
        assert_eq!(res.status(), 500);
        let headers = format!("{:?}", res.headers());
        let body = res.text().await.unwrap();
        assert_eq!(body, "internal server error");
        assert!(!headers.contains("secret") && !body.contains("secret"));
        // The pool replaces each crashed worker; the next request finds a live one.
        eventually("the pool to replace the crashed worker", || async {
            (pool.replaced() >= crashed && pool.len() == 2).then_some(())
        })
        .await;
    }
    for _ in 0..4 {
        let (status, body) = get(&server, "/ok").await;
        assert_eq!(status, 200, "{body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_endpoint_follows_a_restarted_actor() {
    use ergo::supervisor::{ChildSpec, Strategy, Supervisor};
    let node = node("http-named").await;
    let _sup = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .intensity(10, Duration::from_secs(5))
                .child(ChildSpec::new("worker", || Worker { id: 7 }).register("worker")),
        )
        .await
        .unwrap();
    let endpoint =
        Endpoint::named::<Worker>(&node, "worker", |req, reply| WorkerMsg::Http { req, reply });
    let server = HttpServer::bind(local())
        .route(Method::GET, "/{p}", endpoint)
        .start(&node)
        .await
        .unwrap();
    assert_eq!(get(&server, "/boom").await.0, 500);
    let (status, body) = eventually("the restarted worker to serve", || async {
        let (status, body) = get(&server, "/ok").await;
        (status == 200).then_some((status, body))
    })
    .await;
    assert_eq!((status, body.as_str()), (200, "worker 7: /ok "));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_mailbox_gets_503_and_queued_requests_still_finish() {
    let node = node("http-503").await;
    let (actor, mut gate) = gated(&node, Some(1)).await;
    let server = HttpServer::bind(local())
        .route(Method::GET, "/{p}", &actor)
        .start(&node)
        .await
        .unwrap();
    let http = client();
    let first = tokio::spawn(http.get(url(&server, "/first")).send());
    assert_eq!(gate.entered().await, "/first"); // the actor is busy with it
    let second = tokio::spawn(http.get(url(&server, "/second")).send());
    eventually("the second request to be queued", || async {
        (actor.mailbox_len() == 1).then_some(())
    })
    .await;
    let res = within("503", http.get(url(&server, "/third")).send())
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    gate.permits.add_permits(2);
    for (task, want) in [(first, "done /first"), (second, "done /second")] {
        let res = within("a queued response", task).await.unwrap().unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), want);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_finishes_requests_in_flight_and_refuses_new_connections() {
    let node = node("http-graceful").await;
    let (actor, mut gate) = gated(&node, None).await;
    let server = HttpServer::bind(local())
        .route(Method::GET, "/{p}", &actor)
        .start(&node)
        .await
        .unwrap();
    let addr = server.local_addr();
    let in_flight = tokio::spawn(client().get(url(&server, "/inflight")).send());
    assert_eq!(gate.entered().await, "/inflight");
    let stopping = tokio::spawn({
        let server = server.clone();
        async move { server.stop().await }
    });
    eventually("the server to stop accepting", || async {
        tokio::net::TcpStream::connect(addr)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert!(!server.is_running());
    assert!(
        !stopping.is_finished(),
        "stop waits for the request in flight"
    );
    gate.permits.add_permits(1);
    let res = within("the in-flight response", in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "done /inflight");
    within("stop", stopping).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_is_bounded_by_the_shutdown_grace_and_answers_waiting_requests_503() {
    let node = node("http-grace").await;
    let (actor, mut gate) = gated(&node, None).await;
    let server = HttpServer::bind(local())
        .request_timeout(Duration::from_secs(60))
        .shutdown_grace(Duration::from_millis(200))
        .route(Method::GET, "/{p}", &actor)
        .start(&node)
        .await
        .unwrap();
    let stuck = tokio::spawn(client().get(url(&server, "/never")).send());
    assert_eq!(gate.entered().await, "/never");
    within("a stop bounded by its grace", server.stop()).await;
    let res = within("the cut-short request", stuck)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), 503, "answered when the grace ran out");
}

// ---------------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------------

/// Echoes text and binary, closes on `bye`, panics on `boom`, floods on `flood`; reports every
/// event to the test.
struct WsEcho {
    conn: WsHandle,
    events: mpsc::UnboundedSender<WsEvent>,
}

#[actor]
impl WsEcho {
    #[handle]
    async fn ws(&mut self, event: WsEvent, ctx: &mut Ctx<Self>) {
        let _ = self.events.send(event.clone());
        match event {
            WsEvent::Text(t) if t == "bye" => self.conn.close(),
            WsEvent::Text(t) if t == "boom" => panic!("websocket handler crashed"),
            WsEvent::Text(t) if t == "flood" => {
                // Queue 64 KiB messages without reading back: the write buffer must fill.
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let mut sent = 0u32;
                loop {
                    match self.conn.try_send(chunk.clone()) {
                        Ok(()) => sent += 1,
                        Err(TrySendError::Full(_)) => break,
                        Err(TrySendError::Closed(_)) => panic!("closed while flooding"),
                    }
                    assert!(sent < 100_000, "the write buffer never filled");
                    tokio::task::yield_now().await;
                }
                let _ = self
                    .events
                    .send(WsEvent::Text(format!("full after {sent}")));
            }
            WsEvent::Text(t) => {
                let _ = self.conn.send(t).await;
            }
            WsEvent::Binary(b) => {
                let _ = self.conn.send(b).await;
            }
            WsEvent::Closed(_) => ctx.stop(),
            _ => {}
        }
    }
}

impl WsHandler for WsEcho {
    fn event(event: WsEvent) -> WsEchoMsg {
        WsEchoMsg::Ws { event }
    }
}

async fn ws_server(
    name: &str,
    config: WsConfig,
) -> (HttpServerRef, mpsc::UnboundedReceiver<WsEvent>) {
    let node = node(name).await;
    let (tx, rx) = mpsc::unbounded_channel();
    let server = HttpServer::bind(local())
        .websocket_with("/ws", config, move |conn: WsConn| WsEcho {
            conn: conn.handle,
            events: tx.clone(),
        })
        .start(&node)
        .await
        .unwrap();
    (server, rx)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(server: &HttpServerRef) -> Ws {
    let url = format!("ws://{}/ws", server.local_addr());
    within("websocket connect", tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake")
        .0
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<WsEvent>) -> WsEvent {
    within("a websocket event", events.recv()).await.unwrap()
}

/// The next data message from the server (`None` once it closed).
async fn ws_next(ws: &mut Ws) -> Option<Message> {
    within("a websocket message", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(m)) => return Some(m),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connection_is_an_actor_with_connected_data_and_closed_events() {
    let (server, mut events) = ws_server("ws-events", WsConfig::default()).await;
    let mut ws = ws_connect(&server).await;
    assert!(matches!(
        next_event(&mut events).await,
        WsEvent::Connected(_)
    ));
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(Message::text("hello")));
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws_next(&mut ws).await,
        Some(Message::binary(vec![1u8, 2, 3]))
    );
    assert_eq!(next_event(&mut events).await, WsEvent::Text("hello".into()));
    assert_eq!(
        next_event(&mut events).await,
        WsEvent::Binary(Bytes::from_static(&[1, 2, 3]))
    );
    ws.close(None).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        WsEvent::Closed(CloseReason::PeerClosed)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handle_close_sends_a_close_frame_after_queued_messages() {
    let (server, mut events) = ws_server("ws-close", WsConfig::default()).await;
    let mut ws = ws_connect(&server).await;
    ws.send(Message::text("last")).await.unwrap();
    ws.send(Message::text("bye")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(Message::text("last")));
    let close = within("a close frame", ws.next()).await;
    assert!(
        matches!(close, Some(Ok(Message::Close(_)))),
        "got {close:?}"
    );
    loop {
        match next_event(&mut events).await {
            WsEvent::Closed(reason) => {
                assert_eq!(reason, CloseReason::Closed);
                break;
            }
            _ => continue,
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_message_over_the_limit_closes_with_frame_too_large() {
    let (server, mut events) =
        ws_server("ws-too-large", WsConfig::default().max_message_size(1024)).await;
    let mut ws = ws_connect(&server).await;
    ws.send(Message::binary(vec![0u8; 4096])).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, None, "the server closes");
    loop {
        if let WsEvent::Closed(reason) = next_event(&mut events).await {
            assert_eq!(reason, CloseReason::FrameTooLarge);
            break;
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_websocket_actor_closes_only_its_own_connection() {
    let (server, _events) = ws_server("ws-crash", WsConfig::default()).await;
    let mut doomed = ws_connect(&server).await;
    let mut other = ws_connect(&server).await;
    doomed.send(Message::text("boom")).await.unwrap();
    assert_eq!(ws_next(&mut doomed).await, None, "its socket closes");
    other.send(Message::text("still here")).await.unwrap();
    assert_eq!(ws_next(&mut other).await, Some(Message::text("still here")));
    let mut fresh = ws_connect(&server).await;
    fresh.send(Message::text("new")).await.unwrap();
    assert_eq!(ws_next(&mut fresh).await, Some(Message::text("new")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_writes_are_bounded_when_the_client_does_not_read() {
    let (server, mut events) =
        ws_server("ws-backpressure", WsConfig::default().write_buffer(4)).await;
    let mut ws = ws_connect(&server).await;
    ws.send(Message::text("flood")).await.unwrap();
    let full = within("the write buffer to fill", async {
        loop {
            if let WsEvent::Text(t) = next_event(&mut events).await {
                if t.starts_with("full after") {
                    return t;
                }
            }
        }
    })
    .await;
    assert!(full.starts_with("full after"), "{full}");
    drop(ws);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_closes_websockets_with_shutdown() {
    let (server, mut events) = ws_server("ws-shutdown", WsConfig::default()).await;
    let mut ws = ws_connect(&server).await;
    assert!(matches!(
        next_event(&mut events).await,
        WsEvent::Connected(_)
    ));
    within("stop", server.stop()).await;
    assert_eq!(ws_next(&mut ws).await, None, "the client sees the close");
    assert_eq!(
        next_event(&mut events).await,
        WsEvent::Closed(CloseReason::Shutdown)
    );
}

// ---------------------------------------------------------------------------------------------
// Slow, idle and too many clients
// ---------------------------------------------------------------------------------------------

/// Reads `stream` until the server closes it (`true`) or `bound` passes (`false`); what was
/// read is returned too.
async fn closed_within(stream: &mut tokio::net::TcpStream, bound: Duration) -> (bool, String) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(bound, read).await.is_ok();
    (closed, String::from_utf8_lossy(&seen).into_owned())
}

async fn limited_server(
    node: &Node,
    setup: impl FnOnce(HttpServer) -> HttpServer,
) -> HttpServerRef {
    let pool = worker_pool(node, 2).await;
    setup(HttpServer::bind(local()))
        .route(Method::GET, "/{p}", &pool)
        .start(node)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_trickling_their_headers_are_cut_off_and_others_are_served() {
    use tokio::io::AsyncWriteExt;
    let node = node("http-slowloris").await;
    let server = limited_server(&node, |s| s.header_timeout(Duration::from_millis(300))).await;
    // 20 clients each send a header line every 100 ms, forever (the tasks are aborted when
    // the test ends; each is bounded to 30 s anyway).
    let addr = server.local_addr();
    let mut trickles = tokio::task::JoinSet::new();
    for _ in 0..20 {
        trickles.spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n")
                .await
                .unwrap();
            let end = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::time::Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if s.write_all(b"x-more: 1\r\n").await.is_err() {
                    return true;
                }
            }
            false
        });
    }
    assert_eq!(get(&server, "/fast").await.0, 200);
    let cut = within("every trickling client is cut off", async {
        let mut cut = 0;
        while let Some(done) = trickles.join_next().await {
            cut += usize::from(done.unwrap());
        }
        cut
    })
    .await;
    assert_eq!(cut, 20);
    assert_eq!(get(&server, "/after").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let node = node("http-idle").await;
    let server = limited_server(&node, |s| s.header_timeout(Duration::from_millis(300))).await;
    let mut s = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    // A silent connection is closed...
    let (closed, seen) = closed_within(&mut s, Duration::from_secs(5)).await;
    assert!(closed && seen.is_empty(), "{seen:?}");
    // ...and so is one idle after a response.
    let mut s = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    s.write_all(b"GET /one HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (closed, seen) = closed_within(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "the idle keep-alive connection was closed");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen:?}");
    assert!(seen.ends_with("/one "), "{seen:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_with_503_and_counted() {
    let node = node("http-cap").await;
    let server = limited_server(&node, |s| {
        s.max_connections(3)
            .header_timeout(Duration::from_secs(120))
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            tokio::net::TcpStream::connect(server.local_addr())
                .await
                .unwrap(),
        );
    }
    eventually("three connections open", || async {
        (server.stats().connections == 3).then_some(())
    })
    .await;
    let mut over = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (closed, seen) = closed_within(&mut over, Duration::from_secs(5)).await;
    assert!(closed, "the connection over the cap is closed");
    assert!(seen.starts_with("HTTP/1.1 503"), "{seen:?}");
    assert!(seen.contains("retry-after: 1"), "{seen:?}");
    assert_eq!(server.stats().refused_connections, 1);
    // Closing the held ones makes room again.
    drop(held);
    eventually("the held connections closed", || async {
        (server.stats().connections == 0).then_some(())
    })
    .await;
    assert_eq!(get(&server, "/again").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_budget_get_503_and_nothing_is_buffered_for_them() {
    let node = node("http-budget").await;
    let (actor, mut gate) = gated(&node, None).await;
    let server = HttpServer::bind(local())
        .body_limit(1024 * 1024)
        .body_budget(1024 * 1024)
        .request_timeout(Duration::from_secs(30))
        .route(Method::POST, "/{p}", &actor)
        .start(&node)
        .await
        .unwrap();
    let http = client();
    let post = |path: &str| {
        http.post(url(&server, path))
            .body(vec![b'x'; 800 * 1024])
            .send()
    };
    // The first body is held in flight (its handler waits at the gate).
    let first = tokio::spawn(post("/first"));
    assert_eq!(gate.entered().await, "/first");
    // The second does not fit beside it.
    let second = within("503", post("/second")).await.unwrap();
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(server.stats().over_budget, 1);
    // Once the first is answered its share is back.
    gate.permits.add_permits(2);
    let first = within("the first answer", first).await.unwrap().unwrap();
    assert_eq!(first.status(), 200);
    let third = within("200", post("/third")).await.unwrap();
    assert_eq!(third.status(), 200);
    server.stop().await;
}
