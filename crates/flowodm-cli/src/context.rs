//! From the global flags to clients: flags (or their environment variables) win over the
//! `--config` file, which wins over flowodm's defaults.

use std::path::PathBuf;
use std::time::Duration;

use flowodm::admin::Admin;
use flowodm::config::Settings;
use flowodm::registry::{SchemaRegistryClient, SchemaRegistryClientBuilder};
use flowodm::KafkaConfig;

use crate::cli::Global;
use crate::error::Hinted;

/// What every command may need: where Kafka and the registry are.
#[derive(Debug)]
pub struct Context {
    global: Global,
    config: Option<PathBuf>,
}

impl Context {
    /// The context for these flags.
    pub fn new(global: Global, config: Option<PathBuf>) -> Self {
        Context { global, config }
    }

    /// How long to wait for Kafka.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.global.timeout)
    }

    /// The value of an environment variable as the flags and the process environment give it.
    fn flag_or_env(&self, name: &str) -> Option<String> {
        let g = &self.global;
        let flag = match name {
            "KAFKA_BOOTSTRAP_SERVERS" => &g.bootstrap_servers,
            "SCHEMA_REGISTRY_URL" => &g.registry_url,
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" => &g.registry_user_info,
            "KAFKA_SECURITY_PROTOCOL" => &g.security_protocol,
            "KAFKA_SASL_MECHANISM" => &g.sasl_mechanism,
            "KAFKA_SASL_USERNAME" => &g.sasl_username,
            "KAFKA_SASL_PASSWORD" => &g.sasl_password,
            // clap read these variables already; the rest come from the environment.
            _ => return std::env::var(name).ok(),
        };
        flag.clone()
    }

    /// The schema registry client.
    pub fn registry(&self) -> anyhow::Result<SchemaRegistryClient> {
        let lookup = Settings::lookup_with(self.config.as_deref(), |n| self.flag_or_env(n))
            .map_err(|e| self.config_file_error(e))?;
        if lookup("SCHEMA_REGISTRY_URL").is_none() {
            return Err(Hinted::new(
                "no schema registry given",
                "pass --registry-url or set SCHEMA_REGISTRY_URL (or [registry] url in --config)",
            )
            .into());
        }
        Ok(SchemaRegistryClientBuilder::from_lookup(&lookup)?
            .connect_timeout(self.timeout())
            .build()?)
    }

    /// An error reading the `--config` file names the file and points at the flag (the
    /// library reports the path as the setting's key).
    fn config_file_error(&self, e: flowodm::Error) -> anyhow::Error {
        if self.names_config_file(&e) {
            Hinted::new(e.to_string(), "check the file given to --config").into()
        } else {
            e.into()
        }
    }

    /// Whether `e` is about the `--config` file itself (unreadable, or not TOML or YAML).
    fn names_config_file(&self, e: &flowodm::Error) -> bool {
        matches!((e, self.config.as_deref()), (flowodm::Error::Configuration { key, .. }, Some(path))
            if std::path::Path::new(key) == path)
    }

    /// The Kafka settings (the `--config` file is read once).
    pub fn kafka(&self) -> anyhow::Result<KafkaConfig> {
        let settings = Settings::load_with(
            self.config.as_deref(),
            |n| self.flag_or_env(n),
            std::env::vars(),
        );
        match settings {
            Ok(settings) => Ok(settings.kafka),
            Err(flowodm::Error::Configuration { key, .. }) if key == "KAFKA_BOOTSTRAP_SERVERS" => {
                Err(Hinted::new(
                    "no Kafka cluster given",
                    "pass --bootstrap-servers or set KAFKA_BOOTSTRAP_SERVERS (or [kafka] \
                     bootstrap_servers in --config)",
                )
                .into())
            }
            Err(e) if self.names_config_file(&e) => Err(self.config_file_error(e)),
            Err(e) => Err(anyhow::Error::new(e).context("cannot read the Kafka settings")),
        }
    }

    /// A cluster administration handle.
    pub fn admin(&self) -> anyhow::Result<Admin> {
        Ok(Admin::new(self.kafka()?)?)
    }
}
