use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = "prices")]
struct Price {
    amount: rust_decimal::Decimal,
}

fn main() {}
