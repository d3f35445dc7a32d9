// One build reports every mistake of the impl block, and nothing else.
use ergo::prelude::*;

#[derive(Default)]
struct Shop {
    stock: Vec<String>,
}

#[actor(mailbox = 0)]
impl Shop {
    #[handle]
    fn restock(self, item: String) {
        let _ = item;
    }

    #[handle]
    fn find(&self, name: &str) -> bool {
        self.stock.iter().any(|s| s == name)
    }

    #[handle]
    fn sell<T>(&mut self, item: T) {
        let _ = item;
    }

    #[handle]
    fn count(&self) -> usize {
        self.stock.len()
    }
}

#[tokio::main]
async fn main() {
    // Spawning the actor and calling its handlers, broken ones included, adds no errors.
    let node = Node::builder("shop@localhost").start().await.unwrap();
    let shop = node.spawn(Shop::default()).await.unwrap();
    shop.restock("apple".to_owned()).await.unwrap();
    assert!(shop.find("apple").await.unwrap());
    assert_eq!(shop.count().await.unwrap(), 1);
}
