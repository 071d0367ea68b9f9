//! Errors as one line plus a hint, and which exit status they mean.

use std::fmt;

use flowodm::rdkafka::error::KafkaError;
use flowodm::rdkafka::types::RDKafkaErrorCode;
use flowodm::registry::error_code;

/// The hint for a file that is JSON but not a valid Avro schema.
pub const AVRO_SPEC_HINT: &str = "see the Avro specification's \"Schema Declaration\" section";

/// The hint for a file that is not JSON.
pub const JSON_HINT: &str = "an .avsc file holds one Avro schema written as JSON";

/// An error that knows how the user can fix it.
#[derive(Debug)]
pub struct Hinted {
    message: String,
    hint: String,
}

impl Hinted {
    /// An error with its hint.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

fn flowodm_error(error: &anyhow::Error) -> Option<&flowodm::Error> {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<flowodm::Error>())
}

/// The exit status an error means: 1 for a refused (incompatible) schema, 2 for the rest.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    match flowodm_error(error) {
        Some(e) if e.is_incompatible_schema() => 1,
        _ => 2,
    }
}

/// A hint for a failed command, when there is a likely fix.
pub fn hint(error: &anyhow::Error) -> Option<String> {
    // A Hinted added with `.context(...)` is only found by downcasting the error itself.
    let hinted = error
        .downcast_ref::<Hinted>()
        .or_else(|| error.chain().find_map(|e| e.downcast_ref::<Hinted>()));
    if let Some(h) = hinted {
        return Some(h.hint.clone());
    }
    let err = flowodm_error(error)?;
    let hint = match err {
        flowodm::Error::RegistryTransport { .. } => {
            "check --registry-url (or SCHEMA_REGISTRY_URL): is the registry running, and is the URL \
             its API root (for Apicurio, …/apis/ccompat/v7)?"
        }
        flowodm::Error::Registry { status: 401 | 403, .. } => {
            "check the registry credentials: --registry-user-info or SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"
        }
        flowodm::Error::Registry { error_code: code, .. } => match *code {
            error_code::SUBJECT_NOT_FOUND => "list the subjects with `flowodm list-subjects`",
            error_code::VERSION_NOT_FOUND => {
                "leave out --version (or say --version latest) for the newest version"
            }
            error_code::SUBJECT_SOFT_DELETED => {
                "it is soft-deleted already; add --permanent to delete it for good"
            }
            error_code::INVALID_SCHEMA => "the registry refused the schema as invalid Avro",
            _ if err.is_incompatible_schema() => {
                "the schema breaks the subject's compatibility level; make the change compatible \
                 (e.g. give new fields defaults) or choose another level with --compatibility"
            }
            _ => return None,
        },
        flowodm::Error::Configuration { key, .. } => {
            return Some(match key.as_str() {
                "KAFKA_BOOTSTRAP_SERVERS" => "pass --bootstrap-servers or set KAFKA_BOOTSTRAP_SERVERS".into(),
                "SCHEMA_REGISTRY_URL" => "pass --registry-url or set SCHEMA_REGISTRY_URL".into(),
                k if k.starts_with("KAFKA_SASL") || k.starts_with("KAFKA_SECURITY") => {
                    "check --security-protocol, --sasl-mechanism, --sasl-username and --sasl-password".into()
                }
                k if k.starts_with("SCHEMA_REGISTRY") => format!("check {k} (or --registry-user-info)"),
                k => format!("check the setting `{k}` (flag, environment variable or --config file)"),
            })
        }
        flowodm::Error::Kafka(e) => return kafka_hint(e),
        flowodm::Error::SchemaFile { line: Some(_), .. } => JSON_HINT,
        flowodm::Error::SchemaFile { message, .. } if message.starts_with("cannot read") => {
            "check the path given to --avro or --dir"
        }
        flowodm::Error::SchemaFile { .. } => AVRO_SPEC_HINT,
        _ => return None,
    };
    Some(hint.to_string())
}

fn kafka_hint(e: &KafkaError) -> Option<String> {
    let unreachable = "check --bootstrap-servers (or KAFKA_BOOTSTRAP_SERVERS): is Kafka running \
                       there, and do --security-protocol and the SASL flags match its listener?";
    let code = match e {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    let hint = match code {
        Some(RDKafkaErrorCode::TopicAlreadyExists) => {
            "choose another name, or look at it with `flowodm topics describe`"
        }
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            "list the topics with `flowodm topics list`"
        }
        Some(RDKafkaErrorCode::InvalidReplicationFactor) => {
            "--replication cannot exceed the number of brokers"
        }
        Some(RDKafkaErrorCode::InvalidConfig) => "check the --config KEY=VALUE topic settings",
        Some(RDKafkaErrorCode::GroupIdNotFound) => "list the groups with `flowodm groups list`",
        Some(
            RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed,
        ) => "check --sasl-username and --sasl-password, and the ACLs of that user",
        Some(
            RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::MessageTimedOut,
        ) => unreachable,
        _ => return None,
    };
    Some(hint.to_string())
}

/// The error and its causes on one line, each cause once: `flowodm::Error` repeats the text of
/// the error it wraps, so a cause already shown is left out.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string().replace('\n', " ");
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// A clap usage error as one line plus a hint: clap's own text spreads it over several lines
/// (details, a usage line, "For more information, try '--help'").
pub fn usage_error(rendered: &str) -> (String, String) {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid command line");
    let mut message = first.strip_prefix("error: ").unwrap_or(first).to_string();
    let mut details = Vec::new();
    let mut usage = None;
    for l in lines {
        if let Some(u) = l.strip_prefix("Usage: ") {
            usage = Some(u.to_string());
        } else if !l.starts_with("For more information") {
            details.push(
                l.trim_start_matches("tip: ")
                    .trim_matches(['[', ']'])
                    .to_string(),
            );
        }
    }
    if message.ends_with(':') && !details.is_empty() {
        message = format!("{message} {}", details.join(", "));
        details.clear();
    }
    let hint = match (details.is_empty(), usage) {
        (false, _) => details.join("; "),
        (true, Some(u)) => format!("usage: {u}"),
        (true, None) => "see `flowodm --help`".to_string(),
    };
    (message, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_become_one_line_and_a_hint() {
        let cases = [
            (
                "error: invalid value 'xml' for '--output <OUTPUT>'\n  [possible values: table, json]\n\nFor more information, try '--help'.\n",
                "invalid value 'xml' for '--output <OUTPUT>'",
                "possible values: table, json",
            ),
            (
                "error: the following required arguments were not provided:\n  --topic <TOPIC>\n\nUsage: flowodm consume --topic <TOPIC>\n\nFor more information, try '--help'.\n",
                "the following required arguments were not provided: --topic <TOPIC>",
                "usage: flowodm consume --topic <TOPIC>",
            ),
            (
                "error: unexpected argument '--topci' found\n\n  tip: a similar argument exists: '--topic'\n\nUsage: flowodm consume --topic <TOPIC>\n",
                "unexpected argument '--topci' found",
                "a similar argument exists: '--topic'",
            ),
            ("error: odd\n", "odd", "see `flowodm --help`"),
        ];
        for (rendered, message, hint) in cases {
            assert_eq!(
                usage_error(rendered),
                (message.to_string(), hint.to_string())
            );
        }
    }
}
