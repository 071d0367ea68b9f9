use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = "orders", partitions = 3, key_feld = "id")]
struct Order {
    id: String,
}

fn main() {}
