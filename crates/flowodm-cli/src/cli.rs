//! The command line, as clap reads it. Doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  the command ran but a check failed: a schema is incompatible (upload-schema,
     check-compatibility, validate --dir), validate found a file invalid or different,
     `consume` met messages it could not decode, `produce` met input lines it could not send
  2  usage or runtime error: a bad flag, an unreachable registry or broker, an unknown subject, …

Every error is one line on stderr starting with `error:`, often followed by a `hint:` line.";

/// Typed, schema-first Kafka from the shell: schema registry, topics, groups, produce and
/// consume JSON as Avro.
#[derive(Debug, Parser)]
#[command(name = "flowodm", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Where Kafka and the registry are, and how to log in.
    #[command(flatten)]
    pub global: Global,

    /// A TOML or YAML settings file ([kafka] and [registry] tables), given before the
    /// subcommand; flags and environment variables win over it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Connection flags, accepted before or after the subcommand. Each falls back to its
/// environment variable, then to the `--config` file.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Kafka's bootstrap servers, e.g. 127.0.0.1:9092
    #[arg(
        long,
        global = true,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        value_name = "HOST:PORT,…"
    )]
    pub bootstrap_servers: Option<String>,

    /// The schema registry's API root, e.g. http://127.0.0.1:8081
    #[arg(long, global = true, env = "SCHEMA_REGISTRY_URL", value_name = "URL")]
    pub registry_url: Option<String>,

    /// Basic authentication for the registry
    #[arg(
        long,
        global = true,
        env = "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub registry_user_info: Option<String>,

    /// How to talk to the brokers
    #[arg(long, global = true, env = "KAFKA_SECURITY_PROTOCOL", ignore_case = true,
          value_parser = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])]
    pub security_protocol: Option<String>,

    /// SASL mechanism
    #[arg(long, global = true, env = "KAFKA_SASL_MECHANISM", ignore_case = true,
          value_parser = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"])]
    pub sasl_mechanism: Option<String>,

    /// SASL user name
    #[arg(long, global = true, env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,

    /// SASL password
    #[arg(
        long,
        global = true,
        env = "KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub sasl_password: Option<String>,

    /// How long to wait for Kafka metadata and admin operations, in seconds
    #[arg(long, global = true, default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the registry's subjects
    ListSubjects(ListArgs),
    /// Print a subject's schema
    GetSchema(GetSchemaArgs),
    /// Register an .avsc file under a subject and print its id
    UploadSchema(UploadSchemaArgs),
    /// Delete a subject (soft, or for good with --permanent)
    DeleteSubject(DeleteSubjectArgs),
    /// Check an .avsc file against a subject's versions, locally (with reasons) and with the
    /// registry; exit 1 when incompatible
    CheckCompatibility(CheckCompatibilityArgs),
    /// Validate .avsc files: as Avro, strictly against a registry version, or a directory of
    /// exported model schemas against their subjects; exit 1 on errors
    Validate(ValidateArgs),
    /// Write Rust types (with flowodm's derives) for Avro schema files or registry subjects
    Generate(GenerateArgs),
    /// List, create, describe and delete topics
    Topics {
        /// What to do with topics.
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// List consumer groups and show their lag
    Groups {
        /// What to do with groups.
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Send JSON lines from stdin as Avro messages (Confluent wire format)
    Produce(ProduceArgs),
    /// Print a topic's Avro messages as JSON lines
    Consume(ConsumeArgs),
    /// Print a shell completion script
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Output format of listing and describing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Columns for people (coloured on a terminal).
    #[default]
    Table,
    /// JSON for programs.
    Json,
}

/// The output format flag.
#[derive(Debug, Clone, Copy, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// `get-schema`.
#[derive(Debug, Args)]
pub struct GetSchemaArgs {
    /// The subject, e.g. orders-value
    #[arg(long)]
    pub subject: String,
    /// A version number, or `latest`
    #[arg(long, default_value = "latest")]
    pub version: String,
    /// Write the schema to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `upload-schema`.
#[derive(Debug, Args)]
pub struct UploadSchemaArgs {
    /// The Avro schema file (.avsc)
    #[arg(long, value_name = "FILE")]
    pub avro: PathBuf,
    /// The subject, e.g. orders-value
    #[arg(long)]
    pub subject: String,
    /// Set the subject's compatibility level first
    #[arg(long, value_enum, value_name = "LEVEL", ignore_case = true)]
    pub compatibility: Option<Level>,
}

/// The seven compatibility levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl From<Level> for flowodm::registry::CompatibilityLevel {
    fn from(l: Level) -> Self {
        use flowodm::registry::CompatibilityLevel as C;
        match l {
            Level::None => C::None,
            Level::Backward => C::Backward,
            Level::BackwardTransitive => C::BackwardTransitive,
            Level::Forward => C::Forward,
            Level::ForwardTransitive => C::ForwardTransitive,
            Level::Full => C::Full,
            Level::FullTransitive => C::FullTransitive,
        }
    }
}

/// `check-compatibility`.
#[derive(Debug, Args)]
pub struct CheckCompatibilityArgs {
    /// The candidate Avro schema file (.avsc)
    #[arg(long, value_name = "FILE")]
    pub avro: PathBuf,
    /// The subject whose stored versions it is checked against
    #[arg(long)]
    pub subject: String,
    /// The level of the local check [default: the subject's level, else the global one]
    #[arg(long, value_enum, value_name = "LEVEL", ignore_case = true)]
    pub level: Option<Level>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// `validate`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["avro", "dir"])))]
pub struct ValidateArgs {
    /// Avro schema files (.avsc), which may use each other's named types; alone, each is
    /// checked to be a valid Avro schema
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "dir")]
    pub avro: Vec<PathBuf>,
    /// Compare each file strictly with this subject's version (types, nullability, defaults,
    /// enum symbols, logical types, …)
    #[arg(long, requires = "avro")]
    pub subject: Option<String>,
    /// The subject's version: a number, or `latest`
    #[arg(long, requires = "subject", default_value = "latest")]
    pub version: String,
    /// A directory of `<subject>.avsc` files (as `ModelSchemas::export_dir` writes them): each
    /// is checked for compatibility with its subject, locally and by the registry
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The level of the local check of --dir [default: each subject's level]
    #[arg(
        long,
        value_enum,
        value_name = "LEVEL",
        ignore_case = true,
        requires = "dir"
    )]
    pub level: Option<Level>,
    /// With --dir, also require each file to equal its subject's latest version exactly
    #[arg(long, requires = "dir")]
    pub strict: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// `generate`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["avro", "subject"])))]
pub struct GenerateArgs {
    /// Avro schema files (.avsc): the last is the main schema, the others supply the named
    /// types it uses
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "subject")]
    pub avro: Vec<PathBuf>,
    /// Registry subjects (repeatable): each gives one source, with the schemas it references
    #[arg(long, value_name = "SUBJECT", num_args = 1..)]
    pub subject: Vec<String>,
    /// The subjects' version: a number, or `latest`
    #[arg(long, requires = "subject", default_value = "latest")]
    pub version: String,
    /// Write to this file, or into this directory as `<main_type>.rs` [default: stdout]
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Make the main type a flowodm::Model of this topic
    #[arg(long)]
    pub topic: Option<String>,
    /// The main record's field (by its Avro name) that keys the topic's messages
    #[arg(long, value_name = "FIELD", requires = "topic")]
    pub key: Option<String>,
}

/// `delete-subject`.
#[derive(Debug, Args)]
pub struct DeleteSubjectArgs {
    /// The subject
    #[arg(long)]
    pub subject: String,
    /// Delete for good (after a soft delete, which this does first if needed); messages
    /// written with its schemas may become unreadable
    #[arg(long)]
    pub permanent: bool,
}

/// `topics …`.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List the topics (internal ones left out)
    List(ListArgs),
    /// Create a topic
    Create(CreateTopicArgs),
    /// Show a topic's partitions, leaders, replicas and offsets
    Describe(DescribeTopicArgs),
    /// Delete a topic and its messages
    Delete(DeleteTopicArgs),
}

/// `topics create`.
#[derive(Debug, Args)]
pub struct CreateTopicArgs {
    /// The topic's name
    pub topic: String,
    /// Number of partitions
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Number of copies of each partition
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub replication: i32,
    /// A topic setting, e.g. retention.ms=604800000 (repeatable)
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// `topics describe`.
#[derive(Debug, Args)]
pub struct DescribeTopicArgs {
    /// The topic
    pub topic: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// `topics delete`.
#[derive(Debug, Args)]
pub struct DeleteTopicArgs {
    /// The topic
    pub topic: String,
}

/// `groups …`.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List the consumer groups
    List(ListArgs),
    /// Per partition: the group's committed offset, the end offset, and the lag
    Describe(DescribeGroupArgs),
}

/// `groups describe`.
#[derive(Debug, Args)]
pub struct DescribeGroupArgs {
    /// The group id
    pub group: String,
    /// Only this topic (repeatable); by default every topic the group committed offsets for
    #[arg(long)]
    pub topic: Vec<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic
    #[arg(long)]
    pub topic: String,
    /// The subject whose latest schema encodes the values [default: {topic}-value]
    #[arg(long)]
    pub subject: Option<String>,
    /// Use this top-level field of each line as the message key
    #[arg(long, value_name = "FIELD", conflicts_with = "key")]
    pub key_field: Option<String>,
    /// Use this fixed message key
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

/// `consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic
    #[arg(long)]
    pub topic: String,
    /// Read from this group's committed offsets and commit what was printed
    #[arg(long)]
    pub group: Option<String>,
    /// Start at the oldest message (where the group has no committed offset)
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after this many messages
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
    /// Keep waiting for new messages instead of stopping at the end offsets seen at start
    #[arg(long)]
    pub follow: bool,
    /// Print each message as {"topic","partition","offset","key","timestamp","schema_id","value"}
    #[arg(long)]
    pub metadata: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
