use flowodm::Model;

struct Money(i64);

#[derive(Model)]
#[flowodm(topic = "orders")]
struct Order {
    total: Money,
}

fn main() {}
