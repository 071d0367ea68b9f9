//! Connection settings for Kafka, read from the environment or set in code.
//!
//! [`KafkaConfig`] holds what a client needs to reach the cluster: the bootstrap servers, the
//! security protocol and its credentials, and any other librdkafka property. It turns into an
//! [`rdkafka::ClientConfig`] with [`KafkaConfig::client_config`].
//!
//! # Environment
//!
//! [`KafkaConfig::from_env`] reads:
//!
//! | variable | librdkafka property | default |
//! |---|---|---|
//! | `KAFKA_BOOTSTRAP_SERVERS` | `bootstrap.servers` | required |
//! | `KAFKA_SECURITY_PROTOCOL` | `security.protocol` | `PLAINTEXT` |
//! | `KAFKA_SASL_MECHANISM` | `sasl.mechanism` | unset |
//! | `KAFKA_SASL_USERNAME` | `sasl.username` | unset |
//! | `KAFKA_SASL_PASSWORD` | `sasl.password` | unset |
//! | `KAFKA_SSL_CA_LOCATION` | `ssl.ca.location` | the system's CA store |
//! | `KAFKA_SSL_CERTIFICATE_LOCATION` | `ssl.certificate.location` | unset |
//! | `KAFKA_SSL_KEY_LOCATION` | `ssl.key.location` | unset |
//! | `KAFKA_SSL_KEY_PASSWORD` | `ssl.key.password` | unset |
//! | `KAFKA_CLIENT_ID` | `client.id` | `flowodm` |
//! | `KAFKA_SASL_OAUTHBEARER_METHOD` | `sasl.oauthbearer.method` (`oidc` or `default`) | unset |
//! | `KAFKA_SASL_OAUTHBEARER_CLIENT_ID`, `…_CLIENT_SECRET`, `…_TOKEN_ENDPOINT_URL`, `…_SCOPE`, `…_EXTENSIONS`, `…_CONFIG` | `sasl.oauthbearer.client.id`, … | unset |
//! | `FLOWODM_KAFKA__<PROPERTY>` | any property: `FLOWODM_KAFKA__LINGER_MS` → `linger.ms` | |
//!
//! # Layers
//!
//! [`Settings::load`] builds the configuration from layers, each overriding the one before:
//! flowodm's defaults, a configuration file (TOML or YAML, see [`Settings`]), the environment,
//! and finally what the code sets ([`KafkaConfig::set`] and the builders).
//!
//! # Secrets
//!
//! Passwords are kept in [`Secret`], whose `Debug` and `Display` print `***`, and
//! [`KafkaConfig`]'s `Debug` redacts every sensitive librdkafka property, so a config can be
//! logged safely.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::ClientConfig;

use crate::error::{Error, Result};

/// A value that must not appear in logs: `Debug` and `Display` print `***`.
///
/// ```
/// let password = flowodm::Secret::new("hunter2");
/// assert_eq!(format!("{password:?}"), "***");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for handing to the client that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The security protocol between client and broker (`security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// No encryption, no authentication.
    #[default]
    Plaintext,
    /// TLS; with a client certificate, mutual TLS.
    Ssl,
    /// SASL authentication without encryption.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka value, such as `SASL_SSL`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl std::str::FromStr for SecurityProtocol {
    type Err = Error;

    /// Parses a protocol name, ignoring case.
    ///
    /// ```
    /// use flowodm::config::SecurityProtocol;
    /// assert_eq!("sasl_ssl".parse::<SecurityProtocol>().unwrap(), SecurityProtocol::SaslSsl);
    /// assert!("TLS".parse::<SecurityProtocol>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(Error::config(
                "security.protocol",
                format!("`{s}` is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
            )),
        }
    }
}

/// SASL credentials (`sasl.mechanism`, `sasl.username`, `sasl.password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    /// The mechanism: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`.
    pub mechanism: String,
    /// The user name.
    pub username: Option<String>,
    /// The password.
    pub password: Option<Secret>,
}

/// TLS files (`ssl.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// PEM file of the CA that signed the broker's certificate (`ssl.ca.location`).
    pub ca_location: Option<String>,
    /// PEM file of the client's certificate, for mutual TLS (`ssl.certificate.location`).
    pub certificate_location: Option<String>,
    /// PEM file of the client's private key (`ssl.key.location`).
    pub key_location: Option<String>,
    /// Password of the private key (`ssl.key.password`).
    pub key_password: Option<Secret>,
}

/// The prefix of environment variables that set any librdkafka property.
pub const PASSTHROUGH_PREFIX: &str = "FLOWODM_KAFKA__";

/// OAUTHBEARER environment variables and the librdkafka properties they set.
const OAUTHBEARER_VARS: &[(&str, &str)] = &[
    ("KAFKA_SASL_OAUTHBEARER_METHOD", "sasl.oauthbearer.method"),
    (
        "KAFKA_SASL_OAUTHBEARER_CLIENT_ID",
        "sasl.oauthbearer.client.id",
    ),
    (
        "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
        "sasl.oauthbearer.client.secret",
    ),
    (
        "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
        "sasl.oauthbearer.token.endpoint.url",
    ),
    ("KAFKA_SASL_OAUTHBEARER_SCOPE", "sasl.oauthbearer.scope"),
    (
        "KAFKA_SASL_OAUTHBEARER_EXTENSIONS",
        "sasl.oauthbearer.extensions",
    ),
    ("KAFKA_SASL_OAUTHBEARER_CONFIG", "sasl.oauthbearer.config"),
];

/// librdkafka properties whose values are secrets; `Debug` prints them as `***`.
const SENSITIVE_PROPERTIES: &[&str] = &[
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.key.pem",
    "ssl_key",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.config",
];

fn is_sensitive(property: &str) -> bool {
    SENSITIVE_PROPERTIES.contains(&property) || property.contains("password")
}

/// How to reach a Kafka cluster.
///
/// ```
/// use flowodm::config::{KafkaConfig, SecurityProtocol, Sasl};
/// use flowodm::Secret;
///
/// let config = KafkaConfig::new("127.0.0.1:9092")
///     .security_protocol(SecurityProtocol::SaslSsl)
///     .sasl(Sasl {
///         mechanism: "SCRAM-SHA-512".into(),
///         username: Some("alice".into()),
///         password: Some(Secret::new("alice-secret")),
///     })
///     .set("linger.ms", "5");
///
/// let client = config.client_config();
/// assert_eq!(client.get("security.protocol"), Some("SASL_SSL"));
/// assert_eq!(client.get("sasl.password"), Some("alice-secret"));
/// assert!(!format!("{config:?}").contains("alice-secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    bootstrap_servers: String,
    security_protocol: SecurityProtocol,
    sasl: Option<Sasl>,
    tls: Tls,
    client_id: String,
    extra: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// A plaintext configuration for `bootstrap_servers` (a comma-separated `host:port` list).
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl: None,
            tls: Tls::default(),
            client_id: "flowodm".to_string(),
            extra: BTreeMap::new(),
        }
    }

    /// Reads the configuration from the process environment (see the [module docs](self)),
    /// including `FLOWODM_KAFKA__*` properties ([`with_passthrough`](Self::with_passthrough)).
    pub fn from_env() -> Result<Self> {
        Ok(Self::from_lookup(|name| std::env::var(name).ok())?.with_passthrough(std::env::vars()))
    }

    /// Reads the configuration from any name → value lookup, such as a map in a test.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use flowodm::config::KafkaConfig;
    ///
    /// let env = HashMap::from([
    ///     ("KAFKA_BOOTSTRAP_SERVERS", "broker:9093"),
    ///     ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
    ///     ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
    ///     ("KAFKA_SASL_USERNAME", "alice"),
    ///     ("KAFKA_SASL_PASSWORD", "alice-secret"),
    /// ]);
    /// let config = KafkaConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
    /// assert_eq!(config.bootstrap_servers(), "broker:9093");
    /// assert_eq!(config.client_config().get("sasl.username"), Some("alice"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let bootstrap = get("KAFKA_BOOTSTRAP_SERVERS").ok_or_else(|| {
            Error::config(
                "KAFKA_BOOTSTRAP_SERVERS",
                "is not set; set it to the broker list, for example 127.0.0.1:9092",
            )
        })?;
        let mut config = KafkaConfig::new(bootstrap);
        if let Some(protocol) = get("KAFKA_SECURITY_PROTOCOL") {
            config.security_protocol = protocol.parse().map_err(|_| {
                Error::config(
                    "KAFKA_SECURITY_PROTOCOL",
                    format!("`{protocol}` is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
                )
            })?;
        }
        if let Some(mechanism) = get("KAFKA_SASL_MECHANISM") {
            config.sasl = Some(Sasl {
                mechanism,
                username: get("KAFKA_SASL_USERNAME"),
                password: get("KAFKA_SASL_PASSWORD").map(Secret::new),
            });
        } else if config.security_protocol.uses_sasl() {
            return Err(Error::config(
                "KAFKA_SASL_MECHANISM",
                "is required when KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT or SASL_SSL",
            ));
        }
        config.tls = Tls {
            ca_location: get("KAFKA_SSL_CA_LOCATION"),
            certificate_location: get("KAFKA_SSL_CERTIFICATE_LOCATION"),
            key_location: get("KAFKA_SSL_KEY_LOCATION"),
            key_password: get("KAFKA_SSL_KEY_PASSWORD").map(Secret::new),
        };
        if let Some(client_id) = get("KAFKA_CLIENT_ID") {
            config.client_id = client_id;
        }
        for (var, property) in OAUTHBEARER_VARS {
            if let Some(v) = get(var) {
                config.extra.insert(property.to_string(), v);
            }
        }
        Ok(config)
    }

    /// Adds every librdkafka property named by an environment variable with the prefix
    /// `FLOWODM_KAFKA__`: `FLOWODM_KAFKA__LINGER_MS=20` sets `linger.ms=20` (lower case, `_` → `.`).
    ///
    /// ```
    /// let vars = [("FLOWODM_KAFKA__LINGER_MS".to_string(), "20".to_string())];
    /// let config = flowodm::KafkaConfig::new("b:9092").with_passthrough(vars);
    /// assert_eq!(config.client_config().get("linger.ms"), Some("20"));
    /// ```
    pub fn with_passthrough(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        for (name, value) in vars {
            if let Some(rest) = name.strip_prefix(PASSTHROUGH_PREFIX) {
                let property = rest.to_ascii_lowercase().replace('_', ".");
                if !property.is_empty() {
                    self.extra.insert(property, value);
                }
            }
        }
        self
    }

    /// The librdkafka properties set explicitly (by [`set`](Self::set), the passthrough, a
    /// file's `[kafka.properties]`), which win over what flowodm would set itself.
    pub(crate) fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets the security protocol.
    pub fn security_protocol(mut self, protocol: SecurityProtocol) -> Self {
        self.security_protocol = protocol;
        self
    }

    /// Sets the SASL credentials.
    pub fn sasl(mut self, sasl: Sasl) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// Sets the TLS files.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Sets `client.id`, the name brokers log and quota this client by.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Sets any librdkafka property; it wins over what flowodm would set.
    pub fn set(mut self, property: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(property.into(), value.into());
        self
    }

    /// The bootstrap servers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The librdkafka configuration these settings stand for.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        c.set("security.protocol", self.security_protocol.as_str());
        c.set("client.id", &self.client_id);
        if let Some(sasl) = &self.sasl {
            c.set("sasl.mechanism", &sasl.mechanism);
            if let Some(u) = &sasl.username {
                c.set("sasl.username", u);
            }
            if let Some(p) = &sasl.password {
                c.set("sasl.password", p.expose());
            }
        }
        let tls = [
            ("ssl.ca.location", self.tls.ca_location.as_deref()),
            (
                "ssl.certificate.location",
                self.tls.certificate_location.as_deref(),
            ),
            ("ssl.key.location", self.tls.key_location.as_deref()),
            (
                "ssl.key.password",
                self.tls.key_password.as_ref().map(Secret::expose),
            ),
        ];
        for (key, value) in tls {
            if let Some(v) = value {
                c.set(key, v);
            }
        }
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: BTreeMap<&str, &str> = self
            .extra
            .iter()
            .map(|(k, v)| {
                let shown = if is_sensitive(k) { "***" } else { v.as_str() };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls)
            .field("client_id", &self.client_id)
            .field("extra", &extra)
            .finish()
    }
}

/// Settings from layers: flowodm's defaults < a configuration file < the environment.
///
/// The file is TOML (`.toml`) or YAML (`.yaml`, `.yml`). Every key maps onto the environment
/// variable of the same meaning, which wins when both are set. Unknown keys are errors.
///
/// ```toml
/// [kafka]
/// bootstrap_servers = "broker-1:9093,broker-2:9093"
/// security_protocol = "SASL_SSL"
/// client_id = "order-service"
///
/// [kafka.sasl]
/// mechanism = "SCRAM-SHA-512"
/// username = "orders"
/// password = "…"                  # better: KAFKA_SASL_PASSWORD in the environment
///
/// [kafka.ssl]
/// ca_location = "/etc/kafka/ca.pem"
///
/// [kafka.properties]              # any librdkafka property
/// "linger.ms" = 20
/// "compression.type" = "zstd"
///
/// [registry]
/// url = "https://registry:8081"
/// basic_auth_user_info = "user:secret"
/// ```
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("flowodm.toml");
/// # std::fs::write(&path, "[kafka]\nbootstrap_servers = \"file:9092\"\n[kafka.properties]\n\"linger.ms\" = 20\n[registry]\nurl = \"http://registry:8081\"\n").unwrap();
/// use flowodm::config::Settings;
/// let env = |name: &str| (name == "KAFKA_CLIENT_ID").then(|| "from-env".to_string());
/// let settings = Settings::load_with(Some(&path), env, std::iter::empty()).unwrap();
/// let c = settings.kafka.client_config();
/// assert_eq!(c.get("bootstrap.servers"), Some("file:9092"));   // from the file
/// assert_eq!(c.get("client.id"), Some("from-env"));             // the environment wins
/// assert_eq!(c.get("linger.ms"), Some("20"));
/// assert!(settings.registry.is_some());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Kafka.
    pub kafka: KafkaConfig,
    /// The schema registry, if a URL was given.
    pub registry: Option<crate::registry::SchemaRegistryClient>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    #[serde(default)]
    kafka: FileKafka,
    #[serde(default)]
    registry: FileRegistry,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileKafka {
    bootstrap_servers: Option<String>,
    security_protocol: Option<String>,
    client_id: Option<String>,
    #[serde(default)]
    sasl: FileSasl,
    #[serde(default)]
    ssl: FileSsl,
    #[serde(default)]
    oauthbearer: FileOAuth,
    #[serde(default)]
    properties: BTreeMap<String, serde_json::Value>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSasl {
    mechanism: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSsl {
    ca_location: Option<String>,
    certificate_location: Option<String>,
    key_location: Option<String>,
    key_password: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileOAuth {
    method: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    token_endpoint_url: Option<String>,
    scope: Option<String>,
    extensions: Option<String>,
    config: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileRegistry {
    url: Option<String>,
    basic_auth_user_info: Option<String>,
    api_key: Option<String>,
    api_secret: Option<String>,
    bearer_token: Option<String>,
    ssl_ca_location: Option<String>,
    ssl_certificate_location: Option<String>,
    ssl_key_location: Option<String>,
}

impl FileSettings {
    fn read(path: &std::path::Path) -> Result<Self> {
        let key = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(&key, format!("cannot read the file: {e}")))?;
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if yaml {
            serde_yaml_ng::from_str(&text).map_err(|e| Error::config(&key, e.to_string()))
        } else {
            toml::from_str(&text).map_err(|e| Error::config(&key, e.to_string()))
        }
    }

    /// The file's values under the environment variable names they stand for.
    fn as_vars(&self) -> BTreeMap<&'static str, String> {
        let k = &self.kafka;
        let r = &self.registry;
        let pairs: [(&'static str, &Option<String>); 25] = [
            ("KAFKA_BOOTSTRAP_SERVERS", &k.bootstrap_servers),
            ("KAFKA_SECURITY_PROTOCOL", &k.security_protocol),
            ("KAFKA_CLIENT_ID", &k.client_id),
            ("KAFKA_SASL_MECHANISM", &k.sasl.mechanism),
            ("KAFKA_SASL_USERNAME", &k.sasl.username),
            ("KAFKA_SASL_PASSWORD", &k.sasl.password),
            ("KAFKA_SSL_CA_LOCATION", &k.ssl.ca_location),
            (
                "KAFKA_SSL_CERTIFICATE_LOCATION",
                &k.ssl.certificate_location,
            ),
            ("KAFKA_SSL_KEY_LOCATION", &k.ssl.key_location),
            ("KAFKA_SSL_KEY_PASSWORD", &k.ssl.key_password),
            ("KAFKA_SASL_OAUTHBEARER_METHOD", &k.oauthbearer.method),
            ("KAFKA_SASL_OAUTHBEARER_CLIENT_ID", &k.oauthbearer.client_id),
            (
                "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
                &k.oauthbearer.client_secret,
            ),
            (
                "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
                &k.oauthbearer.token_endpoint_url,
            ),
            ("KAFKA_SASL_OAUTHBEARER_SCOPE", &k.oauthbearer.scope),
            (
                "KAFKA_SASL_OAUTHBEARER_EXTENSIONS",
                &k.oauthbearer.extensions,
            ),
            ("KAFKA_SASL_OAUTHBEARER_CONFIG", &k.oauthbearer.config),
            ("SCHEMA_REGISTRY_URL", &r.url),
            (
                "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                &r.basic_auth_user_info,
            ),
            ("SCHEMA_REGISTRY_API_KEY", &r.api_key),
            ("SCHEMA_REGISTRY_API_SECRET", &r.api_secret),
            ("SCHEMA_REGISTRY_BEARER_TOKEN", &r.bearer_token),
            ("SCHEMA_REGISTRY_SSL_CA_LOCATION", &r.ssl_ca_location),
            (
                "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION",
                &r.ssl_certificate_location,
            ),
            ("SCHEMA_REGISTRY_SSL_KEY_LOCATION", &r.ssl_key_location),
        ];
        pairs
            .into_iter()
            .filter_map(|(name, v)| v.clone().map(|v| (name, v)))
            .collect()
    }
}

fn property_value(key: &str, v: &serde_json::Value) -> Result<String> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Error::config(
            key,
            "a librdkafka property takes a string, number or boolean",
        )),
    }
}

impl Settings {
    /// Loads the layers from the process environment and, if given, a file.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self> {
        Self::load_with(file, |name| std::env::var(name).ok(), std::env::vars())
    }

    /// Loads the layers from a file, a variable lookup, and the variables to scan for
    /// `FLOWODM_KAFKA__` properties.
    pub fn load_with(
        file: Option<&std::path::Path>,
        env: impl Fn(&str) -> Option<String>,
        env_vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let file_settings = match file {
            Some(path) => FileSettings::read(path)?,
            None => FileSettings::default(),
        };
        let file_vars = file_settings.as_vars();
        let lookup = |name: &str| {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| file_vars.get(name).cloned())
        };
        let mut kafka = KafkaConfig::from_lookup(lookup)?;
        for (k, v) in &file_settings.kafka.properties {
            kafka.extra.insert(k.clone(), property_value(k, v)?);
        }
        let kafka = kafka.with_passthrough(env_vars);
        let registry = match lookup("SCHEMA_REGISTRY_URL") {
            Some(_) => Some(crate::registry::SchemaRegistryClient::from_lookup(lookup)?),
            None => None,
        };
        Ok(Settings { kafka, registry })
    }

    /// The layers as one name → value lookup under the environment variable names: `env`
    /// first, then the file; empty values count as unset.
    ///
    /// For a tool that needs only part of the settings, for example only the schema registry,
    /// where [`load_with`](Self::load_with) would insist on Kafka's bootstrap servers too.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("flowodm.toml");
    /// # std::fs::write(&path, "[registry]\nurl = \"http://file:8081\"\nbasic_auth_user_info = \"u:p\"\n").unwrap();
    /// use flowodm::config::Settings;
    /// use flowodm::registry::SchemaRegistryClient;
    ///
    /// let env = |name: &str| (name == "SCHEMA_REGISTRY_URL").then(|| "http://env:8081".to_string());
    /// let lookup = Settings::lookup_with(Some(&path), env).unwrap();
    /// assert_eq!(lookup("SCHEMA_REGISTRY_URL").as_deref(), Some("http://env:8081")); // env wins
    /// assert_eq!(lookup("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO").as_deref(), Some("u:p"));
    /// assert_eq!(lookup("KAFKA_BOOTSTRAP_SERVERS"), None); // not needed, not required
    /// let registry = SchemaRegistryClient::from_lookup(&lookup).unwrap();
    /// assert_eq!(registry.url(), "http://env:8081");
    /// ```
    pub fn lookup_with(
        file: Option<&std::path::Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<impl Fn(&str) -> Option<String>> {
        let file_vars = match file {
            Some(path) => FileSettings::read(path)?.as_vars(),
            None => BTreeMap::new(),
        };
        Ok(move |name: &str| {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| file_vars.get(name).cloned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(env: &[(&str, &str)]) -> Result<KafkaConfig> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KafkaConfig::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn bootstrap_servers_are_required() {
        let err = from(&[]).unwrap_err();
        assert!(
            matches!(&err, Error::Configuration { key, .. } if key == "KAFKA_BOOTSTRAP_SERVERS")
        );
        let err = from(&[("KAFKA_BOOTSTRAP_SERVERS", "  ")]).unwrap_err();
        assert!(err.to_string().contains("KAFKA_BOOTSTRAP_SERVERS"));
    }

    #[test]
    fn plaintext_by_default() {
        let c = from(&[("KAFKA_BOOTSTRAP_SERVERS", "a:1,b:2")])
            .unwrap()
            .client_config();
        assert_eq!(c.get("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(c.get("security.protocol"), Some("PLAINTEXT"));
        assert_eq!(c.get("client.id"), Some("flowodm"));
        assert_eq!(c.get("sasl.mechanism"), None);
    }

    #[test]
    fn bad_protocol_names_the_variable() {
        let err = from(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "a:1"),
            ("KAFKA_SECURITY_PROTOCOL", "TLS"),
        ])
        .unwrap_err();
        assert!(
            matches!(&err, Error::Configuration { key, .. } if key == "KAFKA_SECURITY_PROTOCOL"),
            "{err}"
        );
    }

    #[test]
    fn sasl_protocol_needs_a_mechanism() {
        let err = from(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "a:1"),
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ])
        .unwrap_err();
        assert!(matches!(&err, Error::Configuration { key, .. } if key == "KAFKA_SASL_MECHANISM"));
    }

    #[test]
    fn sasl_and_tls_from_env() {
        let config = from(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "a:1"),
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
            ("KAFKA_SASL_USERNAME", "u"),
            ("KAFKA_SASL_PASSWORD", "p4ss"),
            ("KAFKA_SSL_CA_LOCATION", "/ca.pem"),
            ("KAFKA_SSL_KEY_PASSWORD", "k3y"),
            ("KAFKA_CLIENT_ID", "orders-svc"),
        ])
        .unwrap();
        let c = config.client_config();
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(c.get("sasl.username"), Some("u"));
        assert_eq!(c.get("sasl.password"), Some("p4ss"));
        assert_eq!(c.get("ssl.ca.location"), Some("/ca.pem"));
        assert_eq!(c.get("ssl.key.password"), Some("k3y"));
        assert_eq!(c.get("client.id"), Some("orders-svc"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("p4ss") && !shown.contains("k3y"), "{shown}");
    }

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn toml_and_yaml_files_give_the_same_settings() {
        let toml = "[kafka]\nbootstrap_servers = \"b:1\"\nsecurity_protocol = \"SASL_SSL\"\n\
                    [kafka.sasl]\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"p\"\n\
                    [kafka.properties]\n\"linger.ms\" = 7\n\"enable.idempotence\" = true\n";
        let yaml = "kafka:\n  bootstrap_servers: b:1\n  security_protocol: SASL_SSL\n  sasl:\n    \
                    mechanism: PLAIN\n    username: u\n    password: p\n  properties:\n    \
                    linger.ms: 7\n    enable.idempotence: true\n";
        let none = |_: &str| None;
        for (name, text) in [("a.toml", toml), ("a.yaml", yaml)] {
            let (_dir, path) = write(name, text);
            let s = Settings::load_with(Some(&path), none, std::iter::empty()).unwrap();
            let c = s.kafka.client_config();
            assert_eq!(c.get("bootstrap.servers"), Some("b:1"), "{name}");
            assert_eq!(c.get("sasl.mechanism"), Some("PLAIN"));
            assert_eq!(c.get("sasl.password"), Some("p"));
            assert_eq!(c.get("linger.ms"), Some("7"));
            assert_eq!(c.get("enable.idempotence"), Some("true"));
            assert!(s.registry.is_none());
            assert!(
                !format!("{s:?}").contains("\"p\""),
                "the password stays hidden"
            );
        }
    }

    #[test]
    fn environment_beats_file_and_passthrough_beats_both() {
        let (_dir, path) = write(
            "a.toml",
            "[kafka]\nbootstrap_servers = \"file:1\"\nclient_id = \"file\"\n[kafka.properties]\n\"linger.ms\" = 1\n",
        );
        let env = |k: &str| (k == "KAFKA_CLIENT_ID").then(|| "env".to_string());
        let vars = [("FLOWODM_KAFKA__LINGER_MS".to_string(), "9".to_string())];
        let s = Settings::load_with(Some(&path), env, vars).unwrap();
        let c = s.kafka.client_config();
        assert_eq!(c.get("bootstrap.servers"), Some("file:1"));
        assert_eq!(c.get("client.id"), Some("env"));
        assert_eq!(c.get("linger.ms"), Some("9"));
        // And code beats everything.
        assert_eq!(
            s.kafka
                .set("linger.ms", "3")
                .client_config()
                .get("linger.ms"),
            Some("3")
        );
    }

    #[test]
    fn file_mistakes_are_errors_naming_the_file_and_key() {
        let (_dir, path) = write("a.toml", "[kafka]\nbootstrap_server = \"typo:1\"\n");
        let err = Settings::load_with(Some(&path), |_| None, std::iter::empty()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("a.toml") && text.contains("bootstrap_server"),
            "{text}"
        );
        let (_dir, path) = write(
            "b.yaml",
            "kafka:\n  bootstrap_servers: b:1\n  properties:\n    x: [1]\n",
        );
        let err = Settings::load_with(Some(&path), |_| None, std::iter::empty()).unwrap_err();
        assert!(
            matches!(&err, Error::Configuration { key, .. } if key == "x"),
            "{err:?}"
        );
        let err = Settings::load_with(
            Some(std::path::Path::new("/nope.toml")),
            |_| None,
            std::iter::empty(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nope.toml"));
    }

    #[test]
    fn lookup_with_layers_env_over_file_without_requiring_kafka() {
        let (_dir, path) = write(
            "r.yaml",
            "registry:\n  url: http://file:8081\nkafka:\n  client_id: from-file\n",
        );
        let env = |k: &str| match k {
            "KAFKA_CLIENT_ID" => Some("from-env".to_string()),
            "SCHEMA_REGISTRY_API_KEY" => Some("  ".to_string()),
            _ => None,
        };
        let lookup = Settings::lookup_with(Some(&path), env).unwrap();
        assert_eq!(
            lookup("SCHEMA_REGISTRY_URL").as_deref(),
            Some("http://file:8081")
        );
        assert_eq!(lookup("KAFKA_CLIENT_ID").as_deref(), Some("from-env"));
        assert_eq!(lookup("SCHEMA_REGISTRY_API_KEY"), None, "blank is unset");
        assert_eq!(lookup("KAFKA_BOOTSTRAP_SERVERS"), None);
        let err = Settings::lookup_with(Some(std::path::Path::new("/nope.toml")), |_| None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nope.toml"), "{err}");
    }

    #[test]
    fn oauthbearer_settings_reach_librdkafka_and_stay_hidden() {
        let c = from(&[
            ("KAFKA_BOOTSTRAP_SERVERS", "a:1"),
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_MECHANISM", "OAUTHBEARER"),
            ("KAFKA_SASL_OAUTHBEARER_METHOD", "oidc"),
            ("KAFKA_SASL_OAUTHBEARER_CLIENT_ID", "svc"),
            ("KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET", "s3cr3t"),
            (
                "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
                "https://idp/token",
            ),
        ])
        .unwrap();
        let rd = c.client_config();
        assert_eq!(rd.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(rd.get("sasl.oauthbearer.client.secret"), Some("s3cr3t"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn passthrough_wins_and_secrets_stay_hidden() {
        let config = KafkaConfig::new("a:1")
            .set("linger.ms", "7")
            .set("ssl.keystore.password", "ks-secret")
            .set("client.id", "override");
        let c = config.client_config();
        assert_eq!(c.get("linger.ms"), Some("7"));
        assert_eq!(c.get("client.id"), Some("override"));
        let shown = format!("{config:?}");
        assert!(shown.contains("linger.ms"));
        assert!(!shown.contains("ks-secret"), "{shown}");
    }
}
