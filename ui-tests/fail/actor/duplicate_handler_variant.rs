use ergo::prelude::*;

struct Cart {
    items: Vec<String>,
}

#[actor]
impl Cart {
    #[handle]
    fn add_item(&mut self, item: String) {
        self.items.push(item);
    }

    #[handle]
    #[allow(non_snake_case)]
    fn addItem(&mut self, item: String) {
        self.items.insert(0, item);
    }
}

fn main() {}
