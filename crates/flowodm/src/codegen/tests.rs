use super::*;

#[test]
fn smoke() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/food-pipeline/schemas/order_event.avsc"
    ))
    .unwrap();
    let out = Generator::new()
        .topic("order-events")
        .key("order_id")
        .generate(&[text])
        .unwrap();
    println!("{out}");
}
