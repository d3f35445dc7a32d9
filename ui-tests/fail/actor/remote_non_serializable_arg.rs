use ergo::prelude::*;

struct Job {
    id: u64,
}

struct Worker;

#[actor(remote)]
impl Worker {
    #[handle]
    fn run(&mut self, job: Job) -> u64 {
        job.id
    }
}

fn main() {}
