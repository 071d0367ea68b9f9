use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = orders)]
struct Order {
    id: String,
}

fn main() {}
