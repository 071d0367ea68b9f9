//! The one error type of flowodm.
//!
//! Every fallible operation returns [`Result<T>`](crate::Result), whose error is [`Error`]. The
//! enum is `#[non_exhaustive]`: match the variants you handle and keep a catch-all arm. Instead of
//! matching, most callers only need the classifiers:
//!
//! - [`Error::kind`] names the area that failed (configuration, registry, Kafka, …) as an
//!   [`ErrorKind`], handy for metrics labels and dead-letter headers.
//! - [`Error::is_retriable`] says whether the same call may succeed if tried again later (a broker
//!   or registry that is briefly away), as opposed to a bad input that will fail every time.
//! - [`Error::is_incompatible_schema`], [`Error::is_not_found`] and the `is_*_not_found`
//!   classifiers pick out the schema registry's common refusals, whichever registry sent them.
//!
//! Errors never carry secrets: configuration errors name the key, not its value.

use std::fmt;

/// A `Result` whose error defaults to flowodm's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in flowodm.
///
/// ```
/// use flowodm::{Error, ErrorKind};
///
/// let err = flowodm::wire::parse(b"\x01\x00\x00\x00\x07payload").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Deserialization);
/// assert!(!err.is_retriable());
/// assert!(matches!(err, Error::Framing { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or has a value that cannot be used.
    #[error("invalid configuration `{key}`: {message}")]
    Configuration {
        /// The setting's name (an environment variable or a librdkafka property).
        key: String,
        /// What is wrong with it.
        message: String,
    },

    /// The schema registry answered with an error.
    #[error("schema registry: {message} (HTTP {status}, error code {error_code})")]
    Registry {
        /// HTTP status of the answer.
        status: u16,
        /// The registry's `error_code` (for example 40401, subject not found); the HTTP status when
        /// the answer carried none.
        error_code: u32,
        /// The registry's `message`, or the body when it was not the registry's JSON.
        message: String,
    },

    /// The schema registry could not be reached, or its answer could not be read.
    #[error("schema registry at {url} could not be reached: {source}")]
    RegistryTransport {
        /// The URL that was called.
        url: String,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// An Avro schema is not valid, or does not fit the model.
    #[error("invalid schema: {message}")]
    Schema {
        /// What is wrong with the schema.
        message: String,
    },

    /// An Avro schema file could not be read, is not JSON, or is not a valid Avro schema.
    ///
    /// JSON syntax errors carry the line and column (counting from 1) where the parser stopped,
    /// so the message reads like a compiler's: `orders.avsc:3:17: invalid JSON: …`.
    #[error("{}: {message}", file_location(path, *line, *column))]
    SchemaFile {
        /// The file.
        path: std::path::PathBuf,
        /// The line of a JSON syntax error.
        line: Option<usize>,
        /// The column of a JSON syntax error.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },

    /// A payload is not in the Confluent wire format (magic byte 0, 4-byte big-endian schema id).
    #[error("not a Confluent wire-format payload: {reason}")]
    Framing {
        /// Why the payload was rejected.
        reason: FramingError,
    },

    /// A payload names a schema id the registry does not know.
    #[error("unknown schema id {id}: the registry has no schema with that id")]
    UnknownSchema {
        /// The id in the payload's header.
        id: u32,
    },

    /// A value could not be encoded.
    #[error("serialization failed: {message}")]
    Serialization {
        /// What went wrong.
        message: String,
    },

    /// A payload could not be decoded into the model.
    #[error("deserialization failed: {message}")]
    Deserialization {
        /// What went wrong.
        message: String,
    },

    /// A consumed message could not be decoded; `raw` keeps its bytes and where it came from, so
    /// it can go to a dead-letter topic.
    #[error("message at {}:{}@{}: {source}", raw.topic, raw.partition, raw.offset)]
    Decode {
        /// The message as it came from Kafka.
        raw: Box<crate::consumer::RawMessage>,
        /// Why it could not be decoded.
        #[source]
        source: Box<Error>,
    },

    /// The Kafka client reported an error.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),

    /// No Kafka broker could be reached for longer than the client's `unreachable_timeout`
    /// (see [`ConsumerBuilder::unreachable_timeout`](crate::consumer::ConsumerBuilder::unreachable_timeout)
    /// and [`ProducerBuilder::unreachable_timeout`](crate::producer::ProducerBuilder::unreachable_timeout)):
    /// the cluster is down, or the bootstrap servers are wrong. Retriable: the client keeps
    /// reconnecting, and the same call succeeds once a broker answers.
    #[error("no Kafka broker reachable for {:.1} s: {detail}", down_for.as_secs_f64())]
    BrokersUnreachable {
        /// How long no broker has been reachable.
        down_for: std::time::Duration,
        /// What librdkafka last reported (for example `1/1 brokers are down`).
        detail: String,
    },

    /// Messages sent with [`send_and_forget`](crate::producer::Producer::send_and_forget) were
    /// not delivered; returned by the next [`flush`](crate::producer::Producer::flush). Those
    /// messages are gone from the producer: send them again to store them.
    #[error("{count} message(s) sent with send_and_forget were not delivered; the first failed with: {first}")]
    Undelivered {
        /// How many failed since the previous flush.
        count: u64,
        /// The first one's error.
        #[source]
        first: Box<Error>,
    },
}

fn file_location(path: &std::path::Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", path.display()),
        (Some(l), None) => format!("{}:{l}", path.display()),
        _ => path.display().to_string(),
    }
}

/// Why a payload is not in the Confluent wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingError {
    /// The payload is empty.
    Empty,
    /// The first byte is not the magic byte 0.
    BadMagicByte(u8),
    /// The payload ends before the 4-byte schema id does.
    Truncated {
        /// How many bytes the payload has.
        len: usize,
    },
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::Empty => f.write_str("the payload is empty"),
            FramingError::BadMagicByte(b) => {
                write!(f, "the first byte is {b:#04x}, not the magic byte 0x00")
            }
            FramingError::Truncated { len } => write!(
                f,
                "the payload has {len} byte(s), fewer than the 5 of the header (magic byte + schema id)"
            ),
        }
    }
}

/// The area an [`Error`] comes from; see [`Error::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Invalid or missing configuration.
    Configuration,
    /// The schema registry refused a request or could not be reached.
    Registry,
    /// An invalid schema.
    Schema,
    /// Encoding a value failed.
    Serialization,
    /// Decoding a payload failed.
    Deserialization,
    /// The Kafka client failed.
    Kafka,
    /// No Kafka broker could be reached.
    Connection,
}

impl ErrorKind {
    /// A short, stable, lower-case name, suitable for metric labels and message headers.
    ///
    /// ```
    /// assert_eq!(flowodm::ErrorKind::Deserialization.as_str(), "deserialization");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Configuration => "configuration",
            ErrorKind::Registry => "registry",
            ErrorKind::Schema => "schema",
            ErrorKind::Serialization => "serialization",
            ErrorKind::Deserialization => "deserialization",
            ErrorKind::Kafka => "kafka",
            ErrorKind::Connection => "connection",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The area this error comes from.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Configuration { .. } => ErrorKind::Configuration,
            Error::Registry { .. } | Error::RegistryTransport { .. } => ErrorKind::Registry,
            Error::Schema { .. } | Error::SchemaFile { .. } => ErrorKind::Schema,
            Error::Serialization { .. } => ErrorKind::Serialization,
            Error::Framing { .. } | Error::Deserialization { .. } | Error::UnknownSchema { .. } => {
                ErrorKind::Deserialization
            }
            Error::Kafka(_) => ErrorKind::Kafka,
            Error::BrokersUnreachable { .. } => ErrorKind::Connection,
            Error::Decode { source, .. } => source.kind(),
            Error::Undelivered { first, .. } => first.kind(),
        }
    }

    /// Whether trying the same operation again later may succeed.
    ///
    /// True for an unreachable registry or Kafka cluster, a registry 5xx answer, and Kafka errors
    /// that librdkafka itself marks retriable; false for bad input (an invalid schema, a corrupt payload, a
    /// configuration mistake, a 4xx answer), which fails the same way every time.
    ///
    /// ```
    /// let err = flowodm::Error::Registry { status: 503, error_code: 50001, message: "store".into() };
    /// assert!(err.is_retriable());
    /// let err = flowodm::Error::Registry { status: 404, error_code: 40401, message: "no".into() };
    /// assert!(!err.is_retriable());
    /// ```
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::RegistryTransport { .. } | Error::BrokersUnreachable { .. } => true,
            Error::Decode { source, .. } => source.is_retriable(),
            // Sending the lost messages again may succeed where the first failure was passing.
            Error::Undelivered { first, .. } => first.is_retriable(),
            Error::Registry { status, .. } => *status >= 500 || *status == 429,
            Error::Kafka(e) => e
                .rdkafka_error_code()
                .map(is_retriable_code)
                .unwrap_or(false),
            _ => false,
        }
    }

    /// The registry's `error_code`, if this error is a registry answer.
    ///
    /// ```
    /// let err = flowodm::Error::Registry { status: 404, error_code: 40401, message: "no".into() };
    /// assert_eq!(err.registry_error_code(), Some(40401));
    /// ```
    pub fn registry_error_code(&self) -> Option<u32> {
        match self {
            Error::Registry { error_code, .. } => Some(*error_code),
            _ => None,
        }
    }

    /// Whether the registry refused a schema because it breaks the subject's compatibility
    /// level.
    ///
    /// Registries report this with HTTP 409 and error code `409` (Confluent Platform 7.x,
    /// Karapace, Redpanda, Apicurio) or `40901` (Confluent Platform 8.0.4, 8.1.2, 8.2.0 and
    /// later); both count. Other codes sent with HTTP 409 do not.
    ///
    /// ```
    /// let old = flowodm::Error::Registry { status: 409, error_code: 409, message: "incompatible".into() };
    /// let new = flowodm::Error::Registry { status: 409, error_code: 40901, message: "incompatible".into() };
    /// assert!(old.is_incompatible_schema() && new.is_incompatible_schema());
    /// assert!(!old.is_retriable());
    /// ```
    pub fn is_incompatible_schema(&self) -> bool {
        use crate::registry::error_code::{INCOMPATIBLE_SCHEMA, INCOMPATIBLE_SCHEMA_LEGACY};
        matches!(
            self,
            Error::Registry { error_code, .. }
                if *error_code == INCOMPATIBLE_SCHEMA || *error_code == INCOMPATIBLE_SCHEMA_LEGACY
        )
    }

    /// Whether the registry answered that something does not exist: HTTP 404, or any `404xx`
    /// error code (some registries send those with another status).
    ///
    /// ```
    /// let err = flowodm::Error::Registry { status: 404, error_code: 40408, message: "no config".into() };
    /// assert!(err.is_not_found());
    /// ```
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::Registry { status, error_code, .. }
                if *status == 404 || (40400..40500).contains(error_code)
        )
    }

    /// Whether the registry answered that the subject does not exist (error code 40401).
    ///
    /// ```
    /// let err = flowodm::Error::Registry { status: 404, error_code: 40401, message: "no".into() };
    /// assert!(err.is_subject_not_found());
    /// ```
    pub fn is_subject_not_found(&self) -> bool {
        self.registry_error_code() == Some(crate::registry::error_code::SUBJECT_NOT_FOUND)
    }

    /// Whether the registry answered that the subject has no such version (error code 40402).
    ///
    /// ```
    /// let err = flowodm::Error::Registry { status: 404, error_code: 40402, message: "no".into() };
    /// assert!(err.is_version_not_found());
    /// ```
    pub fn is_version_not_found(&self) -> bool {
        self.registry_error_code() == Some(crate::registry::error_code::VERSION_NOT_FOUND)
    }

    /// Whether the registry answered that there is no schema with that id, or that the schema
    /// is not registered under the subject (error code 40403).
    ///
    /// ```
    /// let err = flowodm::Error::Registry { status: 404, error_code: 40403, message: "no".into() };
    /// assert!(err.is_schema_not_found());
    /// ```
    pub fn is_schema_not_found(&self) -> bool {
        self.registry_error_code() == Some(crate::registry::error_code::SCHEMA_NOT_FOUND)
    }

    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Configuration {
            key: key.into(),
            message: message.into(),
        }
    }
}

fn is_retriable_code(code: rdkafka::types::RDKafkaErrorCode) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        code,
        C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::MessageTimedOut
            | C::RequestTimedOut
            | C::QueueFull
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NetworkException
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::OperationTimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn undelivered_messages_are_as_retriable_and_of_the_kind_of_their_first_failure() {
        let down = Error::BrokersUnreachable {
            down_for: std::time::Duration::from_secs(6),
            detail: "1/1 brokers are down".into(),
        };
        let undelivered = Error::Undelivered {
            count: 3,
            first: Box::new(down),
        };
        assert!(undelivered.is_retriable());
        assert_eq!(undelivered.kind(), ErrorKind::Connection);
        assert!(undelivered
            .to_string()
            .starts_with("3 message(s) sent with send_and_forget were not delivered"));
        let rejected = Error::Undelivered {
            count: 1,
            first: Box::new(Error::Kafka(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge,
            ))),
        };
        assert!(!rejected.is_retriable());
    }

    #[test]
    fn kinds_are_stable_names() {
        let err = Error::config("KAFKA_BOOTSTRAP_SERVERS", "is not set");
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert_eq!(err.kind().to_string(), "configuration");
        assert_eq!(
            err.to_string(),
            "invalid configuration `KAFKA_BOOTSTRAP_SERVERS`: is not set"
        );
    }

    #[test]
    fn kafka_errors_are_classified_by_librdkafka_code() {
        let transient = Error::from(KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageTimedOut,
        ));
        assert!(transient.is_retriable());
        assert_eq!(transient.kind(), ErrorKind::Kafka);
        let auth = Error::from(KafkaError::MessageProduction(
            RDKafkaErrorCode::Authentication,
        ));
        assert!(!auth.is_retriable());
    }

    #[test]
    fn unreachable_brokers_are_a_retriable_connection_error() {
        let err = Error::BrokersUnreachable {
            down_for: std::time::Duration::from_millis(5_300),
            detail: "1/1 brokers are down".into(),
        };
        assert!(err.is_retriable());
        assert_eq!(err.kind(), ErrorKind::Connection);
        assert_eq!(err.kind().as_str(), "connection");
        assert_eq!(
            err.to_string(),
            "no Kafka broker reachable for 5.3 s: 1/1 brokers are down"
        );
    }

    #[test]
    fn framing_errors_explain_themselves() {
        let err = Error::Framing {
            reason: FramingError::Truncated { len: 3 },
        };
        assert_eq!(
            err.to_string(),
            "not a Confluent wire-format payload: the payload has 3 byte(s), fewer than the 5 of \
             the header (magic byte + schema id)"
        );
        assert_eq!(err.kind(), ErrorKind::Deserialization);
    }
}
