// The constructor's value must be an actor.
use ergo::prelude::*;

#[derive(Default)]
struct Worker;

#[actor]
impl Worker {
    #[handle]
    fn ping(&self) {}
}

struct Config;

impl Config {
    fn load(path: &str) -> Self {
        let _ = path;
        Config
    }
}

supervisor! {
    pub AppSup: one_for_one {
        worker: Worker::default() => permanent,
        config: Config::load("app.toml") => permanent,
    }
}

fn main() {
    let _ = AppSup::new();
}
