//! Applications: dependencies start first and stop after; modes decide whether an application's
//! end stops the node.

mod common;

use std::sync::{Arc, Mutex};

use common::{node, within};
use ergo::app::{AppError, AppMode, AppState, Application};
use ergo::prelude::*;
use ergo::supervisor::{ChildSpec, Strategy, Supervisor};

type Log = Arc<Mutex<Vec<String>>>;

/// A root that logs its start and stop, and can be told to end.
struct Root {
    app: &'static str,
    log: Log,
    fail: bool,
}

#[actor]
impl Root {
    #[init]
    fn init(&mut self, ctx: &mut Ctx<Self>) -> Result<(), String> {
        if self.fail {
            return Err(format!("{} cannot start", self.app));
        }
        ctx.register(self.app).map_err(|e| e.to_string())?;
        self.log.lock().unwrap().push(format!("start {}", self.app));
        Ok(())
    }

    #[handle]
    fn end(&mut self, reason: ExitReason, ctx: &mut Ctx<Self>) {
        ctx.stop_with(reason);
    }

    #[terminate]
    fn terminate(&mut self, reason: &ExitReason) {
        self.log
            .lock()
            .unwrap()
            .push(format!("stop {} {reason}", self.app));
    }
}

fn app(name: &'static str, log: &Log) -> Application {
    let log = log.clone();
    Application::new(name, move || Root {
        app: name,
        log: log.clone(),
        fail: false,
    })
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

fn state(node: &Node, name: &str) -> AppState {
    node.applications()
        .into_iter()
        .find(|a| a.name == name)
        .expect("loaded")
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_start_first_and_stop_after() {
    let node = node("app-deps").await;
    let log = Log::default();
    node.load_application(app("web", &log).depends_on("auth").depends_on("db"))
        .unwrap();
    node.load_application(app("auth", &log).depends_on("db"))
        .unwrap();
    node.load_application(app("db", &log)).unwrap();
    node.start_application("web").await.unwrap();
    assert_eq!(entries(&log), ["start db", "start auth", "start web"]);
    for name in ["db", "auth", "web"] {
        assert_eq!(state(&node, name), AppState::Running);
    }
    // Starting a running dependency again changes nothing.
    node.start_application("db").await.unwrap();
    assert_eq!(entries(&log).len(), 3);

    log.lock().unwrap().clear();
    node.stop_application("db").await.unwrap();
    assert_eq!(
        entries(&log),
        [
            "stop web shutdown",
            "stop auth shutdown",
            "stop db shutdown"
        ]
    );
    for name in ["db", "auth", "web"] {
        assert_eq!(state(&node, name), AppState::Stopped);
    }
    assert_eq!(node.process_count(), 0);
}

#[tokio::test]
async fn missing_dependency_and_cycles_are_refused_before_anything_starts() {
    let node = node("app-refused").await;
    let log = Log::default();
    node.load_application(app("a", &log).depends_on("ghost"))
        .unwrap();
    assert_eq!(
        node.start_application("a").await,
        Err(AppError::NotLoaded("ghost".into()))
    );
    node.load_application(app("x", &log).depends_on("y"))
        .unwrap();
    node.load_application(app("y", &log).depends_on("x"))
        .unwrap();
    assert_eq!(
        node.start_application("x").await,
        Err(AppError::Cycle(vec!["x".into(), "y".into(), "x".into()]))
    );
    assert!(entries(&log).is_empty());
    assert_eq!(
        node.load_application(app("x", &log)),
        Err(AppError::AlreadyLoaded("x".into()))
    );
}

#[tokio::test]
async fn a_root_that_fails_to_start_fails_the_application() {
    let node = node("app-fail").await;
    let log = Log::default();
    let fail_log = log.clone();
    node.load_application(Application::new("bad", move || Root {
        app: "bad",
        log: fail_log.clone(),
        fail: true,
    }))
    .unwrap();
    let err = node.start_application("bad").await.unwrap_err();
    assert_eq!(
        err,
        AppError::Start {
            app: "bad".into(),
            error: SpawnError::Init(ExitReason::Error("bad cannot start".into()))
        }
    );
    assert_eq!(
        state(&node, "bad"),
        AppState::Exited(ExitReason::Error("bad cannot start".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_application_exit_is_logged_and_the_node_goes_on() {
    let node = node("app-temporary").await;
    let log = Log::default();
    node.load_application(app("t", &log)).unwrap();
    node.load_application(app("other", &log)).unwrap();
    node.start_application("t").await.unwrap();
    node.start_application("other").await.unwrap();
    let root = node.whereis::<Root>("t").unwrap();
    root.end(ExitReason::Error("boom".into())).await.unwrap();
    root.wait().await;
    common::eventually("state updated", || async {
        (state(&node, "t") == AppState::Exited(ExitReason::Error("boom".into()))).then_some(())
    })
    .await;
    assert!(!node.is_shutting_down());
    assert!(node.whereis::<Root>("other").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_application_stops_the_node_only_on_abnormal_exit() {
    let node = node("app-transient").await;
    let log = Log::default();
    node.load_application(app("calm", &log).mode(AppMode::Transient))
        .unwrap();
    node.load_application(app("wild", &log).mode(AppMode::Transient))
        .unwrap();
    node.start_application("calm").await.unwrap();
    node.start_application("wild").await.unwrap();
    let calm = node.whereis::<Root>("calm").unwrap();
    calm.end(ExitReason::Normal).await.unwrap();
    calm.wait().await;
    common::eventually("calm exited", || async {
        (state(&node, "calm") == AppState::Exited(ExitReason::Normal)).then_some(())
    })
    .await;
    assert!(!node.is_shutting_down(), "a normal exit leaves the node up");
    let wild = node.whereis::<Root>("wild").unwrap();
    wild.end(ExitReason::Error("fatal".into())).await.unwrap();
    within("node stops", node.stopped()).await;
    assert_eq!(node.process_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_application_stops_the_node_on_any_exit() {
    let node = node("app-permanent").await;
    let log = Log::default();
    node.load_application(app("core", &log).mode(AppMode::Permanent))
        .unwrap();
    node.load_application(app("bystander", &log)).unwrap();
    node.start_application("core").await.unwrap();
    node.start_application("bystander").await.unwrap();
    node.whereis::<Root>("core")
        .unwrap()
        .end(ExitReason::Normal)
        .await
        .unwrap();
    within("node stops", node.stopped()).await;
    assert!(node.is_shutting_down());
    assert_eq!(node.process_count(), 0);
    assert!(entries(&log).contains(&"stop bystander shutdown".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_application_can_be_started_again_with_its_supervision_tree() {
    struct Leaf;
    #[actor]
    impl Leaf {
        #[handle]
        fn ping(&self) -> u8 {
            1
        }
    }
    let node = node("app-restart").await;
    node.load_application(Application::new("tree", || {
        Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("leaf", || Leaf).register("leaf"))
    }))
    .unwrap();
    node.start_application("tree").await.unwrap();
    assert_eq!(node.whereis::<Leaf>("leaf").unwrap().ping().await, Ok(1));
    node.stop_application("tree").await.unwrap();
    assert!(node.whereis_pid("leaf").is_none());
    assert_eq!(
        node.stop_application("tree").await,
        Err(AppError::NotRunning("tree".into()))
    );
    node.start_application("tree").await.unwrap();
    assert_eq!(node.whereis::<Leaf>("leaf").unwrap().ping().await, Ok(1));
    let info = &node.applications()[0];
    assert_eq!(info.state, AppState::Running);
    assert!(info.root.is_some());
}
