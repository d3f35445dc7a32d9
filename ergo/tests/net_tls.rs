//! Mutual TLS between nodes: accepted with certificates of the shared CA; refused without a
//! certificate, with an expired one, or with one from another CA.

use std::time::{Duration, SystemTime};

use ergo::net::tls::dev::DevCa;
use ergo::net::tls::TlsConfig;
use ergo::net::NetError;
use ergo::prelude::*;

const COOKIE: &str = "net-tls test cookie, long and random enough";

struct Echo;

#[actor(remote)]
impl Echo {
    #[handle]
    fn echo(&self, s: String) -> String {
        s
    }
}

/// A TLS node serving `echo`.
async fn server(name: &str, tls: TlsConfig) -> Node {
    let a = Node::builder(name)
        .cookie(COOKIE)
        .no_registrar()
        .tls(tls)
        .start()
        .await
        .unwrap();
    a.register("echo", &a.spawn(Echo).await.unwrap()).unwrap();
    a
}

async fn client(name: &str, server: &Node, tls: Option<TlsConfig>) -> Node {
    let mut b = Node::builder(name)
        .cookie(COOKIE)
        .no_registrar()
        .route(server.name(), server.listen_addr().unwrap().to_string());
    if let Some(tls) = tls {
        b = b.tls(tls);
    }
    b.start().await.unwrap()
}

#[tokio::test]
async fn nodes_with_certificates_of_the_shared_ca_talk() {
    let ca = DevCa::new().unwrap();
    let a = server(
        "nt1-a@localhost",
        ca.node_config("nt1-a@localhost").unwrap(),
    )
    .await;
    let b = client(
        "nt1-b@localhost",
        &a,
        Some(ca.node_config("nt1-b@localhost").unwrap()),
    )
    .await;
    let echo = b.lookup::<Echo>("echo", a.name()).await.unwrap();
    assert_eq!(echo.echo("secret".into()).await.unwrap(), "secret");
    // Many messages, both ways, over TLS.
    for i in 0..1000 {
        assert_eq!(echo.echo(format!("m{i}")).await.unwrap(), format!("m{i}"));
    }
}

async fn refused(b: &Node, a: &Node) {
    let err = b.lookup::<Echo>("echo", a.name()).await.unwrap_err();
    assert!(matches!(err, NetError::NoConnection { .. }), "{err:?}");
    assert!(a.connected_nodes().is_empty());
}

#[tokio::test]
async fn a_peer_without_tls_is_refused() {
    let ca = DevCa::new().unwrap();
    let a = server(
        "nt2-a@localhost",
        ca.node_config("nt2-a@localhost").unwrap(),
    )
    .await;
    let plain = client("nt2-b@localhost", &a, None).await;
    refused(&plain, &a).await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_both_ways() {
    let ca = DevCa::new().unwrap();
    let other = DevCa::new().unwrap();
    let a = server(
        "nt3-a@localhost",
        ca.node_config("nt3-a@localhost").unwrap(),
    )
    .await;
    // b's certificate is from another CA (it trusts that CA only, too).
    let b = client(
        "nt3-b@localhost",
        &a,
        Some(other.node_config("nt3-b@localhost").unwrap()),
    )
    .await;
    refused(&b, &a).await;
    // c trusts the right CA but presents a certificate of the other one.
    let foreign = other.issue("nt3-c@localhost").unwrap();
    let mixed = TlsConfig::from_pem(
        ca.ca_pem().as_bytes(),
        foreign.cert_pem.as_bytes(),
        foreign.key_pem.as_bytes(),
    )
    .unwrap();
    let c = client("nt3-c@localhost", &a, Some(mixed)).await;
    refused(&c, &a).await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let ca = DevCa::new().unwrap();
    let a = server(
        "nt4-a@localhost",
        ca.node_config("nt4-a@localhost").unwrap(),
    )
    .await;
    let day = Duration::from_secs(24 * 3600);
    let now = SystemTime::now();
    let expired = ca
        .issue_valid("nt4-b@localhost", now - 10 * day, now - day)
        .unwrap();
    let b = client(
        "nt4-b@localhost",
        &a,
        Some(ca.config_for(&expired).unwrap()),
    )
    .await;
    refused(&b, &a).await;
}

#[tokio::test]
async fn bad_pem_is_a_typed_error() {
    let ca = DevCa::new().unwrap();
    let cert = ca.issue("x@localhost").unwrap();
    assert!(TlsConfig::from_pem(b"", cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).is_err());
    assert!(
        TlsConfig::from_pem(ca.ca_pem().as_bytes(), b"garbage", cert.key_pem.as_bytes()).is_err()
    );
    let other = ca.issue("y@localhost").unwrap();
    // A key that does not match the certificate.
    assert!(TlsConfig::from_pem(
        ca.ca_pem().as_bytes(),
        cert.cert_pem.as_bytes(),
        other.key_pem.as_bytes()
    )
    .is_err());
}

#[tokio::test]
async fn a_certificate_of_another_node_cannot_be_used_to_pose_as_a_third() {
    let ca = DevCa::new().unwrap();
    let a = server(
        "nt5-a@localhost",
        ca.node_config("nt5-a@localhost").unwrap(),
    )
    .await;
    // A valid certificate of the CA, but for another node name: claiming to be nt5-b with
    // nt5-x's certificate is refused by the acceptor.
    let x = ca.node_config("nt5-x@localhost").unwrap();
    let b = client("nt5-b@localhost", &a, Some(x)).await;
    refused(&b, &a).await;

    // And the other way: a dialler reaching a node whose certificate names someone else.
    let impostor = server(
        "nt5-c@localhost",
        ca.node_config("nt5-a@localhost").unwrap(),
    )
    .await;
    let d = Node::builder("nt5-d@localhost")
        .cookie(COOKIE)
        .no_registrar()
        .tls(ca.node_config("nt5-d@localhost").unwrap())
        .route(
            "nt5-c@localhost",
            impostor.listen_addr().unwrap().to_string(),
        )
        .start()
        .await
        .unwrap();
    refused(&d, &impostor).await;

    // The real owner of a name gets in.
    let good = client(
        "nt5-e@localhost",
        &a,
        Some(ca.node_config("nt5-e@localhost").unwrap()),
    )
    .await;
    let echo = good.lookup::<Echo>("echo", a.name()).await.unwrap();
    assert_eq!(echo.echo("me".into()).await.unwrap(), "me");
}
