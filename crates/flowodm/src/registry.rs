//! A client for the Confluent Schema Registry REST API.
//!
//! A schema registry stores schemas under *subjects* (by default `{topic}-value` for message
//! values) and gives each distinct schema a global integer *id*. Producers register the schema
//! they write with and put its id in every message ([`wire`](crate::wire)); consumers fetch the
//! writer's schema by that id. Each subject keeps an ordered list of *versions*, and the
//! registry refuses a new version that breaks the subject's compatibility rule.
//!
//! The client speaks the API that Confluent Schema Registry, Karapace, Redpanda and Apicurio
//! Registry's `ccompat` endpoint share; point it at the API root, for example
//! `http://127.0.0.1:8081` or `http://127.0.0.1:8080/apis/ccompat/v7`.
//!
//! Errors keep the HTTP status and the registry's `error_code`
//! ([`Error::Registry`]); an unreachable registry is [`Error::RegistryTransport`], which is
//! [retriable](Error::is_retriable).
//!
//! # Environment
//!
//! [`SchemaRegistryClient::from_env`] reads `SCHEMA_REGISTRY_URL`, and for basic authentication
//! `SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO` (`user:password`) or else both
//! `SCHEMA_REGISTRY_API_KEY` and `SCHEMA_REGISTRY_API_SECRET`.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::error::{Error, Result};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A schema as the registry returns it for a subject version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version within the subject, counting from 1.
    pub version: u32,
    /// The schema's global id.
    pub id: u32,
    /// The schema text (Avro JSON).
    pub schema: String,
}

/// A client for one schema registry; cheap to clone (clones share the connection pool).
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
#[derive(Clone)]
pub struct SchemaRegistryClient {
    base: String,
    http: reqwest::Client,
    basic_auth: Option<(String, Secret)>,
}

impl fmt::Debug for SchemaRegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaRegistryClient")
            .field("url", &self.base)
            .field(
                "basic_auth_user",
                &self.basic_auth.as_ref().map(|(user, _)| user),
            )
            .finish()
    }
}

#[derive(Serialize)]
struct RegisterRequest<'a> {
    schema: &'a str,
}

#[derive(Deserialize)]
struct IdResponse {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<u32>,
    message: Option<String>,
}

impl SchemaRegistryClient {
    /// A client for the registry whose API root is `url`.
    ///
    /// ```
    /// let registry = flowodm::registry::SchemaRegistryClient::new("http://127.0.0.1:8081/").unwrap();
    /// assert_eq!(registry.url(), "http://127.0.0.1:8081");
    /// assert!(flowodm::registry::SchemaRegistryClient::new("ftp://x").is_err());
    /// ```
    pub fn new(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::config("SCHEMA_REGISTRY_URL", format!("`{url}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::config(
                "SCHEMA_REGISTRY_URL",
                format!("`{url}` is not an http or https URL"),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::config("SCHEMA_REGISTRY_URL", e.to_string()))?;
        Ok(SchemaRegistryClient {
            base: url.trim_end_matches('/').to_string(),
            http,
            basic_auth: None,
        })
    }

    /// A client configured from the environment (see the [module docs](self)).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// A client configured from any name → value lookup.
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
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let url = get("SCHEMA_REGISTRY_URL").ok_or_else(|| {
            Error::config(
                "SCHEMA_REGISTRY_URL",
                "is not set; set it to the registry's API root, for example http://127.0.0.1:8081",
            )
        })?;
        let mut client = Self::new(&url)?;
        if let Some(info) = get("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO") {
            let (user, password) = info.split_once(':').ok_or_else(|| {
                Error::config(
                    "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                    "must have the form user:password",
                )
            })?;
            client = client.basic_auth(user, Secret::new(password));
        } else if let (Some(key), Some(secret)) = (
            get("SCHEMA_REGISTRY_API_KEY"),
            get("SCHEMA_REGISTRY_API_SECRET"),
        ) {
            client = client.basic_auth(key, Secret::new(secret));
        }
        Ok(client)
    }

    /// Authenticates every request with HTTP basic authentication.
    pub fn basic_auth(mut self, user: impl Into<String>, password: Secret) -> Self {
        self.basic_auth = Some((user.into(), password));
        self
    }

    /// The API root this client calls.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Registers `schema` (Avro JSON) under `subject` and returns its global id.
    ///
    /// Registering a schema the subject already holds returns the existing id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        let path = format!("/subjects/{}/versions", encode(subject));
        let body = RegisterRequest { schema };
        let r: IdResponse = self.call(Method::POST, &path, Some(&body)).await?;
        Ok(r.id)
    }

    /// The schema text with this global id.
    pub async fn schema_by_id(&self, id: u32) -> Result<String> {
        let r: SchemaResponse = self
            .call(Method::GET, &format!("/schemas/ids/{id}"), None::<&()>)
            .await?;
        Ok(r.schema)
    }

    /// Every subject the registry holds (not soft-deleted ones).
    pub async fn subjects(&self) -> Result<Vec<String>> {
        self.call(Method::GET, "/subjects", None::<&()>).await
    }

    /// The latest version of a subject.
    pub async fn latest_version(&self, subject: &str) -> Result<SubjectVersion> {
        let path = format!("/subjects/{}/versions/latest", encode(subject));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// A given version of a subject.
    pub async fn version(&self, subject: &str, version: u32) -> Result<SubjectVersion> {
        let path = format!("/subjects/{}/versions/{version}", encode(subject));
        self.call(Method::GET, &path, None::<&()>).await
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let url = format!("{}{}", self.base, path);
        let mut request = self
            .http
            .request(method, &url)
            .header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let Some((user, password)) = &self.basic_auth {
            request = request.basic_auth(user, Some(password.expose()));
        }
        if let Some(body) = body {
            let json = serde_json::to_vec(body).map_err(|e| Error::Serialization {
                message: e.to_string(),
            })?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(json);
        }
        let transport = |source: reqwest::Error| Error::RegistryTransport {
            url: url.clone(),
            source: Box::new(source.without_url()),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(registry_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::RegistryTransport {
            url: url.clone(),
            source: format!(
                "unexpected answer ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
            .into(),
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_encoded_as_one_path_segment() {
        assert_eq!(encode("orders-value"), "orders-value");
        assert_eq!(encode("a/b c:d"), "a%2Fb%20c%3Ad");
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
    }

    #[test]
    fn non_json_error_bodies_fall_back_to_status() {
        let err = registry_error(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(err.registry_error_code(), Some(502));
        assert!(err.is_retriable());
        let err = registry_error(StatusCode::INTERNAL_SERVER_ERROR, b"<html>oops</html>");
        assert!(err.to_string().contains("<html>oops</html>"));
    }

    #[test]
    fn user_info_must_have_a_colon() {
        let err = SchemaRegistryClient::from_lookup(|k| match k {
            "SCHEMA_REGISTRY_URL" => Some("http://r".into()),
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO" => Some("nocolon".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("user:password"));
    }

    #[test]
    fn url_is_required() {
        let err = SchemaRegistryClient::from_lookup(|_| None).unwrap_err();
        assert!(matches!(&err, Error::Configuration { key, .. } if key == "SCHEMA_REGISTRY_URL"));
    }
}
