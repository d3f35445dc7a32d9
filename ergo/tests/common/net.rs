//! Helpers of the multi-node tests (`tests/net_*.rs`): nodes on loopback with a shared
//! cookie, no registrar (routes only, so tests never meet each other's nodes) and a fast
//! heartbeat.

use std::time::Duration;

use ergo::Node;

/// The cookie of every test node.
pub const COOKIE: &str = "ergo multi-node test cookie, long and random enough";

/// A node on loopback: cookie, no registrar, heartbeat every 200 ms (silent after 2 s).
pub async fn node(name: &str) -> Node {
    Node::builder(name)
        .cookie(COOKIE)
        .no_registrar()
        .heartbeat(Duration::from_millis(200), Duration::from_secs(2))
        .start()
        .await
        .expect("node starts")
}

/// Two nodes; `b` has a route to `a`.
pub async fn pair(a: &str, b: &str) -> (Node, Node) {
    let a = node(a).await;
    let b = node(b).await;
    b.add_route(a.name(), a.listen_addr().unwrap()).unwrap();
    (a, b)
}
