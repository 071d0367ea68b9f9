//! The order event of the pipeline (`schemas/order_event.avsc`): one thing that happened to an
//! order, keyed by `order_id` so that all events of an order stay in order on one partition.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use flowodm::{Avro, Model};
use uuid::Uuid;

/// One event in the life of a food order.
#[derive(Debug, Clone, PartialEq, Model)]
#[flowodm(
    topic = "order-events",
    key = "order_id",
    namespace = "com.pipeline.events",
    schema_file = "schemas/order_event.avsc"
)]
pub struct OrderEvent {
    /// Unique id of the event (UUID).
    pub event_id: Uuid,
    /// What happened to the order.
    pub event_type: OrderEventType,
    /// The order; also the partition key.
    pub order_id: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The service that emitted the event.
    #[flowodm(default = "order-service")]
    pub source: String,
    /// Version of the event's schema.
    #[flowodm(default = "1.0")]
    pub version: String,
    /// The event's details.
    pub payload: OrderEventPayload,
}

/// What happened to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Avro)]
#[flowodm(namespace = "com.pipeline.events", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderEventType {
    /// The customer placed the order.
    OrderCreated,
    /// The restaurant accepted it.
    OrderConfirmed,
    /// The payment was authorized.
    PaymentAuthorized,
    /// The payment was captured.
    PaymentCaptured,
    /// The payment failed.
    PaymentFailed,
    /// The order left for delivery.
    OrderShipped,
    /// The order arrived.
    OrderDelivered,
    /// The order was cancelled.
    OrderCancelled,
    /// The order was refunded.
    OrderRefunded,
}

/// The state of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Avro)]
#[flowodm(namespace = "com.pipeline.events", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed, not confirmed.
    Pending,
    /// Confirmed by the restaurant.
    Confirmed,
    /// Being cooked.
    Preparing,
    /// Ready for pick-up.
    Ready,
    /// On its way.
    Shipped,
    /// Arrived.
    Delivered,
    /// Cancelled.
    Cancelled,
    /// Refunded.
    Refunded,
}

/// How the order is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Avro)]
#[flowodm(namespace = "com.pipeline.events", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    /// Credit card.
    CreditCard,
    /// Debit card.
    DebitCard,
    /// PayPal.
    Paypal,
    /// Apple Pay.
    ApplePay,
    /// Google Pay.
    GooglePay,
    /// Bank transfer.
    BankTransfer,
    /// Cash on delivery.
    CashOnDelivery,
}

/// The details of an event; every field but `currency` is optional.
#[derive(Debug, Clone, PartialEq, Default, Avro)]
#[flowodm(namespace = "com.pipeline.events")]
pub struct OrderEventPayload {
    /// The customer.
    pub user_id: Option<String>,
    /// The order's total.
    pub total_amount: Option<f64>,
    /// ISO 4217 currency code.
    #[flowodm(default = "USD")]
    pub currency: String,
    /// The order's state after the event.
    pub status: Option<OrderStatus>,
    /// What was ordered.
    pub items: Option<Vec<OrderItem>>,
    /// Where it goes.
    pub shipping_address: Option<Address>,
    /// How it is paid.
    pub payment_method: Option<PaymentMethod>,
    /// The payment provider's id.
    pub payment_id: Option<String>,
    /// Free-form extra data.
    pub metadata: Option<HashMap<String, String>>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Avro)]
#[flowodm(namespace = "com.pipeline.events")]
pub struct OrderItem {
    /// The menu item.
    pub sku: String,
    /// How many.
    pub quantity: i32,
    /// Price of one.
    pub unit_price: f64,
}

/// A delivery address.
#[derive(Debug, Clone, PartialEq, Avro)]
#[flowodm(namespace = "com.pipeline.events")]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// State or region.
    pub state: Option<String>,
    /// ISO 3166 country code.
    #[flowodm(default = "US")]
    pub country: String,
}

impl OrderEvent {
    fn new(event_type: OrderEventType, order_id: &str, payload: OrderEventPayload) -> Self {
        OrderEvent {
            event_id: Uuid::new_v4(),
            event_type,
            order_id: order_id.to_string(),
            timestamp: now_millis(),
            source: "order-service".into(),
            version: "1.0".into(),
            payload,
        }
    }

    /// A new order: status PENDING, with its items and total.
    ///
    /// ```
    /// use food_pipeline::events::{OrderEvent, OrderEventType, OrderItem, OrderStatus};
    /// let items = vec![OrderItem { sku: "ITEM-001".into(), quantity: 2, unit_price: 9.5 }];
    /// let e = OrderEvent::order_created("ORD-20261122-00001", "CUST-00042", items);
    /// assert_eq!(e.event_type, OrderEventType::OrderCreated);
    /// assert_eq!(e.payload.total_amount, Some(19.0));
    /// assert_eq!(e.payload.status, Some(OrderStatus::Pending));
    /// ```
    pub fn order_created(order_id: &str, user_id: &str, items: Vec<OrderItem>) -> Self {
        let total = items
            .iter()
            .map(|i| f64::from(i.quantity) * i.unit_price)
            .sum();
        Self::new(
            OrderEventType::OrderCreated,
            order_id,
            OrderEventPayload {
                user_id: Some(user_id.to_string()),
                total_amount: Some(total),
                currency: "USD".into(),
                status: Some(OrderStatus::Pending),
                items: Some(items),
                ..OrderEventPayload::default()
            },
        )
    }

    /// A payment authorization for an order.
    ///
    /// ```
    /// use food_pipeline::events::{OrderEvent, OrderEventType, PaymentMethod};
    /// let e = OrderEvent::payment_authorized("ORD-1", 19.0, PaymentMethod::CreditCard, "pay_123");
    /// assert_eq!(e.event_type, OrderEventType::PaymentAuthorized);
    /// assert_eq!(e.payload.payment_id.as_deref(), Some("pay_123"));
    /// ```
    pub fn payment_authorized(
        order_id: &str,
        amount: f64,
        method: PaymentMethod,
        payment_id: &str,
    ) -> Self {
        Self::new(
            OrderEventType::PaymentAuthorized,
            order_id,
            OrderEventPayload {
                total_amount: Some(amount),
                currency: "USD".into(),
                status: Some(OrderStatus::Confirmed),
                payment_method: Some(method),
                payment_id: Some(payment_id.to_string()),
                ..OrderEventPayload::default()
            },
        )
    }
}

fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_matches_the_avsc_file() {
        // Fails with the first difference when the struct and the file disagree.
        let schema = OrderEvent::value_schema().unwrap();
        assert!(schema
            .canonical_form()
            .contains("com.pipeline.events.OrderEvent"));
    }

    #[test]
    fn a_mismatching_file_is_reported_with_the_difference() {
        let file = include_str!("../schemas/order_event.avsc")
            .replace("\"default\": \"USD\"", "\"default\": \"EUR\"");
        let err = flowodm::avro::compare_schemas(OrderEvent::value_schema().unwrap().json(), &file)
            .unwrap_err();
        assert!(err.contains("currency") || err.contains("EUR"), "{err}");
    }

    #[test]
    fn helper_constructors_round_trip() {
        let items = vec![OrderItem {
            sku: "ITEM-007".into(),
            quantity: 3,
            unit_price: 4.25,
        }];
        for e in [
            OrderEvent::order_created("ORD-20261122-00007", "CUST-00001", items),
            OrderEvent::payment_authorized(
                "ORD-20261122-00007",
                12.75,
                PaymentMethod::ApplePay,
                "pay_1",
            ),
        ] {
            let bytes = flowodm::avro::to_avro(&e).unwrap();
            assert_eq!(flowodm::avro::from_avro::<OrderEvent>(&bytes).unwrap(), e);
        }
    }
}
