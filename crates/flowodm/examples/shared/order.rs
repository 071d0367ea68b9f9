//! The model both examples share: an order, keyed by customer so that one customer's orders
//! stay in order.

use flowodm::Model;

/// An order placed in the shop.
#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(
    topic = "orders",
    key = "customer_id",
    consumer_group = "order-store",
    namespace = "com.example.shop"
)]
pub struct Order {
    /// `ORD-NNNNN`.
    pub order_id: String,
    /// `CUST-NNNNN`: the message key.
    pub customer_id: String,
    /// The total in cents.
    pub total_cents: i64,
    /// A note from the customer.
    pub note: Option<String>,
}

/// The topic: `ORDERS_TOPIC`, or the model's.
pub fn topic() -> String {
    std::env::var("ORDERS_TOPIC").unwrap_or_else(|_| Order::SETTINGS.topic.to_string())
}
