use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = "orders")]
struct Order(String);

fn main() {}
