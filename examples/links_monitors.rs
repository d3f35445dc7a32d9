//! Links, trapped exits, monitors and kill, shown on a tiny job system.
//!
//! A `Foreman` traps exits and spawns linked `Worker`s; a crash of one worker reaches the
//! foreman as a message (it logs it and starts a replacement) instead of killing it. An `Auditor`
//! monitors the foreman and learns why it ended. Finally an untrapped link takes a bystander
//! down with its partner.
//!
//! Run with `cargo run --example links_monitors`.

use std::time::Duration;

use ergo::prelude::*;

struct Worker {
    id: u32,
}

#[actor]
impl Worker {
    /// Squares `n`; panics on 13 (a poisoned job).
    #[handle]
    fn square(&self, n: u64) -> u64 {
        assert!(n != 13, "worker {} cannot handle 13", self.id);
        n * n
    }
}

#[derive(Default)]
struct Foreman {
    workers: Vec<ActorRef<Worker>>,
    next_id: u32,
    crashes: Vec<String>,
}

#[actor]
impl Foreman {
    #[init]
    async fn init(&mut self, ctx: &mut Ctx<Self>) -> Result<(), SpawnError> {
        ctx.trap_exit(true);
        for _ in 0..2 {
            self.hire(ctx).await?;
        }
        Ok(())
    }

    /// Hands a job to a worker (round robin) and returns its answer.
    #[handle]
    async fn job(&mut self, n: u64) -> Result<u64, CallError> {
        let w = self.workers[(n as usize) % self.workers.len()].clone();
        w.square(n).await
    }

    #[handle]
    fn crashes(&self) -> Vec<String> {
        self.crashes.clone()
    }

    #[handle]
    fn retire(&mut self, ctx: &mut Ctx<Self>) {
        ctx.stop_with(ExitReason::Error("retired by the owner".into()));
    }

    #[on_exit]
    async fn worker_exited(&mut self, from: Pid, reason: ExitReason, ctx: &mut Ctx<Self>) {
        self.crashes.push(format!("{from} exited: {reason}"));
        self.workers.retain(|w| w.pid() != from);
        if let Err(e) = self.hire(ctx).await {
            self.crashes.push(format!("could not replace it: {e}"));
        }
    }
}

impl Foreman {
    async fn hire(&mut self, ctx: &mut Ctx<Self>) -> Result<(), SpawnError> {
        self.next_id += 1;
        let w = ctx.spawn_link(Worker { id: self.next_id }).await?;
        self.workers.push(w);
        Ok(())
    }
}

#[derive(Default)]
struct Auditor {
    seen: Vec<String>,
}

#[actor]
impl Auditor {
    #[handle]
    fn watch(&mut self, pid: Pid, ctx: &mut Ctx<Self>) {
        ctx.monitor(pid);
    }

    #[handle]
    fn seen(&self) -> Vec<String> {
        self.seen.clone()
    }

    #[on_down]
    fn down(&mut self, down: Down) {
        self.seen
            .push(format!("{} is down: {}", down.pid, down.reason));
    }
}

/// A process with nothing to do, to show an untrapped link.
struct Idle;

#[actor]
impl Idle {
    #[handle]
    fn link_to(&self, pid: Pid, ctx: &mut Ctx<Self>) -> bool {
        ctx.link(pid);
        true
    }
}

#[tokio::main]
async fn main() -> Result<(), ergo::Error> {
    // Keep the demo's output to what it prints itself.
    std::panic::set_hook(Box::new(|info| eprintln!("(a process panicked: {info})")));
    let node = Node::builder("links@localhost").start().await?;

    let foreman = node.spawn(Foreman::default()).await?;
    let auditor = node.spawn(Auditor::default()).await?;
    auditor.watch(foreman.pid()).await?;

    for n in [2, 3, 13, 5] {
        match foreman.job(n).await? {
            Ok(sq) => println!("job {n}: {sq}"),
            Err(e) => println!("job {n}: failed ({e})"),
        }
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    for c in foreman.crashes().await? {
        println!("foreman saw: {c}");
    }
    println!("job 7 after the crash: {:?}", foreman.job(7).await?);

    foreman.retire().await?;
    println!("foreman ended: {}", foreman.wait().await);
    tokio::time::sleep(Duration::from_millis(20)).await;
    for s in auditor.seen().await? {
        println!("auditor saw: {s}");
    }

    let a = node.spawn(Idle).await?;
    let b = node.spawn(Idle).await?;
    a.link_to(b.pid()).await?;
    b.kill();
    println!(
        "b: {}; a, linked and not trapping, follows: {}",
        b.wait().await,
        a.wait().await
    );
    Ok(())
}
