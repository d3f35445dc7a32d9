//! The network wire layer (`ergo::net`) over real loopback TCP: the handshake, then frames on
//! the same socket. (The codec's properties and the handshake's edge cases are unit tests in
//! `ergo/src/net/`.)

use std::time::Duration;

use ergo::net::frame::{Frame, FrameCodec, FrameKind, Header, WirePid};
use ergo::net::handshake::{handshake, HandshakeConfig, HandshakeError, Role};
use ergo::net::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one frame from a socket with the node's frame codec.
async fn read_frame(stream: &mut TcpStream, inbox: &mut BytesMut) -> Frame {
    let codec = FrameCodec::new();
    loop {
        if let Some(frame) = codec.decode_frame(inbox).unwrap() {
            return frame;
        }
        let n = stream.read_buf(inbox).await.unwrap();
        assert_ne!(n, 0, "peer closed before a whole frame");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_authenticate_over_loopback_tcp_then_exchange_frames() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_cfg = HandshakeConfig::new("server@localhost", 11, "tcp cookie").unwrap();
    let client_cfg = HandshakeConfig::new("client@localhost", 22, "tcp cookie").unwrap();

    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let peer = handshake(&mut stream, Role::Acceptor, &server_cfg)
            .await
            .unwrap();
        // Echo one frame back with `to`/`from` swapped, as a reply.
        let mut inbox = BytesMut::new();
        let call = read_frame(&mut stream, &mut inbox).await;
        let reply = Header {
            kind: FrameKind::Reply,
            to: WirePid {
                id: call.header.from,
                creation: peer.creation,
            },
            from: call.header.to.id,
            correlation: call.header.correlation,
        };
        let mut out = BytesMut::new();
        FrameCodec::new()
            .encode_frame(&reply, &call.payload, &mut out)
            .unwrap();
        stream.write_all(&out).await.unwrap();
        peer
    });

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let peer = handshake(&mut stream, Role::Initiator, &client_cfg)
        .await
        .unwrap();
    assert_eq!(
        (peer.name.as_str(), peer.creation),
        ("server@localhost", 11)
    );
    let call = Header {
        kind: FrameKind::Call,
        to: WirePid {
            id: 3,
            creation: peer.creation,
        },
        from: 8,
        correlation: 1234,
    };
    let mut out = BytesMut::new();
    FrameCodec::new()
        .encode_frame(&call, b"ping", &mut out)
        .unwrap();
    stream.write_all(&out).await.unwrap();
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        read_frame(&mut stream, &mut BytesMut::new()),
    )
    .await
    .expect("a reply within 5 s");
    assert_eq!(reply.header.kind, FrameKind::Reply);
    assert_eq!(
        reply.header.to,
        WirePid {
            id: 8,
            creation: 22
        }
    );
    assert_eq!((reply.header.from, reply.header.correlation), (3, 1234));
    assert_eq!(&reply.payload[..], b"ping");

    let client_seen = server.await.unwrap();
    assert_eq!(
        (client_seen.name.as_str(), client_seen.creation),
        ("client@localhost", 22)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cookie_over_tcp_is_refused_on_both_sides() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let cfg = HandshakeConfig::new("server@localhost", 1, "right").unwrap();
        handshake(&mut stream, Role::Acceptor, &cfg).await
    });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let cfg = HandshakeConfig::new("client@localhost", 1, "wrong").unwrap();
    let client = handshake(&mut stream, Role::Initiator, &cfg).await;
    assert!(
        matches!(client, Err(HandshakeError::BadCookie)),
        "{client:?}"
    );
    let server = server.await.unwrap();
    assert!(
        matches!(server, Err(HandshakeError::BadCookie)),
        "{server:?}"
    );
}
