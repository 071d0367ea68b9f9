//! Client settings: URL, authentication, TLS, timeouts, retries and cache size.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::cache::{Caches, DEFAULT_CAPACITY};
use super::client::SchemaRegistryClient;
use crate::config::Secret;
use crate::error::{Error, Result};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RETRIES: u32 = 3;
const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How requests authenticate; `Debug` never shows the secret.
#[derive(Clone, Default)]
pub(super) enum Auth {
    #[default]
    None,
    Basic {
        user: String,
        password: Secret,
    },
    Bearer(Secret),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, password } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", password)
                .finish(),
            Auth::Bearer(token) => f.debug_tuple("Bearer").field(token).finish(),
        }
    }
}

/// When and how long to wait before trying a failed request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RetryPolicy {
    pub(super) max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: DEFAULT_MAX_RETRIES,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt + 1`: `initial × 2^attempt`, capped at the maximum,
    /// of which the upper half is random so that many clients do not retry in step; at least
    /// what the server asked for in `Retry-After` (itself capped at the maximum).
    pub(super) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max_backoff);
        let half = exponential / 2;
        let jittered = half + half.mul_f64(random_fraction());
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_backoff)),
            None => jittered,
        }
    }
}

/// A number in `[0, 1)`, different on every call; good enough for jitter.
fn random_fraction() -> f64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Settings for a [`SchemaRegistryClient`]; start with [`SchemaRegistryClient::builder`] or
/// [`SchemaRegistryClientBuilder::from_env`].
///
/// ```
/// use std::time::Duration;
/// use flowodm::registry::SchemaRegistryClient;
/// use flowodm::Secret;
///
/// let registry = SchemaRegistryClient::builder("https://registry.example.com")
///     .bearer_auth(Secret::new("eyJhbGciOi..."))
///     .request_timeout(Duration::from_secs(5))
///     .max_retries(5)
///     .build()
///     .unwrap();
/// assert!(!format!("{registry:?}").contains("eyJhbGciOi"));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct SchemaRegistryClientBuilder {
    url: String,
    auth: Auth,
    ca_location: Option<PathBuf>,
    certificate_location: Option<PathBuf>,
    key_location: Option<PathBuf>,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    cache_capacity: usize,
}

impl SchemaRegistryClientBuilder {
    pub(super) fn new(url: impl Into<String>) -> Self {
        SchemaRegistryClientBuilder {
            url: url.into(),
            auth: Auth::None,
            ca_location: None,
            certificate_location: None,
            key_location: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryPolicy::default(),
            cache_capacity: DEFAULT_CAPACITY,
        }
    }

    /// Settings from the environment (see the [module docs](super#environment)).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings from any name → value lookup, with the environment's variable names.
    ///
    /// ```
    /// let env = std::collections::HashMap::from([
    ///     ("SCHEMA_REGISTRY_URL", "https://registry.example.com"),
    ///     ("SCHEMA_REGISTRY_API_KEY", "key"),
    /// ]);
    /// let err = flowodm::registry::SchemaRegistryClientBuilder::from_lookup(|k| {
    ///     env.get(k).map(|v| v.to_string())
    /// })
    /// .unwrap_err();
    /// assert!(err.to_string().contains("SCHEMA_REGISTRY_API_SECRET"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let url = get("SCHEMA_REGISTRY_URL").ok_or_else(|| {
            Error::config(
                "SCHEMA_REGISTRY_URL",
                "is not set; set it to the registry's API root, for example http://127.0.0.1:8081",
            )
        })?;
        let mut builder = Self::new(url);

        let basic = if let Some(info) = get("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") {
            let (user, password) = info.split_once(':').ok_or_else(|| {
                Error::config(
                    "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                    "must have the form user:password",
                )
            })?;
            Some((user.to_string(), Secret::new(password)))
        } else {
            match (
                get("SCHEMA_REGISTRY_API_KEY"),
                get("SCHEMA_REGISTRY_API_SECRET"),
            ) {
                (Some(key), Some(secret)) => Some((key, Secret::new(secret))),
                (Some(_), None) => {
                    return Err(Error::config(
                        "SCHEMA_REGISTRY_API_SECRET",
                        "is not set, but SCHEMA_REGISTRY_API_KEY is; set both or neither",
                    ))
                }
                (None, Some(_)) => {
                    return Err(Error::config(
                        "SCHEMA_REGISTRY_API_KEY",
                        "is not set, but SCHEMA_REGISTRY_API_SECRET is; set both or neither",
                    ))
                }
                (None, None) => None,
            }
        };
        let bearer = get("SCHEMA_REGISTRY_BEARER_TOKEN");
        match (basic, bearer) {
            (Some(_), Some(_)) => return Err(Error::config(
                "SCHEMA_REGISTRY_BEARER_TOKEN",
                "is set together with basic authentication (SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO \
                     or SCHEMA_REGISTRY_API_KEY); set only one",
            )),
            (Some((user, password)), None) => builder = builder.basic_auth(user, password),
            (None, Some(token)) => builder = builder.bearer_auth(Secret::new(token)),
            (None, None) => {}
        }

        if let Some(ca) = get("SCHEMA_REGISTRY_SSL_CA_LOCATION") {
            builder = builder.ca_location(ca);
        }
        match (
            get("SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION"),
            get("SCHEMA_REGISTRY_SSL_KEY_LOCATION"),
        ) {
            (Some(cert), Some(key)) => builder = builder.client_certificate(cert, key),
            (Some(_), None) => {
                return Err(Error::config(
                    "SCHEMA_REGISTRY_SSL_KEY_LOCATION",
                    "is not set, but SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION is; a client \
                     certificate needs its private key",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION",
                    "is not set, but SCHEMA_REGISTRY_SSL_KEY_LOCATION is; set both or neither",
                ))
            }
            (None, None) => {}
        }
        Ok(builder)
    }

    /// Authenticates every request with HTTP basic authentication (a user and password, or a
    /// Confluent Cloud API key and secret). Replaces a bearer token.
    pub fn basic_auth(mut self, user: impl Into<String>, password: Secret) -> Self {
        self.auth = Auth::Basic {
            user: user.into(),
            password,
        };
        self
    }

    /// Authenticates every request with `Authorization: Bearer <token>` (an OAuth access
    /// token). Replaces basic authentication.
    pub fn bearer_auth(mut self, token: Secret) -> Self {
        self.auth = Auth::Bearer(token);
        self
    }

    /// Trusts the CA certificates in this PEM file, and only those, for `https` URLs; without
    /// it the system's CA store is used.
    pub fn ca_location(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_location = Some(path.into());
        self
    }

    /// Presents this client certificate (PEM, with any intermediates after it) and its private
    /// key (PEM, PKCS#8: `-----BEGIN PRIVATE KEY-----`) for mutual TLS.
    pub fn client_certificate(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.certificate_location = Some(certificate.into());
        self.key_location = Some(key.into());
        self
    }

    /// How long to wait for a TCP (and TLS) connection; 10 s by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one request may take from start to the end of the answer; 30 s by default.
    /// Retries each get the full time again.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many times a failed request is tried again; 3 by default, 0 to never retry.
    ///
    /// Only failures that may pass are retried: a registry that cannot be reached or does not
    /// answer in time, a 5xx answer, and 429 Too Many Requests. Other 4xx answers (not found,
    /// incompatible, invalid) fail at once.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// The wait before the first retry (doubled for each further one) and the longest wait;
    /// 100 ms and 5 s by default. Each wait is randomised between half and all of its value.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry.initial_backoff = initial;
        self.retry.max_backoff = max.max(initial);
        self
    }

    /// How many entries each cache keeps (ids → schemas, registrations, lookups); 1000 by
    /// default, 0 to disable caching.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// Checks the settings, reads the TLS files, and creates the client.
    ///
    /// Credentials in the URL (`https://user:password@host`) become basic authentication, unless
    /// authentication was set otherwise, and are removed from the URL the client shows.
    pub fn build(self) -> Result<SchemaRegistryClient> {
        let mut parsed = url::Url::parse(&self.url).map_err(|e| {
            Error::config(
                "SCHEMA_REGISTRY_URL",
                format!("`{}`: {e}", redact_url(&self.url)),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::config(
                "SCHEMA_REGISTRY_URL",
                format!("`{}` is not an http or https URL", redact_url(&self.url)),
            ));
        }
        let mut auth = self.auth;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            if matches!(auth, Auth::None) {
                auth = Auth::Basic {
                    user: percent_decode(parsed.username()),
                    password: Secret::new(percent_decode(parsed.password().unwrap_or_default())),
                };
            }
            // Cannot fail for http(s) URLs, which have a host.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }

        let mut http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout);
        if let Some(path) = &self.ca_location {
            let key = "SCHEMA_REGISTRY_SSL_CA_LOCATION";
            let pem = read_file(key, path)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::config(key, format!("{} is not a PEM file: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(Error::config(
                    key,
                    format!("{} holds no PEM certificate", path.display()),
                ));
            }
            http = http.tls_certs_only(certs);
        }
        if let (Some(cert_path), Some(key_path)) = (&self.certificate_location, &self.key_location)
        {
            let cert = read_file("SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION", cert_path)?;
            let key = read_file("SCHEMA_REGISTRY_SSL_KEY_LOCATION", key_path)?;
            let identity = reqwest::Identity::from_pkcs8_pem(&cert, &key).map_err(|e| {
                Error::config(
                    "SCHEMA_REGISTRY_SSL_KEY_LOCATION",
                    format!(
                        "cannot use {} with {} as client certificate: {e} (the key must be an \
                         unencrypted PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`; convert others \
                         with `openssl pkcs8 -topk8 -nocrypt`)",
                        cert_path.display(),
                        key_path.display()
                    ),
                )
            })?;
            http = http.identity(identity);
        }
        let http = http
            .build()
            .map_err(|e| Error::config("SCHEMA_REGISTRY_URL", e.to_string()))?;

        Ok(SchemaRegistryClient {
            base: parsed.as_str().trim_end_matches('/').into(),
            http,
            auth: Arc::new(auth),
            retry: self.retry,
            cache: Arc::new(Caches::new(self.cache_capacity)),
        })
    }
}

fn read_file(key: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::config(key, format!("cannot read {}: {e}", path.display())))
}

/// The URL with anything between `://` and `@` replaced, for error messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start + 3 => {
            format!("{}***{}", &url[..start + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn user_info_must_have_a_colon() {
        let err = SchemaRegistryClient::from_lookup(lookup(&[
            ("SCHEMA_REGISTRY_URL", "http://r"),
            ("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "nocolon"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("user:password"));
    }

    #[test]
    fn url_is_required() {
        let err = SchemaRegistryClient::from_lookup(|_| None).unwrap_err();
        assert!(matches!(&err, Error::Configuration { key, .. } if key == "SCHEMA_REGISTRY_URL"));
    }

    #[test]
    fn bearer_token_and_basic_auth_exclude_each_other() {
        let err = SchemaRegistryClient::from_lookup(lookup(&[
            ("SCHEMA_REGISTRY_URL", "http://r"),
            ("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "u:p4ss"),
            ("SCHEMA_REGISTRY_BEARER_TOKEN", "t0ken"),
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, Error::Configuration { key, .. } if key == "SCHEMA_REGISTRY_BEARER_TOKEN")
        );
        assert!(!err.to_string().contains("t0ken") && !err.to_string().contains("p4ss"));

        let client = SchemaRegistryClient::from_lookup(lookup(&[
            ("SCHEMA_REGISTRY_URL", "http://r"),
            ("SCHEMA_REGISTRY_BEARER_TOKEN", "t0ken"),
        ]))
        .unwrap();
        let debug = format!("{client:?}");
        assert!(debug.contains("Bearer(***)"), "{debug}");
        assert!(!debug.contains("t0ken"));
    }

    #[test]
    fn half_set_pairs_are_refused_by_name() {
        let cases: [(&[(&str, &str)], &str); 3] = [
            (
                &[("SCHEMA_REGISTRY_API_SECRET", "s")],
                "SCHEMA_REGISTRY_API_KEY",
            ),
            (
                &[("SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION", "/c.pem")],
                "SCHEMA_REGISTRY_SSL_KEY_LOCATION",
            ),
            (
                &[("SCHEMA_REGISTRY_SSL_KEY_LOCATION", "/k.pem")],
                "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION",
            ),
        ];
        for (pairs, expected) in cases {
            let mut all = vec![("SCHEMA_REGISTRY_URL", "http://r")];
            all.extend_from_slice(pairs);
            let err = SchemaRegistryClientBuilder::from_lookup(lookup(&all)).unwrap_err();
            assert!(
                matches!(&err, Error::Configuration { key, .. } if key == expected),
                "{err:?}"
            );
        }
    }

    #[test]
    fn missing_tls_files_are_configuration_errors_naming_the_variable() {
        let err = SchemaRegistryClient::from_lookup(lookup(&[
            ("SCHEMA_REGISTRY_URL", "https://r"),
            ("SCHEMA_REGISTRY_SSL_CA_LOCATION", "/nonexistent/ca.pem"),
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, Error::Configuration { key, .. } if key == "SCHEMA_REGISTRY_SSL_CA_LOCATION"),
            "{err:?}"
        );
        assert!(err.to_string().contains("/nonexistent/ca.pem"));

        let not_pem = std::env::temp_dir().join(format!("flowodm-not-pem-{}", std::process::id()));
        std::fs::write(&not_pem, "hello").unwrap();
        let err = SchemaRegistryClient::builder("https://r")
            .ca_location(&not_pem)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = SchemaRegistryClient::builder("https://r")
            .client_certificate(&not_pem, &not_pem)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("PKCS#8"), "{err}");
        std::fs::remove_file(not_pem).unwrap();
    }

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_leave_the_url() {
        let client =
            SchemaRegistryClient::new("https://us%40r:p%3Ass@registry.example.com/x/").unwrap();
        assert_eq!(client.url(), "https://registry.example.com/x");
        match &*client.auth {
            Auth::Basic { user, password } => {
                assert_eq!(user, "us@r");
                assert_eq!(password.expose(), "p:ss");
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{client:?}").contains("p:ss"));
        // An explicit setting wins over the URL's.
        let client = SchemaRegistryClient::builder("https://u:p@r")
            .bearer_auth(Secret::new("t"))
            .build()
            .unwrap();
        assert!(matches!(&*client.auth, Auth::Bearer(_)));
        // A URL that does not parse is shown without its credentials.
        let err = SchemaRegistryClient::new("https://u:hunter2@[bad").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let policy = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let d0 = policy.delay(0, None);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&d0));
            let d2 = policy.delay(2, None);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&d2));
            let d9 = policy.delay(9, None);
            assert!((Duration::from_millis(500)..=Duration::from_millis(1000)).contains(&d9));
            assert!(policy.delay(40, None) <= Duration::from_millis(1000));
        }
        // Retry-After is honoured up to the cap.
        assert!(policy.delay(0, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
        assert!(policy.delay(0, Some(Duration::from_secs(60))) <= Duration::from_millis(1000));
    }
}
