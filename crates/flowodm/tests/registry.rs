//! The schema registry client against the real registry of `dev/stack` (Apicurio Registry's
//! Confluent-compatible API, `/apis/ccompat/v7`), one test per area of the API.
//!
//! The client follows Confluent's documented behaviour. Where Apicurio answers differently, a
//! test pins what Apicurio does, with a comment that starts `Apicurio deviation:` and names the
//! endpoint, what Confluent does and what Apicurio does. Those assertions go through
//! [`on_apicurio`], which picks Apicurio's answer when the registry under test is Apicurio (its
//! URL has `/apis/ccompat/`) and Confluent's documented answer otherwise, so the suite also
//! states what a Confluent registry must answer.
//!
//! Every test works on its own subjects ([`unique_name`]), so the tests run in parallel and
//! leave the registry-wide settings as they found them.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowodm::registry::{
    error_code, CompatibilityLevel, Mode, Schema, SchemaReference, SchemaRegistryClient,
    SchemaType, SubjectVersionRef, Version,
};
use flowodm::Error;
use flowodm_test::{registry_url, unique_name};
use serde_json::json;

/// A client of the stack's registry with its own (empty) caches.
fn registry() -> SchemaRegistryClient {
    SchemaRegistryClient::new(&registry_url()).expect("SCHEMA_REGISTRY_URL is a valid URL")
}

/// Whether the registry under test is Apicurio's Confluent-compatible API.
fn is_apicurio() -> bool {
    registry_url().contains("/apis/ccompat/")
}

/// The expected answer where Apicurio deviates from Confluent: `apicurio` for Apicurio,
/// `confluent` (Confluent's documented behaviour) for any other registry.
fn on_apicurio<T>(apicurio: T, confluent: T) -> T {
    if is_apicurio() {
        apicurio
    } else {
        confluent
    }
}

fn subject(prefix: &str) -> String {
    unique_name(prefix) + "-value"
}

/// A namespace no other test uses, so each test's schemas are new to the registry.
fn namespace() -> String {
    unique_name("ns").replace('-', "_")
}

/// Version 1 of the test record: one `long` field.
fn v1(ns: &str) -> String {
    json!({
        "type": "record", "name": "Reading", "namespace": ns,
        "fields": [{"name": "id", "type": "long"}]
    })
    .to_string()
}

/// Version 2: adds a field with a default, so it is compatible with version 1 under every level.
fn v2(ns: &str) -> String {
    json!({
        "type": "record", "name": "Reading", "namespace": ns,
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "note", "type": "string", "default": ""}
        ]
    })
    .to_string()
}

/// Adds a field without a default: new readers cannot read old data, so it breaks BACKWARD.
fn backward_incompatible(ns: &str) -> String {
    json!({
        "type": "record", "name": "Reading", "namespace": ns,
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "unit", "type": "string"}
        ]
    })
    .to_string()
}

fn as_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("the registry returns JSON schema text")
}

/// The error's HTTP status and registry error code.
fn codes(err: &Error) -> (u16, u32) {
    match err {
        Error::Registry {
            status, error_code, ..
        } => (*status, *error_code),
        other => panic!("expected a registry answer, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Registration, lookup, ids
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn registering_twice_gives_the_same_id_and_one_version() {
    let subject = subject("reg-twice");
    let schema = v1(&namespace());
    let id = registry().register(&subject, &schema).await.unwrap();
    // A second client, so the answer comes from the registry and not from the first's cache.
    assert_eq!(registry().register(&subject, &schema).await.unwrap(), id);
    assert_eq!(registry().versions(&subject).await.unwrap(), vec![1]);
}

#[tokio::test]
async fn the_same_schema_under_another_subject_gets_the_same_id() {
    let schema = v1(&namespace());
    let (a, b) = (subject("same-id-a"), subject("same-id-b"));
    let id_a = registry().register(&a, &schema).await.unwrap();
    let id_b = registry().register(&b, &schema).await.unwrap();
    assert_eq!(id_a, id_b);

    // And the id lists both places it is registered as.
    let mut places = registry().schema_versions(id_a).await.unwrap();
    places.sort_by(|x, y| x.subject.cmp(&y.subject));
    assert_eq!(
        places,
        vec![
            SubjectVersionRef {
                subject: a,
                version: 1
            },
            SubjectVersionRef {
                subject: b,
                version: 1
            },
        ]
    );
}

#[tokio::test]
async fn a_new_schema_gets_a_new_id() {
    let ns = namespace();
    let subject = subject("new-id");
    let first = registry().register(&subject, &v1(&ns)).await.unwrap();
    let second = registry().register(&subject, &v2(&ns)).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(registry().versions(&subject).await.unwrap(), vec![1, 2]);
}

#[tokio::test]
async fn lookup_finds_the_version_and_id_of_a_registered_schema() {
    let ns = namespace();
    let subject = subject("lookup");
    let registry = registry();
    registry.register(&subject, &v1(&ns)).await.unwrap();
    let id2 = registry.register(&subject, &v2(&ns)).await.unwrap();

    let found = registry
        .lookup(&subject, &Schema::avro(v2(&ns)), false)
        .await
        .unwrap();
    assert_eq!(
        (found.subject.as_str(), found.version, found.id),
        (subject.as_str(), 2, id2)
    );
    assert_eq!(as_json(&found.schema), as_json(&v2(&ns)));
    assert_eq!(found.schema_type, SchemaType::Avro);
    assert!(found.references.is_empty());

    // A schema the subject does not hold: 40403.
    let err = registry
        .lookup(&subject, &Schema::avro(backward_incompatible(&ns)), false)
        .await
        .unwrap_err();
    assert!(err.is_schema_not_found(), "{err:?}");
    assert_eq!(codes(&err), (404, error_code::SCHEMA_NOT_FOUND));
    // A subject that does not exist: 40401.
    let err = registry
        .lookup(&unique_name("nobody"), &Schema::avro(v1(&ns)), false)
        .await
        .unwrap_err();
    assert!(err.is_subject_not_found(), "{err:?}");
    assert_eq!(codes(&err), (404, error_code::SUBJECT_NOT_FOUND));
}

#[tokio::test]
async fn normalize_gives_reformatted_schemas_one_id_and_one_version() {
    let ns = namespace();
    let subject = subject("normalize");
    let compact = v1(&ns);
    // The same schema with its properties in another order and extra whitespace.
    let reordered = format!(
        r#"{{ "fields": [ {{"type": "long", "name": "id"}} ], "namespace": "{ns}",
             "name": "Reading", "type": "record" }}"#
    );
    let id = registry()
        .register_schema(&subject, &Schema::avro(&compact), true)
        .await
        .unwrap();
    let again = registry()
        .register_schema(&subject, &Schema::avro(&reordered), true)
        .await
        .unwrap();
    assert_eq!(again, id);
    assert_eq!(registry().versions(&subject).await.unwrap(), vec![1]);
    let found = registry()
        .lookup(&subject, &Schema::avro(&reordered), true)
        .await
        .unwrap();
    assert_eq!((found.version, found.id), (1, id));
}

#[tokio::test]
async fn an_invalid_schema_is_refused_with_42201_and_not_retried() {
    let err = registry()
        .register(
            &subject("invalid"),
            r#"{"type":"record","name":"R","fields":"nope"}"#,
        )
        .await
        .unwrap_err();
    assert_eq!(codes(&err), (422, error_code::INVALID_SCHEMA));
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn subjects_with_reserved_characters_round_trip() {
    let registry = registry();
    let subject = format!("{} a:b/c", unique_name("odd"));
    let id = registry
        .register(&subject, &v1(&namespace()))
        .await
        .unwrap();
    assert!(registry.subjects().await.unwrap().contains(&subject));
    let latest = registry.latest_version(&subject).await.unwrap();
    assert_eq!((latest.subject, latest.id), (subject, id));
}

// ---------------------------------------------------------------------------------------------
// Schemas by id, subjects, versions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn schemas_are_fetched_by_id_with_type_and_references() {
    let ns = namespace();
    let subject = subject("by-id");
    let id = registry().register(&subject, &v1(&ns)).await.unwrap();

    let schema = registry().schema(id).await.unwrap();
    assert_eq!(as_json(&schema.text), as_json(&v1(&ns)));
    assert_eq!(schema.schema_type, SchemaType::Avro);
    assert!(schema.references.is_empty());
    assert_eq!(
        as_json(&registry().schema_by_id(id).await.unwrap()),
        as_json(&v1(&ns))
    );
    assert_eq!(
        registry().schema_versions(id).await.unwrap(),
        vec![SubjectVersionRef {
            subject,
            version: 1
        }]
    );

    let unknown = 2_000_000_000;
    for err in [
        registry().schema(unknown).await.unwrap_err(),
        registry()
            .schema_versions(unknown)
            .await
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert!(err.is_schema_not_found(), "{err:?}");
        assert_eq!(codes(&err), (404, error_code::SCHEMA_NOT_FOUND));
    }
}

#[tokio::test]
async fn versions_latest_and_numbered() {
    let ns = namespace();
    let subject = subject("versions");
    let registry = registry();
    let id1 = registry.register(&subject, &v1(&ns)).await.unwrap();
    let id2 = registry.register(&subject, &v2(&ns)).await.unwrap();

    assert_eq!(registry.versions(&subject).await.unwrap(), vec![1, 2]);
    assert!(registry.subjects().await.unwrap().contains(&subject));

    let latest = registry.latest_version(&subject).await.unwrap();
    assert_eq!((latest.version, latest.id), (2, id2));
    assert_eq!(
        registry
            .subject_version(&subject, Version::Latest)
            .await
            .unwrap(),
        latest
    );
    let first = registry.version(&subject, 1).await.unwrap();
    assert_eq!(
        (first.subject.as_str(), first.version, first.id),
        (subject.as_str(), 1, id1)
    );
    assert_eq!(as_json(&first.schema), as_json(&v1(&ns)));
    assert_eq!(first.to_schema().text, first.schema);

    let err = registry.version(&subject, 9).await.unwrap_err();
    assert!(err.is_version_not_found(), "{err:?}");
    assert_eq!(codes(&err), (404, error_code::VERSION_NOT_FOUND));
    let err = registry
        .latest_version(&unique_name("nobody"))
        .await
        .unwrap_err();
    assert!(err.is_subject_not_found(), "{err:?}");
    let err = registry.versions(&unique_name("nobody")).await.unwrap_err();
    assert!(err.is_subject_not_found(), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Deletes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_version_is_soft_deleted_then_hard_deleted() {
    let ns = namespace();
    let subject = subject("del-version");
    let registry = registry();
    let id1 = registry.register(&subject, &v1(&ns)).await.unwrap();
    registry.register(&subject, &v2(&ns)).await.unwrap();

    // A permanent delete needs a soft delete first: 40407.
    // Apicurio deviation: DELETE /subjects/{s}/versions/{v}?permanent=true on a live version
    // answers HTTP 409 with error code 40407; Confluent answers HTTP 404 with 40407.
    let err = registry
        .delete_version_permanently(&subject, 1)
        .await
        .unwrap_err();
    assert_eq!(
        codes(&err),
        (on_apicurio(409, 404), error_code::VERSION_NOT_SOFT_DELETED)
    );
    assert!(err.is_not_found() && !err.is_incompatible_schema());

    assert_eq!(registry.delete_version(&subject, 1).await.unwrap(), 1);
    assert_eq!(registry.versions(&subject).await.unwrap(), vec![2]);
    assert_eq!(
        registry.versions_including_deleted(&subject).await.unwrap(),
        vec![1, 2]
    );
    let err = registry.version(&subject, 1).await.unwrap_err();
    assert!(err.is_version_not_found(), "{err:?}");
    // The schema stays readable by id, so messages written with it can still be read.
    assert_eq!(
        as_json(&self::registry().schema_by_id(id1).await.unwrap()),
        as_json(&v1(&ns))
    );

    // Soft-deleting again: 40406.
    // Apicurio deviation: DELETE /subjects/{s}/versions/{v} on a soft-deleted version answers
    // HTTP 409 with 40406; Confluent answers HTTP 404 with 40406.
    let err = registry.delete_version(&subject, 1).await.unwrap_err();
    assert_eq!(
        codes(&err),
        (on_apicurio(409, 404), error_code::VERSION_SOFT_DELETED)
    );

    assert_eq!(
        registry
            .delete_version_permanently(&subject, 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        registry.versions_including_deleted(&subject).await.unwrap(),
        vec![2]
    );
    let err = registry
        .delete_version_permanently(&subject, 1)
        .await
        .unwrap_err();
    assert_eq!(codes(&err), (404, error_code::VERSION_NOT_FOUND));

    // `latest` names the newest live version.
    assert_eq!(
        registry
            .delete_version(&subject, Version::Latest)
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn a_subject_is_soft_deleted_then_hard_deleted() {
    let ns = namespace();
    let subject = subject("del-subject");
    let registry = registry();
    registry.register(&subject, &v1(&ns)).await.unwrap();
    registry.register(&subject, &v2(&ns)).await.unwrap();

    // Apicurio deviation: DELETE /subjects/{s}?permanent=true on a live subject answers
    // HTTP 409 with 40405; Confluent answers HTTP 404 with 40405.
    let err = registry
        .delete_subject_permanently(&subject)
        .await
        .unwrap_err();
    assert_eq!(
        codes(&err),
        (on_apicurio(409, 404), error_code::SUBJECT_NOT_SOFT_DELETED)
    );

    assert_eq!(registry.delete_subject(&subject).await.unwrap(), vec![1, 2]);
    assert!(!registry.subjects().await.unwrap().contains(&subject));
    assert!(registry
        .subjects_including_deleted()
        .await
        .unwrap()
        .contains(&subject));
    let err = registry.latest_version(&subject).await.unwrap_err();
    assert!(err.is_subject_not_found(), "{err:?}");

    // Soft-deleting again: 40404, with HTTP 404 as Confluent does.
    let err = registry.delete_subject(&subject).await.unwrap_err();
    assert_eq!(codes(&err), (404, error_code::SUBJECT_SOFT_DELETED));

    assert_eq!(
        registry.delete_subject_permanently(&subject).await.unwrap(),
        vec![1, 2]
    );
    assert!(!registry
        .subjects_including_deleted()
        .await
        .unwrap()
        .contains(&subject));
    let err = registry
        .delete_subject_permanently(&subject)
        .await
        .unwrap_err();
    assert!(err.is_subject_not_found(), "{err:?}");
}

#[tokio::test]
async fn registering_after_a_soft_delete_continues_the_numbering() {
    let ns = namespace();
    let subject = subject("renumber");
    let registry = registry();
    registry.register(&subject, &v1(&ns)).await.unwrap();
    registry.register(&subject, &v2(&ns)).await.unwrap();
    assert_eq!(registry.delete_subject(&subject).await.unwrap(), vec![1, 2]);

    // The client forgot the subject when it deleted it, so this goes to the registry.
    registry.register(&subject, &v1(&ns)).await.unwrap();
    assert_eq!(registry.versions(&subject).await.unwrap(), vec![3]);

    // Apicurio deviation: DELETE /subjects/{s} lists every version it holds, including those
    // soft-deleted before; Confluent lists only the versions this call deleted ([3] here).
    assert_eq!(
        registry.delete_subject(&subject).await.unwrap(),
        on_apicurio(vec![1, 2, 3], vec![3])
    );
}

// ---------------------------------------------------------------------------------------------
// Compatibility levels
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn global_compatibility_is_read_set_and_deleted() {
    let registry = registry();
    let level = registry.global_compatibility().await.unwrap();
    // Setting the level it already has changes nothing for the tests running alongside.
    assert_eq!(
        registry.set_global_compatibility(level).await.unwrap(),
        level
    );
    assert_eq!(registry.global_compatibility().await.unwrap(), level);

    let removed = registry.delete_global_compatibility().await;
    // Put the level back at once, whatever the registry's default is.
    registry.set_global_compatibility(level).await.unwrap();
    assert_eq!(removed.unwrap(), level);
    assert_eq!(registry.global_compatibility().await.unwrap(), level);
}

#[tokio::test]
async fn subject_compatibility_is_set_read_and_deleted_for_every_level() {
    let registry = registry();
    let subject = subject("config");
    registry
        .register(&subject, &v1(&namespace()))
        .await
        .unwrap();
    let global = registry.global_compatibility().await.unwrap();

    // Apicurio deviation: GET /config/{s} for a subject without its own level answers 200 with
    // the global level; Confluent answers 404 with 40408, which the client turns into `None`.
    assert_eq!(
        registry.subject_compatibility(&subject).await.unwrap(),
        on_apicurio(Some(global), None)
    );

    for level in CompatibilityLevel::ALL {
        assert_eq!(
            registry
                .set_subject_compatibility(&subject, level)
                .await
                .unwrap(),
            level
        );
        assert_eq!(
            registry.subject_compatibility(&subject).await.unwrap(),
            Some(level)
        );
        assert_eq!(
            registry.effective_compatibility(&subject).await.unwrap(),
            level
        );
    }
    let last = *CompatibilityLevel::ALL.last().unwrap();
    assert_eq!(
        registry
            .delete_subject_compatibility(&subject)
            .await
            .unwrap(),
        last
    );
    // After the delete, the global level applies (reported as above).
    assert_eq!(
        registry.effective_compatibility(&subject).await.unwrap(),
        global
    );
}

#[tokio::test]
async fn compatibility_may_be_set_before_the_subject_exists() {
    let registry = registry();
    let subject = subject("config-early");
    assert_eq!(
        registry
            .set_subject_compatibility(&subject, CompatibilityLevel::Full)
            .await
            .unwrap(),
        CompatibilityLevel::Full
    );
    assert_eq!(
        registry.subject_compatibility(&subject).await.unwrap(),
        Some(CompatibilityLevel::Full)
    );
    assert_eq!(
        registry
            .delete_subject_compatibility(&subject)
            .await
            .unwrap(),
        CompatibilityLevel::Full
    );
    // Apicurio deviation: GET /config/{s} (also with defaultToGlobal=true) for a subject that
    // has neither versions nor a level answers 404 with 40401; Confluent answers 40408 for the
    // plain GET (the client's `None`) and the global level with defaultToGlobal=true.
    if is_apicurio() {
        let err = registry.subject_compatibility(&subject).await.unwrap_err();
        assert!(err.is_subject_not_found(), "{err:?}");
        let err = registry
            .effective_compatibility(&subject)
            .await
            .unwrap_err();
        assert!(err.is_subject_not_found(), "{err:?}");
    } else {
        let global = registry.global_compatibility().await.unwrap();
        assert_eq!(
            registry.subject_compatibility(&subject).await.unwrap(),
            None
        );
        assert_eq!(
            registry.effective_compatibility(&subject).await.unwrap(),
            global
        );
    }
}

#[tokio::test]
async fn compatibility_checks_say_whether_and_why() {
    let ns = namespace();
    let subject = subject("compat-check");
    let registry = registry();
    registry
        .set_subject_compatibility(&subject, CompatibilityLevel::Backward)
        .await
        .unwrap();
    registry.register(&subject, &v1(&ns)).await.unwrap();

    let ok = registry
        .check_compatibility(&subject, Version::Latest, &Schema::avro(v2(&ns)))
        .await
        .unwrap();
    assert!(ok.is_compatible);
    assert!(ok.messages.is_empty());

    for version in [Version::Latest, Version::Number(1)] {
        let bad = registry
            .check_compatibility(&subject, version, &Schema::avro(backward_incompatible(&ns)))
            .await
            .unwrap();
        assert!(!bad.is_compatible, "{version}");
        // Apicurio deviation: POST /compatibility/subjects/{s}/versions/{v}?verbose=true answers
        // only {"is_compatible":false}; Confluent adds "messages" with the reasons (such as
        // "READER_FIELD_MISSING_DEFAULT_VALUE ... unit"), which the client returns.
        assert_eq!(
            bad.messages.is_empty(),
            on_apicurio(true, false),
            "{:?}",
            bad.messages
        );
    }

    // A version that does not exist: 40402, also for a subject that does not exist.
    let err = registry
        .check_compatibility(&subject, 7, &Schema::avro(v2(&ns)))
        .await
        .unwrap_err();
    assert!(err.is_version_not_found(), "{err:?}");
    let nobody = unique_name("nobody");
    let err = registry
        .check_compatibility(&nobody, 1, &Schema::avro(v2(&ns)))
        .await
        .unwrap_err();
    assert!(err.is_version_not_found(), "{err:?}");
    // Against the latest version of a subject with none, anything is compatible.
    let check = registry
        .check_compatibility(&nobody, Version::Latest, &Schema::avro(v2(&ns)))
        .await
        .unwrap();
    assert!(check.is_compatible);
}

#[tokio::test]
async fn registering_an_incompatible_schema_under_backward_is_an_incompatible_error() {
    let ns = namespace();
    let subject = subject("incompatible");
    let registry = registry();
    registry
        .set_subject_compatibility(&subject, CompatibilityLevel::Backward)
        .await
        .unwrap();
    registry.register(&subject, &v1(&ns)).await.unwrap();

    let err = registry
        .register(&subject, &backward_incompatible(&ns))
        .await
        .unwrap_err();
    assert!(err.is_incompatible_schema(), "{err:?}");
    assert!(!err.is_retriable());
    let (status, code) = codes(&err);
    assert_eq!(status, 409);
    // Apicurio answers like Confluent Platform 7.x (error code 409, not 8.x's 40901), with its
    // own message ("RuleViolationException: Incompatible artifact …") instead of Confluent's
    // "Schema being registered is incompatible with an earlier schema …".
    assert_eq!(code, error_code::INCOMPATIBLE_SCHEMA_LEGACY);
    assert_eq!(registry.versions(&subject).await.unwrap(), vec![1]);

    // A compatible one is still accepted.
    registry.register(&subject, &v2(&ns)).await.unwrap();
    assert_eq!(registry.versions(&subject).await.unwrap(), vec![1, 2]);
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn schemas_with_references_are_registered_looked_up_and_fetched() {
    let ns = namespace();
    let registry = registry();
    let address_subject = subject("ref-address");
    let address = json!({
        "type": "record", "name": "Address", "namespace": ns,
        "fields": [{"name": "street", "type": "string"}]
    })
    .to_string();
    registry.register(&address_subject, &address).await.unwrap();

    let reference = SchemaReference::new(format!("{ns}.Address"), &address_subject, 1);
    let customer = Schema::avro(
        json!({
            "type": "record", "name": "Customer", "namespace": ns,
            "fields": [{"name": "address", "type": format!("{ns}.Address")}]
        })
        .to_string(),
    )
    .with_reference(reference.clone());
    let customer_subject = subject("ref-customer");
    let id = registry
        .register_schema(&customer_subject, &customer, false)
        .await
        .unwrap();

    let fetched = self::registry().schema(id).await.unwrap();
    assert_eq!(fetched.references, vec![reference.clone()]);
    assert_eq!(as_json(&fetched.text), as_json(&customer.text));

    let found = self::registry()
        .lookup(&customer_subject, &customer, false)
        .await
        .unwrap();
    assert_eq!((found.id, found.version), (id, 1));
    assert_eq!(found.references, vec![reference.clone()]);
    let latest = registry.latest_version(&customer_subject).await.unwrap();
    assert_eq!(latest.references, vec![reference]);
    assert_eq!(latest.to_schema().references.len(), 1);

    // A referenced version cannot be deleted: 42206.
    let err = registry
        .delete_version(&address_subject, 1)
        .await
        .unwrap_err();
    assert_eq!(codes(&err), (422, error_code::REFERENCE_EXISTS));
}

#[tokio::test]
async fn referenced_schemas_are_fetched_transitively_each_name_once_nearest_first() {
    let ns = namespace();
    let registry = registry();
    let country_subject = subject("ref-country");
    let country = |fields: serde_json::Value| {
        json!({"type": "record", "name": "Country", "namespace": ns, "fields": fields}).to_string()
    };
    let v1 = country(json!([{"name": "code", "type": "string"}]));
    let v2 = country(json!([{"name": "code", "type": "string"},
                            {"name": "name", "type": "string", "default": ""}]));
    registry.register(&country_subject, &v1).await.unwrap();
    registry.register(&country_subject, &v2).await.unwrap();
    let country_ref =
        |version| SchemaReference::new(format!("{ns}.Country"), &country_subject, version);
    // Address uses Country v1; the customer uses Address, and Country v2 directly.
    let address_subject = subject("ref-address");
    let address = Schema::avro(
        json!({"type": "record", "name": "Address", "namespace": ns,
               "fields": [{"name": "country", "type": format!("{ns}.Country")}]})
        .to_string(),
    )
    .with_reference(country_ref(1));
    registry
        .register_schema(&address_subject, &address, false)
        .await
        .unwrap();
    let references = [
        SchemaReference::new(format!("{ns}.Address"), &address_subject, 1),
        country_ref(2),
    ];
    let texts = registry.referenced_schemas(&references).await.unwrap();
    // One text per name: Country v2, named by the customer itself, wins over Address's v1.
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(as_json(&texts[0]), as_json(&address.text));
    assert_eq!(as_json(&texts[1]), as_json(&v2));
}

// ---------------------------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_global_mode_is_read_and_set() {
    let registry = registry();
    let mode = registry.mode().await.unwrap();
    assert_eq!(mode, Mode::ReadWrite);
    // Setting the mode it already has changes nothing for the tests running alongside.
    assert_eq!(registry.set_mode(mode).await.unwrap(), mode);
}

#[tokio::test]
async fn subject_modes_are_set_read_and_deleted() {
    let ns = namespace();
    let subject = subject("mode");
    let registry = registry();
    registry.register(&subject, &v1(&ns)).await.unwrap();

    // Apicurio deviation: GET /mode/{s} for a subject without its own mode answers 200 with the
    // global mode; Confluent answers 404 with 40409, which the client turns into `None`.
    assert_eq!(
        registry.subject_mode(&subject).await.unwrap(),
        on_apicurio(Some(Mode::ReadWrite), None)
    );

    assert_eq!(
        registry
            .set_subject_mode(&subject, Mode::ReadOnly)
            .await
            .unwrap(),
        Mode::ReadOnly
    );
    assert_eq!(
        registry.subject_mode(&subject).await.unwrap(),
        Some(Mode::ReadOnly)
    );
    // Apicurio deviation: a subject in READONLY mode still accepts registrations (POST
    // /subjects/{s}/versions answers 200); Confluent refuses them with 422 / 42205.
    let registered = registry.register(&subject, &v2(&ns)).await;
    if is_apicurio() {
        registered.unwrap();
    } else {
        let err = registered.unwrap_err();
        assert_eq!(codes(&err), (422, error_code::OPERATION_NOT_PERMITTED));
    }

    // Apicurio deviation: PUT /mode/{s} with READONLY_OVERRIDE answers 422 with 42201 ("Invalid
    // mode"); Confluent accepts the mode (and reports invalid modes with 42204).
    let set = registry
        .set_subject_mode(&subject, Mode::ReadOnlyOverride)
        .await;
    if is_apicurio() {
        assert_eq!(codes(&set.unwrap_err()), (422, error_code::INVALID_SCHEMA));
    } else {
        assert_eq!(set.unwrap(), Mode::ReadOnlyOverride);
    }

    let last = on_apicurio(Mode::ReadOnly, Mode::ReadOnlyOverride);
    assert_eq!(registry.delete_subject_mode(&subject).await.unwrap(), last);
    assert_eq!(
        registry.subject_mode(&subject).await.unwrap(),
        on_apicurio(Some(Mode::ReadWrite), None)
    );
}

#[tokio::test]
async fn an_empty_subject_can_be_put_in_import_mode() {
    let registry = registry();
    let subject = subject("import");
    assert_eq!(
        registry
            .set_subject_mode(&subject, Mode::Import)
            .await
            .unwrap(),
        Mode::Import
    );
    assert_eq!(
        registry.subject_mode(&subject).await.unwrap(),
        Some(Mode::Import)
    );
    assert_eq!(
        registry.delete_subject_mode(&subject).await.unwrap(),
        Mode::Import
    );
}

#[tokio::test]
async fn a_client_from_the_environment_reaches_the_registry() {
    // `dev/stack env` sets SCHEMA_REGISTRY_URL (and no credentials: the stack's registry has
    // authentication off).
    let registry = SchemaRegistryClient::from_env().unwrap();
    assert_eq!(registry.url(), registry_url().trim_end_matches('/'));
    assert_eq!(registry.mode().await.unwrap(), Mode::ReadWrite);
}

// ---------------------------------------------------------------------------------------------
// Caching
// ---------------------------------------------------------------------------------------------

/// A TCP relay on loopback to the stack's registry that counts the connections it accepts and
/// can be cut, after which the registry is unreachable through it.
struct Relay {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            cut: Arc::default(),
            open: Arc::default(),
        };
        let (connections, cut, open) = (
            relay.connections.clone(),
            relay.cut.clone(),
            relay.open.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if cut.load(Ordering::SeqCst) {
                    return; // drops the listener: the port refuses connections from now on
                }
                let Ok(client) = client else { continue };
                connections.fetch_add(1, Ordering::SeqCst);
                let upstream = TcpStream::connect(target).expect("the registry accepts");
                let mut open = open.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(upstream.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        relay
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Closes every relayed connection and stops listening.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        // Wake the accept loop so it sees the flag and closes the listener.
        let _ = TcpStream::connect(self.addr);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn cached_answers_are_served_when_the_registry_is_unreachable() {
    let url = url::Url::parse(&registry_url()).unwrap();
    let target = url.socket_addrs(|| None).unwrap()[0];
    let relay = Relay::start(target);
    let through_relay = format!("http://{}{}", relay.addr, url.path());
    let client = SchemaRegistryClient::builder(through_relay)
        .max_retries(0)
        .build()
        .unwrap();

    let subject = subject("cache");
    let text = v1(&namespace());
    let schema = Schema::avro(&text);
    let id = client.register(&subject, &text).await.unwrap();
    let found = client.lookup(&subject, &schema, false).await.unwrap();
    let fetched = client.schema(id).await.unwrap();
    let seen = relay.connections();
    assert!(seen >= 1, "the first calls went through the relay");

    relay.cut();
    // The registry is now out of reach for this client…
    let err = client.subjects().await.unwrap_err();
    assert!(matches!(err, Error::RegistryTransport { .. }), "{err:?}");

    // …but what it was told before is answered from its caches, which its clones share.
    let clone = client.clone();
    assert_eq!(clone.register(&subject, &text).await.unwrap(), id);
    assert_eq!(
        clone
            .register_schema(&subject, &schema, false)
            .await
            .unwrap(),
        id
    );
    assert_eq!(clone.lookup(&subject, &schema, false).await.unwrap(), found);
    assert_eq!(clone.schema(id).await.unwrap(), fetched);
    assert_eq!(clone.schema_by_id(id).await.unwrap(), fetched.text);
    assert_eq!(relay.connections(), seen, "no new connection was made");

    // What it was never told is not.
    let err = clone.schema(id + 1_000_000).await.unwrap_err();
    assert!(matches!(err, Error::RegistryTransport { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

/// An HTTPS endpoint that requires a client certificate: `openssl s_server` serving the files of
/// a directory, with a CA, a server certificate for 127.0.0.1 and a client certificate made
/// for this test. It answers `GET /subjects` with a static list, which is enough to show that the
/// TLS handshake, with or without the client certificate, succeeds or fails.
struct TlsServer {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = std::env::temp_dir().join(unique_name("flowodm-tls"));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("the openssl command (dev/stack installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca = [
            &["req", "-x509"][..],
            &key,
            &["-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat();
        openssl(&[&ca[..], &["-days", "1", "-subj", "/CN=flowodm test CA"]].concat());
        for (name, ext) in [
            ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            ("client", "extendedKeyUsage=clientAuth"),
        ] {
            let (k, csr, crt) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
            );
            let req = [&["req"][..], &key, &["-keyout", &k, "-out", &csr]].concat();
            openssl(&[&req[..], &["-subj", &format!("/CN=flowodm test {name}")]].concat());
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &crt,
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
        std::fs::write(dir.join("subjects"), r#"["served-over-mutual-tls"]"#).unwrap();

        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
            .args([
                "-cert",
                "server.crt",
                "-key",
                "server.key",
                "-CAfile",
                "ca.crt",
            ])
            .args(["-Verify", "1", "-WWW"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        // It prints ACCEPT once it listens.
        let stdout = child.stdout.take().unwrap();
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            .any(|l| l.contains("ACCEPT"));
        assert!(ready, "openssl s_server did not start");
        TlsServer { dir, port, child }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tls_client(
    url: &str,
    configure: impl FnOnce(
        flowodm::registry::SchemaRegistryClientBuilder,
    ) -> flowodm::registry::SchemaRegistryClientBuilder,
) -> SchemaRegistryClient {
    configure(
        SchemaRegistryClient::builder(url)
            .max_retries(0)
            .request_timeout(Duration::from_secs(10)),
    )
    .build()
    .unwrap()
}

/// Asserts a transport error whose message gives `reason`.
fn assert_transport_error(result: flowodm::Result<Vec<String>>, reason: &str) {
    match result {
        Err(e @ Error::RegistryTransport { .. }) => {
            assert!(
                e.to_string().contains(reason),
                "expected `{reason}` in: {e}"
            );
            assert!(e.is_retriable());
        }
        other => panic!("expected a transport error for `{reason}`, got {other:?}"),
    }
}

#[tokio::test]
async fn mutual_tls_with_a_custom_ca_from_the_environment() {
    let server = TlsServer::start();
    let env = |name: &str| -> Option<String> {
        let path = |f: &str| Some(server.file(f).display().to_string());
        match name {
            "SCHEMA_REGISTRY_URL" => Some(server.url()),
            "SCHEMA_REGISTRY_SSL_CA_LOCATION" => path("ca.crt"),
            "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION" => path("client.crt"),
            "SCHEMA_REGISTRY_SSL_KEY_LOCATION" => path("client.key"),
            _ => None,
        }
    };
    let client = SchemaRegistryClient::from_lookup(env).unwrap();
    assert_eq!(
        client.subjects().await.unwrap(),
        vec!["served-over-mutual-tls".to_string()]
    );
}

#[tokio::test]
async fn tls_fails_without_the_ca_or_without_the_client_certificate() {
    let server = TlsServer::start();
    // The server's certificate is signed by a CA the system does not trust.
    let no_ca = tls_client(&server.url(), |b| {
        b.client_certificate(server.file("client.crt"), server.file("client.key"))
    });
    assert_transport_error(no_ca.subjects().await, "certificate verify failed");
    // The server requires a client certificate.
    let no_cert = tls_client(&server.url(), |b| b.ca_location(server.file("ca.crt")));
    assert_transport_error(no_cert.subjects().await, "certificate required");
    // Both together work (the server is still up and serving).
    let both = tls_client(&server.url(), |b| {
        b.ca_location(server.file("ca.crt"))
            .client_certificate(server.file("client.crt"), server.file("client.key"))
    });
    assert_eq!(both.subjects().await.unwrap().len(), 1);
}
