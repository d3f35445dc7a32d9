//! The counter API of `src/main.rs` (`http_counter`), driven by a
//! real HTTP client and a real WebSocket client on 127.0.0.1.

use std::time::Duration;

use ergo_testkit::node;
use ergo_testkit::wait::within;
use futures_util::StreamExt;
use http_counter::{self, CountersApi, HttpCounter, HttpCounterConfig};
use tokio_tungstenite::tungstenite::Message;

async fn app(name: &str, config: HttpCounterConfig) -> HttpCounter {
    let node = node(name).await;
    http_counter::start(&node, config).await.expect("starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds")
}

async fn post(app: &HttpCounter, key: &str, body: &str) -> (u16, String) {
    let url = format!("http://{}/counter/{key}", app.local_addr());
    let res = within("a POST", client().post(url).body(body.to_owned()).send())
        .await
        .expect("response");
    (res.status().as_u16(), res.text().await.expect("body"))
}

async fn get(app: &HttpCounter, key: &str) -> (u16, String) {
    let url = format!("http://{}/counter/{key}", app.local_addr());
    let res = within("a GET", client().get(url).send())
        .await
        .expect("response");
    (res.status().as_u16(), res.text().await.expect("body"))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `path` and waits for `subscribed` (from then on every change is streamed).
async fn watch(app: &HttpCounter, path: &str) -> Ws {
    let url = format!("ws://{}{path}", app.local_addr());
    let (mut ws, _) = within("websocket connect", tokio_tungstenite::connect_async(url))
        .await
        .expect("handshake");
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("subscribed"));
    ws
}

/// The next text message, or `None` once the server closed.
async fn next_text(ws: &mut Ws) -> Option<String> {
    within("a websocket message", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Some(t.as_str().to_owned()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return None,
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_increments_and_get_reads_each_key() {
    let app = app("counter-basic", HttpCounterConfig::default()).await;
    assert_eq!(get(&app, "a").await, (200, "0\n".into()));
    assert_eq!(post(&app, "a", "").await, (200, "1\n".into()));
    assert_eq!(post(&app, "a", "5").await, (200, "6\n".into()));
    assert_eq!(post(&app, "b", "").await, (200, "1\n".into()));
    assert_eq!(get(&app, "a").await, (200, "6\n".into()));
    assert_eq!(get(&app, "b").await, (200, "1\n".into()));
    assert_eq!(app.counters().value("a".into()).await.unwrap(), 6);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_are_all_counted() {
    let app = app("counter-concurrent", HttpCounterConfig::default()).await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let url = format!(
                "http://{}/counter/{}",
                app.local_addr(),
                if i % 2 == 0 { "even" } else { "odd" }
            );
            tokio::spawn(async move { client().post(url).send().await.map(|r| r.status()) })
        })
        .collect();
    for task in tasks {
        let status = within("a POST", task).await.unwrap().expect("response");
        assert_eq!(status, 200);
    }
    assert_eq!(get(&app, "even").await, (200, "50\n".into()));
    assert_eq!(get(&app, "odd").await, (200, "50\n".into()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_key_or_body_gets_400_and_counts_nothing() {
    let app = app("counter-400", HttpCounterConfig::default()).await;
    assert_eq!(post(&app, "no%20spaces", "").await.0, 400);
    assert_eq!(post(&app, "a", "lots").await.0, 400);
    assert_eq!(get(&app, &"k".repeat(65)).await.0, 400);
    assert_eq!(get(&app, "a").await, (200, "0\n".into()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_limit_gets_413() {
    let config = HttpCounterConfig {
        body_limit: 16,
        ..HttpCounterConfig::default()
    };
    let app = app("counter-413", config).await;
    assert_eq!(post(&app, "a", &"1".repeat(32)).await.0, 413);
    assert_eq!(post(&app, "a", "2").await, (200, "2\n".into()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_client_receives_every_counter_update() {
    let app = app("counter-ws", HttpCounterConfig::default()).await;
    let mut ws = watch(&app, "/updates").await;
    post(&app, "a", "").await;
    post(&app, "b", "3").await;
    post(&app, "a", "").await;
    for want in ["a=1", "b=3", "a=2"] {
        assert_eq!(next_text(&mut ws).await.as_deref(), Some(want));
    }
    app.stop().await;
    assert_eq!(
        next_text(&mut ws).await,
        None,
        "stopping disconnects watchers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_for_one_key_receives_only_that_key() {
    let app = app("counter-ws-key", HttpCounterConfig::default()).await;
    let mut only_b = watch(&app, "/updates/b").await;
    let mut all = watch(&app, "/updates").await;
    post(&app, "a", "").await;
    post(&app, "b", "").await;
    assert_eq!(next_text(&mut all).await.as_deref(), Some("a=1"));
    assert_eq!(next_text(&mut all).await.as_deref(), Some("b=1"));
    assert_eq!(next_text(&mut only_b).await.as_deref(), Some("b=1"));
    app.stop().await;
}
