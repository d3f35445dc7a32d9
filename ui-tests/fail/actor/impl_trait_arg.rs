use ergo::prelude::*;

struct Greeter;

#[actor]
impl Greeter {
    #[handle]
    fn greet(&self, name: impl std::fmt::Display) -> String {
        format!("hello, {name}")
    }
}

fn main() {}
