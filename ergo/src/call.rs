//! Request/reply: [`ReplyTo`], [`Call`] and its timeout.
//!
//! A call puts a message carrying a [`ReplyTo`] in the target's mailbox and waits for the reply
//! with a timeout: the node's default (5 s unless configured) or any [`Duration`] given with
//! [`Call::timeout`].
//!
//! # Delivery
//!
//! Every call has its own reply slot. When a call gives up (timeout, or the caller drops the
//! future) the slot is dropped with it: a reply arriving later is discarded and can never be
//! taken by a later call.
//!
//! # Failure
//!
//! - the target had already ended: [`CallError::NoProc`];
//! - the target ended before replying (panic, kill, stop): [`CallError::Exited`] with its reason,
//!   at once, not after the timeout;
//! - no reply in time: [`CallError::Timeout`].
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
//! use std::time::Duration;
//! use ergo::prelude::*;
//!
//! struct Slow;
//! #[actor]
//! impl Slow {
//!     #[handle]
//!     async fn nap(&self, ms: u64) -> u64 {
//!         tokio::time::sleep(Duration::from_millis(ms)).await;
//!         ms
//!     }
//! }
//!
//! let node = Node::builder("call-doc@localhost").start().await?;
//! let slow = node.spawn(Slow).await?;
//! assert_eq!(slow.nap(1).await?, 1);
//! let err = slow.nap(200).timeout(Duration::from_millis(10)).await.unwrap_err();
//! assert_eq!(err, CallError::Timeout);
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::sync::oneshot;
use tokio::time::Sleep;

use crate::node::transport::{RemoteCall, RemoteReply, ReplyRoute};
use crate::{Actor, ActorRef, CallError};

/// Where a call's reply goes. Generated message variants of calls carry one; handlers never see
/// it.
///
/// It serializes as nothing (unit): a call that crosses the network is given its route back by
/// the transport on arrival.
pub struct ReplyTo<R>(Slot<R>);

enum Slot<R> {
    Detached,
    Local(oneshot::Sender<R>),
    Remote(Box<RemoteReply<R>>),
}

impl<R> ReplyTo<R> {
    /// Sends the reply. Does nothing if the caller has given up (or the slot is detached).
    #[inline]
    pub fn send(self, reply: R) {
        match self.0 {
            Slot::Local(tx) => {
                let _ = tx.send(reply);
            }
            Slot::Detached => {}
            Slot::Remote(mut remote) => remote.send(&reply),
        }
    }

    /// Whether a caller still waits for this reply.
    pub fn is_waiting(&self) -> bool {
        match &self.0 {
            Slot::Local(tx) => !tx.is_closed(),
            Slot::Detached => false,
            Slot::Remote(remote) => remote.is_waiting(),
        }
    }
}

#[doc(hidden)]
impl<R: serde::de::DeserializeOwned + Send + 'static> ReplyTo<R> {
    /// Takes the local reply slot out of a call about to be sent to another node: the returned
    /// pending reply decodes the answer and hands it to the waiting call. Used by generated
    /// code; not public API.
    pub fn take_pending(&mut self) -> Option<crate::node::transport::PendingReply> {
        match std::mem::replace(&mut self.0, Slot::Detached) {
            Slot::Local(tx) => Some(crate::node::transport::PendingReply {
                deliver: Box::new(
                    move |bytes: &[u8], error: &std::sync::OnceLock<CallError>| {
                        match crate::node::codec::decode_cbor::<R>(bytes) {
                            Ok(value) => {
                                let _ = tx.send(value);
                                Ok(())
                            }
                            Err(e) => {
                                let _ = error.set(CallError::BadMessage(format!(
                                    "the reply did not decode: {e}"
                                )));
                                drop(tx);
                                Err(e)
                            }
                        }
                    },
                ),
            }),
            other => {
                self.0 = other;
                None
            }
        }
    }
}

#[doc(hidden)]
impl<R: serde::Serialize + Send + 'static> ReplyTo<R> {
    /// A slot whose reply goes back over the network. Used by generated code; not public API.
    pub fn remote(route: ReplyRoute) -> Self {
        ReplyTo(Slot::Remote(Box::new(RemoteReply::new(
            route,
            crate::node::codec::encode_cbor_vec::<R>,
        ))))
    }
}

impl<R> Default for ReplyTo<R> {
    /// A detached slot: replies to it go nowhere (a message decoded from elsewhere gets its
    /// route from the transport).
    fn default() -> Self {
        ReplyTo(Slot::Detached)
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match &self.0 {
            Slot::Local(_) => "ReplyTo(local)",
            Slot::Detached => "ReplyTo(detached)",
            Slot::Remote(_) => "ReplyTo(remote)",
        })
    }
}

impl<R> serde::Serialize for ReplyTo<R> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de, R> serde::Deserialize<'de> for ReplyTo<R> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(ReplyTo::default())
    }
}

type SlowStep<'a> = Pin<Box<dyn Future<Output = Result<(), CallError>> + Send + 'a>>;

pin_project! {
    /// A call: set a timeout with [`Call::timeout`] if the default does not suit, then `.await`
    /// it. Nothing is sent until it is first polled.
    #[must_use = "a call does nothing until it is awaited"]
    pub struct Call<'a, A: Actor, R> {
        target: &'a ActorRef<A>,
        msg: Option<A::Msg>,
        rx: oneshot::Receiver<R>,
        timeout: Option<Duration>,
        // Whether the call has let the target run once before arming its timer.
        yielded: bool,
        #[pin]
        sleep: Option<Sleep>,
        // Rare paths (waiting for room in a full bounded mailbox, waiting for a crashed
        // target's exit reason) run as a boxed future so the common path stays small.
        slow: Option<SlowStep<'a>>,
        // A call to a process of another node: its entry among the connection's pending calls.
        remote: Option<RemoteCall>,
    }
}

impl<'a, A: Actor, R> Call<'a, A, R> {
    /// Builds a call whose message is made by `make` from its reply slot (generated code uses
    /// this; so can hand-written actors).
    #[inline]
    pub fn new(target: &'a ActorRef<A>, make: impl FnOnce(ReplyTo<R>) -> A::Msg) -> Self {
        let (tx, rx) = oneshot::channel();
        Call {
            target,
            msg: Some(make(ReplyTo(Slot::Local(tx)))),
            rx,
            timeout: None,
            yielded: false,
            sleep: None,
            slow: None,
            remote: None,
        }
    }

    /// Overrides the node's default call timeout for this call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<A: Actor, R> Future for Call<'_, A, R> {
    type Output = Result<R, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(remote) = this.target.remote() {
            if let Some(msg) = this.msg.take() {
                match remote.start_call(msg) {
                    Ok(call) => *this.remote = Some(call),
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            match Pin::new(&mut *this.rx).poll(cx) {
                Poll::Ready(Ok(reply)) => return Poll::Ready(Ok(reply)),
                // The pending reply was dropped: the call failed (the reason is recorded first).
                Poll::Ready(Err(_)) => {
                    let error = this
                        .remote
                        .as_ref()
                        .map_or(CallError::NoConnection, |c| c.error());
                    return Poll::Ready(Err(error));
                }
                Poll::Pending => {}
            }
            let mut sleep = this.sleep;
            if sleep.is_none() {
                let timeout = this.timeout.unwrap_or_else(|| remote.call_timeout());
                sleep.set(Some(tokio::time::sleep(timeout)));
            }
            return match sleep.as_pin_mut().map(|s| s.poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(CallError::Timeout)),
                _ => Poll::Pending,
            };
        }
        if let Some(msg) = this.msg.take() {
            match this.target.mailbox().try_send(msg) {
                Ok(()) => {}
                Err(crate::TrySendError::Closed(_)) => return Poll::Ready(Err(CallError::NoProc)),
                Err(crate::TrySendError::Full(msg)) => {
                    let target = *this.target;
                    *this.slow = Some(Box::pin(async move {
                        match target.mailbox().send(msg).await {
                            Ok(()) => Ok(()),
                            Err(_) => Err(match target.mailbox().core().exit_reason() {
                                Some(reason) => CallError::Exited(reason.clone()),
                                None => CallError::NoProc,
                            }),
                        }
                    }));
                }
            }
        }
        let timeout = *this.timeout;
        let target = *this.target;
        // Arms the timer on first need and reports whether it has run out.
        let deadline = |sleep: Pin<&mut Option<Sleep>>, cx: &mut Context<'_>| {
            let mut sleep = sleep;
            if sleep.is_none() {
                let timeout =
                    timeout.unwrap_or_else(|| target.mailbox().core().node.call_timeout());
                // `sleep` saturates a huge timeout instead of overflowing the instant.
                sleep.set(Some(tokio::time::sleep(timeout)));
            }
            match sleep.as_pin_mut().map(|s| s.poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(CallError::Timeout)),
                _ => Poll::Pending,
            }
        };
        if let Some(slow) = this.slow.as_mut() {
            match slow.as_mut().poll(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => *this.slow = None,
                Poll::Pending => return deadline(this.sleep, cx),
            }
        }
        match Pin::new(&mut *this.rx).poll(cx) {
            Poll::Ready(Ok(reply)) => return Poll::Ready(Ok(reply)),
            Poll::Ready(Err(_)) => {
                // The reply slot was dropped: the target is ending. Its reason may not be
                // recorded yet (a panic drops the slot while unwinding), so wait for it.
                if let Some(reason) = target.mailbox().core().exit_reason() {
                    return Poll::Ready(Err(CallError::Exited(reason.clone())));
                }
                let mut wait: SlowStep<'_> = Box::pin(async move {
                    let reason = target.mailbox().core().wait_reason().await;
                    Err(CallError::Exited(reason))
                });
                if let Poll::Ready(r) = wait.as_mut().poll(cx) {
                    return Poll::Ready(Err(r.err().unwrap_or(CallError::NoProc)));
                }
                // Later polls go through `slow` until the reason is known.
                *this.slow = Some(wait);
                return deadline(this.sleep, cx);
            }
            Poll::Pending => {}
        }
        if !*this.yielded && this.sleep.is_none() {
            // Most replies come within one turn of the scheduler: the target was just woken
            // (on this worker, it runs next). Let it run once before paying for a timer.
            *this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        deadline(this.sleep, cx)
    }
}
