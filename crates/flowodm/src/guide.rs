//! The user guide's pages (`docs/*.md`), compiled and run as doctests so the guide stays true.
//!
//! Examples that need Kafka or the schema registry are `no_run`: they are compiled, and the
//! behaviour they show is exercised by the integration tests (`tests/guide.rs` and the others).

/// `docs/README.md`: the index and the quick start.
#[doc = include_str!("../../../docs/README.md")]
pub struct IndexDoctests;

/// `docs/models.md`.
#[doc = include_str!("../../../docs/models.md")]
pub struct ModelsDoctests;

/// `docs/producing.md`.
#[doc = include_str!("../../../docs/producing.md")]
pub struct ProducingDoctests;

/// `docs/consuming.md`.
#[doc = include_str!("../../../docs/consuming.md")]
pub struct ConsumingDoctests;

/// `docs/loops.md`.
#[doc = include_str!("../../../docs/loops.md")]
pub struct LoopsDoctests;

/// `docs/registry.md`.
#[doc = include_str!("../../../docs/registry.md")]
pub struct RegistryDoctests;

/// `docs/profiles.md`.
#[doc = include_str!("../../../docs/profiles.md")]
pub struct ProfilesDoctests;

/// `docs/configuration.md`.
#[doc = include_str!("../../../docs/configuration.md")]
pub struct ConfigurationDoctests;

/// `docs/migration.md`.
#[doc = include_str!("../../../docs/migration.md")]
pub struct MigrationDoctests;
