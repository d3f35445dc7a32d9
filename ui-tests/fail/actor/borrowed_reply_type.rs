use ergo::prelude::*;

struct Config {
    name: String,
}

#[actor]
impl Config {
    #[handle]
    fn name(&self) -> &str {
        &self.name
    }
}

fn main() {}
