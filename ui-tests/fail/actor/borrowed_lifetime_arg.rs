use std::borrow::Cow;

use ergo::prelude::*;

struct Log;

#[actor]
impl Log {
    #[handle]
    fn write(&mut self, line: Cow<'_, str>) {
        let _ = line;
    }
}

fn main() {}
