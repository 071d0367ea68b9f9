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

    /// Reads the configuration from the process environment (see the [module docs](self)).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
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
        Ok(config)
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
