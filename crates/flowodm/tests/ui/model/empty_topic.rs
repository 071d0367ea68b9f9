use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = "")]
struct Order {
    id: String,
}

fn main() {}
