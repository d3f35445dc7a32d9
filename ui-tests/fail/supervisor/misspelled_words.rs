// Every word of the grammar gets a suggestion when misspelled: strategies, settings, restart
// types, child options, shutdown values and duration units.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

supervisor! {
    pub AppSup: one_for_al, intensty = 2, period = 1h {
        worker: Worker::default() => permanent, shutdwn = 2s,
        cache: Worker::default() => transiant, shutdown = brutal_kil,
        other: Worker::default() => temporary, shutdown = 3secs,
        last: Worker::default() => temporary, auto_shutdown = any_significant,
    }
}

fn main() {
    let _ = AppSup::new();
}
