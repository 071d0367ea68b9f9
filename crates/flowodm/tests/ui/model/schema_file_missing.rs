use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = "orders", schema_file = "schemas/does_not_exist.avsc")]
struct Order {
    id: String,
}

fn main() {}
