//! A model's values as Kafka message payloads: Avro in the Confluent wire format, with the
//! schema in a registry.
//!
//! [`Codec`] is what a producer and a consumer of one [`Model`] share:
//!
//! - **Encoding** registers the model's schema under its subject on first use (or, with
//!   [`CodecConfig::auto_register`] off, looks it up and fails if it is missing), then frames each
//!   value as `0x00`, the schema id, and the Avro datum.
//! - **Decoding** reads the writer's schema id from the payload, fetches that schema from the
//!   registry the first time it is seen, compiles a [`Resolution`](crate::avro::resolve::Resolution) against the model's schema
//!   and keeps it; every later payload with that id decodes without touching the network. A
//!   payload written with the model's own schema decodes through the generated decoder directly.
//!
//! Payloads that are not framed, carry an id the registry does not know, or end early are typed
//! errors ([`Error::Framing`], [`Error::UnknownSchema`], [`Error::Deserialization`]).

use std::marker::PhantomData;

use tokio::sync::OnceCell;

use crate::avro::{from_avro_resolved, Avro, ResolutionCache, TypeSchema};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::registry::{Schema, SchemaRegistryClient, SubjectNameStrategy};
use crate::wire;

/// How a [`Codec`] uses the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodecConfig {
    /// Register the model's schema on first use (default `true`). With `false` the schema must
    /// already be registered under the subject; encoding fails with an error that says so.
    pub auto_register: bool,
    /// How the subject is named (default: `{topic}-value`, or the model's `subject`).
    pub subject_strategy: SubjectNameStrategy,
    /// Ask the registry to normalize the schema when registering or looking it up.
    pub normalize: bool,
    /// A subject that wins over the strategy and the model's `subject`.
    pub subject: Option<String>,
}

impl Default for CodecConfig {
    fn default() -> Self {
        CodecConfig {
            auto_register: true,
            subject_strategy: SubjectNameStrategy::TopicName,
            normalize: false,
            subject: None,
        }
    }
}

impl CodecConfig {
    /// Sets [`auto_register`](CodecConfig::auto_register).
    pub fn auto_register(mut self, on: bool) -> Self {
        self.auto_register = on;
        self
    }

    /// Sets an explicit [`subject`](CodecConfig::subject).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets [`subject_strategy`](CodecConfig::subject_strategy).
    pub fn subject_strategy(mut self, strategy: SubjectNameStrategy) -> Self {
        self.subject_strategy = strategy;
        self
    }
}

/// Encodes and decodes a model's values as Confluent wire-format payloads.
///
/// ```no_run
/// # async fn demo() -> flowodm::Result<()> {
/// use flowodm::{codec::Codec, registry::SchemaRegistryClient, Model};
///
/// #[derive(Model, Debug, PartialEq)]
/// #[flowodm(topic = "orders", key = "order_id", namespace = "com.example")]
/// struct Order { order_id: String, total_cents: i64 }
///
/// let codec = Codec::<Order>::new(SchemaRegistryClient::from_env()?)?;
/// let order = Order { order_id: "ORD-1".into(), total_cents: 1250 };
/// let payload = codec.encode(&order).await?;          // registers the schema the first time
/// assert_eq!(codec.decode(&payload).await?, order);  // fetches the writer schema once per id
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Codec<T> {
    registry: SchemaRegistryClient,
    config: CodecConfig,
    subject: String,
    schema: &'static TypeSchema,
    own_id: OnceCell<u32>,
    plans: ResolutionCache,
    /// Writer schemas that cannot be read as `T`, by id, with why: an id never changes
    /// meaning, so each message written with one fails at once, without asking the registry.
    refused: std::sync::Mutex<std::collections::HashMap<u32, String>>,
    /// Held while a writer schema is fetched: tasks that meet the same new id at once (a
    /// loop's lanes) ask the registry once when it answers (after a failure, each asks in
    /// turn; fetches of different ids also wait for each other).
    preparing: tokio::sync::Mutex<()>,
    _model: PhantomData<fn() -> T>,
}

impl<T: Model> Codec<T> {
    /// A codec with the default [`CodecConfig`].
    pub fn new(registry: SchemaRegistryClient) -> Result<Self> {
        Self::with_config(registry, CodecConfig::default())
    }

    /// A codec with `config`. Fails if the model's schema is invalid or does not match its
    /// `schema_file`.
    pub fn with_config(registry: SchemaRegistryClient, config: CodecConfig) -> Result<Self> {
        let schema = T::value_schema()?;
        let settings = T::SETTINGS;
        let subject = match (&config.subject, config.subject_strategy, settings.subject) {
            (Some(subject), _, _) => subject.clone(),
            (None, SubjectNameStrategy::TopicName, Some(explicit)) => explicit.to_string(),
            (None, strategy, _) => strategy.subject(settings.topic, false, &record_name(schema)),
        };
        Ok(Codec {
            registry,
            config,
            subject,
            schema,
            own_id: OnceCell::new(),
            plans: ResolutionCache::default(),
            refused: Default::default(),
            preparing: Default::default(),
            _model: PhantomData,
        })
    }
}

impl<T: Avro + 'static> Codec<T> {
    /// A codec for any Avro type under an explicit subject, such as a message key's
    /// `{topic}-key`.
    ///
    /// ```no_run
    /// # fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let keys = flowodm::codec::Codec::<String>::for_subject(registry, "orders-key", Default::default())?;
    /// # Ok(()) }
    /// ```
    pub fn for_subject(
        registry: SchemaRegistryClient,
        subject: impl Into<String>,
        config: CodecConfig,
    ) -> Result<Self> {
        Ok(Codec {
            registry,
            config,
            subject: subject.into(),
            schema: crate::avro::schema_of::<T>()?,
            own_id: OnceCell::new(),
            plans: ResolutionCache::default(),
            refused: Default::default(),
            preparing: Default::default(),
            _model: PhantomData,
        })
    }

    /// The registry the codec uses.
    pub fn registry(&self) -> &SchemaRegistryClient {
        &self.registry
    }

    /// The subject the schema lives under.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The model's schema.
    pub fn schema(&self) -> &'static TypeSchema {
        self.schema
    }

    /// The registry id of the model's schema: registered (or looked up) on the first call.
    pub async fn schema_id(&self) -> Result<u32> {
        self.own_id
            .get_or_try_init(|| async {
                let schema = Schema::avro(self.schema.json());
                if self.config.auto_register {
                    self.registry
                        .register_schema(&self.subject, &schema, self.config.normalize)
                        .await
                } else {
                    match self
                        .registry
                        .lookup(&self.subject, &schema, self.config.normalize)
                        .await
                    {
                        Ok(found) => Ok(found.id),
                        Err(e) if e.is_not_found() => Err(Error::Schema {
                            message: format!(
                                "the schema of {} is not registered under subject `{}`, and \
                                 auto-registration is off: register it (for example with \
                                 `flowodm upload-schema`) or turn auto_register on",
                                std::any::type_name::<T>(),
                                self.subject
                            ),
                        }),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
            .copied()
    }

    /// The schema id if it has been resolved already (no network).
    pub fn known_schema_id(&self) -> Option<u32> {
        self.own_id.get().copied()
    }

    /// Encodes `value` as a new framed payload.
    pub async fn encode(&self, value: &T) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(64);
        self.encode_into(value, &mut buf).await?;
        Ok(buf)
    }

    /// Appends `value`'s framed payload to `buf` (reuse one buffer for many messages).
    pub async fn encode_into(&self, value: &T, buf: &mut Vec<u8>) -> Result<()> {
        let id = self.schema_id().await?;
        Self::encode_with_id(id, value, buf)
    }

    /// Appends the framed payload for a known schema id, without awaiting anything: the hot
    /// path once [`schema_id`](Codec::schema_id) has been resolved.
    #[inline]
    pub fn encode_with_id(schema_id: u32, value: &T, buf: &mut Vec<u8>) -> Result<()> {
        wire::write_header(buf, schema_id);
        value.encode(buf)
    }

    /// Decodes a framed payload, fetching and compiling the writer's schema the first time its id
    /// is seen.
    pub async fn decode(&self, payload: &[u8]) -> Result<T> {
        // Decoding first finds the plan with one look-up in the common case, a known schema.
        match self.decode_prepared(payload) {
            Err(Error::UnknownSchema { id }) => {
                self.prepare(id).await?;
                self.decode_prepared(payload)
            }
            decoded => decoded,
        }
    }

    /// Whether the plan for this writer schema id is compiled already (no network needed).
    #[inline]
    pub fn is_prepared(&self, schema_id: u32) -> bool {
        self.plans.with(schema_id, |_| ()).is_some()
    }

    /// Fetches and compiles the plan for a writer schema id, so that
    /// [`decode_prepared`](Codec::decode_prepared) can decode its payloads synchronously.
    pub async fn prepare(&self, schema_id: u32) -> Result<()> {
        if self.plans.get(schema_id).is_some() {
            return Ok(());
        }
        let refused = |codec: &Self| {
            codec
                .refused_lock()
                .get(&schema_id)
                .map(|message| Error::Schema {
                    message: message.clone(),
                })
        };
        if let Some(e) = refused(self) {
            return Err(e);
        }
        let _one_at_a_time = self.preparing.lock().await;
        if self.plans.get(schema_id).is_some() {
            return Ok(());
        }
        if let Some(e) = refused(self) {
            return Err(e);
        }
        let writer = match self.registry.schema(schema_id).await {
            Ok(w) => w,
            Err(e) if e.is_not_found() => return Err(Error::UnknownSchema { id: schema_id }),
            Err(e) => return Err(e),
        };
        if writer.schema_type != crate::registry::SchemaType::Avro {
            return Err(self.refuse(
                schema_id,
                format!(
                    "the writer schema {schema_id} is a {} schema, not Avro",
                    writer.schema_type
                ),
            ));
        }
        // A writer schema may use named types of other subjects (schema references), as
        // Confluent's serializers for Java and Python can register them.
        let references = self.registry.referenced_schemas(&writer.references).await?;
        match self
            .plans
            .get_or_compile_with_references::<T>(schema_id, &writer.text, &references)
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.refuse(schema_id, e.to_string())),
        }
    }

    fn refused_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u32, String>> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers that the writer schema `schema_id` cannot be read, and why.
    fn refuse(&self, schema_id: u32, message: String) -> Error {
        self.refused_lock().insert(schema_id, message.clone());
        Error::Schema { message }
    }

    /// Decodes a payload whose writer schema was already prepared; a payload with an unprepared
    /// id is an [`Error::UnknownSchema`] (call [`decode`](Codec::decode) instead).
    #[inline]
    pub fn decode_prepared(&self, payload: &[u8]) -> Result<T> {
        let framed = wire::parse(payload)?;
        self.plans
            .with(framed.schema_id, |plan| {
                from_avro_resolved(framed.datum, plan)
            })
            .unwrap_or(Err(Error::UnknownSchema {
                id: framed.schema_id,
            }))
    }
}

fn record_name(schema: &TypeSchema) -> String {
    serde_json::from_str::<serde_json::Value>(schema.canonical_form())
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
        .unwrap_or_default()
}
