//! Remote spawn and remote application start, off by default and allow-listed by name.
//!
//! A node that wants to let peers start processes on it names each allowed actor factory
//! ([`Node::allow_spawn`]) and each allowed application ([`Node::allow_remote_start`]).
//! A peer then asks by name ([`Node::spawn_remote`], [`Node::start_application_remote`]);
//! anything not allow-listed is refused with [`RemoteSpawnError::NotAllowed`] and nothing runs.
//! Arguments travel as CBOR and are decoded by the factory's own argument type.
//!
//! Trust: any node holding the cookie can ask; the allow-list bounds what it can start.

use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::conn::Conn;
use super::frame::{FrameKind, Header};
use super::inbound::answer;
use super::peer::PeerLink;
use super::transport::{net_of, Net};
use crate::error::{NetError, RemoteSpawnError};
use crate::node::transport::RemoteRef;
use crate::pid::NodeAtom;
use crate::{ActorRef, Node, Pid, RemoteActor};

#[derive(Serialize, Deserialize)]
pub(crate) enum NodeRequest {
    Spawn {
        name: String,
        actor: String,
        args: ciborium::Value,
    },
    StartApp {
        name: String,
    },
}

#[derive(Serialize, Deserialize)]
enum NodeAnswer {
    Spawned { id: u64, creation: u32 },
    Started,
    NotAllowed,
    WrongActor(String),
    BadArgs(String),
    Failed(String),
}

/// An allow-listed factory, type-erased.
pub(crate) trait Spawner: Send + Sync + 'static {
    fn actor(&self) -> &'static str;
    fn spawn(&self, node: Node, args: ciborium::Value) -> BoxFuture<'static, NodeAnswerOut>;
}

/// What a spawn produced (kept private to this module's wire type).
pub(crate) struct NodeAnswerOut(NodeAnswer);

struct Factory<A, Args, F> {
    make: F,
    _types: PhantomData<fn(Args) -> A>,
}

impl<A, Args, F> Spawner for Factory<A, Args, F>
where
    A: RemoteActor,
    Args: DeserializeOwned + Send + 'static,
    F: Fn(Args) -> A + Send + Sync + 'static,
{
    fn actor(&self) -> &'static str {
        A::NAME
    }

    fn spawn(&self, node: Node, args: ciborium::Value) -> BoxFuture<'static, NodeAnswerOut> {
        let args: Args = match crate::node::codec::decoding_with(&node, || args.deserialized()) {
            Ok(args) => args,
            Err(e) => {
                return Box::pin(async move { NodeAnswerOut(NodeAnswer::BadArgs(e.to_string())) })
            }
        };
        let actor = (self.make)(args);
        Box::pin(async move {
            NodeAnswerOut(match node.spawn(actor).await {
                Ok(r) => NodeAnswer::Spawned {
                    id: r.pid().id(),
                    creation: r.pid().creation(),
                },
                Err(e) => NodeAnswer::Failed(e.to_string()),
            })
        })
    }
}

impl Net {
    /// Serves a peer's `NodeRequest` frame: checks the allow-list, starts what was asked in a
    /// task, and answers on the connection it came on.
    pub(crate) fn serve_request(
        self: &Arc<Self>,
        node: &Node,
        link: &Arc<PeerLink>,
        conn: &Arc<Conn>,
        h: Header,
        request: NodeRequest,
    ) {
        let (net, link, conn, node2) = (self.clone(), link.clone(), conn.clone(), node.clone());
        let answer_it = async move {
            let reply = match request {
                NodeRequest::Spawn { name, actor, args } => {
                    let spawner = net.spawners.get(&name).map(|s| s.clone());
                    match spawner {
                        None => NodeAnswer::NotAllowed,
                        Some(s) if s.actor() != actor => NodeAnswer::WrongActor(s.actor().into()),
                        Some(s) => s.spawn(node2.clone(), args).await.0,
                    }
                }
                NodeRequest::StartApp { name } => {
                    if !net.remote_apps.contains_key(&name) {
                        NodeAnswer::NotAllowed
                    } else {
                        match node2.start_application(&name).await {
                            Ok(()) => NodeAnswer::Started,
                            Err(e) => NodeAnswer::Failed(e.to_string()),
                        }
                    }
                }
            };
            answer(&conn, &link, &h, &reply);
        };
        node.runtime().spawn(answer_it);
    }
}

impl Node {
    fn net_or_err(&self) -> Result<Arc<Net>, NetError> {
        net_of(self).ok_or(NetError::NotNetworked)
    }

    /// Lets other nodes spawn actor `A` on this node under `name`, made by `factory` from the
    /// arguments they send (decoded as `Args`). Off by default: without this, remote spawns of
    /// `name` are refused. Registering a name again replaces its factory.
    ///
    /// # Errors
    ///
    /// [`NetError::NotNetworked`] when the node has no cookie.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ergo::prelude::*;
    ///
    /// struct Adder { base: u64 }
    /// #[actor(remote)]
    /// impl Adder {
    ///     #[handle]
    ///     fn add(&self, n: u64) -> u64 { self.base + n }
    /// }
    ///
    /// let worker = Node::builder("spawn-doc-w@localhost").cookie("secret cookie").start().await?;
    /// worker.allow_spawn("adder", |base: u64| Adder { base })?;
    ///
    /// let boss = Node::builder("spawn-doc-b@localhost")
    ///     .cookie("secret cookie")
    ///     .route("spawn-doc-w@localhost", worker.listen_addr().unwrap().to_string())
    ///     .start()
    ///     .await?;
    /// let adder = boss.spawn_remote::<Adder, _>("spawn-doc-w@localhost", "adder", &40u64).await?;
    /// assert_eq!(adder.add(2).await?, 42);
    /// assert!(boss.spawn_remote::<Adder, _>("spawn-doc-w@localhost", "nope", &1u64).await.is_err());
    /// # Ok(()) }
    /// ```
    pub fn allow_spawn<A, Args, F>(&self, name: &str, factory: F) -> Result<(), NetError>
    where
        A: RemoteActor,
        Args: DeserializeOwned + Send + 'static,
        F: Fn(Args) -> A + Send + Sync + 'static,
    {
        let net = self.net_or_err()?;
        net.spawners.insert(
            name.to_string(),
            Arc::new(Factory {
                make: factory,
                _types: PhantomData,
            }),
        );
        Ok(())
    }

    /// Removes `name` from the spawn allow-list. Returns `false` if it was not there.
    pub fn disallow_spawn(&self, name: &str) -> bool {
        net_of(self).is_some_and(|n| n.spawners.remove(name).is_some())
    }

    /// Lets other nodes start the application `name` (loaded on this node with
    /// [`Node::load_application`]) with [`Node::start_application_remote`].
    ///
    /// # Errors
    ///
    /// [`NetError::NotNetworked`] when the node has no cookie.
    pub fn allow_remote_start(&self, app: &str) -> Result<(), NetError> {
        self.net_or_err()?.remote_apps.insert(app.to_string(), ());
        Ok(())
    }

    /// Spawns actor `A` on node `node` with the factory it allow-listed as `name`, passing
    /// `args`; returns a ref to the new process once its `init` has succeeded there. To tie
    /// the new process to a caller, link or monitor its pid (if it has already ended, the link
    /// or monitor fires with `NoProc`, so no end goes unnoticed).
    ///
    /// # Errors
    ///
    /// [`RemoteSpawnError::NotAllowed`] (nothing runs), [`RemoteSpawnError::WrongActor`],
    /// [`RemoteSpawnError::BadArgs`], [`RemoteSpawnError::Failed`] (its `init` failed), or
    /// [`RemoteSpawnError::Net`].
    pub async fn spawn_remote<A, Args>(
        &self,
        node: &str,
        name: &str,
        args: &Args,
    ) -> Result<ActorRef<A>, RemoteSpawnError>
    where
        A: RemoteActor,
        Args: Serialize,
    {
        let net = self.net_or_err()?;
        let vtable = A::__remote_vtable().ok_or_else(|| RemoteSpawnError::WrongActor {
            name: name.into(),
            expected: A::NAME,
            found: "a local-only actor".into(),
        })?;
        let args = ciborium::Value::serialized(args).map_err(|e| RemoteSpawnError::BadArgs {
            name: name.into(),
            reason: e.to_string(),
        })?;
        let atom = NodeAtom::intern(node);
        let request = NodeRequest::Spawn {
            name: name.into(),
            actor: A::NAME.into(),
            args,
        };
        let answer = net
            .request(self, atom, FrameKind::NodeRequest, 0, &request)
            .await?;
        match answer {
            NodeAnswer::Spawned { id, creation } => Ok(ActorRef::from_remote(Arc::new(
                RemoteRef::new(Pid::new(atom, id, creation), A::NAME, self.clone(), vtable),
            ))),
            other => Err(refusal(other, node, name, A::NAME)),
        }
    }

    /// Starts the application `app` on node `node`, which must have allow-listed it with
    /// [`Node::allow_remote_start`].
    ///
    /// # Errors
    ///
    /// As [`Node::spawn_remote`].
    pub async fn start_application_remote(
        &self,
        node: &str,
        app: &str,
    ) -> Result<(), RemoteSpawnError> {
        let net = self.net_or_err()?;
        let request = NodeRequest::StartApp { name: app.into() };
        let answer = net
            .request(
                self,
                NodeAtom::intern(node),
                FrameKind::NodeRequest,
                0,
                &request,
            )
            .await?;
        match answer {
            NodeAnswer::Started => Ok(()),
            other => Err(refusal(other, node, app, "")),
        }
    }
}

fn refusal(answer: NodeAnswer, node: &str, name: &str, expected: &'static str) -> RemoteSpawnError {
    match answer {
        NodeAnswer::NotAllowed => RemoteSpawnError::NotAllowed {
            node: node.into(),
            name: name.into(),
        },
        NodeAnswer::WrongActor(found) => RemoteSpawnError::WrongActor {
            name: name.into(),
            expected,
            found,
        },
        NodeAnswer::BadArgs(reason) => RemoteSpawnError::BadArgs {
            name: name.into(),
            reason,
        },
        NodeAnswer::Failed(reason) => RemoteSpawnError::Failed {
            name: name.into(),
            reason,
        },
        NodeAnswer::Spawned { .. } | NodeAnswer::Started => RemoteSpawnError::Failed {
            name: name.into(),
            reason: "the peer answered another request".into(),
        },
    }
}
