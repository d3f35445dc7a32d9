//! Remote spawn and remote application start: allow-listed by name, refused otherwise.

use std::time::Duration;

use ergo::app::{AppState, Application};
use ergo::net::RemoteSpawnError;
use ergo::prelude::*;
use serde::{Deserialize, Serialize};

const COOKIE: &str = "net-spawn test cookie, long and random enough";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Config {
    greeting: String,
    fail_init: bool,
}

struct Greeter {
    config: Config,
}

#[actor(remote)]
impl Greeter {
    #[init]
    fn init(&mut self) -> Result<(), String> {
        if self.config.fail_init {
            Err("refusing to start".into())
        } else {
            Ok(())
        }
    }

    #[handle]
    fn greet(&self, who: String) -> String {
        format!("{}, {who}", self.config.greeting)
    }

    #[handle]
    fn quit(&mut self, ctx: &mut Ctx<Self>) {
        ctx.stop_with(ExitReason::Error("asked to quit".into()));
    }
}

struct Other;

#[actor(remote)]
impl Other {
    #[handle]
    fn ping(&self) {}
}

async fn pair(prefix: &str) -> (Node, Node) {
    let worker = Node::builder(format!("{prefix}-w@localhost"))
        .cookie(COOKIE)
        .no_registrar()
        .start()
        .await
        .unwrap();
    let boss = Node::builder(format!("{prefix}-b@localhost"))
        .cookie(COOKIE)
        .no_registrar()
        .route(worker.name(), worker.listen_addr().unwrap().to_string())
        .start()
        .await
        .unwrap();
    (worker, boss)
}

fn config(fail_init: bool) -> Config {
    Config {
        greeting: "hello".into(),
        fail_init,
    }
}

#[tokio::test]
async fn an_allowed_factory_spawns_a_working_remote_process() {
    let (worker, boss) = pair("nsp1").await;
    worker
        .allow_spawn("greeter", |config: Config| Greeter { config })
        .unwrap();
    let before = worker.process_count();
    let greeter = boss
        .spawn_remote::<Greeter, _>(worker.name(), "greeter", &config(false))
        .await
        .unwrap();
    assert!(!greeter.is_local());
    assert_eq!(greeter.pid().node_name().as_ref(), worker.name());
    assert_eq!(worker.process_count(), before + 1);
    assert_eq!(greeter.greet("ergo".into()).await.unwrap(), "hello, ergo");

    // Watched from the caller's node: its end is seen.
    let waiting = {
        let greeter = greeter.clone();
        tokio::spawn(async move { greeter.wait().await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    greeter.quit().await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap(),
        ExitReason::Error("asked to quit".into())
    );
}

#[tokio::test]
async fn anything_not_allowed_is_refused_and_nothing_runs() {
    let (worker, boss) = pair("nsp2").await;
    let before = worker.process_count();
    let err = boss
        .spawn_remote::<Greeter, _>(worker.name(), "greeter", &config(false))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RemoteSpawnError::NotAllowed {
            node: worker.name().into(),
            name: "greeter".into()
        }
    );
    assert_eq!(worker.process_count(), before);

    worker
        .allow_spawn("greeter", |config: Config| Greeter { config })
        .unwrap();
    // Asked as another actor type.
    let err = boss
        .spawn_remote::<Other, _>(worker.name(), "greeter", &())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemoteSpawnError::WrongActor { .. }),
        "{err:?}"
    );
    // Arguments of the wrong shape.
    let err = boss
        .spawn_remote::<Greeter, _>(worker.name(), "greeter", &42u32)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteSpawnError::BadArgs { .. }), "{err:?}");
    // An init that fails.
    let err = boss
        .spawn_remote::<Greeter, _>(worker.name(), "greeter", &config(true))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RemoteSpawnError::Failed { reason, .. } if reason.contains("refusing")),
        "{err:?}"
    );
    assert_eq!(worker.process_count(), before);

    // Taken off the list again.
    assert!(worker.disallow_spawn("greeter"));
    let err = boss
        .spawn_remote::<Greeter, _>(worker.name(), "greeter", &config(false))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemoteSpawnError::NotAllowed { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_allowed_application_starts_remotely() {
    let (worker, boss) = pair("nsp3").await;
    worker
        .load_application(Application::new("greeting", || Greeter {
            config: config(false),
        }))
        .unwrap();
    let err = boss
        .start_application_remote(worker.name(), "greeting")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemoteSpawnError::NotAllowed { .. }),
        "{err:?}"
    );
    assert_eq!(worker.applications()[0].state, AppState::Loaded);

    worker.allow_remote_start("greeting").unwrap();
    boss.start_application_remote(worker.name(), "greeting")
        .await
        .unwrap();
    assert_eq!(worker.applications()[0].state, AppState::Running);
}
