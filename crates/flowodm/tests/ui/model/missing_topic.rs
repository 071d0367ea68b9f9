use flowodm::Model;

#[derive(Model)]
#[flowodm(key = "id")]
struct Order {
    id: String,
}

fn main() {}
