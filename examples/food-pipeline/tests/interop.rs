//! `OrderEvent` between flowodm and confluent-kafka for Python (`interop/peer.py`), both ways,
//! compared field by field: events that flowodm writes are read by `AvroDeserializer`, and
//! events that `AvroSerializer` writes with the model's schema are read by `Codec::decode`.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use flowodm::codec::Codec;
use flowodm::registry::{Schema, SchemaRegistryClient};
use flowodm::Model;
use flowodm_test::interop::json::{float, opt, timestamp, uuid};
use flowodm_test::interop::{
    assert_json_eq, consume_payloads, peer_consume, peer_produce, produce_payloads,
};
use flowodm_test::{new_topic, registry_url};
use food_pipeline::events::{
    Address, OrderEvent, OrderEventPayload, OrderEventType, OrderItem, OrderStatus, PaymentMethod,
};
use serde_json::{json, Value as Json};
use uuid::Uuid;

fn registry() -> SchemaRegistryClient {
    SchemaRegistryClient::new(&registry_url()).expect("SCHEMA_REGISTRY_URL is a valid URL")
}

fn at(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis).unwrap()
}

fn item(sku: &str, quantity: i32, unit_price: f64) -> OrderItem {
    OrderItem {
        sku: sku.into(),
        quantity,
        unit_price,
    }
}

/// Events with every optional field set, with none set, and in between.
fn events() -> Vec<OrderEvent> {
    let everything = OrderEvent {
        event_id: Uuid::parse_str("0d5c7a1e-3f7b-4c2a-9b1d-2e6f8a4c0b11").unwrap(),
        event_type: OrderEventType::OrderShipped,
        order_id: "ORD-20261122-00042".into(),
        timestamp: at(1_795_343_415_123),
        source: "dispatch-service".into(),
        version: "1.1".into(),
        payload: OrderEventPayload {
            user_id: Some("CUST-00007".into()),
            total_amount: Some(42.75),
            currency: "EUR".into(),
            status: Some(OrderStatus::Shipped),
            items: Some(vec![item("ITEM-001", 2, 9.5), item("ITEM-002", 1, 23.75)]),
            shipping_address: Some(Address {
                street: "Hauptstraße 1".into(),
                city: "München".into(),
                postal_code: "80331".into(),
                state: Some("BY".into()),
                country: "DE".into(),
            }),
            payment_method: Some(PaymentMethod::CashOnDelivery),
            payment_id: Some("pay_9f8e7d".into()),
            metadata: Some(HashMap::from([
                ("courier".into(), "bike".into()),
                ("note".into(), "ring twice 🔔".into()),
            ])),
        },
    };
    let nothing = OrderEvent {
        event_id: Uuid::nil(),
        event_type: OrderEventType::OrderCancelled,
        order_id: "ORD-20261122-00043".into(),
        timestamp: at(-1),
        source: "order-service".into(),
        version: "1.0".into(),
        payload: OrderEventPayload {
            currency: "USD".into(),
            ..OrderEventPayload::default()
        },
    };
    let mut empty_collections = everything.clone();
    empty_collections.event_type = OrderEventType::OrderRefunded;
    empty_collections.payload.items = Some(Vec::new());
    empty_collections.payload.metadata = Some(HashMap::new());
    empty_collections.payload.status = Some(OrderStatus::Refunded);
    empty_collections.payload.payment_method = Some(PaymentMethod::Paypal);
    if let Some(a) = empty_collections.payload.shipping_address.as_mut() {
        a.state = None;
    }
    let mut created = OrderEvent::order_created(
        "ORD-20261122-00044",
        "CUST-00001",
        vec![item("ITEM-003", 3, 4.25)],
    );
    created.event_id = Uuid::parse_str("5f0b2c3d-1e4a-4b6c-8d7e-9f0a1b2c3d4e").unwrap();
    let mut authorized = OrderEvent::payment_authorized(
        "ORD-20261122-00044",
        12.75,
        PaymentMethod::ApplePay,
        "pay_1",
    );
    authorized.event_id = Uuid::max();
    vec![everything, nothing, empty_collections, created, authorized]
}

fn symbol(debug: impl std::fmt::Debug) -> String {
    // The enums are `rename_all = "SCREAMING_SNAKE_CASE"`: OrderCreated is ORDER_CREATED.
    let mut out = String::new();
    for (i, c) in format!("{debug:?}").chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// An event in the peer's JSON convention.
fn event_json(e: &OrderEvent) -> Json {
    let p = &e.payload;
    json!({
        "event_id": uuid(&e.event_id),
        "event_type": symbol(e.event_type),
        "order_id": e.order_id,
        "timestamp": timestamp(&e.timestamp),
        "source": e.source,
        "version": e.version,
        "payload": {
            "user_id": p.user_id,
            "total_amount": opt(&p.total_amount, |v| float(*v)),
            "currency": p.currency,
            "status": p.status.map(symbol),
            "items": opt(&p.items, |items| items.iter().map(|i| json!({
                "sku": i.sku,
                "quantity": i.quantity,
                "unit_price": float(i.unit_price),
            })).collect()),
            "shipping_address": opt(&p.shipping_address, |a| json!({
                "street": a.street,
                "city": a.city,
                "postal_code": a.postal_code,
                "state": a.state,
                "country": a.country,
            })),
            "payment_method": p.payment_method.map(symbol),
            "payment_id": p.payment_id,
            "metadata": p.metadata,
        },
    })
}

#[test]
fn enum_symbols_are_spelled_as_in_the_schema() {
    assert_eq!(
        symbol(OrderEventType::PaymentAuthorized),
        "PAYMENT_AUTHORIZED"
    );
    assert_eq!(symbol(PaymentMethod::CashOnDelivery), "CASH_ON_DELIVERY");
    let schema = OrderEvent::value_schema().unwrap().json();
    assert!(schema.contains("\"PAYMENT_AUTHORIZED\"") && schema.contains("\"CASH_ON_DELIVERY\""));
}

#[tokio::test]
async fn python_reads_order_events_that_flowodm_writes() {
    let events = events();
    let codec = Codec::<OrderEvent>::new(registry()).unwrap();
    let topic = new_topic("interop-order-events", 1).await;
    let mut payloads = Vec::new();
    for e in &events {
        payloads.push(codec.encode(e).await.unwrap());
    }
    produce_payloads(&topic, &payloads).await;
    let got = peer_consume(&topic, events.len());
    for (i, (g, e)) in got.iter().zip(&events).enumerate() {
        assert_json_eq(g, &event_json(e), &format!("event[{i}]"));
    }
}

#[tokio::test]
async fn flowodm_reads_order_events_that_python_writes() {
    let events = events();
    let topic = new_topic("interop-order-events", 1).await;
    let subject = format!("{topic}-value");
    let schema = OrderEvent::value_schema().unwrap().json();
    let records: Vec<Json> = events.iter().map(event_json).collect();
    peer_produce(&topic, &subject, schema, &records);
    let payloads = consume_payloads(&topic, events.len());

    let registry = registry();
    let registered = registry
        .lookup(&subject, &Schema::avro(schema), false)
        .await
        .unwrap_or_else(|e| panic!("the peer registered no schema under {subject}: {e}"))
        .id;
    let codec = Codec::<OrderEvent>::new(registry).unwrap();
    for (i, (p, want)) in payloads.iter().zip(&events).enumerate() {
        assert_eq!(p.first(), Some(&0), "event[{i}]: magic byte");
        assert_eq!(
            u32::from_be_bytes(p[1..5].try_into().unwrap()),
            registered,
            "event[{i}]: schema id"
        );
        let got = codec
            .decode(p)
            .await
            .unwrap_or_else(|e| panic!("event[{i}]: flowodm cannot decode {p:?}: {e}"));
        assert_json_eq(&event_json(&got), &records[i], &format!("event[{i}]"));
        assert_eq!(&got, want, "event[{i}]");
    }
}
