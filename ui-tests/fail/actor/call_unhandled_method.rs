use ergo::prelude::*;

#[derive(Default)]
struct Counter {
    n: u64,
}

#[actor]
impl Counter {
    #[handle]
    fn add(&mut self, by: u64) {
        self.n += by;
    }

    fn reset(&mut self) {
        self.n = 0;
    }
}

async fn run(counter: ActorRef<Counter>) {
    counter.add(1).await.unwrap();
    counter.reset().await.unwrap();
}

fn main() {
    let _ = run;
}
