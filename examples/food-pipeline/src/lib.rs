//! The reference pipeline: a food-ordering system built with flowodm.
//!
//! ```text
//! order-producer ──▶ Kafka topic food-orders ──▶ order-consumer ──▶ PostgreSQL orders
//!   (mock orders,      (3 partitions, keyed        (flowodm consumer     (one row per order,
//!    --rate/s)          by customer, snappy)        loop, batch writer)   order_id primary key)
//! ```
//!
//! - [`order`]: the [`Order`](order::Order) model (Avro, schema derived and registered by
//!   flowodm) and the seedable mock data;
//! - [`producer`]: produces orders at a rate, idempotently, with confirmed deliveries;
//! - [`consumer`]: the consumer loop that stores orders exactly once, through outages and
//!   crashes;
//! - [`store`]: the `orders` table, its migration and the batch writer;
//! - [`verify`]: checks what ended up in the table against what was produced;
//! - [`events`]: the `OrderEvent` model of `schemas/order_event.avsc`.
//!
//! The binaries `order-producer` and `order-consumer` run the two services; `pipeline-demo`
//! (what `dev/demo` runs) runs both for a while and prints a verification report.

pub mod consumer;
pub mod events;
pub mod latency;
pub mod order;
pub mod producer;
pub mod store;
pub mod telemetry;
pub mod topic;
pub mod verify;
