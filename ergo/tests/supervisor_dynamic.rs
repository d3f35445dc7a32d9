//! Dynamic children: simple_one_for_one (`SimpleSupervisor`), and `start_child`,
//! `delete_child`, `count_children`, significant children with auto-shutdown on `Supervisor`.

mod common;

use std::time::Duration;

use common::{eventually, node, within};
use ergo::prelude::*;
use ergo::supervisor::{
    AutoShutdown, ChildCount, ChildSpec, Restart, SimpleSupervisor, Strategy, Supervisor,
    SupervisorError,
};

struct Session {
    user: String,
}

#[actor]
impl Session {
    #[handle]
    fn user(&self) -> String {
        self.user.clone()
    }

    #[handle]
    fn crash(&self) {
        panic!("session of {} crashed", self.user);
    }

    #[handle]
    fn logout(&self, ctx: &mut Ctx<Self>) {
        ctx.stop();
    }
}

fn sessions(restart: Restart) -> SimpleSupervisor<Session, String> {
    SimpleSupervisor::new(|user: String| Session { user })
        .restart(restart)
        .intensity(10, Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_one_for_one_starts_typed_children_on_demand() {
    let node = node("simple-start").await;
    let sup = node.spawn(sessions(Restart::Permanent)).await.unwrap();
    assert!(sup.which_children().await.unwrap().is_empty());
    let ada = sup.start_child("ada".into()).await.unwrap().unwrap();
    let bob = sup.start_child("bob".into()).await.unwrap().unwrap();
    assert_eq!(ada.user().await.unwrap(), "ada");
    assert_eq!(bob.user().await.unwrap(), "bob");
    assert_eq!(
        sup.which_children().await.unwrap(),
        vec![ada.pid(), bob.pid()]
    );
    assert_eq!(
        sup.count_children().await.unwrap(),
        ChildCount {
            specs: 2,
            active: 2,
            supervisors: 0,
            workers: 2
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_one_for_one_restarts_a_crashed_child_with_its_arguments() {
    let node = node("simple-restart").await;
    let sup = node.spawn(sessions(Restart::Permanent)).await.unwrap();
    let ada = sup.start_child("ada".into()).await.unwrap().unwrap();
    let bob = sup.start_child("bob".into()).await.unwrap().unwrap();
    ada.crash().await.unwrap();
    within("ada exits", ada.wait()).await;
    let children = eventually("ada restarted", || async {
        let c = sup.which_children().await.unwrap();
        (c.len() == 2 && !c.contains(&ada.pid())).then_some(c)
    })
    .await;
    assert!(children.contains(&bob.pid()), "bob is untouched");
    let new_pid = *children.iter().find(|p| **p != bob.pid()).unwrap();
    assert!(node.is_alive(new_pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_one_for_one_transient_child_is_not_restarted_after_normal_exit() {
    let node = node("simple-transient").await;
    let sup = node.spawn(sessions(Restart::Transient)).await.unwrap();
    let ada = sup.start_child("ada".into()).await.unwrap().unwrap();
    ada.logout().await.unwrap();
    assert_eq!(within("exit", ada.wait()).await, ExitReason::Normal);
    eventually("child gone", || async {
        sup.which_children().await.unwrap().is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_one_for_one_terminate_child_stops_it_for_good() {
    let node = node("simple-terminate").await;
    let sup = node.spawn(sessions(Restart::Permanent)).await.unwrap();
    let ada = sup.start_child("ada".into()).await.unwrap().unwrap();
    assert_eq!(sup.terminate_child(ada.pid()).await.unwrap(), Ok(()));
    assert_eq!(ada.wait().await, ExitReason::Shutdown);
    assert!(sup.which_children().await.unwrap().is_empty());
    assert!(matches!(
        sup.terminate_child(ada.pid()).await.unwrap(),
        Err(SupervisorError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_one_for_one_gives_up_past_its_intensity() {
    let node = node("simple-intensity").await;
    let sup = node
        .spawn(
            SimpleSupervisor::new(|user: String| Session { user })
                .intensity(1, Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let first = sup.start_child("x".into()).await.unwrap().unwrap();
    first.crash().await.unwrap();
    first.wait().await;
    let second = eventually("restarted once", || async {
        sup.which_children().await.ok()?.first().copied()
    })
    .await;
    node.kill(second);
    assert_eq!(
        within("supervisor gives up", sup.wait()).await,
        ExitReason::Shutdown
    );
    assert_eq!(node.process_count(), 0);
}

struct Job {
    id: &'static str,
}

#[actor]
impl Job {
    #[handle]
    fn finish(&self, ctx: &mut Ctx<Self>) {
        ctx.stop();
    }

    #[handle]
    fn id(&self) -> String {
        self.id.to_owned()
    }
}

fn job(id: &'static str) -> ChildSpec {
    ChildSpec::new(id, move || Job { id })
        .restart(Restart::Transient)
        .register(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_child_adds_and_delete_child_removes_a_spec() {
    let node = node("sup-start-child").await;
    let sup = node
        .spawn(Supervisor::new(Strategy::OneForOne).child(job("a")))
        .await
        .unwrap();
    let pid = sup.start_child(job("b")).await.unwrap().unwrap();
    assert_eq!(node.whereis_pid("b"), Some(pid));
    assert_eq!(
        sup.start_child(job("b")).await.unwrap(),
        Err(SupervisorError::AlreadyPresent("b".into()))
    );
    assert_eq!(
        sup.delete_child("b".into()).await.unwrap(),
        Err(SupervisorError::Running("b".into()))
    );
    sup.terminate_child("b".into()).await.unwrap().unwrap();
    assert_eq!(sup.delete_child("b".into()).await.unwrap(), Ok(()));
    let ids: Vec<String> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["a"]);
    assert_eq!(sup.count_children().await.unwrap().specs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_significant_child_ending_stops_the_supervisor() {
    let node = node("sup-any-significant").await;
    let sup = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .auto_shutdown(AutoShutdown::AnySignificant)
                .child(job("plain"))
                .child(job("key").significant(true)),
        )
        .await
        .unwrap();
    let plain = node.whereis::<Job>("plain").unwrap();
    plain.finish().await.unwrap();
    plain.wait().await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(sup.is_alive(), "a non-significant child does not stop it");
    node.whereis::<Job>("key").unwrap().finish().await.unwrap();
    assert_eq!(
        within("auto shutdown", sup.wait()).await,
        ExitReason::Shutdown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_significant_children_must_end_before_auto_shutdown() {
    let node = node("sup-all-significant").await;
    let sup = node
        .spawn(
            Supervisor::new(Strategy::OneForOne)
                .auto_shutdown(AutoShutdown::AllSignificant)
                .child(job("x").significant(true))
                .child(job("y").significant(true)),
        )
        .await
        .unwrap();
    let x = node.whereis::<Job>("x").unwrap();
    x.finish().await.unwrap();
    x.wait().await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(sup.is_alive());
    node.whereis::<Job>("y").unwrap().finish().await.unwrap();
    assert_eq!(
        within("auto shutdown", sup.wait()).await,
        ExitReason::Shutdown
    );
}
