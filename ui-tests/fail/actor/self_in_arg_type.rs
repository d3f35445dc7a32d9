use ergo::prelude::*;

struct Node2 {
    children: Vec<Node2>,
}

#[actor]
impl Node2 {
    #[handle]
    fn adopt(&mut self, child: Box<Self>) {
        self.children.push(*child);
    }
}

fn main() {}
