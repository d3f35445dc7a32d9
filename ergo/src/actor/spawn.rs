//! Making processes: [`Node::spawn`] and its options, and the typed half of the name table
//! ([`Node::register`], [`Node::whereis`]). These are `Node`'s methods that know actor types, so
//! they live in the actor layer; the untyped table is the node core's.

use std::future::Future;
use std::sync::Arc;

use tracing::Instrument;

use super::mailbox::Mailbox;
use super::process_loop::{run, InitTx};
use crate::node::{ProcHandle, Target};
use crate::{Actor, ActorRef, Ctx, Node, RegisterError, SpawnError};

/// Options for one spawn.
///
/// ```
/// use ergo::SpawnOptions;
/// let opts = SpawnOptions::new().mailbox_capacity(64).register("worker-1");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SpawnOptions {
    pub(crate) capacity: Option<usize>,
    pub(crate) name: Option<String>,
}

impl SpawnOptions {
    /// The defaults: the actor's own mailbox bound (unbounded unless `#[actor(mailbox = N)]`),
    /// no name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bounds the mailbox to `capacity` messages (at least 1).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Registers the process under `name` before it starts; the spawn fails if it is taken.
    pub fn register(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Node {
    /// Spawns `actor` as a new process and returns its ref once `init` has succeeded.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Init`] when `init` fails or panics (the process has then ended),
    /// [`SpawnError::NodeDown`] after [`Node::shutdown`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while `init` runs leaves the process running.
    pub async fn spawn<A: Actor>(&self, actor: A) -> Result<ActorRef<A>, SpawnError> {
        self.spawn_opts(actor, SpawnOptions::default()).await
    }

    /// [`Node::spawn`] with options (mailbox bound, registered name).
    ///
    /// # Errors
    ///
    /// As [`Node::spawn`], plus [`SpawnError::Register`] when the name is taken.
    pub async fn spawn_opts<A: Actor>(
        &self,
        actor: A,
        opts: SpawnOptions,
    ) -> Result<ActorRef<A>, SpawnError> {
        let (aref, started) = self.start_process(actor, opts, None)?;
        started.await.map(|()| aref)
    }

    /// Creates the process and its task; the returned future resolves when `init` is done.
    pub(crate) fn start_process<A: Actor>(
        &self,
        actor: A,
        opts: SpawnOptions,
        link: Option<ProcHandle>,
    ) -> Result<
        (
            ActorRef<A>,
            impl Future<Output = Result<(), SpawnError>> + Send,
        ),
        SpawnError,
    > {
        let pid = self.next_pid()?;
        let capacity = opts.capacity.or(A::MAILBOX_CAPACITY);
        let mailbox = Arc::new(Mailbox::<A>::new(self.clone(), pid, capacity));
        let aref = ActorRef::from_mailbox(mailbox);
        let ctx = Ctx::new(aref.clone());
        // Dropping `ctx` on failure ends the never-started process cleanly.
        self.insert_process(aref.handle())?;
        if let Some(name) = opts.name {
            self.register(&name, &aref)?;
        }
        if let Some(parent) = link {
            aref.mailbox()
                .core()
                .add_link(parent.core().pid(), Target::Local(parent));
        }
        let (init_tx, init_rx): (Option<InitTx>, _) = if A::HAS_INIT {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let span = tracing::info_span!("process", pid = %pid, actor = A::NAME);
        let task = self
            .runtime()
            .spawn(run(actor, ctx, init_tx).instrument(span));
        aref.mailbox().core().set_task(task.abort_handle());
        let waiter = aref.clone();
        let started = async move {
            match init_rx {
                None => Ok(()),
                Some(rx) => match rx.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(reason)) => {
                        waiter.wait().await;
                        Err(SpawnError::Init(reason))
                    }
                    Err(_) => Err(SpawnError::Init(waiter.wait().await)),
                },
            }
        };
        Ok((aref, started))
    }

    /// Registers `actor` under `name`. A process has at most one name; the name is released
    /// when the process ends, before any monitor of it sees `Down`.
    ///
    /// # Errors
    ///
    /// [`RegisterError::NameTaken`], [`RegisterError::AlreadyNamed`], or
    /// [`RegisterError::NoProc`] if the process has ended.
    pub fn register<A: Actor>(&self, name: &str, actor: &ActorRef<A>) -> Result<(), RegisterError> {
        let Some(mailbox) = actor.local() else {
            return Err(RegisterError::NotLocal(actor.pid()));
        };
        if mailbox.core().node.atom() != self.atom() {
            return Err(RegisterError::NotLocal(actor.pid()));
        }
        self.register_process(name, mailbox.clone())
    }

    /// The typed ref registered under `name`, if the name is registered to a live process
    /// running actor `A` (`None` if absent or registered to another actor type).
    pub fn whereis<A: Actor>(&self, name: &str) -> Option<ActorRef<A>> {
        let handle = self.registered_process(name)?;
        let mailbox = handle.into_any().downcast::<Mailbox<A>>().ok()?;
        Some(ActorRef::from_mailbox(mailbox))
    }
}
