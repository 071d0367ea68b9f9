//! The schema tools against the real registry of `dev/stack` (Apicurio Registry's
//! Confluent-compatible API): local compatibility checks against stored versions, the registry's
//! verdict next to them, validation of a derived model against a subject, and the one-call CI
//! check of an application's models.
//!
//! Every test registers under its own subjects ([`unique_name`]).
//!
//! Apicurio deviation: `POST /compatibility/subjects/{s}/versions/{v}?verbose=true` answers only
//! `{"is_compatible":false}`, without the reasons Confluent lists, so the registry's side of a
//! comparison carries no messages there; the local check supplies them.

use flowodm::registry::{CompatibilityLevel, Schema, SchemaRegistryClient, Version};
use flowodm::schema::{
    check_dir, check_subject, compare_with_registry, validate_against_registry, validate_dir,
    AvroSchema, Breaks, ModelSchemas, Origin,
};
use flowodm_test::{registry_url, unique_name};

fn registry() -> SchemaRegistryClient {
    SchemaRegistryClient::new(&registry_url()).expect("SCHEMA_REGISTRY_URL is a valid URL")
}

fn is_apicurio() -> bool {
    registry_url().contains("/apis/ccompat/")
}

/// A namespace no other run uses, so each test's schemas are new to the registry.
fn namespace() -> String {
    unique_name("ns").replace('-', "_")
}

/// `Order` in `ns` with these extra fields after `id`.
fn order(ns: &str, extra: &str) -> String {
    format!(
        r#"{{"type":"record","name":"Order","namespace":"{ns}","fields":[
            {{"name":"id","type":"string"}}{extra}]}}"#
    )
}

/// A subject holding `versions` in order, registered under level NONE and then set to `level`.
async fn subject_with(
    registry: &SchemaRegistryClient,
    versions: &[String],
    level: CompatibilityLevel,
) -> String {
    let subject = unique_name("schema-tools") + "-value";
    registry
        .set_subject_compatibility(&subject, CompatibilityLevel::None)
        .await
        .unwrap();
    for v in versions {
        registry.register(&subject, v).await.unwrap();
    }
    registry
        .set_subject_compatibility(&subject, level)
        .await
        .unwrap();
    subject
}

#[tokio::test]
async fn a_compatible_v2_passes_locally_and_in_the_registry() {
    let registry = registry();
    let ns = namespace();
    let subject = subject_with(&registry, &[order(&ns, "")], CompatibilityLevel::Backward).await;
    let v2 = AvroSchema::parse(&order(
        &ns,
        r#",{"name":"note","type":"string","default":""}"#,
    ))
    .unwrap();

    let verdicts = compare_with_registry(&registry, &subject, &v2, None)
        .await
        .unwrap();
    assert_eq!(verdicts.registry_level, CompatibilityLevel::Backward);
    assert!(verdicts.local.is_compatible(), "{verdicts}");
    assert!(
        verdicts.registry.as_ref().unwrap().is_compatible,
        "{verdicts}"
    );
    assert!(verdicts.agree() && verdicts.is_compatible());
    assert_eq!(verdicts.local.checked, [format!("{subject} v1")]);
}

#[tokio::test]
async fn an_incompatible_v2_fails_locally_with_reasons_and_in_the_registry() {
    let registry = registry();
    let ns = namespace();
    let subject = subject_with(&registry, &[order(&ns, "")], CompatibilityLevel::Backward).await;
    let v2 = AvroSchema::parse(&order(&ns, r#",{"name":"total","type":"double"}"#)).unwrap();

    let verdicts = compare_with_registry(&registry, &subject, &v2, None)
        .await
        .unwrap();
    let theirs = verdicts.registry.as_ref().unwrap();
    assert!(!theirs.is_compatible, "{verdicts}");
    assert!(!verdicts.local.is_compatible());
    assert!(verdicts.agree(), "{verdicts}");
    let reason = &verdicts.local.incompatibilities[0];
    assert_eq!(reason.path, "Order.total");
    assert_eq!(reason.breaks, Breaks::NewReaders);
    assert_eq!(reason.against, format!("{subject} v1"));
    assert!(
        reason
            .to_string()
            .contains(&format!("cannot read data written with {subject} v1")),
        "{reason}"
    );
    // Known deviation: Apicurio gives no reasons; Confluent does.
    assert_eq!(theirs.messages.is_empty(), is_apicurio(), "{theirs:?}");
    let text = verdicts.to_string();
    assert!(
        text.contains("local check: NOT compatible (BACKWARD"),
        "{text}"
    );
    assert!(
        text.contains("registry (BACKWARD): NOT compatible"),
        "{text}"
    );

    // The registry refuses to register it, as the local check predicted.
    let err = registry.register(&subject, v2.json()).await.unwrap_err();
    assert!(err.is_incompatible_schema(), "{err:?}");
}

#[tokio::test]
async fn local_checks_use_the_level_asked_for_against_the_stored_versions() {
    let registry = registry();
    let ns = namespace();
    // v1 without `b`, v2 with `b` and a default; the candidate drops the default.
    let subject = subject_with(
        &registry,
        &[
            order(&ns, ""),
            order(&ns, r#",{"name":"b","type":"string","default":""}"#),
        ],
        CompatibilityLevel::Backward,
    )
    .await;
    let v3 = AvroSchema::parse(&order(&ns, r#",{"name":"b","type":"string"}"#)).unwrap();

    let plain = check_subject(&registry, &subject, &v3, None).await.unwrap();
    assert!(plain.is_compatible(), "{plain}");
    assert_eq!(plain.level, CompatibilityLevel::Backward);

    let transitive = check_subject(
        &registry,
        &subject,
        &v3,
        Some(CompatibilityLevel::BackwardTransitive),
    )
    .await
    .unwrap();
    assert_eq!(transitive.incompatibilities.len(), 1, "{transitive}");
    let reason = &transitive.incompatibilities[0];
    assert_eq!(reason.path, "Order.b");
    assert!(
        reason.message.contains(&format!(
            "field `b` is in the new schema without a default, and {subject} v1 does not have it"
        )),
        "{reason}"
    );
    assert_eq!(
        transitive.checked,
        [format!("{subject} v2"), format!("{subject} v1")]
    );

    // FORWARD_TRANSITIVE: v1 and v2 both read data written by v3.
    let forward = check_subject(
        &registry,
        &subject,
        &v3,
        Some(CompatibilityLevel::ForwardTransitive),
    )
    .await
    .unwrap();
    assert!(forward.is_compatible(), "{forward}");
}

#[tokio::test]
async fn a_subject_without_versions_is_compatible_with_anything() {
    let registry = registry();
    let subject = unique_name("schema-tools-new") + "-value";
    let schema = AvroSchema::parse(&order(&namespace(), "")).unwrap();
    let verdicts = compare_with_registry(&registry, &subject, &schema, None)
        .await
        .unwrap();
    assert!(verdicts.registry.is_none());
    assert!(verdicts.is_compatible(), "{verdicts}");
    assert!(verdicts
        .to_string()
        .contains("registry: the subject has no versions"));
}

#[tokio::test]
async fn a_schema_with_references_loads_from_the_registry() {
    let registry = registry();
    let ns = namespace();
    let address_subject = unique_name("schema-tools-address") + "-value";
    registry
        .register(
            &address_subject,
            &format!(
                r#"{{"type":"record","name":"Address","namespace":"{ns}",
                    "fields":[{{"name":"city","type":"string"}}]}}"#
            ),
        )
        .await
        .unwrap();
    let customer_subject = unique_name("schema-tools-customer") + "-value";
    let customer = Schema::avro(format!(
        r#"{{"type":"record","name":"Customer","namespace":"{ns}",
            "fields":[{{"name":"home","type":"{ns}.Address"}}]}}"#
    ))
    .with_reference(flowodm::registry::SchemaReference::new(
        format!("{ns}.Address"),
        &address_subject,
        1,
    ));
    registry
        .register_schema(&customer_subject, &customer, false)
        .await
        .unwrap();

    let loaded = AvroSchema::from_registry(&registry, &customer_subject, Version::Latest)
        .await
        .unwrap();
    assert!(matches!(
        loaded.origin(),
        Origin::Registry { version: 1, .. }
    ));
    let canonical = loaded.canonical_form().unwrap();
    assert!(
        canonical.contains(&format!(r#""name":"{ns}.Address","type":"record""#)),
        "{canonical}"
    );
}

/// The application's model, in the shape the registry holds, and two later edits of it.
mod app {
    /// An order as the shop writes it.
    #[derive(flowodm::Model)]
    #[flowodm(topic = "schema-tools-orders", namespace = "tools.shop")]
    pub struct Order {
        pub id: String,
        pub total_cents: i64,
    }

    /// The next version: a new field with a default.
    #[derive(flowodm::Model)]
    #[flowodm(
        topic = "schema-tools-orders",
        namespace = "tools.shop",
        name = "Order"
    )]
    pub struct OrderV2 {
        pub id: String,
        pub total_cents: i64,
        #[flowodm(default = "EUR")]
        pub currency: String,
    }

    /// A breaking edit: `total_cents` becomes a string.
    #[derive(flowodm::Model)]
    #[flowodm(
        topic = "schema-tools-orders",
        namespace = "tools.shop",
        name = "Order"
    )]
    pub struct OrderBroken {
        pub id: String,
        pub total_cents: String,
    }
}

#[tokio::test]
async fn a_derived_model_validates_against_a_subject() {
    let registry = registry();
    let subject = unique_name("schema-tools-model") + "-value";
    let derived = flowodm::avro::schema_of::<app::Order>().unwrap();
    registry.register(&subject, derived.json()).await.unwrap();

    let report = validate_against_registry::<app::Order>(&registry, Some(&subject), 1)
        .await
        .unwrap();
    assert!(report.is_valid() && report.warnings.is_empty(), "{report}");
    assert_eq!(report.expected, format!("{subject} v1"));

    // Against a stored schema that says something else: errors and warnings with paths.
    let other = r#"{"type":"record","name":"Order","namespace":"tools.shop","doc":"Orders.",
        "fields":[{"name":"id","type":["null","string"],"default":null},
                  {"name":"total_cents","type":"int"}]}"#;
    let other_subject = unique_name("schema-tools-model-other") + "-value";
    registry.register(&other_subject, other).await.unwrap();
    let report =
        validate_against_registry::<app::Order>(&registry, Some(&other_subject), Version::Latest)
            .await
            .unwrap();
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            format!(
                "Order.id: nullable in {other_subject} v1 (union [null, string]) but not in the \
                 model (string)"
            ),
            format!("Order.id: default differs: the model has none, {other_subject} v1 has null"),
            format!(
                "Order.total_cents: type differs: the model has long, {other_subject} v1 has int"
            ),
        ]
    );
    assert!(
        report.warnings[0]
            .to_string()
            .contains("Order: doc differs: the model has \"An order as the shop writes it.\""),
        "{report}"
    );
}

/// The CI check of `docs/schema-tools.md`: list the models once, check them all in one call.
#[tokio::test]
async fn the_ci_check_reports_every_model() {
    let registry = registry();
    // What production holds: v1 of the order schema.
    let orders = unique_name("schema-tools-ci-orders") + "-value";
    registry
        .set_subject_compatibility(&orders, CompatibilityLevel::Backward)
        .await
        .unwrap();
    registry
        .register(
            &orders,
            flowodm::avro::schema_of::<app::Order>().unwrap().json(),
        )
        .await
        .unwrap();
    let fresh = unique_name("schema-tools-ci-fresh") + "-value";

    // The application's next release: the compatible edit, and a model never registered.
    let models = ModelSchemas::new()
        .with_subject::<app::OrderV2>(&orders)
        .with_subject::<app::Order>(&fresh);
    let report = models.check_registry(&registry, None).await.unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.subjects.len(), 2);
    assert!(report
        .to_string()
        .starts_with("2 schema(s) checked, 0 incompatible"));

    // A breaking release is caught, by both checks, with the reason.
    let models = ModelSchemas::new()
        .with_subject::<app::OrderBroken>(&orders)
        .with_subject::<app::Order>(&fresh);
    let report = models.check_registry(&registry, None).await.unwrap();
    assert!(!report.is_ok());
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{report}");
    assert!(failures[0].model.ends_with("app::OrderBroken"));
    let v = &failures[0].verdicts;
    assert!(!v.registry.as_ref().unwrap().is_compatible);
    assert_eq!(v.local.incompatibilities[0].path, "Order.total_cents");
    assert!(
        report.to_string().contains("long cannot be read as string"),
        "{report}"
    );

    // A stricter level than the subject's, asked for explicitly.
    let report = ModelSchemas::new()
        .with_subject::<app::OrderV2>(&orders)
        .check_registry(&registry, Some(CompatibilityLevel::Full))
        .await
        .unwrap();
    assert!(report.is_ok(), "{report}");

    // Exported schema files load back and match the registry's version.
    let dir = tempfile::tempdir().unwrap();
    let files = ModelSchemas::new()
        .with_subject::<app::Order>(&orders)
        .export_dir(dir.path())
        .unwrap();
    assert!(files[0].ends_with(format!("{orders}.avsc")));
    let exported = AvroSchema::from_dir(dir.path()).unwrap();
    let stored = AvroSchema::from_registry(&registry, &orders, 1)
        .await
        .unwrap();
    let report = flowodm::schema::validate(&exported[0], &stored);
    assert!(report.is_valid() && report.warnings.is_empty(), "{report}");

    // The exported directory is checked without the application's types.
    let dir = tempfile::tempdir().unwrap();
    ModelSchemas::new()
        .with_subject::<app::OrderV2>(&orders)
        .with_subject::<app::OrderBroken>(&fresh)
        .export_dir(dir.path())
        .unwrap();
    let report = check_dir(&registry, dir.path(), None).await.unwrap();
    assert!(report.is_ok(), "{report}");
    // Files come in file name order: the fresh subject's, then the orders subject's.
    assert!(
        report.subjects[1]
            .model
            .ends_with(&format!("{orders}.avsc")),
        "{report}"
    );
    assert_eq!(
        report.subjects[1].verdicts.local.checked,
        [format!("{orders} v1")]
    );
    let reports = validate_dir(&registry, dir.path()).await.unwrap();
    let subjects: Vec<&str> = reports.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(subjects, [fresh.as_str(), orders.as_str()]);
    // v2 adds a field the stored v1 lacks; the fresh subject has nothing stored.
    assert_eq!(
        reports[1].1.errors[0].to_string(),
        format!("Order.currency: field is in the model but not in {orders} v1")
    );
    assert_eq!(
        reports[0].1.errors[0].message,
        "the registry has no version of this subject"
    );
}
