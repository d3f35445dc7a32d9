//! Lookups: resolving a name registered on another node into a typed ref, finding every
//! instance of a service, and the typed node-level request/answer exchange that lookups and
//! remote spawn share.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::conn::Conn;
use super::frame::{FrameKind, Header};
use super::inbound::answer;
use super::peer::PeerLink;
use super::transport::{net_of, Net};
use crate::actor::mailbox::Mailbox;
use crate::error::NetError;
use crate::node::codec::{decode_cbor, encode_cbor_vec};
use crate::node::transport::RemoteRef;
use crate::node::transport::RemoteVTable;
use crate::pid::NodeAtom;
use crate::{Actor, ActorRef, Node, Pid};

#[derive(Serialize, Deserialize)]
struct LookupRequest {
    name: String,
}

#[derive(Serialize, Deserialize)]
enum LookupAnswer {
    Found {
        id: u64,
        creation: u32,
        actor: String,
        remote: bool,
    },
    NotFound,
}

/// Answers a peer's `Lookup` frame.
pub(super) fn serve(
    node: &Node,
    link: &PeerLink,
    conn: &Conn,
    h: &Header,
    payload: &[u8],
) -> Result<(), String> {
    let request = decode_cbor::<LookupRequest>(payload)?;
    let found = match node.registered_process(&request.name) {
        Some(p) => {
            let pid = p.core().pid();
            LookupAnswer::Found {
                id: pid.id(),
                creation: pid.creation(),
                actor: p.actor_name().to_string(),
                remote: p.is_remote(),
            }
        }
        None => LookupAnswer::NotFound,
    };
    answer(conn, link, h, &found);
    Ok(())
}

impl Net {
    /// Sends a node-level request of `kind` to the peer `atom` on the connection chosen by
    /// `route` and waits (up to the node's call timeout) for its answer.
    pub(crate) async fn request<Q, R>(
        self: &Arc<Self>,
        node: &Node,
        atom: NodeAtom,
        kind: FrameKind,
        route: u64,
        payload: &Q,
    ) -> Result<R, NetError>
    where
        Q: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let link = self.link_for(node, atom)?;
        let mut bytes = Vec::new();
        encode_cbor_vec(payload, &mut bytes).map_err(|e| NetError::NoConnection {
            node: atom.name().to_string(),
            reason: format!("the request could not be encoded: {e}"),
        })?;
        let name = link.name.clone();
        let answer = link
            .request_bytes(kind, route, bytes, node.call_timeout())
            .await?;
        decode_cbor(&answer).map_err(|e| NetError::NoConnection {
            node: name.to_string(),
            reason: format!("the answer did not decode: {e}"),
        })
    }

    /// Resolves `name` on the peer `atom`.
    pub(crate) async fn lookup<A: Actor>(
        self: &Arc<Self>,
        node: &Node,
        name: &str,
        atom: NodeAtom,
        vtable: RemoteVTable<A::Msg>,
    ) -> Result<ActorRef<A>, NetError> {
        let request = LookupRequest {
            name: name.to_string(),
        };
        let answer = self
            .request(node, atom, FrameKind::Lookup, 0, &request)
            .await?;
        match answer {
            LookupAnswer::NotFound => Err(NetError::NotFound {
                name: name.to_string(),
                node: atom.name().to_string(),
            }),
            LookupAnswer::Found { actor, remote, .. } if actor != A::NAME || !remote => {
                Err(NetError::WrongActor {
                    name: name.to_string(),
                    expected: A::NAME,
                    found: actor,
                })
            }
            LookupAnswer::Found { id, creation, .. } => Ok(ActorRef::from_remote(Arc::new(
                RemoteRef::new(Pid::new(atom, id, creation), A::NAME, node.clone(), vtable),
            ))),
        }
    }
}

/// Finding processes by name on other nodes (feature `net`).
impl Node {
    /// Resolves the name `name` registered on node `node` into a typed ref (connecting first
    /// if needed). The generated methods work on it as on a local ref. Looking up this node's
    /// own name is [`Node::whereis`].
    ///
    /// # Errors
    ///
    /// [`crate::net::NetError::NotFound`] when nothing is registered under the name,
    /// [`crate::net::NetError::WrongActor`] when it runs another actor type, connection errors
    /// otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    ///
    /// struct Counter { n: u64 }
    /// #[actor(remote)]
    /// impl Counter {
    ///     #[handle]
    ///     fn add(&mut self, by: u64) -> u64 { self.n += by; self.n }
    /// }
    ///
    /// let a = Node::builder("lookup-a@localhost").cookie("secret cookie").start().await?;
    /// let counter = a.spawn(Counter { n: 0 }).await?;
    /// a.register("counter", &counter)?;
    ///
    /// let b = Node::builder("lookup-b@localhost")
    ///     .cookie("secret cookie")
    ///     .route("lookup-a@localhost", a.listen_addr().unwrap().to_string())
    ///     .start()
    ///     .await?;
    /// let remote = b.lookup::<Counter>("counter", "lookup-a@localhost").await?;
    /// assert_eq!(remote.add(2).await?, 2);
    /// assert_eq!(counter.add(3).await?, 5); // the same process
    /// # Ok(()) }
    /// ```
    pub async fn lookup<A: crate::RemoteActor>(
        &self,
        name: &str,
        node: &str,
    ) -> Result<ActorRef<A>, crate::net::NetError> {
        use crate::net::NetError;
        if node == self.name() {
            return match self.registered_process(name) {
                None => Err(NetError::NotFound {
                    name: name.into(),
                    node: node.into(),
                }),
                Some(h) => {
                    let found = h.actor_name();
                    h.into_any()
                        .downcast::<Mailbox<A>>()
                        .map(ActorRef::from_mailbox)
                        .map_err(|_| NetError::WrongActor {
                            name: name.into(),
                            expected: A::NAME,
                            found: found.into(),
                        })
                }
            };
        }
        let net = net_of(self).ok_or(NetError::NotNetworked)?;
        let vtable = A::__remote_vtable().ok_or(NetError::WrongActor {
            name: name.into(),
            expected: A::NAME,
            found: "a local-only actor".into(),
        })?;
        net.lookup::<A>(self, name, NodeAtom::intern(node), vtable)
            .await
    }

    /// Every instance of the service `name`: the process registered under that name on this
    /// node and on each node this one knows (its routes, the nodes linked to it and the nodes
    /// its registrar lists), asked concurrently. Nodes that cannot be reached, or where the name is not registered (or runs
    /// another actor), are skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    ///
    /// struct Billing;
    /// #[actor(remote)]
    /// impl Billing {
    ///     #[handle]
    ///     fn charge(&self, cents: u64) -> u64 { cents }
    /// }
    ///
    /// // Without a registrar (`no_registrar`), b knows only a, through its route.
    /// let a = Node::builder("find-a@localhost").cookie("secret cookie").no_registrar().start().await?;
    /// a.register("billing", &a.spawn(Billing).await?)?;
    /// let b = Node::builder("find-b@localhost")
    ///     .cookie("secret cookie")
    ///     .no_registrar()
    ///     .route("find-a@localhost", a.listen_addr().unwrap().to_string())
    ///     .start()
    ///     .await?;
    /// b.register("billing", &b.spawn(Billing).await?)?;
    /// let all = b.find_all::<Billing>("billing").await;
    /// assert_eq!(all.len(), 2);
    /// let one = b.find::<Billing>("billing").await?;
    /// assert_eq!(one.charge(5).await?, 5);
    /// # Ok(()) }
    /// ```
    pub async fn find_all<A: crate::RemoteActor>(&self, name: &str) -> Vec<ActorRef<A>> {
        let mut found: Vec<ActorRef<A>> = self.whereis::<A>(name).into_iter().collect();
        let Some(net) = net_of(self) else {
            return found;
        };
        let mut peers = net.known();
        if let Some(registrar) = &net.opts.registrar {
            if let Ok(nodes) = registrar.nodes().await {
                peers.extend(nodes.into_iter().map(|(n, _)| n));
                peers.sort();
                peers.dedup();
            }
        }
        let lookups = peers
            .iter()
            .filter(|p| p.as_str() != self.name())
            .map(|peer| self.lookup::<A>(name, peer));
        found.extend(
            futures_util::future::join_all(lookups)
                .await
                .into_iter()
                .flatten(),
        );
        found
    }

    /// One instance of the service `name`: the local one if this node runs it, otherwise the
    /// first found on the nodes this one knows (see [`Node::find_all`]).
    ///
    /// # Errors
    ///
    /// [`crate::net::NetError::NotFound`] when no known node runs it.
    pub async fn find<A: crate::RemoteActor>(
        &self,
        name: &str,
    ) -> Result<ActorRef<A>, crate::net::NetError> {
        if let Some(local) = self.whereis::<A>(name) {
            return Ok(local);
        }
        self.find_all::<A>(name)
            .await
            .into_iter()
            .next()
            .ok_or_else(|| crate::net::NetError::NotFound {
                name: name.into(),
                node: "any known node".into(),
            })
    }
}
