use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = "orders", key = "customer")]
struct Order {
    id: String,
    customer_id: String,
}

fn main() {}
