use ergo::prelude::*;

trait Greet {
    fn greet(&self) -> String;
}

struct Greeter;

#[actor]
impl Greet for Greeter {
    #[handle]
    fn greet(&self) -> String {
        "hello".to_owned()
    }
}

fn main() {}
