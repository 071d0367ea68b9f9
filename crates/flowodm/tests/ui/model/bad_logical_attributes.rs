use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = "prices")]
struct Price {
    #[flowodm(decimal(precision = 5, scale = 7))]
    too_fine: rust_decimal::Decimal,
    #[flowodm(decimal(precision = 10))]
    no_scale: rust_decimal::Decimal,
    #[flowodm(micros, decimal(precision = 10, scale = 2))]
    both: rust_decimal::Decimal,
}

fn main() {}
