//! The HTTP client: configuration, authentication, TLS, retries, and one method per endpoint.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::cache::{Caches, DEFAULT_CAPACITY};
use super::error_code;
use super::types::{
    CompatibilityCheck, CompatibilityLevel, ConfigBody, IdBody, Mode, ModeBody, Schema,
    SubjectVersion, SubjectVersionRef, Version,
};
use crate::config::Secret;
use crate::error::{Error, Result};

/// What the client accepts, in Confluent's order of preference.
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, \
                      application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";
/// What the client sends.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RETRIES: u32 = 3;
const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How requests authenticate; `Debug` never shows the secret.
#[derive(Clone, Default)]
enum Auth {
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
struct RetryPolicy {
    max_retries: u32,
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
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
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
    fn new(url: impl Into<String>) -> Self {
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

/// A client for one schema registry.
///
/// Cheap to clone: clones share the connection pool and the caches. Create it with [`new`],
/// [`from_env`] or, for authentication, TLS, timeouts and retries, with [`builder`].
///
/// ```no_run
/// # async fn demo() -> flowodm::Result<()> {
/// use flowodm::registry::SchemaRegistryClient;
///
/// let registry = SchemaRegistryClient::new("http://127.0.0.1:8081")?;
/// let id = registry
///     .register("orders-value", r#"{"type":"record","name":"Order","fields":[]}"#)
///     .await?;
/// let schema = registry.schema_by_id(id).await?;
/// # Ok(()) }
/// ```
///
/// [`new`]: Self::new
/// [`from_env`]: Self::from_env
/// [`builder`]: Self::builder
#[derive(Clone)]
pub struct SchemaRegistryClient {
    base: Arc<str>,
    http: reqwest::Client,
    auth: Arc<Auth>,
    retry: RetryPolicy,
    cache: Arc<Caches>,
}

impl fmt::Debug for SchemaRegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaRegistryClient")
            .field("url", &self.base)
            .field("auth", &self.auth)
            .field("max_retries", &self.retry.max_retries)
            .finish_non_exhaustive()
    }
}

/// An answer of the registry, before it is judged.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct CompatibilityBody {
    compatibility: CompatibilityLevel,
}

#[derive(Serialize)]
struct ModeRequest {
    mode: Mode,
}

#[derive(Deserialize)]
struct SchemaBody {
    #[serde(flatten)]
    schema: Schema,
}

impl SchemaRegistryClient {
    /// A client for the registry whose API root is `url`, with the default settings.
    ///
    /// ```
    /// let registry = flowodm::registry::SchemaRegistryClient::new("http://127.0.0.1:8081/").unwrap();
    /// assert_eq!(registry.url(), "http://127.0.0.1:8081");
    /// assert!(flowodm::registry::SchemaRegistryClient::new("ftp://x").is_err());
    /// ```
    pub fn new(url: &str) -> Result<Self> {
        Self::builder(url).build()
    }

    /// Settings for a client of the registry at `url`; finish with
    /// [`build`](SchemaRegistryClientBuilder::build).
    ///
    /// ```
    /// use std::time::Duration;
    /// let registry = flowodm::registry::SchemaRegistryClient::builder("http://127.0.0.1:8081")
    ///     .connect_timeout(Duration::from_secs(2))
    ///     .max_retries(0)
    ///     .build()
    ///     .unwrap();
    /// # let _ = registry;
    /// ```
    pub fn builder(url: impl Into<String>) -> SchemaRegistryClientBuilder {
        SchemaRegistryClientBuilder::new(url)
    }

    /// A client configured from the environment (see the [module docs](super#environment)).
    pub fn from_env() -> Result<Self> {
        SchemaRegistryClientBuilder::from_env()?.build()
    }

    /// A client configured from any name → value lookup, with the environment's names.
    ///
    /// ```
    /// let env = std::collections::HashMap::from([
    ///     ("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081"),
    ///     ("SCHEMA_REGISTRY_API_KEY", "key"),
    ///     ("SCHEMA_REGISTRY_API_SECRET", "s3cret"),
    /// ]);
    /// let registry = flowodm::registry::SchemaRegistryClient::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
    /// assert!(!format!("{registry:?}").contains("s3cret"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        SchemaRegistryClientBuilder::from_lookup(lookup)?.build()
    }

    /// Authenticates every request with HTTP basic authentication.
    ///
    /// ```
    /// use flowodm::{registry::SchemaRegistryClient, Secret};
    /// let registry = SchemaRegistryClient::new("https://registry.example.com")
    ///     .unwrap()
    ///     .basic_auth("api-key", Secret::new("api-secret"));
    /// assert!(!format!("{registry:?}").contains("api-secret"));
    /// ```
    pub fn basic_auth(mut self, user: impl Into<String>, password: Secret) -> Self {
        self.auth = Arc::new(Auth::Basic {
            user: user.into(),
            password,
        });
        self
    }

    /// Authenticates every request with a bearer token.
    ///
    /// ```
    /// use flowodm::{registry::SchemaRegistryClient, Secret};
    /// let registry = SchemaRegistryClient::new("https://registry.example.com")
    ///     .unwrap()
    ///     .bearer_auth(Secret::new("token"));
    /// # let _ = registry;
    /// ```
    pub fn bearer_auth(mut self, token: Secret) -> Self {
        self.auth = Arc::new(Auth::Bearer(token));
        self
    }

    /// The API root this client calls.
    ///
    /// ```
    /// let registry = flowodm::registry::SchemaRegistryClient::new("http://127.0.0.1:8081/apis/ccompat/v7/").unwrap();
    /// assert_eq!(registry.url(), "http://127.0.0.1:8081/apis/ccompat/v7");
    /// ```
    pub fn url(&self) -> &str {
        &self.base
    }

    // -----------------------------------------------------------------------------------------
    // Schemas
    // -----------------------------------------------------------------------------------------

    /// Registers the Avro schema `schema` under `subject` and returns its global id.
    ///
    /// Registering a schema the subject already holds returns the existing id and adds no
    /// version; the same schema under another subject gets the same id. The answer is cached,
    /// so registering the same schema again does not call the registry.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let id = registry.register("orders-value", r#"{"type":"string"}"#).await?;
    /// # Ok(()) }
    /// ```
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        self.register_schema(subject, &Schema::avro(schema), false)
            .await
    }

    /// Registers `schema` (of any type, with its references) under `subject` and returns its
    /// global id.
    ///
    /// With `normalize`, the registry first rewrites the schema into its normal form, so
    /// schemas that differ only in formatting or in the order of JSON properties get one id.
    ///
    /// A schema the subject's compatibility level refuses fails with an error for which
    /// [`Error::is_incompatible_schema`] is true; an invalid one with error code 42201.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// use flowodm::registry::{Schema, SchemaReference};
    ///
    /// registry.register("addresses-value", r#"{"type":"record","name":"Address","namespace":"x",
    ///     "fields":[{"name":"street","type":"string"}]}"#).await?;
    /// let customer = Schema::avro(r#"{"type":"record","name":"Customer","namespace":"x",
    ///     "fields":[{"name":"address","type":"x.Address"}]}"#)
    ///     .with_reference(SchemaReference::new("x.Address", "addresses-value", 1));
    /// match registry.register_schema("customers-value", &customer, true).await {
    ///     Ok(id) => println!("registered as {id}"),
    ///     Err(e) if e.is_incompatible_schema() => eprintln!("refused: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn register_schema(
        &self,
        subject: &str,
        schema: &Schema,
        normalize: bool,
    ) -> Result<u32> {
        let key = (subject.to_string(), schema.clone(), normalize);
        if let Some(id) = self.cache.ids.get(&key) {
            return Ok(id);
        }
        let path = format!(
            "/subjects/{}/versions{}",
            encode(subject),
            query(&[("normalize", normalize)])
        );
        let answer: IdBody = self.call(Method::POST, &path, Some(schema)).await?;
        self.cache.ids.insert(key, answer.id);
        Ok(answer.id)
    }

    /// Finds `schema` among the versions of `subject` (`POST /subjects/{subject}`) without
    /// registering it: its version and id.
    ///
    /// Fails with error code 40401 when the subject does not exist and 40403 when the schema is
    /// not one of its versions. The answer is cached.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// use flowodm::registry::Schema;
    /// let found = registry.lookup("orders-value", &Schema::avro(r#"{"type":"string"}"#), false).await?;
    /// println!("version {}, id {}", found.version, found.id);
    /// # Ok(()) }
    /// ```
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &Schema,
        normalize: bool,
    ) -> Result<SubjectVersion> {
        let key = (subject.to_string(), schema.clone(), normalize);
        if let Some(found) = self.cache.versions.get(&key) {
            return Ok(found);
        }
        let path = format!(
            "/subjects/{}{}",
            encode(subject),
            query(&[("normalize", normalize)])
        );
        let found: SubjectVersion = self.call(Method::POST, &path, Some(schema)).await?;
        self.cache.ids.insert(key.clone(), found.id);
        self.cache.versions.insert(key, found.clone());
        Ok(found)
    }

    /// The schema text with this global id (for Avro, its JSON).
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let writer_schema = registry.schema_by_id(7).await?;
    /// # Ok(()) }
    /// ```
    pub async fn schema_by_id(&self, id: u32) -> Result<String> {
        Ok(self.schema(id).await?.text)
    }

    /// The schema with this global id, with its type and references.
    ///
    /// Ids never change meaning, so the answer is cached for good: a consumer fetches each
    /// writer schema once. An unknown id fails with error code 40403.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let schema = registry.schema(7).await?;
    /// for r in &schema.references {
    ///     println!("uses {} from {} v{}", r.name, r.subject, r.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn schema(&self, id: u32) -> Result<Schema> {
        if let Some(schema) = self.cache.schemas.get(&id) {
            return Ok(schema);
        }
        let body: SchemaBody = self
            .call(Method::GET, &format!("/schemas/ids/{id}"), None::<&()>)
            .await?;
        self.cache.schemas.insert(id, body.schema.clone());
        Ok(body.schema)
    }

    /// Every subject and version the schema with this id is registered as.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// for place in registry.schema_versions(7).await? {
    ///     println!("{} v{}", place.subject, place.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn schema_versions(&self, id: u32) -> Result<Vec<SubjectVersionRef>> {
        self.call(
            Method::GET,
            &format!("/schemas/ids/{id}/versions"),
            None::<&()>,
        )
        .await
    }

    // -----------------------------------------------------------------------------------------
    // Subjects and versions
    // -----------------------------------------------------------------------------------------

    /// Every subject the registry holds, without the soft-deleted ones.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let subjects = registry.subjects().await?;
    /// # Ok(()) }
    /// ```
    pub async fn subjects(&self) -> Result<Vec<String>> {
        self.call(Method::GET, "/subjects", None::<&()>).await
    }

    /// Every subject the registry holds, with the soft-deleted ones (`?deleted=true`).
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let all = registry.subjects_including_deleted().await?;
    /// # Ok(()) }
    /// ```
    pub async fn subjects_including_deleted(&self) -> Result<Vec<String>> {
        self.call(Method::GET, "/subjects?deleted=true", None::<&()>)
            .await
    }

    /// The version numbers of a subject, oldest first, without the soft-deleted ones.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let versions = registry.versions("orders-value").await?; // e.g. [1, 2, 3]
    /// # Ok(()) }
    /// ```
    pub async fn versions(&self, subject: &str) -> Result<Vec<u32>> {
        let path = format!("/subjects/{}/versions", encode(subject));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// The version numbers of a subject, with the soft-deleted ones (`?deleted=true`).
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let versions = registry.versions_including_deleted("orders-value").await?;
    /// # Ok(()) }
    /// ```
    pub async fn versions_including_deleted(&self, subject: &str) -> Result<Vec<u32>> {
        let path = format!("/subjects/{}/versions?deleted=true", encode(subject));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// The latest version of a subject.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let latest = registry.latest_version("orders-value").await?;
    /// # Ok(()) }
    /// ```
    pub async fn latest_version(&self, subject: &str) -> Result<SubjectVersion> {
        self.subject_version(subject, Version::Latest).await
    }

    /// A given version of a subject; error code 40402 when it does not exist.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let first = registry.version("orders-value", 1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn version(&self, subject: &str, version: u32) -> Result<SubjectVersion> {
        self.subject_version(subject, Version::Number(version))
            .await
    }

    /// A version of a subject, by number or the latest.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// use flowodm::registry::Version;
    /// let latest = registry.subject_version("orders-value", Version::Latest).await?;
    /// # Ok(()) }
    /// ```
    pub async fn subject_version(
        &self,
        subject: &str,
        version: impl Into<Version>,
    ) -> Result<SubjectVersion> {
        let path = format!("/subjects/{}/versions/{}", encode(subject), version.into());
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Soft-deletes a version of a subject and returns its number.
    ///
    /// The version disappears from listings and can no longer be read by subject and version,
    /// but its schema stays readable by id, so messages written with it can still be read. It
    /// can then be [deleted permanently](Self::delete_version_permanently). Soft-deleting it
    /// again fails with error code 40406; a version other schemas reference cannot be deleted
    /// (42206).
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let deleted = registry.delete_version("orders-value", 2).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_version(&self, subject: &str, version: impl Into<Version>) -> Result<u32> {
        self.delete_version_inner(subject, version.into(), false)
            .await
    }

    /// Permanently deletes a soft-deleted version of a subject and returns its number.
    ///
    /// The version must have been [soft-deleted](Self::delete_version) first (error code 40407
    /// otherwise). Once no version uses it, its schema id stops resolving, and messages written
    /// with it can no longer be decoded.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// registry.delete_version("orders-value", 2).await?;
    /// registry.delete_version_permanently("orders-value", 2).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_version_permanently(
        &self,
        subject: &str,
        version: impl Into<Version>,
    ) -> Result<u32> {
        self.delete_version_inner(subject, version.into(), true)
            .await
    }

    async fn delete_version_inner(
        &self,
        subject: &str,
        version: Version,
        permanent: bool,
    ) -> Result<u32> {
        let path = format!(
            "/subjects/{}/versions/{version}{}",
            encode(subject),
            query(&[("permanent", permanent)])
        );
        let result = self.call(Method::DELETE, &path, None::<&()>).await;
        self.cache.forget_subject(subject);
        result
    }

    /// Soft-deletes every version of a subject and returns their numbers.
    ///
    /// The subject disappears from [`subjects`](Self::subjects); its schemas stay readable by
    /// id. Registering under it again continues the version numbering.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let deleted = registry.delete_subject("orders-value").await?; // e.g. [1, 2, 3]
    /// # Ok(()) }
    /// ```
    pub async fn delete_subject(&self, subject: &str) -> Result<Vec<u32>> {
        self.delete_subject_inner(subject, false).await
    }

    /// Permanently deletes a soft-deleted subject and returns the numbers of the versions it
    /// held.
    ///
    /// The subject must have been [soft-deleted](Self::delete_subject) first (error code 40405
    /// otherwise).
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// registry.delete_subject("orders-value").await?;
    /// registry.delete_subject_permanently("orders-value").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_subject_permanently(&self, subject: &str) -> Result<Vec<u32>> {
        self.delete_subject_inner(subject, true).await
    }

    async fn delete_subject_inner(&self, subject: &str, permanent: bool) -> Result<Vec<u32>> {
        let path = format!(
            "/subjects/{}{}",
            encode(subject),
            query(&[("permanent", permanent)])
        );
        let result = self.call(Method::DELETE, &path, None::<&()>).await;
        self.cache.forget_subject(subject);
        result
    }

    // -----------------------------------------------------------------------------------------
    // Compatibility
    // -----------------------------------------------------------------------------------------

    /// Tests whether `schema` could be registered as the next version of `subject`, checking it
    /// against `version` under the subject's compatibility level, and asks for the reasons when
    /// it could not (`verbose=true`).
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// use flowodm::registry::{Schema, Version};
    /// let check = registry
    ///     .check_compatibility("orders-value", Version::Latest, &Schema::avro(r#""string""#))
    ///     .await?;
    /// if !check.is_compatible {
    ///     eprintln!("incompatible: {}", check.messages.join("; "));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn check_compatibility(
        &self,
        subject: &str,
        version: impl Into<Version>,
        schema: &Schema,
    ) -> Result<CompatibilityCheck> {
        let path = format!(
            "/compatibility/subjects/{}/versions/{}?verbose=true",
            encode(subject),
            version.into()
        );
        self.call(Method::POST, &path, Some(schema)).await
    }

    /// The registry-wide compatibility level, which applies to subjects without their own.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let level = registry.global_compatibility().await?;
    /// # Ok(()) }
    /// ```
    pub async fn global_compatibility(&self) -> Result<CompatibilityLevel> {
        self.config_call(Method::GET, "/config".into(), None).await
    }

    /// Sets the registry-wide compatibility level; returns the level now set.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// use flowodm::registry::CompatibilityLevel;
    /// registry.set_global_compatibility(CompatibilityLevel::Backward).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_global_compatibility(
        &self,
        level: CompatibilityLevel,
    ) -> Result<CompatibilityLevel> {
        self.config_call(Method::PUT, "/config".into(), Some(level))
            .await
    }

    /// Removes the registry-wide compatibility level, so the registry's default applies again
    /// (for Confluent, `BACKWARD`); returns the level that was set.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let was = registry.delete_global_compatibility().await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_global_compatibility(&self) -> Result<CompatibilityLevel> {
        self.config_call(Method::DELETE, "/config".into(), None)
            .await
    }

    /// The compatibility level set on `subject` itself, or `None` when it has none and the
    /// global level applies (error code 40408, which this turns into `None`).
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// match registry.subject_compatibility("orders-value").await? {
    ///     Some(level) => println!("orders-value: {level}"),
    ///     None => println!("orders-value follows the global level"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subject_compatibility(&self, subject: &str) -> Result<Option<CompatibilityLevel>> {
        let path = format!("/config/{}", encode(subject));
        match self.config_call(Method::GET, path, None).await {
            Ok(level) => Ok(Some(level)),
            Err(e)
                if e.registry_error_code()
                    == Some(error_code::SUBJECT_COMPATIBILITY_NOT_CONFIGURED) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The compatibility level that applies to `subject`: its own, or else the global one
    /// (`?defaultToGlobal=true`).
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let level = registry.effective_compatibility("orders-value").await?;
    /// # Ok(()) }
    /// ```
    pub async fn effective_compatibility(&self, subject: &str) -> Result<CompatibilityLevel> {
        let path = format!("/config/{}?defaultToGlobal=true", encode(subject));
        self.config_call(Method::GET, path, None).await
    }

    /// Sets the compatibility level of `subject` (which need not exist yet); returns the level
    /// now set.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// use flowodm::registry::CompatibilityLevel;
    /// registry.set_subject_compatibility("orders-value", CompatibilityLevel::FullTransitive).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_subject_compatibility(
        &self,
        subject: &str,
        level: CompatibilityLevel,
    ) -> Result<CompatibilityLevel> {
        let path = format!("/config/{}", encode(subject));
        self.config_call(Method::PUT, path, Some(level)).await
    }

    /// Removes the compatibility level of `subject`, so the global one applies; returns the
    /// level that was set.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let was = registry.delete_subject_compatibility("orders-value").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_subject_compatibility(&self, subject: &str) -> Result<CompatibilityLevel> {
        let path = format!("/config/{}", encode(subject));
        self.config_call(Method::DELETE, path, None).await
    }

    async fn config_call(
        &self,
        method: Method,
        path: String,
        level: Option<CompatibilityLevel>,
    ) -> Result<CompatibilityLevel> {
        let body = level.map(|compatibility| CompatibilityBody { compatibility });
        let url = self.endpoint(&path);
        let bytes = self.send(method, &url, body.as_ref()).await?;
        parse_config(&url, &bytes)
    }

    // -----------------------------------------------------------------------------------------
    // Modes
    // -----------------------------------------------------------------------------------------

    /// The registry-wide mode.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// use flowodm::registry::Mode;
    /// assert_eq!(registry.mode().await?, Mode::ReadWrite);
    /// # Ok(()) }
    /// ```
    pub async fn mode(&self) -> Result<Mode> {
        self.mode_call(Method::GET, "/mode".into(), None).await
    }

    /// Sets the registry-wide mode; returns the mode now set.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// use flowodm::registry::Mode;
    /// registry.set_mode(Mode::ReadOnly).await?; // e.g. during a migration
    /// # Ok(()) }
    /// ```
    pub async fn set_mode(&self, mode: Mode) -> Result<Mode> {
        self.mode_call(Method::PUT, "/mode".into(), Some(mode))
            .await
    }

    /// The mode set on `subject` itself, or `None` when it has none and the global mode
    /// applies (error code 40409, which this turns into `None`).
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let mode = registry.subject_mode("orders-value").await?;
    /// # Ok(()) }
    /// ```
    pub async fn subject_mode(&self, subject: &str) -> Result<Option<Mode>> {
        let path = format!("/mode/{}", encode(subject));
        match self.mode_call(Method::GET, path, None).await {
            Ok(mode) => Ok(Some(mode)),
            Err(e) if e.registry_error_code() == Some(error_code::SUBJECT_MODE_NOT_CONFIGURED) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the mode of `subject`; returns the mode now set.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// use flowodm::registry::Mode;
    /// registry.set_subject_mode("orders-value", Mode::ReadOnly).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_subject_mode(&self, subject: &str, mode: Mode) -> Result<Mode> {
        let path = format!("/mode/{}", encode(subject));
        self.mode_call(Method::PUT, path, Some(mode)).await
    }

    /// Removes the mode of `subject`, so the global one applies; returns the mode that was set.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// registry.delete_subject_mode("orders-value").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_subject_mode(&self, subject: &str) -> Result<Mode> {
        let path = format!("/mode/{}", encode(subject));
        self.mode_call(Method::DELETE, path, None).await
    }

    async fn mode_call(&self, method: Method, path: String, mode: Option<Mode>) -> Result<Mode> {
        let body = mode.map(|mode| ModeRequest { mode });
        let answer: ModeBody = self.call(method, &path, body.as_ref()).await?;
        Ok(answer.mode)
    }

    // -----------------------------------------------------------------------------------------
    // HTTP
    // -----------------------------------------------------------------------------------------

    fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let url = self.endpoint(path);
        let bytes = self.send(method, &url, body).await?;
        decode(&url, &bytes)
    }

    /// Sends the request, retrying what may pass, and returns the body of a 2xx answer.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &str,
        body: Option<&B>,
    ) -> Result<Vec<u8>> {
        let json = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::Serialization {
                message: e.to_string(),
            })?;
        let mut attempt = 0;
        loop {
            let (err, retry_after) = match self.send_once(&method, url, json.as_deref()).await {
                Ok(answer) if answer.status.is_success() => return Ok(answer.body),
                Ok(answer) => (
                    registry_error(answer.status, &answer.body),
                    answer.retry_after,
                ),
                Err(e) => (e, None),
            };
            if attempt >= self.retry.max_retries || !err.is_retriable() {
                return Err(err);
            }
            let delay = self.retry.delay(attempt, retry_after);
            attempt += 1;
            tracing::debug!(
                %method,
                url,
                attempt,
                max_retries = self.retry.max_retries,
                error = %err,
                "schema registry request failed; retrying in {delay:?}"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(&self, method: &Method, url: &str, json: Option<&[u8]>) -> Result<Answer> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(reqwest::header::ACCEPT, ACCEPT);
        request = match &*self.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password.expose())),
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
        };
        if let Some(json) = json {
            request = request
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(json.to_vec());
        }
        let transport = |source: reqwest::Error| Error::RegistryTransport {
            url: url.to_string(),
            source: Box::new(source.without_url()),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }
}

fn decode<T: DeserializeOwned>(url: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| unexpected_answer(url, &e.to_string(), bytes))
}

fn unexpected_answer(url: &str, problem: &str, bytes: &[u8]) -> Error {
    Error::RegistryTransport {
        url: url.to_string(),
        source: format!(
            "unexpected answer ({problem}): {}",
            String::from_utf8_lossy(bytes)
        )
        .into(),
    }
}

/// The level in a config answer, which is `compatibilityLevel` (GET) or `compatibility` (PUT).
fn parse_config(url: &str, bytes: &[u8]) -> Result<CompatibilityLevel> {
    let body: ConfigBody = decode(url, bytes)?;
    body.level()
        .ok_or_else(|| unexpected_answer(url, "no compatibility level", bytes))
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<u32>,
    message: Option<String>,
}

/// The error for a non-2xx answer: the registry's code and message when the body is its JSON,
/// else the HTTP status and the body.
fn registry_error(status: StatusCode, body: &[u8]) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message) = match parsed {
        Some(ErrorBody {
            error_code,
            message,
        }) => (error_code, message),
        None => (None, None),
    };
    Error::Registry {
        status: status.as_u16(),
        error_code: code.unwrap_or(status.as_u16() as u32),
        message: message.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            if text.trim().is_empty() {
                status.to_string()
            } else {
                text.into_owned()
            }
        }),
    }
}

/// Percent-encodes a path segment (subjects may contain `/`, `:` and spaces).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?a=true&b=true` for the flags that are set, or nothing.
fn query(flags: &[(&str, bool)]) -> String {
    let set: Vec<String> = flags
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| format!("{name}=true"))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
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
    fn subjects_are_encoded_as_one_path_segment() {
        assert_eq!(encode("orders-value"), "orders-value");
        assert_eq!(encode("a/b c:d"), "a%2Fb%20c%3Ad");
        assert_eq!(encode("ü"), "%C3%BC");
    }

    #[test]
    fn urls_are_built_from_the_root_the_segments_and_the_flags() {
        let client = SchemaRegistryClient::new("http://r:8081/apis/ccompat/v7/").unwrap();
        let path = format!(
            "/subjects/{}/versions/{}{}",
            encode("a/b"),
            Version::Latest,
            query(&[("permanent", true)])
        );
        assert_eq!(
            client.endpoint(&path),
            "http://r:8081/apis/ccompat/v7/subjects/a%2Fb/versions/latest?permanent=true"
        );
        assert_eq!(query(&[("normalize", false)]), "");
        assert_eq!(
            query(&[("a", true), ("b", false), ("c", true)]),
            "?a=true&c=true"
        );
    }

    #[test]
    fn error_bodies_keep_code_and_message() {
        let err = registry_error(
            StatusCode::NOT_FOUND,
            br#"{"error_code":40401,"message":"Subject 'x' not found."}"#,
        );
        assert_eq!(err.registry_error_code(), Some(40401));
        assert_eq!(
            err.to_string(),
            "schema registry: Subject 'x' not found. (HTTP 404, error code 40401)"
        );
        assert!(!err.is_retriable());
        assert!(err.is_subject_not_found());
    }

    #[test]
    fn both_incompatibility_codes_are_recognised() {
        for body in [
            &br#"{"error_code":409,"message":"Schema being registered is incompatible"}"#[..],
            br#"{"error_code":40901,"message":"Schema being registered is incompatible"}"#,
            b"",
        ] {
            let err = registry_error(StatusCode::CONFLICT, body);
            assert!(err.is_incompatible_schema(), "{err:?}");
            assert!(!err.is_retriable());
        }
        // A 409 status with another code (Apicurio sends 40407 with HTTP 409) is not one.
        let err = registry_error(
            StatusCode::CONFLICT,
            br#"{"error_code":40407,"message":"must be soft deleted first"}"#,
        );
        assert!(!err.is_incompatible_schema());
        assert!(err.is_not_found());
    }

    #[test]
    fn non_json_error_bodies_fall_back_to_status() {
        let err = registry_error(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(err.registry_error_code(), Some(502));
        assert!(err.is_retriable());
        let err = registry_error(StatusCode::INTERNAL_SERVER_ERROR, b"<html>oops</html>");
        assert!(err.to_string().contains("<html>oops</html>"));
        let err = registry_error(StatusCode::TOO_MANY_REQUESTS, b"slow down");
        assert!(err.is_retriable());
    }

    #[test]
    fn config_answers_use_either_field_name() {
        let url = "http://r/config";
        assert_eq!(
            parse_config(url, br#"{"compatibilityLevel":"FULL_TRANSITIVE"}"#).unwrap(),
            CompatibilityLevel::FullTransitive
        );
        assert_eq!(
            parse_config(url, br#"{"compatibility":"BACKWARD","normalize":false}"#).unwrap(),
            CompatibilityLevel::Backward
        );
        for level in CompatibilityLevel::ALL {
            let body = format!(r#"{{"compatibilityLevel":"{level}"}}"#);
            assert_eq!(parse_config(url, body.as_bytes()).unwrap(), level);
        }
        let err = parse_config(url, br#"{"normalize":true}"#).unwrap_err();
        assert!(matches!(err, Error::RegistryTransport { .. }), "{err:?}");
        assert!(parse_config(url, br#"{"compatibilityLevel":"SIDEWAYS"}"#).is_err());
    }

    #[test]
    fn schema_answers_default_to_avro_without_references() {
        let body: SchemaBody = decode("u", br#"{"schema":"\"string\""}"#).unwrap();
        assert_eq!(body.schema, Schema::avro("\"string\""));
        let body: SchemaBody = decode(
            "u",
            br#"{"schema":"x","schemaType":"PROTOBUF","references":[{"name":"a.proto","subject":"a","version":2}],"maxId":9}"#,
        )
        .unwrap();
        assert_eq!(body.schema.schema_type, super::super::SchemaType::Protobuf);
        assert_eq!(body.schema.references[0].version, 2);
    }

    #[test]
    fn register_requests_omit_defaults() {
        let json = serde_json::to_string(&Schema::avro("\"int\"")).unwrap();
        assert_eq!(json, r#"{"schema":"\"int\""}"#);
        let json = serde_json::to_string(
            &Schema::new(super::super::SchemaType::Json, "{}")
                .with_reference(super::super::SchemaReference::new("b.json", "b", 1)),
        )
        .unwrap();
        assert_eq!(
            json,
            r#"{"schema":"{}","schemaType":"JSON","references":[{"name":"b.json","subject":"b","version":1}]}"#
        );
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

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    /// A throwaway HTTP endpoint on loopback that counts the connections it accepts and answers
    /// each request with the same status line (or, with `None`, closes without answering). It
    /// stands in for a broken network path or an overloaded server, not for the registry's API.
    struct Endpoint {
        url: String,
        connections: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Endpoint {
        fn start(answer: Option<&'static str>) -> Self {
            use std::io::{Read, Write};
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let count = connections.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    if let Some(status) = answer {
                        let body = r#"{"error_code":0,"message":"canned"}"#;
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                }
            });
            Endpoint { url, connections }
        }

        fn connections(&self) -> usize {
            self.connections.load(std::sync::atomic::Ordering::SeqCst)
        }

        fn client(&self, retries: u32) -> SchemaRegistryClient {
            SchemaRegistryClient::builder(&self.url)
                .max_retries(retries)
                .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
                .build()
                .unwrap()
        }
    }

    #[tokio::test]
    async fn dropped_connections_are_retried_then_reported_as_transport_errors() {
        let endpoint = Endpoint::start(None);
        let err = endpoint.client(2).subjects().await.unwrap_err();
        assert!(matches!(err, Error::RegistryTransport { .. }), "{err:?}");
        assert_eq!(endpoint.connections(), 3, "1 try + 2 retries");
    }

    #[tokio::test]
    async fn server_errors_and_429_are_retried() {
        for status in [
            "503 Service Unavailable",
            "500 Internal Server Error",
            "429 Too Many Requests",
        ] {
            let endpoint = Endpoint::start(Some(status));
            let err = endpoint.client(3).subjects().await.unwrap_err();
            assert!(err.is_retriable(), "{err:?}");
            assert_eq!(endpoint.connections(), 4, "{status}: 1 try + 3 retries");
        }
    }

    #[tokio::test]
    async fn other_client_errors_are_not_retried() {
        for status in [
            "404 Not Found",
            "409 Conflict",
            "422 Unprocessable Entity",
            "401 Unauthorized",
        ] {
            let endpoint = Endpoint::start(Some(status));
            let err = endpoint.client(3).subjects().await.unwrap_err();
            assert!(matches!(err, Error::Registry { .. }), "{err:?}");
            assert_eq!(endpoint.connections(), 1, "{status} is not retried");
        }
    }

    #[tokio::test]
    async fn cached_answers_do_not_touch_the_network() {
        let endpoint = Endpoint::start(None);
        let client = endpoint.client(0);
        let schema = Schema::avro("\"string\"");
        client.cache.schemas.insert(7, schema.clone());
        client
            .cache
            .ids
            .insert(("s".into(), schema.clone(), false), 7);

        // A clone shares the caches.
        let clone = client.clone();
        assert_eq!(clone.schema(7).await.unwrap(), schema);
        assert_eq!(clone.schema_by_id(7).await.unwrap(), "\"string\"");
        assert_eq!(clone.register("s", "\"string\"").await.unwrap(), 7);
        assert_eq!(endpoint.connections(), 0);

        // What is not cached goes to the network: same text, other subject or normalisation.
        assert!(client.register("other", "\"string\"").await.is_err());
        assert!(client.register_schema("s", &schema, true).await.is_err());
        assert!(client.schema(8).await.is_err());
        assert_eq!(endpoint.connections(), 3);
    }

    #[tokio::test]
    async fn deleting_through_the_client_forgets_the_subject() {
        let endpoint = Endpoint::start(Some("200 OK"));
        let client = endpoint.client(0);
        let schema = Schema::avro("\"string\"");
        client
            .cache
            .ids
            .insert(("s".into(), schema.clone(), false), 7);
        // The canned body is not a version list, but the delete was sent all the same.
        let _ = client.delete_subject("s").await;
        assert_eq!(endpoint.connections(), 1);
        assert_eq!(client.cache.ids.get(&("s".into(), schema, false)), None);
    }
}
