use ergo::prelude::*;

// Not `remote`: its refs cannot cross the network.
struct Local;

#[actor]
impl Local {
    #[handle]
    fn ping(&self) {}
}

struct Registry;

#[actor(remote)]
impl Registry {
    #[handle]
    fn join(&mut self, member: ActorRef<Local>) {
        let _ = member;
    }
}

fn main() {}
