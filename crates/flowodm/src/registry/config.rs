//! Compatibility levels, compatibility checks and modes: the `/config`, `/compatibility` and
//! `/mode` endpoints.

use reqwest::Method;
use serde::Serialize;

use super::client::SchemaRegistryClient;
use super::error_code;
use super::http::{decode, encode, unexpected_answer};
use super::types::{
    CompatibilityCheck, CompatibilityLevel, ConfigBody, Mode, ModeBody, Schema, Version,
};
use crate::error::Result;

#[derive(Serialize)]
struct CompatibilityBody {
    compatibility: CompatibilityLevel,
}

#[derive(Serialize)]
struct ModeRequest {
    mode: Mode,
}

impl SchemaRegistryClient {
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
}

/// The level in a config answer, which is `compatibilityLevel` (GET) or `compatibility` (PUT).
fn parse_config(url: &str, bytes: &[u8]) -> Result<CompatibilityLevel> {
    let body: ConfigBody = decode(url, bytes)?;
    body.level()
        .ok_or_else(|| unexpected_answer(url, "no compatibility level", bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

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
}
