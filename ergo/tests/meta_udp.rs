//! The UDP meta process (`ergo::meta::udp`) against real sockets on 127.0.0.1.

mod common;

use std::net::SocketAddr;

use common::{node, within};
use ergo::meta::udp::{Udp, UdpEvent, UdpHandle, UdpHandler};
use ergo::prelude::*;
use tokio::net::UdpSocket;

/// Replies `echo: <payload>` to every datagram's sender; counts what it got.
struct Echo {
    socket: UdpHandle,
    received: u64,
}

#[actor]
impl Echo {
    #[handle]
    async fn udp(&mut self, event: UdpEvent) {
        let UdpEvent::Datagram { from, data } = event else {
            return;
        };
        self.received += 1;
        let mut reply = b"echo: ".to_vec();
        reply.extend_from_slice(&data);
        let _ = self.socket.send_to(reply, from).await;
    }

    #[handle]
    fn received(&self) -> u64 {
        self.received
    }
}

impl UdpHandler for Echo {
    fn event(event: UdpEvent) -> EchoMsg {
        EchoMsg::Udp { event }
    }
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn ask(client: &UdpSocket, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    // UDP may drop a datagram even on loopback: send again until an answer comes, bounded.
    for _ in 0..10 {
        client.send_to(payload, to).await.unwrap();
        let got = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            client.recv_from(&mut buf),
        )
        .await;
        if let Ok(Ok((n, from))) = got {
            assert_eq!(from, to);
            return buf[..n].to_vec();
        }
    }
    panic!("no answer to {payload:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_reach_the_actor_and_replies_go_to_each_sender() {
    let node = node("udp-echo").await;
    let udp = Udp::bind(localhost())
        .start(&node, |socket| Echo {
            socket,
            received: 0,
        })
        .await
        .expect("binds");
    let addr = udp.local_addr();
    let a = UdpSocket::bind(localhost()).await.unwrap();
    let b = UdpSocket::bind(localhost()).await.unwrap();
    assert_eq!(ask(&a, addr, b"from a").await, b"echo: from a");
    assert_eq!(ask(&b, addr, b"from b").await, b"echo: from b");
    assert_eq!(ask(&a, addr, b"again").await, b"echo: again");
    assert!(udp.actor().received().await.unwrap() >= 3);
    within("udp stop", udp.stop()).await;
    assert!(!udp.actor().is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagram_longer_than_the_maximum_is_dropped_and_the_socket_serves_on() {
    let node = node("udp-max").await;
    let udp = Udp::bind(localhost())
        .max_datagram(16)
        .start(&node, |socket| Echo {
            socket,
            received: 0,
        })
        .await
        .unwrap();
    let client = UdpSocket::bind(localhost()).await.unwrap();
    client
        .send_to(&[b'x'; 100], udp.local_addr())
        .await
        .unwrap();
    // Exactly the maximum still goes through, and the long one was never delivered.
    let max = [b'y'; 16];
    let mut want = b"echo: ".to_vec();
    want.extend_from_slice(&max);
    assert_eq!(ask(&client, udp.local_addr(), &max).await, want);
    let received = udp.actor().received().await.unwrap();
    let answered = ask(&client, udp.local_addr(), b"ok").await;
    assert_eq!(answered, b"echo: ok");
    assert_eq!(udp.actor().received().await.unwrap(), received + 1);
    udp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_taken_address_fails_with_an_io_error() {
    let node = node("udp-taken").await;
    let taken = UdpSocket::bind(localhost()).await.unwrap();
    let started = Udp::bind(taken.local_addr().unwrap())
        .start(&node, |socket| Echo {
            socket,
            received: 0,
        })
        .await;
    assert!(matches!(started, Err(ergo::meta::StartError::Io(_))));
    assert_eq!(node.process_count(), 0);
}
