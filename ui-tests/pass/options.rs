//! `mailbox = N`, `msg = Name` and `api = Name`: a bounded mailbox, and the generated enum and
//! trait under the names given.

use std::time::Duration;

use ergo::prelude::*;
use tokio::sync::oneshot;

#[derive(Default)]
struct Gate {
    ticks: u32,
}

#[actor(mailbox = 2, msg = GateCommand, api = GateControl)]
impl Gate {
    /// Holds the process until `release` fires.
    #[handle]
    async fn hold(&mut self, started: oneshot::Sender<()>, release: oneshot::Receiver<()>) {
        let _ = started.send(());
        let _ = release.await;
    }

    #[handle]
    fn tick(&mut self) {
        self.ticks += 1;
    }

    #[handle]
    fn ticks(&self) -> u32 {
        self.ticks
    }
}

/// Works with any `ActorRef` that has the renamed API.
async fn ticks_of(gate: &impl GateControl) -> u32 {
    gate.ticks().await.expect("the gate answers")
}

#[tokio::main]
async fn main() -> Result<(), ergo::Error> {
    assert_eq!(<Gate as Actor>::MAILBOX_CAPACITY, Some(2));
    assert_eq!(<Gate as Actor>::NAME, "Gate");

    let node = Node::builder("options@localhost")
        .call_timeout(Duration::from_secs(5))
        .start()
        .await?;
    let gate = node.spawn(Gate::default()).await?;

    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    GateControl::hold(&gate, started_tx, release_rx).await?;
    started_rx.await.expect("the gate starts holding");

    // While the gate holds, the bound of 2 fills up.
    let mut accepted = 0;
    let full = loop {
        match gate.try_cast(GateCommand::Tick {}) {
            Ok(()) => accepted += 1,
            Err(TrySendError::Full(GateCommand::Tick {})) => break true,
            Err(other) => panic!("unexpected: {other:?}"),
        }
        if accepted > 10 {
            break false;
        }
    };
    assert!(
        full,
        "a mailbox of 2 must refuse more than 2 queued messages"
    );
    assert!((1..=2).contains(&accepted), "accepted {accepted}");

    release_tx.send(()).expect("the gate waits for release");
    assert_eq!(ticks_of(&gate).await, accepted);
    Ok(())
}
