//! Helpers: the binary with a clean environment, the stack's addresses, unique names.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
pub use flowodm_test::{bootstrap_servers, registry_url, unique_name};

/// Variables that would reach the binary from the developer's shell; tests set what they need.
const CONNECTION_VARS: &[&str] = &[
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_SSL_CERTIFICATE_LOCATION",
    "KAFKA_SSL_KEY_LOCATION",
    "SCHEMA_REGISTRY_URL",
    "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
    "SCHEMA_REGISTRY_API_KEY",
    "SCHEMA_REGISTRY_API_SECRET",
    "SCHEMA_REGISTRY_BEARER_TOKEN",
];

/// The binary with no connection settings at all.
pub fn bare() -> Command {
    let mut cmd = Command::new(binary());
    for var in CONNECTION_VARS {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// The binary pointed at the stack through the environment.
pub fn flowodm() -> Command {
    let mut cmd = bare();
    cmd.env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
        .env("SCHEMA_REGISTRY_URL", registry_url());
    cmd
}

/// The path of the built binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flowodm"))
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The trimmed stdout of a successful run.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

/// Creates a topic with `partitions` partitions through the CLI; its unique name.
pub fn topic(prefix: &str, partitions: u32) -> String {
    let name = unique_name(prefix);
    flowodm()
        .args([
            "topics",
            "create",
            &name,
            "--partitions",
            &partitions.to_string(),
        ])
        .assert()
        .success();
    name
}

/// Registers `schema` under `subject` through the CLI; the id.
pub fn register(subject: &str, schema: &str) -> u32 {
    let dir = tempfile::tempdir().unwrap();
    let avsc = write(dir.path(), "s.avsc", schema);
    stdout_of(
        flowodm()
            .args(["upload-schema", "--subject", subject, "--avro"])
            .arg(&avsc),
    )
    .trim()
    .parse()
    .unwrap()
}
