use flowodm::Model;

#[derive(Model)]
#[flowodm(topic = "orders")]
struct Order {
    #[flowodm(renamed = "id")]
    order_id: String,
    #[flowodm(default = "none")]
    note: Option<String>,
    #[flowodm(rename = "2fast")]
    speed: i32,
}

fn main() {}
