//! Registered names: register, typed whereis, unregister, release on exit.

mod common;

use common::{node, within};
use ergo::prelude::*;
use ergo::RegisterError;

struct Cache;

#[actor]
impl Cache {
    #[handle]
    fn get(&self, key: String) -> Option<String> {
        (key == "k").then(|| "v".to_owned())
    }

    #[handle]
    fn claim(&self, name: String, ctx: &mut Ctx<Self>) -> Result<(), RegisterError> {
        ctx.register(&name)
    }
}

struct Other;

#[actor]
impl Other {
    #[handle]
    fn ping(&self) {}
}

#[tokio::test]
async fn whereis_returns_a_typed_ref_that_works() {
    let node = node("reg-typed").await;
    let cache = node.spawn(Cache).await.unwrap();
    node.register("cache", &cache).unwrap();
    let found = node.whereis::<Cache>("cache").expect("registered");
    assert_eq!(found.pid(), cache.pid());
    assert_eq!(found.get("k".into()).await, Ok(Some("v".into())));
    assert_eq!(node.whereis_pid("cache"), Some(cache.pid()));
    assert_eq!(node.registered(), vec!["cache".to_owned()]);
}

#[tokio::test]
async fn whereis_with_the_wrong_actor_type_is_none() {
    let node = node("reg-wrong-type").await;
    let cache = node.spawn(Cache).await.unwrap();
    node.register("cache", &cache).unwrap();
    assert!(node.whereis::<Other>("cache").is_none());
    assert!(node.whereis::<Cache>("nobody").is_none());
}

#[tokio::test]
async fn a_taken_name_is_refused() {
    let node = node("reg-taken").await;
    let a = node.spawn(Cache).await.unwrap();
    let b = node.spawn(Cache).await.unwrap();
    node.register("cache", &a).unwrap();
    assert_eq!(
        node.register("cache", &b),
        Err(RegisterError::NameTaken("cache".into()))
    );
    assert_eq!(node.whereis_pid("cache"), Some(a.pid()));
}

#[tokio::test]
async fn a_process_has_at_most_one_name() {
    let node = node("reg-one-name").await;
    let a = node.spawn(Cache).await.unwrap();
    node.register("first", &a).unwrap();
    assert_eq!(
        node.register("second", &a),
        Err(RegisterError::AlreadyNamed("first".into()))
    );
    assert!(node.whereis_pid("second").is_none());
}

#[tokio::test]
async fn unregister_frees_the_name() {
    let node = node("reg-unregister").await;
    let a = node.spawn(Cache).await.unwrap();
    let b = node.spawn(Cache).await.unwrap();
    node.register("cache", &a).unwrap();
    assert!(node.unregister("cache"));
    assert!(!node.unregister("cache"));
    assert!(node.whereis_pid("cache").is_none());
    node.register("cache", &b).unwrap();
    // `a` may take a new name now that it has none.
    node.register("old-cache", &a).unwrap();
}

#[tokio::test]
async fn name_is_released_when_the_process_ends() {
    let node = node("reg-release").await;
    let a = node.spawn(Cache).await.unwrap();
    node.register("cache", &a).unwrap();
    a.kill();
    within("exit", a.wait()).await;
    assert!(node.whereis_pid("cache").is_none());
    let b = node.spawn(Cache).await.unwrap();
    node.register("cache", &b).unwrap();
    assert_eq!(node.whereis_pid("cache"), Some(b.pid()));
}

#[tokio::test]
async fn registering_an_ended_process_fails() {
    let node = node("reg-dead").await;
    let a = node.spawn(Cache).await.unwrap();
    a.kill();
    a.wait().await;
    assert_eq!(node.register("late", &a), Err(RegisterError::NoProc));
}

#[tokio::test]
async fn spawn_options_register_before_start_and_refuse_taken_names() {
    let node = node("reg-spawn-opts").await;
    let a = node
        .spawn_opts(Cache, SpawnOptions::new().register("cache"))
        .await
        .unwrap();
    assert_eq!(node.whereis_pid("cache"), Some(a.pid()));
    let before = node.process_count();
    let err = node
        .spawn_opts(Cache, SpawnOptions::new().register("cache"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SpawnError::Register(RegisterError::NameTaken("cache".into()))
    );
    assert_eq!(node.process_count(), before, "the refused process is gone");
}

#[tokio::test]
async fn a_process_can_register_itself() {
    let node = node("reg-self").await;
    let a = node.spawn(Cache).await.unwrap();
    assert_eq!(a.claim("me".into()).await, Ok(Ok(())));
    assert_eq!(node.whereis_pid("me"), Some(a.pid()));
}
