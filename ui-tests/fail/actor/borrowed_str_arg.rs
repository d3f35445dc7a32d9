use ergo::prelude::*;

struct Greeter;

#[actor]
impl Greeter {
    #[handle]
    fn greet(&self, name: &str) -> String {
        format!("hello, {name}")
    }
}

fn main() {}
