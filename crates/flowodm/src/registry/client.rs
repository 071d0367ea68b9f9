//! The client and one method per registry endpoint.

use std::fmt;
use std::sync::Arc;

use reqwest::Method;
use serde::Deserialize;

use super::builder::{Auth, RetryPolicy, SchemaRegistryClientBuilder};
use super::cache::Caches;
use super::http::{encode, query};
use super::types::{IdBody, Schema, SchemaReference, SubjectVersion, SubjectVersionRef, Version};
use crate::config::Secret;
use crate::error::Result;

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
    pub(super) base: Arc<str>,
    pub(super) http: reqwest::Client,
    pub(super) auth: Arc<Auth>,
    pub(super) retry: RetryPolicy,
    pub(super) cache: Arc<Caches>,
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
    /// [`Error::is_incompatible_schema`](crate::Error::is_incompatible_schema) is true; an invalid one with error code 42201.
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

    /// The texts of the schemas that `references` name, and of the schemas those reference in
    /// turn, nearest first (breadth first).
    ///
    /// A schema that uses another subject's named types (a Confluent schema reference) can
    /// only be parsed together with them, as apache-avro's `Schema::parse_str_with_list` does.
    /// Each name is fetched once: where two references give one name (two versions of a shared
    /// subject, reached by different paths), the nearer one wins, as in Confluent's clients.
    /// Versions are cached like schemas by id.
    ///
    /// ```no_run
    /// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
    /// let schema = registry.schema(7).await?;
    /// let referenced = registry.referenced_schemas(&schema.references).await?;
    /// println!("schema 7 needs {} other schema(s) to be parsed", referenced.len());
    /// # Ok(()) }
    /// ```
    pub async fn referenced_schemas(&self, references: &[SchemaReference]) -> Result<Vec<String>> {
        let mut texts = Vec::new();
        let mut names = std::collections::HashSet::new();
        let mut todo: std::collections::VecDeque<SchemaReference> =
            references.iter().cloned().collect();
        while let Some(r) = todo.pop_front() {
            if !names.insert(r.name.clone()) {
                continue;
            }
            let key = (r.subject.clone(), r.version);
            let found = match self.cache.numbered.get(&key) {
                Some(found) => found,
                None => {
                    let found = self.version(&r.subject, r.version).await?;
                    self.cache.numbered.insert(key, found.clone());
                    found
                }
            };
            todo.extend(found.references.iter().cloned());
            texts.push(found.schema);
        }
        Ok(texts)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::http::decode;
    use crate::registry::http::testing::Endpoint;

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
