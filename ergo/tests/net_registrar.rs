//! Discovery through the embedded registrar: nodes find each other by name, a new node takes
//! the registry over when the serving one dies, names of dead nodes disappear.

use std::time::Duration;

use ergo::net::{EmbeddedRegistrar, Membership, StaticRoutes};
use ergo::prelude::*;

const COOKIE: &str = "net-registrar test cookie, long and random enough";

struct Echo;

#[actor(remote)]
impl Echo {
    #[handle]
    fn echo(&self, s: String) -> String {
        s
    }
}

/// Each test uses its own registrar port, so tests do not meet each other's nodes.
async fn node(name: &str, port: u16) -> Node {
    Node::builder(name)
        .cookie(COOKIE)
        .registrar(EmbeddedRegistrar::with_port(port))
        .start()
        .await
        .expect("node starts")
}

/// Waits (bounded) until `f` holds.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let ok = tokio::time::timeout(Duration::from_secs(10), async {
        while !f().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "timed out waiting until {what}");
}

async fn names(n: &Node) -> Vec<String> {
    let mut names: Vec<String> = n
        .registered_nodes()
        .await
        .map(|all| all.into_iter().map(|(n, _)| n).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn nodes_without_routes_find_each_other() {
    let a = node("nr1-a@localhost", 15_911).await;
    let b = node("nr1-b@localhost", 15_911).await;
    eventually("both are registered", || async {
        names(&a).await == ["nr1-a@localhost", "nr1-b@localhost"]
    })
    .await;
    a.register("echo", &a.spawn(Echo).await.unwrap()).unwrap();
    let echo = b.lookup::<Echo>("echo", a.name()).await.unwrap();
    assert_eq!(echo.echo("found".into()).await.unwrap(), "found");
    assert_eq!(b.find_all::<Echo>("echo").await.len(), 1);
}

#[tokio::test]
async fn another_node_takes_the_registry_over_when_the_server_dies() {
    let a = node("nr2-a@localhost", 15_912).await;
    eventually("a registered", || async {
        names(&a).await == ["nr2-a@localhost"]
    })
    .await;
    let b = node("nr2-b@localhost", 15_912).await;
    let c = node("nr2-c@localhost", 15_912).await;
    eventually("all three registered", || async {
        names(&b).await.len() == 3
    })
    .await;

    // The serving node dies: one of the others serves, the other registers again with it,
    // and a's name is gone.
    a.shutdown(Duration::from_millis(50)).await;
    eventually("b and c registered with the new server", || async {
        names(&c).await == ["nr2-b@localhost", "nr2-c@localhost"]
    })
    .await;
    b.register("echo", &b.spawn(Echo).await.unwrap()).unwrap();
    let echo = c.lookup::<Echo>("echo", b.name()).await.unwrap();
    assert_eq!(echo.echo("still here".into()).await.unwrap(), "still here");

    // A dead node's name disappears from the new registry too.
    c.shutdown(Duration::from_millis(50)).await;
    eventually("c is gone", || async {
        names(&b).await == ["nr2-b@localhost"]
    })
    .await;
}

#[tokio::test]
async fn a_watch_sees_nodes_join_and_leave() {
    let a = node("nr3-a@localhost", 15_913).await;
    let mut changes = a.watch_nodes().expect("a registrar");
    let b = node("nr3-b@localhost", 15_913).await;
    let joined = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match changes.recv().await {
                Ok(Membership::Joined { node, .. }) if node == "nr3-b@localhost" => break,
                Ok(_) => {}
                Err(e) => panic!("watch ended: {e}"),
            }
        }
    })
    .await;
    assert!(joined.is_ok(), "saw b join");
    b.shutdown(Duration::from_millis(50)).await;
    let left = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match changes.recv().await {
                Ok(Membership::Left { node }) if node == "nr3-b@localhost" => break,
                Ok(_) => {}
                Err(e) => panic!("watch ended: {e}"),
            }
        }
    })
    .await;
    assert!(left.is_ok(), "saw b leave");
}

#[tokio::test]
async fn static_routes_are_a_registrar_too() {
    let a = Node::builder("nr4-a@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .start()
        .await
        .unwrap();
    a.register("echo", &a.spawn(Echo).await.unwrap()).unwrap();
    let routes = StaticRoutes::new().route(a.name(), a.listen_addr().unwrap());
    let b = Node::builder("nr4-b@localhost")
        .cookie(COOKIE)
        .registrar(routes)
        .start()
        .await
        .unwrap();
    let echo = b.lookup::<Echo>("echo", a.name()).await.unwrap();
    assert_eq!(echo.echo("static".into()).await.unwrap(), "static");

    // Without a registrar or a route, a node is unknown.
    let c = Node::builder("nr4-c@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .start()
        .await
        .unwrap();
    assert!(c.lookup::<Echo>("echo", a.name()).await.is_err());
}

#[tokio::test]
async fn listening_on_the_registrars_port_is_a_clear_error() {
    let port = 15_918;
    let refused = Node::builder("nr-clash@localhost")
        .cookie(COOKIE)
        .registrar(EmbeddedRegistrar::with_port(port))
        .listen(format!("127.0.0.1:{port}"))
        .start()
        .await;
    match refused {
        Err(ergo::Error::Config(why)) => {
            assert!(why.contains("registrar"), "{why}");
            assert!(why.contains(&port.to_string()), "{why}");
        }
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("a node listened on its own registrar's port"),
    }
    // Any other port is fine, with the same registrar.
    let fine = Node::builder("nr-clash@localhost")
        .cookie(COOKIE)
        .registrar(EmbeddedRegistrar::with_port(port))
        .listen("127.0.0.1:0")
        .start()
        .await
        .expect("another port is fine");
    fine.shutdown(Duration::from_millis(100)).await;
}
