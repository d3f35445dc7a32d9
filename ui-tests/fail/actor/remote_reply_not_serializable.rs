use ergo::prelude::*;

struct Handle(std::sync::Arc<()>);

struct Store;

#[actor(remote)]
impl Store {
    #[handle]
    fn open(&self) -> Handle {
        Handle(Default::default())
    }
}

fn main() {}
