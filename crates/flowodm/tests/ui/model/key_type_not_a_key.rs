use flowodm::Model;

struct CustomerId(u64);

#[derive(Model)]
#[flowodm(topic = "orders", key = "customer")]
struct Order {
    customer: CustomerId,
}

fn main() {}
