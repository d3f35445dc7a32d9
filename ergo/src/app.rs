//! Applications: named supervision trees with dependencies and a restart mode for the node.
//!
//! An [`Application`] is loaded into a node ([`Node::load_application`]) and started by name
//! ([`Node::start_application`]): its dependencies start first (each once), then its root
//! process (usually a supervisor). Stopping an application ([`Node::stop_application`]) first
//! stops the running applications that depend on it, then its own root.
//!
//! # Modes
//!
//! What happens when an application's root ends without being asked to stop:
//!
//! - [`AppMode::Temporary`]: the exit is logged; the node goes on;
//! - [`AppMode::Transient`]: an abnormal exit (not `Normal`, not `Shutdown`) stops the node;
//! - [`AppMode::Permanent`]: any exit stops the node.
//!
//! Stopping the node is [`Node::shutdown`] with a 5 s grace; [`Node::stopped`] waits for it.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), ergo::Error> {
//! use ergo::prelude::*;
//! use ergo::app::{AppMode, AppState, Application};
//! use ergo::supervisor::{ChildSpec, Strategy, Supervisor};
//!
//! struct Db;
//! #[actor]
//! impl Db {
//!     #[handle]
//!     fn query(&self, q: String) -> usize { q.len() }
//! }
//!
//! let node = Node::builder("app-doc@localhost").start().await?;
//! node.load_application(Application::new("db", || {
//!     Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("db", || Db).register("db"))
//! }))?;
//! node.load_application(
//!     Application::new("web", || Supervisor::new(Strategy::OneForOne))
//!         .depends_on("db")
//!         .mode(AppMode::Permanent),
//! )?;
//! node.start_application("web").await?; // starts `db` first
//! assert_eq!(node.whereis::<Db>("db").unwrap().query("select".into()).await?, 6);
//! let states: Vec<_> = node.applications().into_iter().map(|a| (a.name, a.state)).collect();
//! assert_eq!(states, [("db".to_owned(), AppState::Running), ("web".to_owned(), AppState::Running)]);
//! node.stop_application("db").await?; // stops `web` first
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use parking_lot::Mutex;

pub use crate::error::AppError;
use crate::exit::ExitReason;
use crate::node::{ProcHandle, Sys};
use crate::{Actor, Node, Pid, SpawnError, SpawnOptions};

/// What an application's unexpected end does to the node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AppMode {
    /// Logged; the node goes on (the default).
    #[default]
    Temporary,
    /// An abnormal exit stops the node.
    Transient,
    /// Any exit stops the node.
    Permanent,
}

/// Where an application is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppState {
    /// Loaded, never started (or stopped and startable again).
    Loaded,
    /// Its root is starting.
    Starting,
    /// Its root runs.
    Running,
    /// It is being stopped on request.
    Stopping,
    /// It was stopped on request.
    Stopped,
    /// Its root ended by itself, or failed to start, with this reason.
    Exited(ExitReason),
}

/// One line of [`Node::applications`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppInfo {
    /// The application's name.
    pub name: String,
    /// Its mode.
    pub mode: AppMode,
    /// Its state.
    pub state: AppState,
    /// The applications it depends on.
    pub depends_on: Vec<String>,
    /// The pid of its root process while it runs.
    pub root: Option<Pid>,
}

type Started = Pin<Box<dyn Future<Output = Result<(), SpawnError>> + Send>>;
type RootStarter = Box<dyn FnMut(&Node) -> Result<(ProcHandle, Started), SpawnError> + Send>;

/// A named supervision tree with dependencies and a mode. See the [module docs](self).
pub struct Application {
    name: String,
    mode: AppMode,
    depends_on: Vec<String>,
    start: RootStarter,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("depends_on", &self.depends_on)
            .finish()
    }
}

impl Application {
    /// An application called `name` whose root process is made by `make` at every start.
    pub fn new<A: Actor, F: FnMut() -> A + Send + 'static>(
        name: impl Into<String>,
        mut make: F,
    ) -> Self {
        Application {
            name: name.into(),
            mode: AppMode::Temporary,
            depends_on: Vec::new(),
            start: Box::new(move |node: &Node| {
                let (root, started) = node.start_process(make(), SpawnOptions::new(), None)?;
                Ok((root.handle(), Box::pin(started) as Started))
            }),
        }
    }

    /// Sets the mode (temporary unless set).
    pub fn mode(mut self, mode: AppMode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds a dependency: `app` is started before this one and stopped after it.
    pub fn depends_on(mut self, app: impl Into<String>) -> Self {
        self.depends_on.push(app.into());
        self
    }
}

struct Slot {
    app: Application,
    state: AppState,
    root: Option<ProcHandle>,
}

/// The applications of one node.
#[derive(Default)]
pub(crate) struct AppTable {
    slots: Mutex<Vec<Slot>>,
    /// Serializes start and stop requests so dependency order holds.
    ops: tokio::sync::Mutex<()>,
}

impl Node {
    /// This node's applications (kept by the node core as an extension).
    fn app_table(&self) -> &AppTable {
        self.extension()
    }
}

impl AppTable {
    /// The names of `name` and its dependencies, dependencies first.
    fn start_order(&self, name: &str) -> Result<Vec<String>, AppError> {
        fn visit(
            slots: &[Slot],
            name: &str,
            path: &mut Vec<String>,
            out: &mut Vec<String>,
        ) -> Result<(), AppError> {
            if out.iter().any(|n| n == name) {
                return Ok(());
            }
            if let Some(at) = path.iter().position(|n| n == name) {
                let mut cycle = path[at..].to_vec();
                cycle.push(name.to_owned());
                return Err(AppError::Cycle(cycle));
            }
            let slot = slots
                .iter()
                .find(|s| s.app.name == name)
                .ok_or_else(|| AppError::NotLoaded(name.to_owned()))?;
            path.push(name.to_owned());
            for dep in &slot.app.depends_on {
                visit(slots, dep, path, out)?;
            }
            path.pop();
            out.push(name.to_owned());
            Ok(())
        }
        let slots = self.slots.lock();
        let mut out = Vec::new();
        visit(&slots, name, &mut Vec::new(), &mut out)?;
        Ok(out)
    }
}

impl Node {
    fn apps(&self) -> &AppTable {
        self.app_table()
    }

    /// Loads an application so it can be started by name.
    ///
    /// # Errors
    ///
    /// [`AppError::AlreadyLoaded`] if the name is taken.
    pub fn load_application(&self, app: Application) -> Result<(), AppError> {
        let mut slots = self.apps().slots.lock();
        if slots.iter().any(|s| s.app.name == app.name) {
            return Err(AppError::AlreadyLoaded(app.name));
        }
        slots.push(Slot {
            app,
            state: AppState::Loaded,
            root: None,
        });
        Ok(())
    }

    /// Starts the application `name`, its dependencies first. Already running applications
    /// are left as they are.
    ///
    /// # Errors
    ///
    /// [`AppError::NotLoaded`] (for it or a dependency), [`AppError::Cycle`], or
    /// [`AppError::Start`] when a root fails to start (applications started before it stay up).
    pub async fn start_application(&self, name: &str) -> Result<(), AppError> {
        let _op = self.apps().ops.lock().await;
        for app in self.apps().start_order(name)? {
            self.start_one(&app).await?;
        }
        Ok(())
    }

    async fn start_one(&self, name: &str) -> Result<(), AppError> {
        let started = {
            let mut slots = self.apps().slots.lock();
            let slot = slots
                .iter_mut()
                .find(|s| s.app.name == name)
                .ok_or_else(|| AppError::NotLoaded(name.to_owned()))?;
            if slot.state == AppState::Running {
                return Ok(());
            }
            slot.state = AppState::Starting;
            (slot.app.start)(self)
        };
        let fail = |error: SpawnError| {
            let reason = match &error {
                SpawnError::Init(reason) => reason.clone(),
                other => ExitReason::Error(other.to_string()),
            };
            self.set_app(name, AppState::Exited(reason), None);
            AppError::Start {
                app: name.to_owned(),
                error,
            }
        };
        let (root, started) = started.map_err(fail)?;
        started.await.map_err(fail)?;
        self.set_app(name, AppState::Running, Some(root.clone()));
        tracing::info!(app = %name, root = %root.core().pid(), "application started");
        let node = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            let reason = root.core().wait().await;
            node.root_exited(&name, root.core().pid(), reason);
        });
        Ok(())
    }

    fn set_app(&self, name: &str, state: AppState, root: Option<ProcHandle>) {
        if let Some(slot) = self
            .apps()
            .slots
            .lock()
            .iter_mut()
            .find(|s| s.app.name == name)
        {
            slot.state = state;
            slot.root = root;
        }
    }

    /// The root of a running application ended: apply its mode unless it was asked to stop.
    fn root_exited(&self, name: &str, root: Pid, reason: ExitReason) {
        let mode = {
            let mut slots = self.apps().slots.lock();
            let Some(slot) = slots.iter_mut().find(|s| s.app.name == name) else {
                return;
            };
            let current = slot.root.as_ref().map(|r| r.core().pid());
            if current != Some(root) || slot.state == AppState::Stopping {
                return; // stopped on request, or already replaced by a later start
            }
            slot.state = AppState::Exited(reason.clone());
            slot.root = None;
            slot.app.mode
        };
        let stop_node = match mode {
            AppMode::Temporary => false,
            AppMode::Transient => !reason.is_normal(),
            AppMode::Permanent => true,
        };
        if stop_node && !self.is_shutting_down() {
            tracing::error!(app = %name, %reason, "application exited; stopping the node");
            let node = self.clone();
            tokio::spawn(async move { node.shutdown(Duration::from_secs(5)).await });
        } else {
            tracing::warn!(app = %name, %reason, "application exited");
        }
    }

    /// Stops the application `name`: first the running applications that depend on it
    /// (dependents first), then its root (which stops its tree).
    ///
    /// # Errors
    ///
    /// [`AppError::NotLoaded`], or [`AppError::NotRunning`] if it is not running.
    pub async fn stop_application(&self, name: &str) -> Result<(), AppError> {
        let _op = self.apps().ops.lock().await;
        let order = {
            let slots = self.apps().slots.lock();
            let slot = slots
                .iter()
                .find(|s| s.app.name == name)
                .ok_or_else(|| AppError::NotLoaded(name.to_owned()))?;
            if slot.state != AppState::Running {
                return Err(AppError::NotRunning(name.to_owned()));
            }
            // Every running application whose start order includes `name`, dependents first.
            let names: Vec<String> = slots.iter().map(|s| s.app.name.clone()).collect();
            drop(slots);
            let mut dependents = Vec::new();
            for other in names {
                if let Ok(order) = self.apps().start_order(&other) {
                    if order.iter().any(|n| n == name) {
                        dependents.push((order.len(), other));
                    }
                }
            }
            dependents.sort_by_key(|d| std::cmp::Reverse(d.0));
            dependents.into_iter().map(|(_, n)| n).collect::<Vec<_>>()
        };
        for app in order {
            self.stop_one(&app).await;
        }
        Ok(())
    }

    async fn stop_one(&self, name: &str) {
        let root = {
            let mut slots = self.apps().slots.lock();
            let Some(slot) = slots.iter_mut().find(|s| s.app.name == name) else {
                return;
            };
            if slot.state != AppState::Running {
                return;
            }
            slot.state = AppState::Stopping;
            slot.root.clone()
        };
        if let Some(root) = root {
            let _ = root.core().send_sys(Sys::Stop(ExitReason::Shutdown));
            root.core().wait().await;
        }
        self.set_app(name, AppState::Stopped, None);
        tracing::info!(app = %name, "application stopped");
    }

    /// The loaded applications and their states, in load order.
    pub fn applications(&self) -> Vec<AppInfo> {
        self.apps()
            .slots
            .lock()
            .iter()
            .map(|s| AppInfo {
                name: s.app.name.clone(),
                mode: s.app.mode,
                state: s.state.clone(),
                depends_on: s.app.depends_on.clone(),
                root: s.root.as_ref().map(|r| r.core().pid()),
            })
            .collect()
    }
}
