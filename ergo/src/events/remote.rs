//! Events across nodes: the network half of events, plugged into the node's transport as a
//! node service ([`NodeService`]).
//!
//! - **Producer side**: a subscribing node is one subscriber of the local registration (a
//!   [`RemoteSink`]), fed over its link with `EventPublish` notices and told the end with an
//!   `EventDown` notice.
//! - **Subscriber side**: a [`Mirror`] is the local stand-in of another node's event: one
//!   subscription of this node, fanned out to its local subscribers in order.
//! - A link going down ends both sides for that link: the producer forgets the subscribing
//!   node, the subscriber's mirrors end with [`ExitReason::NoConnection`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;

use super::channel::{Alive, AnyChannel, Channel, End, Outcome, Owner};
use super::event::{Event, EventDown};
use super::handles::Subscription;
use super::subscribe::{deliver_to, link_end, monitor_end};
use crate::error::NetError;
use crate::error::SubscribeError;
use crate::node::codec::{decode_cbor, decoding_with, encode_cbor, encode_cbor_vec};
use crate::node::transport::{NodeService, Peer, Room, SendFailure, ServiceFrame};
use crate::pid::NodeAtom;
use crate::{Actor, ActorRef, ExitReason, Node, Pid};

/// What a subscribing node asks the producer's node.
#[derive(serde::Serialize, serde::Deserialize)]
struct SubRequest {
    name: String,
    type_name: String,
    sub: u64,
}

/// The producer's node's answer.
#[derive(serde::Serialize, serde::Deserialize)]
enum SubAnswer {
    Subscribed(Pid),
    NotRegistered,
    TypeMismatch(String),
    NotRemote,
}

/// A subscribing node's subscription of a local event: the registration and the id of the
/// subscriber standing for the node.
type RemoteSub = (Arc<dyn AnyChannel>, u64);

/// A mirror in the node's table: its subscription id and the typed `Arc<Mirror<T>>`.
#[derive(Clone)]
struct MirrorEntry {
    sub: u64,
    typed: Arc<dyn std::any::Any + Send + Sync>,
}

/// What a node keeps for events across nodes.
#[derive(Default)]
pub(crate) struct RemoteTables {
    /// Mirrors of other nodes' events, by (node, event name).
    mirrors: DashMap<(NodeAtom, Arc<str>), MirrorEntry>,
    /// The same mirrors by subscription id, with the link their values come over.
    by_sub: DashMap<u64, (u64, Arc<dyn MirrorSink>)>,
    /// This node's events that other nodes subscribe to, by (link, their subscription id).
    subscribed: DashMap<(u64, u64), RemoteSub>,
}

impl RemoteTables {
    /// Removes the table entry of the mirror with subscription id `sub`.
    fn forget_mirror(&self, sub: u64) {
        self.mirrors.retain(|_, m| m.sub != sub);
    }

    /// Removes a mirror that failed to subscribe.
    fn drop_mirror(&self, atom: NodeAtom, name: &str, sub: u64) {
        self.mirrors
            .remove_if(&(atom, Arc::<str>::from(name)), |_, m| m.sub == sub);
        self.by_sub.remove(&sub);
    }
}

/// A subscribing node as one subscriber of a local event: values go to it over its link.
#[derive(Clone)]
pub(crate) struct RemoteSink {
    peer: Arc<dyn Peer>,
    sub: u64,
}

impl RemoteSink {
    pub(super) fn is_closed(&self) -> bool {
        self.peer.is_down()
    }

    /// Queues one value (written by `write`) for the subscribing node.
    pub(super) fn publish(
        &self,
        write: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<(), String>,
    ) -> Outcome {
        match self
            .peer
            .notify(ServiceFrame::Publish, self.sub, Room::Events, write)
        {
            Ok(()) => Outcome::Queued,
            Err(SendFailure::Full) => Outcome::Full,
            Err(SendFailure::Closed) => Outcome::Closed,
            Err(e) => {
                tracing::error!(sub = self.sub, "an event value was not sent: {e}");
                Outcome::Full
            }
        }
    }

    /// Tells the subscribing node the registration ended.
    pub(super) fn down(&self, node: &Node, reason: &ExitReason) {
        node.event_table()
            .remote
            .subscribed
            .remove(&(self.peer.id(), self.sub));
        let _ = self
            .peer
            .notify(ServiceFrame::Down, self.sub, Room::Always, &mut |w| {
                encode_cbor(reason, w)
            });
    }
}

/// Producer side: adds the subscribing node behind `sink` to the event `name`.
fn subscribe_for_node(
    node: &Node,
    request: &SubRequest,
    sink: RemoteSink,
) -> (SubAnswer, Option<RemoteSub>) {
    let Some(entry) = node
        .event_table()
        .events
        .get(request.name.as_str())
        .map(|e| e.clone())
    else {
        return (SubAnswer::NotRegistered, None);
    };
    if entry.type_name != request.type_name {
        return (SubAnswer::TypeMismatch(entry.type_name.to_string()), None);
    }
    if entry.channel.reap() {
        return (SubAnswer::NotRegistered, None);
    }
    match entry.channel.subscribe_remote(sink) {
        Err(()) => (SubAnswer::NotRemote, None),
        Ok(None) => (SubAnswer::NotRegistered, None),
        Ok(Some(id)) => (
            SubAnswer::Subscribed(entry.channel.owner_pid()),
            Some((entry.channel.clone(), id)),
        ),
    }
}

/// Subscriber side: what the link hands a mirror.
trait MirrorSink: Send + Sync + 'static {
    /// Decodes one value and publishes it to the local subscribers; `Ok(false)` when none is
    /// left (the subscription can end).
    fn publish_bytes(&self, node: &Node, bytes: &[u8]) -> Result<bool, String>;
    /// The producer's registration ended (or the connection was lost).
    fn close(&self, reason: ExitReason);
}

/// The local stand-in of another node's event: one subscription of this node, fanned out to
/// the local subscribers.
struct Mirror<T> {
    channel: Arc<Channel<T>>,
    /// The outcome of the remote subscription, set once by the first local subscriber.
    ready: tokio::sync::OnceCell<Result<(), SubscribeError>>,
    /// Whether the producer confirmed, and an end that came before the confirmation was seen
    /// (it is delivered once the subscription is confirmed).
    confirmed: Mutex<(bool, Option<ExitReason>)>,
    sub: u64,
}

impl<T: Clone + Send + serde::de::DeserializeOwned + 'static> Mirror<T> {
    fn new(node: &Node, name: &str, sub: u64) -> Arc<Mirror<T>> {
        Arc::new(Mirror {
            channel: Arc::new(Channel::new(
                Arc::from(name),
                Owner::Remote(std::sync::OnceLock::new()),
                node.clone(),
                None,
                0,
            )),
            ready: tokio::sync::OnceCell::new(),
            confirmed: Mutex::new((false, None)),
            sub,
        })
    }

    fn is_closed(&self) -> bool {
        self.channel.closed.load(Ordering::Acquire) || self.channel.state.lock().closed
    }
}

impl<T: Clone + Send + serde::de::DeserializeOwned + 'static> MirrorSink for Mirror<T> {
    fn publish_bytes(&self, node: &Node, bytes: &[u8]) -> Result<bool, String> {
        let value = decoding_with(node, || decode_cbor::<T>(bytes))?;
        let _ = self.channel.publish(value);
        Ok(self.channel.subscribers.load(Ordering::Acquire) > 0)
    }

    fn close(&self, reason: ExitReason) {
        let mut confirmed = self.confirmed.lock();
        if confirmed.0 {
            drop(confirmed);
            self.channel.close(reason);
        } else {
            // Not confirmed yet: the subscribe call delivers it once it is (or fails).
            confirmed.1.get_or_insert(reason);
        }
    }
}

/// The mirror of event `name` of node `atom` with payload `T`, made if there is none (or the
/// old one has closed).
fn mirror_for<T>(
    node: &Node,
    next_sub: impl Fn() -> u64,
    atom: NodeAtom,
    name: &str,
) -> Result<Arc<Mirror<T>>, SubscribeError>
where
    T: Clone + Send + serde::de::DeserializeOwned + 'static,
{
    use dashmap::mapref::entry::Entry;
    let key = (atom, Arc::<str>::from(name));
    let mismatch = || SubscribeError::TypeMismatch {
        event: name.to_string(),
        registered: "another type (subscribed to by another process of this node)".into(),
        requested: std::any::type_name::<T>().into(),
    };
    let made = |sub| {
        let mirror = Mirror::<T>::new(node, name, sub);
        let entry = MirrorEntry {
            sub,
            typed: mirror.clone(),
        };
        (mirror, entry)
    };
    match node.event_table().remote.mirrors.entry(key) {
        Entry::Occupied(mut e) => {
            let existing = e
                .get()
                .typed
                .clone()
                .downcast::<Mirror<T>>()
                .map_err(|_| mismatch())?;
            if !existing.is_closed() {
                return Ok(existing);
            }
            let (mirror, entry) = made(next_sub());
            e.insert(entry);
            Ok(mirror)
        }
        Entry::Vacant(v) => {
            let (mirror, entry) = made(next_sub());
            v.insert(entry);
            Ok(mirror)
        }
    }
}

/// The events service of a node's transport: it serves the event frames of every link.
struct NodeEvents;

/// The node service that carries events across nodes, for a node's transport.
pub(crate) fn node_service() -> Arc<dyn NodeService> {
    Arc::new(NodeEvents)
}

impl NodeService for NodeEvents {
    fn handles(&self, frame: ServiceFrame) -> bool {
        matches!(
            frame,
            ServiceFrame::Subscribe
                | ServiceFrame::Publish
                | ServiceFrame::Down
                | ServiceFrame::Unsubscribe
        )
    }

    fn on_frame(
        &self,
        node: &Node,
        peer: &Arc<dyn Peer>,
        frame: ServiceFrame,
        sub: u64,
        payload: &[u8],
        answer: &mut dyn FnMut(&[u8]),
    ) -> Result<(), String> {
        let tables = &node.event_table().remote;
        let mut reply = |value: &SubAnswer| {
            let mut bytes = Vec::new();
            match encode_cbor_vec(value, &mut bytes) {
                Ok(()) => answer(&bytes),
                Err(e) => tracing::error!("an event subscription answer was not sent: {e}"),
            }
        };
        match frame {
            ServiceFrame::Subscribe => {
                let request = decode_cbor::<SubRequest>(payload)?;
                let key = (peer.id(), request.sub);
                let existing = tables.subscribed.get(&key).map(|e| e.value().0.owner_pid());
                if let Some(owner) = existing {
                    // Asked again for the same subscription (the first request's caller gave
                    // up before the answer): it is already in place.
                    reply(&SubAnswer::Subscribed(owner));
                    return Ok(());
                }
                let sink = RemoteSink {
                    peer: peer.clone(),
                    sub: request.sub,
                };
                let (answer, registered) = subscribe_for_node(node, &request, sink);
                if let Some(registered) = registered {
                    tables.subscribed.insert(key, registered);
                }
                reply(&answer);
            }
            ServiceFrame::Publish => {
                let mirror = tables
                    .by_sub
                    .get(&sub)
                    .filter(|e| e.value().0 == peer.id())
                    .map(|e| e.value().1.clone());
                match mirror.map(|m| m.publish_bytes(node, payload)) {
                    Some(Ok(true)) => {}
                    Some(Ok(false)) | None => {
                        // Nobody here listens any more: end the subscription.
                        if let Some((_, (_, m))) = tables.by_sub.remove(&sub) {
                            m.close(ExitReason::Normal);
                        }
                        tables.forget_mirror(sub);
                        let _ =
                            peer.notify(ServiceFrame::Unsubscribe, sub, Room::Always, &mut |_| {
                                Ok(())
                            });
                    }
                    Some(Err(e)) => {
                        tracing::warn!(peer = %peer.node().name(), "an event value did not decode: {e}");
                    }
                }
            }
            ServiceFrame::Down => {
                let reason = decode_cbor::<ExitReason>(payload)?;
                let mirror = tables.by_sub.remove(&sub);
                tables.forget_mirror(sub);
                if let Some((_, (_, m))) = mirror {
                    m.close(reason);
                }
            }
            ServiceFrame::Unsubscribe => {
                if let Some((_, (registration, id))) = tables.subscribed.remove(&(peer.id(), sub)) {
                    registration.remove_subscriber(id);
                }
            }
        }
        Ok(())
    }

    fn on_peer_down(&self, node: &Node, peer: u64) {
        let tables = &node.event_table().remote;
        let subscribed: Vec<(u64, u64)> = tables
            .subscribed
            .iter()
            .filter(|e| e.key().0 == peer)
            .map(|e| *e.key())
            .collect();
        for key in subscribed {
            if let Some((_, (registration, id))) = tables.subscribed.remove(&key) {
                registration.remove_subscriber(id);
            }
        }
        let mirrors: Vec<u64> = tables
            .by_sub
            .iter()
            .filter(|e| e.value().0 == peer)
            .map(|e| *e.key())
            .collect();
        for sub in mirrors {
            if let Some((_, (_, mirror))) = tables.by_sub.remove(&sub) {
                tables.forget_mirror(sub);
                mirror.close(ExitReason::NoConnection);
            }
        }
    }
}

impl Node {
    /// Subscribes `subscriber` (a process of this node) by monitor to `event` registered on
    /// node `node` (declared there with [`Event::remote`]): as [`Node::monitor_event`], and the
    /// registration also ends, with [`ExitReason::NoConnection`], when the connection to that
    /// node is lost. This node receives one copy of each value however many of its processes
    /// subscribe, and hands it to them in order. Naming this node subscribes locally.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::NotRegistered`], [`SubscribeError::TypeMismatch`] (the types' names
    /// differ on the two nodes), [`SubscribeError::NotRemote`] (registered with
    /// [`Event::new`]), [`SubscribeError::Net`] when the node cannot be reached (or this node
    /// has no network), and the local errors of [`Node::monitor_event`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ergo::prelude::*;
    /// use ergo::events::{Event, EventDown, EventOptions};
    ///
    /// const PRICES: Event<u32> = Event::remote("prices");
    ///
    /// struct Feed;
    /// #[actor]
    /// impl Feed {
    ///     #[handle]
    ///     fn ping(&self) {}
    /// }
    /// #[derive(Default)]
    /// struct Chart { seen: Vec<u32> }
    /// #[actor]
    /// impl Chart {
    ///     #[handle]
    ///     fn price(&mut self, p: u32) { self.seen.push(p) }
    ///     #[handle]
    ///     fn gone(&mut self, _d: EventDown) {}
    ///     #[handle]
    ///     fn seen(&self) -> Vec<u32> { self.seen.clone() }
    /// }
    ///
    /// let a = Node::builder("prices-a@localhost").cookie("secret cookie").start().await?;
    /// let feed = a.spawn(Feed).await?;
    /// let token = a.register_event(&PRICES, feed.pid(), EventOptions::new())?;
    ///
    /// let b = Node::builder("prices-b@localhost")
    ///     .cookie("secret cookie")
    ///     .route("prices-a@localhost", a.listen_addr().unwrap().to_string())
    ///     .start()
    ///     .await?;
    /// let chart = b.spawn(Chart::default()).await?;
    /// b.monitor_event_at(&PRICES, "prices-a@localhost", &chart,
    ///     |p| ChartMsg::Price { p }, |d| ChartMsg::Gone { _d: d }).await?;
    /// token.publish(10)?;
    /// token.publish(11)?;
    /// # tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    /// assert_eq!(chart.seen().await?, vec![10, 11]);
    /// # Ok(()) }
    /// ```
    pub async fn monitor_event_at<T, A, V, D>(
        &self,
        event: &Event<T>,
        node: &str,
        subscriber: &ActorRef<A>,
        on_value: V,
        on_down: D,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + serde::de::DeserializeOwned + 'static,
        A: Actor,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
        D: FnOnce(EventDown) -> A::Msg + Send + 'static,
    {
        if node == self.name() {
            return self.monitor_event(event, subscriber, on_value, on_down);
        }
        let end = monitor_end(subscriber, on_down);
        self.subscribe_at(event, node, subscriber, on_value, end)
            .await
    }

    /// Subscribes `subscriber` by link to `event` registered on node `node`: as
    /// [`Node::link_event`], and the subscriber also receives an exit signal with
    /// [`ExitReason::NoConnection`] from the owner when the connection is lost.
    ///
    /// # Errors
    ///
    /// As [`Node::monitor_event_at`].
    pub async fn link_event_at<T, A, V>(
        &self,
        event: &Event<T>,
        node: &str,
        subscriber: &ActorRef<A>,
        on_value: V,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + serde::de::DeserializeOwned + 'static,
        A: Actor,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
    {
        if node == self.name() {
            return self.link_event(event, subscriber, on_value);
        }
        self.subscribe_at(event, node, subscriber, on_value, link_end(subscriber))
            .await
    }

    async fn subscribe_at<T, A, V>(
        &self,
        event: &Event<T>,
        node: &str,
        subscriber: &ActorRef<A>,
        on_value: V,
        end: End,
    ) -> Result<Subscription, SubscribeError>
    where
        T: Clone + Send + serde::de::DeserializeOwned + 'static,
        A: Actor,
        V: Fn(T) -> A::Msg + Send + Sync + 'static,
    {
        let transport = self
            .transport()
            .ok_or(SubscribeError::Net(NetError::NotNetworked))?
            .clone();
        if !subscriber.is_local() {
            return Err(SubscribeError::NotLocal(subscriber.pid()));
        }
        if !subscriber.is_alive() {
            return Err(SubscribeError::NoProc);
        }
        let atom = NodeAtom::intern(node);
        let mirror: Arc<Mirror<T>> =
            mirror_for(self, || transport.next_correlation(), atom, event.name())?;
        let deliver = deliver_to(subscriber, on_value);
        let not_registered = || SubscribeError::NotRegistered(event.name().to_owned());
        let id = mirror
            .channel
            .subscribe(Alive::Process(subscriber.handle()), deliver, end)
            .ok_or_else(not_registered)?;
        // If this call is dropped before it answers, the subscriber leaves the mirror (nobody
        // would hold its `Subscription`).
        struct Leave<'a, T: Clone + Send + 'static>(&'a Channel<T>, Option<u64>);
        impl<T: Clone + Send + 'static> Drop for Leave<'_, T> {
            fn drop(&mut self) {
                if let Some(id) = self.1 {
                    self.0.remove_subscriber(id);
                }
            }
        }
        let mut leave = Leave(&mirror.channel, Some(id));
        let ready = mirror
            .ready
            .get_or_init(|| {
                let (node, mirror) = (self.clone(), mirror.clone());
                async move {
                    let request = SubRequest {
                        name: mirror.channel.name.to_string(),
                        type_name: std::any::type_name::<T>().to_string(),
                        sub: mirror.sub,
                    };
                    let answer =
                        ask_subscribe(&node, &*transport, atom, &request, mirror.clone()).await;
                    let tables = &node.event_table().remote;
                    match answer {
                        Ok(SubAnswer::Subscribed(owner)) => {
                            if let Owner::Remote(pid) = &mirror.channel.owner {
                                let _ = pid.set(owner);
                            }
                            let early = {
                                let mut confirmed = mirror.confirmed.lock();
                                confirmed.0 = true;
                                confirmed.1.take()
                            };
                            if let Some(reason) = early {
                                // It ended before we saw the confirmation: tell everyone now.
                                mirror.channel.close(reason);
                            }
                            Ok(())
                        }
                        other => {
                            tables.drop_mirror(atom, &request.name, mirror.sub);
                            Err(match other {
                                Ok(SubAnswer::TypeMismatch(registered)) => {
                                    SubscribeError::TypeMismatch {
                                        event: request.name.clone(),
                                        registered,
                                        requested: request.type_name.clone(),
                                    }
                                }
                                Ok(SubAnswer::NotRemote) => {
                                    SubscribeError::NotRemote(request.name.clone())
                                }
                                Ok(_) => SubscribeError::NotRegistered(request.name.clone()),
                                Err(e) => SubscribeError::Net(e),
                            })
                        }
                    }
                }
            })
            .await;
        match ready {
            Ok(()) => {
                leave.1 = None;
                Ok(Subscription {
                    id,
                    event: mirror.channel.name.clone(),
                    channel: mirror.channel.clone(),
                })
            }
            // `leave` removes the subscriber.
            Err(e) => Err(e.clone()),
        }
    }
}

/// Asks node `atom` to forward an event's values to `mirror`; the mirror is in place before
/// the request goes (values may arrive before the answer).
async fn ask_subscribe(
    node: &Node,
    transport: &dyn crate::node::transport::Transport,
    atom: NodeAtom,
    request: &SubRequest,
    mirror: Arc<dyn MirrorSink>,
) -> Result<SubAnswer, NetError> {
    let peer = transport.peer(atom)?;
    node.event_table()
        .remote
        .by_sub
        .insert(request.sub, (peer.id(), mirror));
    let mut bytes = Vec::new();
    encode_cbor_vec(request, &mut bytes).map_err(|e| NetError::NoConnection {
        node: atom.name().to_string(),
        reason: format!("the request could not be encoded: {e}"),
    })?;
    let answer = peer
        .clone()
        .request(
            ServiceFrame::Subscribe,
            request.sub,
            bytes,
            node.call_timeout(),
        )
        .await?;
    decode_cbor(&answer).map_err(|e| NetError::NoConnection {
        node: atom.name().to_string(),
        reason: format!("the answer did not decode: {e}"),
    })
}
