//! Inputs shared by the codec benchmarks and their correctness tests: one realistic
//! [`OrderEvent`], serde mirror types with exactly its schema (for apache-avro and
//! serde_avro_fast), and an older version of the schema with a flowodm type that writes it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use food_pipeline::events::{
    Address, OrderEvent, OrderEventPayload, OrderEventType, OrderItem, OrderStatus, PaymentMethod,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The current schema of the order event, as the example pipeline ships it.
pub const ORDER_EVENT_AVSC: &str =
    include_str!("../../../examples/food-pipeline/schemas/order_event.avsc");

/// An older, backward-compatible version of the schema (see the file's `doc`).
pub const ORDER_EVENT_V0_AVSC: &str = include_str!("../schemas/order_event_v0.avsc");

/// The benchmark's order event: every optional field set, 3 items, an address and `metadata`
/// entries. `metadata_entries` is 3 in the benchmarks; byte-for-byte comparisons between
/// libraries use 1, since a `HashMap` iterates in an order of its own.
pub fn sample_event(metadata_entries: usize) -> OrderEvent {
    let metadata = [
        ("channel", "mobile-app"),
        ("promo_code", "SPRING25"),
        ("client_version", "4.12.1"),
    ]
    .iter()
    .take(metadata_entries)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    OrderEvent {
        event_id: Uuid::parse_str("7f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d").expect("valid uuid"),
        event_type: OrderEventType::PaymentAuthorized,
        order_id: "ORD-20261122-00042".into(),
        timestamp: DateTime::from_timestamp_millis(1_795_363_200_123).expect("valid timestamp"),
        source: "order-service".into(),
        version: "1.0".into(),
        payload: OrderEventPayload {
            user_id: Some("CUST-00042".into()),
            total_amount: Some(42.5),
            currency: "USD".into(),
            status: Some(OrderStatus::Confirmed),
            items: Some(vec![
                OrderItem {
                    sku: "ITEM-001".into(),
                    quantity: 2,
                    unit_price: 9.5,
                },
                OrderItem {
                    sku: "ITEM-017".into(),
                    quantity: 1,
                    unit_price: 14.25,
                },
                OrderItem {
                    sku: "ITEM-102".into(),
                    quantity: 3,
                    unit_price: 3.25,
                },
            ]),
            shipping_address: Some(Address {
                street: "221B Baker Street".into(),
                city: "Springfield".into(),
                postal_code: "62704".into(),
                state: Some("IL".into()),
                country: "US".into(),
            }),
            payment_method: Some(PaymentMethod::CreditCard),
            payment_id: Some("pay_3NqK8x2eZvKYlo2C".into()),
            metadata: Some(metadata),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Serde mirror types: the same schema as `OrderEvent`, for the serde-based libraries. The UUID
// and the timestamp keep their Rust types (as a serde user would), so every library parses and
// formats the UUID and converts the timestamp, as flowodm does. Each type is renamed to its Avro
// name: apache-avro's schema-aware deserializer matches records by name.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "OrderEvent")]
pub struct SerdeOrderEvent {
    pub event_id: Uuid,
    pub event_type: SerdeOrderEventType,
    pub order_id: String,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub timestamp: DateTime<Utc>,
    pub source: String,
    pub version: String,
    pub payload: SerdeOrderEventPayload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OrderEventType", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SerdeOrderEventType {
    OrderCreated,
    OrderConfirmed,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    OrderShipped,
    OrderDelivered,
    OrderCancelled,
    OrderRefunded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OrderStatus", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SerdeOrderStatus {
    Pending,
    Confirmed,
    Preparing,
    Ready,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "PaymentMethod", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SerdePaymentMethod {
    CreditCard,
    DebitCard,
    Paypal,
    ApplePay,
    GooglePay,
    BankTransfer,
    CashOnDelivery,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "OrderEventPayload")]
pub struct SerdeOrderEventPayload {
    pub user_id: Option<String>,
    pub total_amount: Option<f64>,
    pub currency: String,
    pub status: Option<SerdeOrderStatus>,
    pub items: Option<Vec<SerdeOrderItem>>,
    pub shipping_address: Option<SerdeAddress>,
    pub payment_method: Option<SerdePaymentMethod>,
    pub payment_id: Option<String>,
    pub metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "OrderItem")]
pub struct SerdeOrderItem {
    pub sku: String,
    pub quantity: i32,
    pub unit_price: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Address")]
pub struct SerdeAddress {
    pub street: String,
    pub city: String,
    pub postal_code: String,
    pub state: Option<String>,
    pub country: String,
}

/// Maps a unit enum onto its mirror by variant, both ways.
macro_rules! mirror_enum {
    ($a:ident <=> $b:ident { $($v:ident),* $(,)? }) => {
        impl From<$a> for $b {
            fn from(v: $a) -> Self {
                match v { $($a::$v => $b::$v,)* }
            }
        }
        impl From<$b> for $a {
            fn from(v: $b) -> Self {
                match v { $($b::$v => $a::$v,)* }
            }
        }
    };
}

mirror_enum!(OrderEventType <=> SerdeOrderEventType {
    OrderCreated, OrderConfirmed, PaymentAuthorized, PaymentCaptured, PaymentFailed,
    OrderShipped, OrderDelivered, OrderCancelled, OrderRefunded,
});
mirror_enum!(OrderStatus <=> SerdeOrderStatus {
    Pending, Confirmed, Preparing, Ready, Shipped, Delivered, Cancelled, Refunded,
});
mirror_enum!(PaymentMethod <=> SerdePaymentMethod {
    CreditCard, DebitCard, Paypal, ApplePay, GooglePay, BankTransfer, CashOnDelivery,
});

impl From<&OrderEvent> for SerdeOrderEvent {
    fn from(e: &OrderEvent) -> Self {
        let p = &e.payload;
        SerdeOrderEvent {
            event_id: e.event_id,
            event_type: e.event_type.into(),
            order_id: e.order_id.clone(),
            timestamp: e.timestamp,
            source: e.source.clone(),
            version: e.version.clone(),
            payload: SerdeOrderEventPayload {
                user_id: p.user_id.clone(),
                total_amount: p.total_amount,
                currency: p.currency.clone(),
                status: p.status.map(Into::into),
                items: p.items.as_ref().map(|items| {
                    items
                        .iter()
                        .map(|i| SerdeOrderItem {
                            sku: i.sku.clone(),
                            quantity: i.quantity,
                            unit_price: i.unit_price,
                        })
                        .collect()
                }),
                shipping_address: p.shipping_address.as_ref().map(|a| SerdeAddress {
                    street: a.street.clone(),
                    city: a.city.clone(),
                    postal_code: a.postal_code.clone(),
                    state: a.state.clone(),
                    country: a.country.clone(),
                }),
                payment_method: p.payment_method.map(Into::into),
                payment_id: p.payment_id.clone(),
                metadata: p.metadata.clone(),
            },
        }
    }
}

impl From<SerdeOrderEvent> for OrderEvent {
    fn from(e: SerdeOrderEvent) -> Self {
        let p = e.payload;
        OrderEvent {
            event_id: e.event_id,
            event_type: e.event_type.into(),
            order_id: e.order_id,
            timestamp: e.timestamp,
            source: e.source,
            version: e.version,
            payload: OrderEventPayload {
                user_id: p.user_id,
                total_amount: p.total_amount,
                currency: p.currency,
                status: p.status.map(Into::into),
                items: p.items.map(|items| {
                    items
                        .into_iter()
                        .map(|i| OrderItem {
                            sku: i.sku,
                            quantity: i.quantity,
                            unit_price: i.unit_price,
                        })
                        .collect()
                }),
                shipping_address: p.shipping_address.map(|a| Address {
                    street: a.street,
                    city: a.city,
                    postal_code: a.postal_code,
                    state: a.state,
                    country: a.country,
                }),
                payment_method: p.payment_method.map(Into::into),
                payment_id: p.payment_id,
                metadata: p.metadata,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The older version (`schemas/order_event_v0.avsc`), as a flowodm type that writes it.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, flowodm::Avro)]
#[flowodm(name = "OrderEvent", namespace = "com.pipeline.events")]
pub struct OrderEventV0 {
    pub event_id: Uuid,
    pub event_type: OrderEventTypeV0,
    pub order_id: String,
    /// Milliseconds since the epoch, as a plain `long`.
    pub timestamp: i64,
    pub payload: OrderEventPayloadV0,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, flowodm::Avro)]
#[flowodm(
    name = "OrderEventType",
    namespace = "com.pipeline.events",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum OrderEventTypeV0 {
    OrderCreated,
    OrderConfirmed,
    PaymentAuthorized,
    OrderShipped,
    OrderDelivered,
    OrderCancelled,
}

#[derive(Debug, Clone, PartialEq, flowodm::Avro)]
#[flowodm(name = "OrderEventPayload", namespace = "com.pipeline.events")]
pub struct OrderEventPayloadV0 {
    pub user_id: Option<String>,
    pub total_amount: Option<f32>,
    #[flowodm(default = "USD")]
    pub currency: String,
    pub status: Option<OrderStatus>,
    pub items: Option<Vec<OrderItem>>,
    pub shipping_address: Option<Address>,
    pub payment_method: Option<PaymentMethod>,
    /// Removed in the current version: a reader skips it.
    #[flowodm(default = "web")]
    pub channel: String,
}

/// The v0 counterpart of [`sample_event`]: the same event as an older producer wrote it.
pub fn sample_event_v0() -> OrderEventV0 {
    let e = sample_event(0);
    let p = e.payload;
    OrderEventV0 {
        event_id: e.event_id,
        event_type: OrderEventTypeV0::PaymentAuthorized,
        order_id: e.order_id,
        timestamp: e.timestamp.timestamp_millis(),
        payload: OrderEventPayloadV0 {
            user_id: p.user_id,
            // 42.5 is exact in f32, so promotion to double gives back the same total.
            total_amount: p.total_amount.map(|t| t as f32),
            currency: p.currency,
            status: p.status,
            items: p.items,
            shipping_address: p.shipping_address,
            payment_method: p.payment_method,
            channel: "mobile-app".into(),
        },
    }
}

/// What reading [`sample_event_v0`] with the current schema must give: the v0 fields, and the
/// current schema's defaults for the fields v0 lacks.
pub fn expected_from_v0() -> OrderEvent {
    let mut e = sample_event(0);
    e.payload.payment_id = None;
    e.payload.metadata = None;
    e
}
