use ergo::prelude::*;

struct Watcher;

#[actor]
impl Watcher {
    #[handle]
    fn whoami(&self, ctx: &Ctx<Self>) -> Pid {
        ctx.pid()
    }
}

fn main() {}
