//! The client handle: where Kafka and the schema registry are.
//!
//! A [`Client`] is cheap to clone (it is an `Arc`) and holds no connection itself: producers and
//! consumers made from it open their own. There is no global instance; a service builds one at
//! start-up (usually [`Client::from_env`]) and hands clones to whatever needs them.

use std::sync::Arc;

use crate::config::KafkaConfig;
use crate::error::Result;
use crate::model::Model;
use crate::producer::ProducerBuilder;
use crate::registry::SchemaRegistryClient;

/// Where Kafka and the schema registry are; cheap to clone.
///
/// ```
/// use flowodm::{Client, KafkaConfig};
/// use flowodm::registry::SchemaRegistryClient;
///
/// let client = Client::new(
///     KafkaConfig::new("127.0.0.1:9092"),
///     SchemaRegistryClient::new("http://127.0.0.1:8081").unwrap(),
/// );
/// let same = client.clone(); // shares the configuration and the registry's caches
/// assert_eq!(same.kafka().bootstrap_servers(), "127.0.0.1:9092");
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kafka: KafkaConfig,
    registry: SchemaRegistryClient,
}

impl Client {
    /// A client for this Kafka cluster and registry.
    pub fn new(kafka: KafkaConfig, registry: SchemaRegistryClient) -> Self {
        Client {
            inner: Arc::new(Inner { kafka, registry }),
        }
    }

    /// A client configured from the environment: `KAFKA_*` (see [`KafkaConfig::from_env`]) and
    /// `SCHEMA_REGISTRY_*` (see [`SchemaRegistryClient::from_env`]).
    pub fn from_env() -> Result<Self> {
        Ok(Client::new(
            KafkaConfig::from_env()?,
            SchemaRegistryClient::from_env()?,
        ))
    }

    /// A client from layered settings: flowodm's defaults < `file` (TOML or YAML) < the
    /// environment; see [`Settings`](crate::config::Settings).
    pub fn load(file: Option<&std::path::Path>) -> Result<Self> {
        let settings = crate::config::Settings::load(file)?;
        let registry = settings
            .registry
            .ok_or_else(|| crate::Error::Configuration {
                key: "SCHEMA_REGISTRY_URL".into(),
                message:
                    "no schema registry: set SCHEMA_REGISTRY_URL or [registry] url in the file"
                        .into(),
            })?;
        Ok(Client::new(settings.kafka, registry))
    }

    /// The Kafka settings.
    pub fn kafka(&self) -> &KafkaConfig {
        &self.inner.kafka
    }

    /// The schema registry.
    pub fn registry(&self) -> &SchemaRegistryClient {
        &self.inner.registry
    }

    /// A cluster administration handle (topics, groups, lag).
    pub fn admin(&self) -> Result<crate::admin::Admin> {
        crate::admin::Admin::new(self.inner.kafka.clone())
    }

    /// Starts building a consumer of `T`.
    pub fn consumer<T: Model>(&self) -> crate::consumer::ConsumerBuilder<T> {
        crate::consumer::ConsumerBuilder::new(self.clone())
    }

    /// Starts building a producer of `T`.
    pub fn producer<T: Model>(&self) -> ProducerBuilder<T> {
        ProducerBuilder::new(self.clone())
    }
}
