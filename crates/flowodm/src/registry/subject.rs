//! Subject name strategies: which subject a topic's schemas are registered under.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// How a producer names the subject it registers a topic's key or value schema under.
///
/// The subject decides which schemas are checked against each other for compatibility, so it
/// decides what may evolve together:
///
/// - [`TopicName`](Self::TopicName) (the default of every Confluent-compatible client):
///   `{topic}-key` or `{topic}-value`. One schema line per topic; every message of the topic
///   must stay compatible with the previous ones.
/// - [`RecordName`](Self::RecordName): the record's full name, such as `x.y.Order`. One schema
///   line per record type, shared by every topic that carries it; a topic may mix types.
/// - [`TopicRecordName`](Self::TopicRecordName): `{topic}-{record full name}`. One schema line
///   per type and topic; a topic may mix types, each evolving on its own.
///
/// Producers and consumers that look schemas up by subject must use the same strategy. (A
/// consumer that reads the schema id from the message does not need the subject at all.)
///
/// ```
/// use flowodm::registry::SubjectNameStrategy;
///
/// let s = SubjectNameStrategy::default();
/// assert_eq!(s.subject("orders", false, "x.y.Order"), "orders-value");
/// assert_eq!(s.subject("orders", true, "x.y.Order"), "orders-key");
/// assert_eq!(SubjectNameStrategy::RecordName.subject("orders", false, "x.y.Order"), "x.y.Order");
/// assert_eq!(
///     SubjectNameStrategy::TopicRecordName.subject("orders", false, "x.y.Order"),
///     "orders-x.y.Order"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubjectNameStrategy {
    /// `{topic}-key` / `{topic}-value`.
    #[default]
    TopicName,
    /// `{record full name}`.
    RecordName,
    /// `{topic}-{record full name}`.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// The subject for a schema of `topic`'s keys (`is_key`) or values, whose record has the
    /// full name `record_full_name` (namespace and name, such as `x.y.Order`; for a schema that
    /// is not a named type, its type name).
    ///
    /// [`TopicName`](Self::TopicName) ignores the record name.
    pub fn subject(self, topic: &str, is_key: bool, record_full_name: &str) -> String {
        match self {
            SubjectNameStrategy::TopicName => {
                format!("{topic}-{}", if is_key { "key" } else { "value" })
            }
            SubjectNameStrategy::RecordName => record_full_name.to_string(),
            SubjectNameStrategy::TopicRecordName => format!("{topic}-{record_full_name}"),
        }
    }

    /// The strategy's Confluent name, such as `TopicNameStrategy`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectNameStrategy::TopicName => "TopicNameStrategy",
            SubjectNameStrategy::RecordName => "RecordNameStrategy",
            SubjectNameStrategy::TopicRecordName => "TopicRecordNameStrategy",
        }
    }
}

impl fmt::Display for SubjectNameStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubjectNameStrategy {
    type Err = Error;

    /// Parses a strategy by its Confluent name, with or without the `Strategy` suffix and the
    /// Java package (as in `value.subject.name.strategy`), ignoring case.
    ///
    /// ```
    /// use flowodm::registry::SubjectNameStrategy;
    /// let s: SubjectNameStrategy =
    ///     "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy".parse().unwrap();
    /// assert_eq!(s, SubjectNameStrategy::TopicRecordName);
    /// assert_eq!("record_name".parse::<SubjectNameStrategy>().unwrap(), SubjectNameStrategy::RecordName);
    /// assert!("FancyStrategy".parse::<SubjectNameStrategy>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        let short = s.trim().rsplit('.').next().unwrap_or_default();
        let normalised: String = short
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        let normalised = normalised.strip_suffix("strategy").unwrap_or(&normalised);
        match normalised {
            "topicname" => Ok(SubjectNameStrategy::TopicName),
            "recordname" => Ok(SubjectNameStrategy::RecordName),
            "topicrecordname" => Ok(SubjectNameStrategy::TopicRecordName),
            _ => Err(Error::config(
                "subject.name.strategy",
                format!(
                    "`{s}` is not a subject name strategy; expected TopicNameStrategy, \
                     RecordNameStrategy or TopicRecordNameStrategy"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_is_the_default_and_ignores_the_record() {
        let s = SubjectNameStrategy::default();
        assert_eq!(s, SubjectNameStrategy::TopicName);
        assert_eq!(s.subject("t", true, ""), "t-key");
        assert_eq!(s.subject("t", false, "a.B"), "t-value");
    }

    #[test]
    fn record_strategies_do_not_depend_on_key_or_value() {
        for is_key in [true, false] {
            assert_eq!(
                SubjectNameStrategy::RecordName.subject("t", is_key, "a.B"),
                "a.B"
            );
            assert_eq!(
                SubjectNameStrategy::TopicRecordName.subject("t", is_key, "a.B"),
                "t-a.B"
            );
        }
    }

    #[test]
    fn parses_every_spelling_and_round_trips_display() {
        for s in [
            SubjectNameStrategy::TopicName,
            SubjectNameStrategy::RecordName,
            SubjectNameStrategy::TopicRecordName,
        ] {
            assert_eq!(s.to_string().parse::<SubjectNameStrategy>().unwrap(), s);
            let java = format!("io.confluent.kafka.serializers.subject.{s}");
            assert_eq!(java.parse::<SubjectNameStrategy>().unwrap(), s);
        }
        assert_eq!(
            "TopicName".parse::<SubjectNameStrategy>().unwrap(),
            SubjectNameStrategy::TopicName
        );
        assert_eq!(
            "topic-record-name".parse::<SubjectNameStrategy>().unwrap(),
            SubjectNameStrategy::TopicRecordName
        );
        let err = "strategy".parse::<SubjectNameStrategy>().unwrap_err();
        assert!(err.to_string().contains("TopicNameStrategy"));
    }
}
