use ergo::prelude::*;

struct Log {
    lines: Vec<String>,
}

#[actor]
impl Log {
    #[handle]
    fn push<T: ToString>(&mut self, line: T) {
        self.lines.push(line.to_string());
    }
}

fn main() {}
