//! Helpers for flowodm's integration tests, which run against the services of `dev/stack`
//! (or any Kafka, registry and PostgreSQL named by the same environment variables).
//!
//! A test that needs a service and does not find its variable fails with a message that says
//! how to start the stack; it never passes by skipping.

pub mod interop;
pub mod recorder;

use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

/// The value of a variable that `dev/stack env` prints; panics with a hint when it is unset.
pub fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set. Integration tests run against real services: start them with \
             `eval \"$(dev/stack up)\"`, or run the whole suite with `dev/test` (see docs/TESTING.md)"
        ),
    }
}

/// The PLAINTEXT bootstrap servers (`KAFKA_BOOTSTRAP_SERVERS`).
pub fn bootstrap_servers() -> String {
    env("KAFKA_BOOTSTRAP_SERVERS")
}

/// The schema registry's API root (`SCHEMA_REGISTRY_URL`).
pub fn registry_url() -> String {
    env("SCHEMA_REGISTRY_URL")
}

/// The PostgreSQL connection string (`DATABASE_URL`).
pub fn database_url() -> String {
    env("DATABASE_URL")
}

/// A name no other test run uses: `{prefix}-{random}`.
pub fn unique_name(prefix: &str) -> String {
    let suffix = Alphanumeric
        .sample_string(&mut rand::rng(), 10)
        .to_lowercase();
    format!("{prefix}-{suffix}")
}

/// A plaintext client configuration for the stack's broker.
pub fn plaintext_config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap_servers());
    c
}

/// Creates a topic with `partitions` partitions on the stack's broker and waits for it.
pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = plaintext_config()
        .create()
        .expect("admin client for the stack's broker");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&topic], &opts)
        .await
        .unwrap_or_else(|e| panic!("creating topic {name}: {e}"));
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// Creates a uniquely named topic and returns its name.
pub async fn new_topic(prefix: &str, partitions: i32) -> String {
    let name = unique_name(prefix);
    create_topic(&name, partitions).await;
    name
}
