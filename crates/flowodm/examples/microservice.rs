//! A microservice: a consumer loop that stores orders, with start-up and shutdown hooks,
//! retries, a dead-letter topic, and a graceful shutdown on SIGTERM or Ctrl-C.
//!
//! ```sh
//! export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 SCHEMA_REGISTRY_URL=http://127.0.0.1:8081
//! cargo run -p flowodm --example microservice     # then Ctrl-C, or kill -TERM <pid>
//! ```
//!
//! `ORDERS_TOPIC` (default `orders`) and `ORDERS_GROUP` (default `order-store`, the model's
//! consumer group) choose what it reads. On SIGTERM it stops fetching, lets the orders in flight
//! finish, commits, leaves the group and prints what it did, then exits with status 0.
//!
//! The "database" is a map keyed by order id, so storing an order twice (after a crash, when
//! Kafka re-delivers what was not committed) changes nothing: at-least-once delivery plus an
//! idempotent write is effectively once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowodm::runner::{shutdown_on_signals, ConsumerLoop, HandlerError, OrderBy};
use flowodm::Client;

#[path = "shared/order.rs"]
mod order;
use order::Order;

type Store = Arc<Mutex<HashMap<String, Order>>>;

#[tokio::main]
async fn main() -> flowodm::Result<()> {
    let topic = order::topic();
    let group = std::env::var("ORDERS_GROUP").unwrap_or_else(|_| "order-store".to_string());
    let client = Client::from_env()?;
    let store: Store = Arc::default();

    let on_stop = store.clone();
    let loop_topic = topic.clone();
    let stats = ConsumerLoop::<Order>::builder(&client)
        .group(&group)
        .consumer(move |c| c.topics([loop_topic]))
        .order_by(OrderBy::Key) // one customer's orders in order, customers in parallel
        .max_concurrent(16)
        .max_retries(3)
        .retry_delay(Duration::from_millis(200))
        .shutdown_timeout(Duration::from_secs(10))
        .on_startup(move || async move {
            println!("microservice: consuming {topic} as group {group}");
            Ok(())
        })
        .on_shutdown(move || async move {
            let n = on_stop.lock().map(|s| s.len()).unwrap_or(0);
            println!("microservice: {n} orders stored");
            Ok(())
        })
        .run(
            move |record| {
                let store = store.clone();
                async move { save(&store, record.value, record.partition, record.offset) }
            },
            shutdown_on_signals(),
        )
        .await?;
    println!(
        "microservice: stopped: processed={} failed={} retried={} dead_lettered={}",
        stats.processed, stats.failed, stats.retried, stats.dead_lettered
    );
    Ok(())
}

/// Stores an order; a negative total is invalid data, which no retry fixes.
fn save(store: &Store, order: Order, partition: i32, offset: i64) -> Result<(), HandlerError> {
    if order.total_cents < 0 {
        return Err(HandlerError::fatal(format!(
            "{}: negative total",
            order.order_id
        )));
    }
    println!(
        "stored {} for {} (partition {partition}, offset {offset})",
        order.order_id, order.customer_id
    );
    store
        .lock()
        .map_err(|_| HandlerError::fatal("the store is poisoned"))?
        .insert(order.order_id.clone(), order);
    Ok(())
}
