//! Routing pools: spread casts and calls over a set of workers of one actor type.
//!
//! A [`Pool<A>`] is a handle (cheap to clone, shared by every clone) over workers running actor
//! `A`. Work goes straight from the caller to the chosen worker's mailbox: the pool is not a
//! process, so routing adds no hop, and the caller sees the worker's own errors.
//!
//! # Using the generated API
//!
//! - [`Pool::call`] takes a closure that makes a call on the chosen worker with the actor's
//!   generated `…Api` method: `pool.call(|w| w.resize(img))`. The pool counts the call as the
//!   worker's load until it returns.
//! - [`Pool::cast`] takes the message enum (`pool.cast(ThumbMsg::Warm { size })`); it never
//!   loses the message to a dead worker (it is handed back and routed to the next one).
//! - [`Pool::pick`] returns the ref routing would choose, for anything else
//!   (`pool.pick().unwrap().warm(size).await`).
//!
//! # Routing
//!
//! - [`Routing::RoundRobin`]: each worker in turn.
//! - [`Routing::LeastBusy`]: the worker with the smallest load, where load is the number of
//!   messages queued in its mailbox ([`ActorRef::mailbox_len`]) plus the calls made through
//!   this pool that it has not answered yet (so a worker blocked inside a long call counts as
//!   busy even with an empty mailbox). Ties go round-robin.
//!
//! # Failure
//!
//! A worker that ends is never chosen again (routing skips workers that are not alive, and a
//! watcher task removes it from the pool). A call that was in it fails with the worker's
//! [`CallError::Exited`] reason (or [`CallError::NoProc`] if it ended just before the call was
//! queued); the pool does not retry calls, as the work may have been half done. A pool made by
//! [`Pool::spawn`] owns its workers and replaces each one that ends (with a fresh actor from its
//! factory); a replacement whose `init` fails is dropped from the pool. A pool made by
//! [`Pool::from_workers`] only removes them.
//!
//! With no worker left, calls fail with [`CallError::NoProc`] and casts hand the message back.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
//! use ergo::prelude::*;
//! use ergo::pool::{Pool, Routing};
//!
//! #[derive(Default)]
//! struct Hasher { jobs: u64 }
//! #[actor]
//! impl Hasher {
//!     #[handle]
//!     fn hash(&mut self, data: Vec<u8>) -> u64 {
//!         self.jobs += 1;
//!         data.iter().fold(17, |h, b| h * 31 + u64::from(*b))
//!     }
//!     #[handle]
//!     fn jobs(&self) -> u64 { self.jobs }
//! }
//!
//! let node = Node::builder("pool-doc@localhost").start().await?;
//! let pool = Pool::spawn(&node, 4, Routing::RoundRobin, Hasher::default).await?;
//! for i in 0..8u8 {
//!     pool.call(|w| w.hash(vec![i])).await?;
//! }
//! for w in pool.workers() {
//!     assert_eq!(w.jobs().await?, 2);
//! }
//! pool.shutdown().await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};

use crate::{Actor, ActorRef, Call, CallError, ExitReason, Node, Pid, SendError, SpawnError};

/// How a pool chooses a worker.
///
/// ```
/// use ergo::pool::Routing;
/// assert_eq!(Routing::default(), Routing::RoundRobin);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Routing {
    /// Each worker in turn.
    #[default]
    RoundRobin,
    /// The worker with the fewest queued messages plus unanswered pool calls.
    LeastBusy,
}

type Factory<A> = Box<dyn FnMut() -> A + Send>;

/// A worker of the pool and the calls the pool has in it (counted for least-busy only).
struct Slot<A: Actor> {
    actor: ActorRef<A>,
    in_flight: AtomicUsize,
}

/// Shared, so choosing a worker costs one reference count.
type Worker<A> = Arc<Slot<A>>;

fn worker<A: Actor>(actor: ActorRef<A>) -> Worker<A> {
    Arc::new(Slot {
        actor,
        in_flight: AtomicUsize::new(0),
    })
}

impl<A: Actor> Slot<A> {
    fn load(&self) -> usize {
        self.actor.mailbox_len() + self.in_flight.load(Ordering::Relaxed)
    }
}

struct Inner<A: Actor> {
    routing: Routing,
    node: Option<Node>,
    workers: RwLock<Vec<Worker<A>>>,
    next: AtomicUsize,
    factory: Option<Mutex<Factory<A>>>,
    watchers: Mutex<Vec<tokio::task::AbortHandle>>,
    closed: AtomicBool,
    replaced: AtomicU64,
}

impl<A: Actor> Drop for Inner<A> {
    fn drop(&mut self) {
        for w in self.watchers.get_mut().drain(..) {
            w.abort();
        }
        if self.factory.is_some() {
            for w in self.workers.get_mut().iter() {
                w.actor.stop(ExitReason::Shutdown);
            }
        }
    }
}

/// A router over workers of actor `A`; see [the module docs](crate::pool).
///
/// Cloning gives another handle to the same pool. A pool made by [`Pool::spawn`] owns its
/// workers: [`Pool::shutdown`], or dropping the last handle, stops them.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
/// use ergo::prelude::*;
/// use ergo::pool::{Pool, Routing};
///
/// struct Id(u32);
/// #[actor]
/// impl Id {
///     #[handle]
///     fn id(&self) -> u32 { self.0 }
/// }
///
/// let node = Node::builder("pool-type-doc@localhost").start().await?;
/// let mut n = 0;
/// let pool = Pool::spawn(&node, 2, Routing::RoundRobin, move || { n += 1; Id(n) }).await?;
/// let handle = pool.clone();                 // the same pool
/// assert_eq!(handle.len(), 2);
/// assert_eq!(handle.routing(), Routing::RoundRobin);
/// let (a, b) = (pool.call(|w| w.id()).await?, handle.call(|w| w.id()).await?);
/// assert_ne!(a, b);                          // one turn each
/// assert_eq!(pool.replaced(), 0);
/// drop((pool, handle));                      // the last handle stops the workers
/// # Ok(()) }
/// ```
pub struct Pool<A: Actor> {
    inner: Arc<Inner<A>>,
}

impl<A: Actor> Clone for Pool<A> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for Pool<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("actor", &A::NAME)
            .field("routing", &self.inner.routing)
            .field("workers", &self.inner.workers.read().len())
            .finish()
    }
}

/// Counts a call as its worker's load while it runs.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<A: Actor> Pool<A> {
    /// Spawns `size` workers made by `factory` on `node`, and replaces each one that ends with a
    /// fresh one (no intensity limit: a replacement whose `init` fails is dropped instead).
    ///
    /// # Errors
    ///
    /// The first [`SpawnError`] while starting the workers (those already started are stopped).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    /// use ergo::pool::{Pool, Routing};
    ///
    /// struct Doubler;
    /// #[actor]
    /// impl Doubler {
    ///     #[handle]
    ///     fn double(&self, x: i64) -> i64 { 2 * x }
    /// }
    ///
    /// let node = Node::builder("pool-spawn-doc@localhost").start().await?;
    /// let pool = Pool::spawn(&node, 2, Routing::LeastBusy, || Doubler).await?;
    /// assert_eq!(pool.len(), 2);
    /// assert_eq!(pool.call(|w| w.double(21)).await?, 42);
    /// # Ok(()) }
    /// ```
    pub async fn spawn(
        node: &Node,
        size: usize,
        routing: Routing,
        mut factory: impl FnMut() -> A + Send + 'static,
    ) -> Result<Pool<A>, SpawnError> {
        let mut started = Vec::with_capacity(size);
        for _ in 0..size {
            match node.spawn(factory()).await {
                Ok(w) => started.push(w),
                Err(e) => {
                    for w in &started {
                        w.stop(ExitReason::Shutdown);
                    }
                    return Err(e);
                }
            }
        }
        Ok(Pool::build(
            routing,
            Some(node.clone()),
            Some(Box::new(factory)),
            started,
        ))
    }

    /// A pool over `workers`, which it does not own: a worker that ends is removed, not
    /// replaced, and [`Pool::shutdown`] does not stop them.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    /// use ergo::pool::{Pool, Routing};
    ///
    /// struct Named(&'static str);
    /// #[actor]
    /// impl Named {
    ///     #[handle]
    ///     fn name(&self) -> &'static str { self.0 }
    /// }
    ///
    /// let node = Node::builder("pool-from-doc@localhost").start().await?;
    /// let a = node.spawn(Named("a")).await?;
    /// let b = node.spawn(Named("b")).await?;
    /// let pool = Pool::from_workers(Routing::RoundRobin, [a.clone(), b]);
    /// a.kill();
    /// a.wait().await;
    /// for _ in 0..3 {
    ///     assert_eq!(pool.call(|w| w.name()).await?, "b"); // never routed to the dead one
    /// }
    /// # Ok(()) }
    /// ```
    pub fn from_workers(routing: Routing, workers: impl IntoIterator<Item = ActorRef<A>>) -> Self {
        Pool::build(routing, None, None, workers.into_iter().collect())
    }

    fn build(
        routing: Routing,
        node: Option<Node>,
        factory: Option<Factory<A>>,
        workers: Vec<ActorRef<A>>,
    ) -> Self {
        let pool = Pool {
            inner: Arc::new(Inner {
                routing,
                node,
                workers: RwLock::new(workers.iter().cloned().map(worker).collect()),
                next: AtomicUsize::new(0),
                factory: factory.map(Mutex::new),
                watchers: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                replaced: AtomicU64::new(0),
            }),
        };
        for w in workers {
            pool.watch(w);
        }
        pool
    }

    /// Starts the task that removes (or replaces) `worker` when it ends.
    fn watch(&self, worker: ActorRef<A>) {
        let pool = Arc::downgrade(&self.inner);
        let task = tokio::spawn(watch(pool, worker));
        let mut watchers = self.inner.watchers.lock();
        watchers.retain(|w| !w.is_finished());
        watchers.push(task.abort_handle());
    }

    /// Adds a running worker to the pool (it is removed when it ends; a pool with a factory
    /// also replaces it).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    /// use ergo::pool::{Pool, Routing};
    ///
    /// struct Unit;
    /// #[actor]
    /// impl Unit {
    ///     #[handle]
    ///     fn ping(&self) -> bool { true }
    /// }
    ///
    /// let node = Node::builder("pool-add-doc@localhost").start().await?;
    /// let pool = Pool::from_workers(Routing::RoundRobin, []);
    /// assert!(pool.is_empty());
    /// pool.add_worker(node.spawn(Unit).await?);
    /// assert!(pool.call(|w| w.ping()).await?);
    /// # Ok(()) }
    /// ```
    pub fn add_worker(&self, worker: ActorRef<A>) {
        self.inner
            .workers
            .write()
            .push(self::worker(worker.clone()));
        self.watch(worker);
    }

    /// The routing strategy.
    pub fn routing(&self) -> Routing {
        self.inner.routing
    }

    /// The number of workers in the pool (an ended worker counts until its watcher removes
    /// it, though it is never chosen).
    pub fn len(&self) -> usize {
        self.inner.workers.read().len()
    }

    /// Whether the pool has no worker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The workers, in pool order (a snapshot).
    pub fn workers(&self) -> Vec<ActorRef<A>> {
        self.inner
            .workers
            .read()
            .iter()
            .map(|w| w.actor.clone())
            .collect()
    }

    /// How many workers have been replaced since the pool started.
    pub fn replaced(&self) -> u64 {
        self.inner.replaced.load(Ordering::Relaxed)
    }

    fn choose(&self) -> Option<Worker<A>> {
        let workers = self.inner.workers.read();
        let n = workers.len();
        if n == 0 {
            return None;
        }
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let alive = (0..n)
            .map(|k| &workers[(start + k) % n])
            .filter(|w| w.actor.is_alive());
        match self.inner.routing {
            Routing::RoundRobin => alive.take(1).next().cloned(),
            Routing::LeastBusy => {
                let mut best: Option<(&Worker<A>, usize)> = None;
                for w in alive {
                    let load = w.load();
                    if best.is_none_or(|(_, l)| load < l) {
                        best = Some((w, load));
                        if load == 0 {
                            break;
                        }
                    }
                }
                best.map(|(w, _)| w.clone())
            }
        }
    }

    /// The worker routing chooses now, or `None` if no worker is alive.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    /// use ergo::pool::{Pool, Routing};
    ///
    /// #[derive(Default)]
    /// struct Tally { n: u32 }
    /// #[actor]
    /// impl Tally {
    ///     #[handle]
    ///     fn bump(&mut self) { self.n += 1 }
    ///     #[handle]
    ///     fn n(&self) -> u32 { self.n }
    /// }
    ///
    /// let node = Node::builder("pool-pick-doc@localhost").start().await?;
    /// let pool = Pool::spawn(&node, 1, Routing::RoundRobin, Tally::default).await?;
    /// let worker = pool.pick().expect("one worker");
    /// worker.bump().await?;                // any generated method, cast or call
    /// assert_eq!(worker.n().await?, 1);
    /// # Ok(()) }
    /// ```
    pub fn pick(&self) -> Option<ActorRef<A>> {
        self.choose().map(|w| w.actor.clone())
    }

    /// Makes the call `make` builds on the chosen worker (use the actor's generated method:
    /// `pool.call(|w| w.get())`, with `.timeout(..)` if needed) and waits for its reply.
    ///
    /// # Errors
    ///
    /// The call's own error: [`CallError::Exited`] if the worker ended before replying,
    /// [`CallError::Timeout`], or [`CallError::NoProc`] if no worker is alive (or the chosen
    /// one ended just before the call was queued).
    ///
    /// # Cancel safety
    ///
    /// As a call: dropping the future gives up the reply, not the request.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use std::time::Duration;
    /// use ergo::prelude::*;
    /// use ergo::pool::{Pool, Routing};
    ///
    /// struct Square;
    /// #[actor]
    /// impl Square {
    ///     #[handle]
    ///     fn square(&self, x: u32) -> u32 { x * x }
    /// }
    ///
    /// let node = Node::builder("pool-call-doc@localhost").start().await?;
    /// let pool = Pool::spawn(&node, 3, Routing::LeastBusy, || Square).await?;
    /// assert_eq!(pool.call(|w| w.square(7)).await?, 49);
    /// let r = pool.call(|w| w.square(3).timeout(Duration::from_secs(1))).await?;
    /// assert_eq!(r, 9);
    /// pool.shutdown().await;
    /// assert_eq!(pool.call(|w| w.square(1)).await, Err(CallError::NoProc));
    /// # Ok(()) }
    /// ```
    pub async fn call<R, F>(&self, make: F) -> Result<R, CallError>
    where
        F: for<'w> FnOnce(&'w ActorRef<A>) -> Call<'w, A, R>,
    {
        let worker = self.choose().ok_or(CallError::NoProc)?;
        let _in_flight = (self.inner.routing == Routing::LeastBusy).then(|| {
            worker.in_flight.fetch_add(1, Ordering::Relaxed);
            InFlight(&worker.in_flight)
        });
        make(&worker.actor).await
    }

    /// Casts `msg` to the chosen worker. If that worker has just ended, the message comes back
    /// and goes to the next one, so it is lost only when no worker is alive.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message when no worker is alive.
    ///
    /// # Cancel safety
    ///
    /// As [`ActorRef::cast`]: on a bounded mailbox, dropping the future while it waits for room
    /// drops the message.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    /// use ergo::pool::{Pool, Routing};
    ///
    /// #[derive(Default)]
    /// struct Log { lines: Vec<String> }
    /// #[actor]
    /// impl Log {
    ///     #[handle]
    ///     fn write(&mut self, line: String) { self.lines.push(line) }
    ///     #[handle]
    ///     fn count(&self) -> usize { self.lines.len() }
    /// }
    ///
    /// let node = Node::builder("pool-cast-doc@localhost").start().await?;
    /// let pool = Pool::spawn(&node, 2, Routing::RoundRobin, Log::default).await?;
    /// pool.cast(LogMsg::Write { line: "one".into() }).await?;
    /// pool.cast(LogMsg::Write { line: "two".into() }).await?;
    /// let mut total = 0;
    /// for w in pool.workers() {
    ///     total += w.count().await?;
    /// }
    /// assert_eq!(total, 2);
    /// # Ok(()) }
    /// ```
    pub async fn cast(&self, msg: A::Msg) -> Result<(), SendError<A::Msg>> {
        let mut msg = msg;
        // Each failed attempt means one worker has ended: at most one attempt per worker.
        for _ in 0..=self.len() {
            let Some(worker) = self.choose() else { break };
            match worker.actor.cast(msg).await {
                Ok(()) => return Ok(()),
                Err(SendError(back)) => msg = back,
            }
        }
        Err(SendError(msg))
    }

    /// Stops replacing workers, stops the workers the pool owns (made by [`Pool::spawn`]) with
    /// [`ExitReason::Shutdown`] and waits for them, and empties the pool. Workers given to
    /// [`Pool::from_workers`] are only removed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
    /// use ergo::prelude::*;
    /// use ergo::pool::{Pool, Routing};
    ///
    /// struct Idle;
    /// #[actor]
    /// impl Idle {
    ///     #[handle]
    ///     fn ping(&self) {}
    /// }
    ///
    /// let node = Node::builder("pool-shutdown-doc@localhost").start().await?;
    /// let pool = Pool::spawn(&node, 3, Routing::RoundRobin, || Idle).await?;
    /// assert_eq!(node.process_count(), 3);
    /// pool.shutdown().await;
    /// assert_eq!(node.process_count(), 0);
    /// assert!(pool.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        for w in self.inner.watchers.lock().drain(..) {
            w.abort();
        }
        let workers: Vec<Worker<A>> = std::mem::take(&mut *self.inner.workers.write());
        if self.inner.factory.is_some() {
            for w in &workers {
                w.actor.stop(ExitReason::Shutdown);
            }
            for w in &workers {
                w.actor.wait().await;
            }
        }
    }
}

/// Waits for `worker` to end, then removes it from the pool or, when the pool has a factory,
/// replaces it and watches the replacement.
async fn watch<A: Actor>(pool: Weak<Inner<A>>, mut worker: ActorRef<A>) {
    loop {
        let reason = worker.wait().await;
        let Some(inner) = pool.upgrade() else { return };
        let old: Pid = worker.pid();
        let replacement = match (&inner.factory, &inner.node) {
            (Some(factory), Some(node)) if !inner.closed.load(Ordering::SeqCst) => {
                let actor = (factory.lock())();
                match node.spawn(actor).await {
                    Ok(new) => Some(new),
                    Err(e) => {
                        tracing::warn!(actor = A::NAME, error = %e, "pool worker not replaced");
                        None
                    }
                }
            }
            _ => None,
        };
        let mut workers = inner.workers.write();
        let slot = workers.iter().position(|w| w.actor.pid() == old);
        match (slot, replacement) {
            (Some(i), Some(new)) if !inner.closed.load(Ordering::SeqCst) => {
                tracing::debug!(actor = A::NAME, %old, new = %new.pid(), %reason, "pool worker replaced");
                workers[i] = self::worker(new.clone());
                inner.replaced.fetch_add(1, Ordering::Relaxed);
                worker = new;
            }
            (slot, replacement) => {
                if let Some(i) = slot {
                    workers.remove(i);
                }
                if let Some(new) = replacement {
                    // The pool shut down (or dropped this worker) meanwhile.
                    new.stop(ExitReason::Shutdown);
                }
                return;
            }
        }
    }
}
