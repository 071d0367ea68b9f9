use flowodm::{Avro, Model};

#[derive(Avro)]
enum Region {
    Eu,
    Us,
}

#[derive(Model)]
#[flowodm(topic = "orders", key = "region")]
struct Order {
    region: Region,
}

fn main() {}
