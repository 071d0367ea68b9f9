//! A client for the Confluent Schema Registry REST API.
//!
//! # Concepts
//!
//! A schema registry stores schemas under *subjects* and gives each distinct schema a global
//! integer *id*. Producers register the schema they write with and put its id in every message
//! ([`wire`](crate::wire)); consumers fetch the writer's schema by that id, so they can read
//! messages written with any schema the registry knows.
//!
//! - **Subjects** name a line of evolving schemas. Which subject a topic's schemas go to is the
//!   [`SubjectNameStrategy`]; by default `{topic}-value` and `{topic}-key`.
//! - **Versions**: each subject keeps an ordered list of versions (1, 2, 3, …). Registering a
//!   schema the subject already has returns its existing id and adds no version; the same schema
//!   under another subject gets the *same* id.
//! - **Compatibility**: before it adds a version, the registry checks it against the earlier
//!   ones with the subject's [`CompatibilityLevel`] (the registry-wide level unless the subject
//!   has its own) and refuses it with HTTP 409 when it breaks the rule; see
//!   [`Error::is_incompatible_schema`]. [`check_compatibility`] asks the same question without
//!   registering.
//! - **References**: a schema can use types registered under other subjects, listed as
//!   [`SchemaReference`]s (subject and version) next to its text.
//! - **Deletes** come in two steps. A *soft* delete hides a version (or a whole subject) from
//!   listings but keeps its schema readable by id, so old messages stay readable; a *hard*
//!   (`permanent=true`) delete, allowed only after a soft one, removes it for good.
//! - **Modes** ([`Mode`]) switch the registry, or one subject, to read-only or to import.
//!
//! The client speaks the API that Confluent Schema Registry, Karapace, Redpanda and Apicurio
//! Registry's `ccompat` endpoint share; point it at the API root, for example
//! `http://127.0.0.1:8081` or `http://127.0.0.1:8080/apis/ccompat/v7`. Where registries differ,
//! it accepts every documented variant: both `409` and `40901` mean an incompatible schema, and a
//! config answer may name its level `compatibilityLevel` or `compatibility`.
//!
//! # Caching
//!
//! An id always names the same schema, so [`schema`] and [`schema_by_id`] fetch each id once.
//! [`register_schema`] and [`lookup`] remember their answer per subject and schema, so a
//! producer that registers its schema before every send calls the registry once. Clones of a
//! client share its caches; deleting through the client forgets the subject's entries. The
//! caches hold 1000 entries each by default
//! ([`cache_capacity`](SchemaRegistryClientBuilder::cache_capacity)).
//!
//! # Errors and retries
//!
//! Errors keep the HTTP status and the registry's `error_code` ([`Error::Registry`]); the
//! [`error_code`] module names the codes, and [`Error`] has classifiers for the common ones
//! ([`is_incompatible_schema`](Error::is_incompatible_schema),
//! [`is_subject_not_found`](Error::is_subject_not_found),
//! [`is_version_not_found`](Error::is_version_not_found),
//! [`is_schema_not_found`](Error::is_schema_not_found)). An unreachable registry is
//! [`Error::RegistryTransport`].
//!
//! Requests that fail in a way that may pass are retried with exponential backoff: connection
//! failures and timeouts, 5xx answers, and 429 Too Many Requests (honouring `Retry-After`).
//! Other 4xx answers fail at once. Retrying a registration is safe: registering a schema the
//! subject already holds returns its id and adds nothing. By default a request is tried up to 4 times (3 retries),
//! waiting about 100 ms, 200 ms and 400 ms; see [`SchemaRegistryClientBuilder::max_retries`]
//! and [`SchemaRegistryClientBuilder::retry_backoff`].
//!
//! # Environment
//!
//! [`SchemaRegistryClient::from_env`] reads:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SCHEMA_REGISTRY_URL` | the API root; `user:password@` in it is used for basic auth | required |
//! | `SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO` | basic auth as `user:password` | unset |
//! | `SCHEMA_REGISTRY_API_KEY`, `SCHEMA_REGISTRY_API_SECRET` | basic auth with an API key and secret (both or neither) | unset |
//! | `SCHEMA_REGISTRY_BEARER_TOKEN` | `Authorization: Bearer` token; not together with basic auth | unset |
//! | `SCHEMA_REGISTRY_SSL_CA_LOCATION` | PEM file of the CA certificates to trust, instead of the system's | the system's CA store |
//! | `SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION` | PEM client certificate, for mutual TLS | unset |
//! | `SCHEMA_REGISTRY_SSL_KEY_LOCATION` | its private key, unencrypted PKCS#8 PEM | unset |
//!
//! Connect timeout (10 s), request timeout (30 s), retries and cache size are set in code with
//! [`SchemaRegistryClientBuilder`], which can also start from the environment
//! ([`SchemaRegistryClientBuilder::from_env`]).
//!
//! # Secrets
//!
//! Passwords and tokens are kept in [`Secret`](crate::Secret): the client's `Debug` output
//! shows the user name at most, and errors never contain credentials (credentials in the URL
//! are moved out of it before it is shown anywhere).
//!
//! ```no_run
//! # async fn demo() -> flowodm::Result<()> {
//! use flowodm::registry::{CompatibilityLevel, Schema, SchemaRegistryClient, Version};
//!
//! let registry = SchemaRegistryClient::from_env()?;
//! registry
//!     .set_subject_compatibility("orders-value", CompatibilityLevel::Backward)
//!     .await?;
//! let v2 = Schema::avro(r#"{"type":"record","name":"Order","fields":[
//!     {"name":"id","type":"string"},
//!     {"name":"note","type":"string","default":""}]}"#);
//! let check = registry.check_compatibility("orders-value", Version::Latest, &v2).await?;
//! if check.is_compatible {
//!     let id = registry.register_schema("orders-value", &v2, false).await?;
//!     println!("registered as id {id}");
//! }
//! # Ok(()) }
//! ```
//!
//! [`check_compatibility`]: SchemaRegistryClient::check_compatibility
//! [`schema`]: SchemaRegistryClient::schema
//! [`schema_by_id`]: SchemaRegistryClient::schema_by_id
//! [`register_schema`]: SchemaRegistryClient::register_schema
//! [`lookup`]: SchemaRegistryClient::lookup

mod builder;
mod cache;
mod client;
mod config;
mod http;
mod subject;
mod types;

#[cfg(doc)]
use crate::Error;

pub use builder::SchemaRegistryClientBuilder;
pub use client::SchemaRegistryClient;
pub use subject::SubjectNameStrategy;
pub use types::{
    CompatibilityCheck, CompatibilityLevel, Mode, Schema, SchemaReference, SchemaType,
    SubjectVersion, SubjectVersionRef, Version,
};

/// The registry's `error_code` values ([`Error::Registry`]), as Confluent defines them.
///
/// ```
/// use flowodm::registry::error_code;
/// # let err = flowodm::Error::Registry { status: 404, error_code: 40402, message: String::new() };
/// if err.registry_error_code() == Some(error_code::VERSION_NOT_FOUND) {
///     // …
/// }
/// ```
pub mod error_code {
    /// 404: the subject does not exist (or every version of it is soft-deleted).
    pub const SUBJECT_NOT_FOUND: u32 = 40401;
    /// 404: the subject has no such version.
    pub const VERSION_NOT_FOUND: u32 = 40402;
    /// 404: no schema with that id, or the schema is not registered under the subject.
    pub const SCHEMA_NOT_FOUND: u32 = 40403;
    /// 404: the subject was soft-deleted already; delete it with `permanent=true`.
    pub const SUBJECT_SOFT_DELETED: u32 = 40404;
    /// 404: a permanent delete of a subject that was not soft-deleted first.
    pub const SUBJECT_NOT_SOFT_DELETED: u32 = 40405;
    /// 404: the version was soft-deleted already; delete it with `permanent=true`.
    pub const VERSION_SOFT_DELETED: u32 = 40406;
    /// 404: a permanent delete of a version that was not soft-deleted first.
    pub const VERSION_NOT_SOFT_DELETED: u32 = 40407;
    /// 404: the subject has no compatibility level of its own.
    pub const SUBJECT_COMPATIBILITY_NOT_CONFIGURED: u32 = 40408;
    /// 404: the subject has no mode of its own.
    pub const SUBJECT_MODE_NOT_CONFIGURED: u32 = 40409;
    /// 409: the schema breaks the subject's compatibility level, as Confluent Platform 7.x,
    /// Karapace, Redpanda and Apicurio report it.
    pub const INCOMPATIBLE_SCHEMA_LEGACY: u32 = 409;
    /// 409: the schema breaks the subject's compatibility level, as Confluent Platform 8.0.4,
    /// 8.1.2, 8.2.0 and later report it.
    pub const INCOMPATIBLE_SCHEMA: u32 = 40901;
    /// 422: the schema is not valid.
    pub const INVALID_SCHEMA: u32 = 42201;
    /// 422: the version is not a number, `latest` or `-1`.
    pub const INVALID_VERSION: u32 = 42202;
    /// 422: not one of the seven compatibility levels.
    pub const INVALID_COMPATIBILITY_LEVEL: u32 = 42203;
    /// 422: not a mode.
    pub const INVALID_MODE: u32 = 42204;
    /// 422: not allowed now, for example a registration in read-only mode.
    pub const OPERATION_NOT_PERMITTED: u32 = 42205;
    /// 422: the version is referenced by other schemas and cannot be deleted.
    pub const REFERENCE_EXISTS: u32 = 42206;
    /// 500: the registry could not write to its store.
    pub const STORE_ERROR: u32 = 50001;
    /// 500: the registry's operation timed out.
    pub const OPERATION_TIMEOUT: u32 = 50002;
    /// 500: forwarding the request to the leader failed.
    pub const REQUEST_FORWARDING_FAILED: u32 = 50003;
    /// 500: the registry has no leader.
    pub const UNKNOWN_LEADER: u32 = 50004;
}
