use ergo_macros::handle;

struct Counter {
    n: u64,
}

impl Counter {
    #[handle]
    fn add(&mut self, by: u64) {
        self.n += by;
    }
}

fn main() {}
