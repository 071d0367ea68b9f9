//! Sending requests: headers, authentication, retries with backoff, and reading answers.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::builder::Auth;
use super::client::SchemaRegistryClient;
use crate::error::{Error, Result};

/// What the client accepts, in Confluent's order of preference.
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, \
                      application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";
/// What the client sends.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// An answer of the registry, before it is judged.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    retry_after: Option<Duration>,
}

impl SchemaRegistryClient {
    pub(super) fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub(super) async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
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
    pub(super) async fn send<B: Serialize + ?Sized>(
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
            source: describe(&source.without_url()).into(),
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

/// The error and its causes on one line: reqwest's own message ("error sending request") says
/// nothing about *why*, which is in the causes ("certificate verify failed", "Connection
/// refused").
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let line = c.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

pub(super) fn decode<T: DeserializeOwned>(url: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| unexpected_answer(url, &e.to_string(), bytes))
}

pub(super) fn unexpected_answer(url: &str, problem: &str, bytes: &[u8]) -> Error {
    Error::RegistryTransport {
        url: url.to_string(),
        source: format!(
            "unexpected answer ({problem}): {}",
            String::from_utf8_lossy(bytes)
        )
        .into(),
    }
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
pub(super) fn encode(segment: &str) -> String {
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
pub(super) fn query(flags: &[(&str, bool)]) -> String {
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

/// Test helpers shared by the registry's unit tests.
#[cfg(test)]
pub(super) mod testing {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::SchemaRegistryClient;

    /// A throwaway HTTP endpoint on loopback that counts the connections it accepts, keeps the
    /// head of each request, and answers each with the same status line (or, with `None`,
    /// closes without answering). It stands in for a broken network path or an overloaded
    /// server, not for the registry's API.
    pub(crate) struct Endpoint {
        pub(crate) url: String,
        connections: Arc<std::sync::atomic::AtomicUsize>,
        heads: Arc<Mutex<Vec<String>>>,
    }

    impl Endpoint {
        pub(crate) fn start(answer: Option<&'static str>) -> Self {
            use std::io::{Read, Write};
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let count = connections.clone();
            let heads = Arc::new(Mutex::new(Vec::new()));
            let seen = heads.clone();
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
                    let head = String::from_utf8_lossy(&request).into_owned();
                    seen.lock().unwrap().push(head);
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
            Endpoint {
                url,
                connections,
                heads,
            }
        }

        pub(crate) fn connections(&self) -> usize {
            self.connections.load(std::sync::atomic::Ordering::SeqCst)
        }

        /// The heads (request line and headers) of the requests received so far.
        pub(crate) fn heads(&self) -> Vec<String> {
            self.heads.lock().unwrap().clone()
        }

        pub(crate) fn client(&self, retries: u32) -> SchemaRegistryClient {
            SchemaRegistryClient::builder(&self.url)
                .max_retries(retries)
                .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
                .build()
                .unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Endpoint;
    use super::*;
    use crate::registry::Version;

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

    #[tokio::test]
    async fn dropped_connections_are_retried_then_reported_as_transport_errors() {
        let endpoint = Endpoint::start(None);
        let err = endpoint.client(2).subjects().await.unwrap_err();
        assert!(matches!(err, Error::RegistryTransport { .. }), "{err:?}");
        assert_eq!(endpoint.connections(), 3, "1 try + 2 retries");
    }

    #[tokio::test]
    async fn transport_errors_say_why() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = SchemaRegistryClient::builder(format!("http://127.0.0.1:{port}"))
            .max_retries(0)
            .build()
            .unwrap();
        let err = client.subjects().await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/subjects could not be reached"), "{text}");
        assert!(text.to_lowercase().contains("connection refused"), "{text}");
    }

    #[tokio::test]
    async fn requests_carry_the_credentials_and_the_registry_media_types() {
        use crate::Secret;

        let endpoint = Endpoint::start(Some("404 Not Found"));
        let basic = endpoint
            .client(0)
            .basic_auth("user", Secret::new("pass word"));
        let _ = basic.register("s", "\"int\"").await;
        let bearer = endpoint.client(0).bearer_auth(Secret::new("t0ken"));
        let _ = bearer.subjects().await;
        // Credentials in the URL become basic auth.
        let in_url = SchemaRegistryClient::builder(endpoint.url.replace("://", "://u%3A1:p%40ss@"))
            .max_retries(0)
            .build()
            .unwrap();
        let _ = in_url.subjects().await;

        let heads: Vec<String> = endpoint.heads().iter().map(|h| h.to_lowercase()).collect();
        assert_eq!(heads.len(), 3);
        // base64("user:pass word"), base64("u:1:p@ss")
        assert!(
            heads[0].starts_with("post /subjects/s/versions http/1.1"),
            "{}",
            heads[0]
        );
        assert!(
            heads[0].contains("authorization: basic dxnlcjpwyxnzihdvcmq="),
            "{}",
            heads[0]
        );
        assert!(heads[0].contains("content-type: application/vnd.schemaregistry.v1+json"));
        assert!(heads[0].contains("accept: application/vnd.schemaregistry.v1+json"));
        assert!(
            heads[1].contains("authorization: bearer t0ken"),
            "{}",
            heads[1]
        );
        assert!(
            heads[2].contains("authorization: basic dtoxonbac3m="),
            "{}",
            heads[2]
        );
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
}
