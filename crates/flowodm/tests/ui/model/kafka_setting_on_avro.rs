use flowodm::Avro;

#[derive(Avro)]
#[flowodm(topic = "items")]
struct Item {
    sku: String,
}

fn main() {}
