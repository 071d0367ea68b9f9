use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = "orders")]
#[flowodm(topic = "orders-v2")]
struct Order {
    id: String,
}

fn main() {}
