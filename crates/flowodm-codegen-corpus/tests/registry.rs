//! Code generated from registry subjects of `dev/stack`'s schema registry, with the schemas a
//! subject references fetched too. Each test registers its own subjects ([`unique_name`]).

use flowodm::codegen::Generator;
use flowodm::registry::{Schema, SchemaReference, SchemaRegistryClient, SchemaType, Version};
use flowodm_codegen_corpus::{case_of, check::texts};
use flowodm_test::{registry_url, unique_name};

fn registry() -> SchemaRegistryClient {
    SchemaRegistryClient::new(&registry_url()).expect("SCHEMA_REGISTRY_URL is a valid URL")
}

/// The committed code of a corpus case.
fn generated(module: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/generated")
        .join(format!("{module}.rs"));
    std::fs::read_to_string(path).expect("generated code")
}

#[tokio::test]
async fn a_subject_with_references_generates_the_code_of_its_files() {
    let registry = registry();
    // corpus/cross_file: Currency, Money (uses Currency), Invoice (uses both).
    let [currency, money, invoice]: [String; 3] = texts(case_of("cross_file"))
        .try_into()
        .expect("three files");
    let currency_subject = unique_name("codegen-currency");
    let money_subject = unique_name("codegen-money");
    let invoice_subject = unique_name("codegen-invoice") + "-value";
    registry
        .register(&currency_subject, &currency)
        .await
        .expect("register Currency");
    let money_schema = Schema::avro(money).with_reference(SchemaReference::new(
        "corpus.shared.Currency",
        &currency_subject,
        1,
    ));
    registry
        .register_schema(&money_subject, &money_schema, false)
        .await
        .expect("register Money");
    let invoice_schema = Schema::avro(invoice)
        .with_reference(SchemaReference::new(
            "corpus.shared.Money",
            &money_subject,
            1,
        ))
        .with_reference(SchemaReference::new(
            "corpus.shared.Currency",
            &currency_subject,
            1,
        ));
    registry
        .register_schema(&invoice_subject, &invoice_schema, false)
        .await
        .expect("register Invoice");

    let source = Generator::new()
        .generate_from_registry(&registry, &invoice_subject, Version::Latest)
        .await
        .expect("generate from the registry");
    // The same code as from the files, which the corpus compiles and checks.
    assert_eq!(source, generated("cross_file"));

    let by_number = Generator::new()
        .generate_from_registry(&registry, &invoice_subject, 1)
        .await
        .expect("generate from version 1");
    assert_eq!(by_number, source);
}

#[tokio::test]
async fn a_subject_generates_a_model_for_its_topic() {
    let registry = registry();
    let case = case_of("keyed_model");
    let subject = unique_name("codegen-signups") + "-value";
    registry
        .register(&subject, &texts(case)[0])
        .await
        .expect("register");
    let source = Generator::new()
        .topic("user-signups")
        .key("userId")
        .generate_from_registry(&registry, &subject, Version::Latest)
        .await
        .expect("generate");
    assert_eq!(source, generated("keyed_model"));
    assert!(source.contains("    topic = \"user-signups\",\n    key = \"user_id\",\n"));
}

#[tokio::test]
async fn a_subject_that_is_not_avro_or_does_not_exist_is_an_error() {
    let registry = registry();
    let subject = unique_name("codegen-json") + "-value";
    let json_schema = Schema::new(
        SchemaType::Json,
        r#"{"type": "object", "properties": {"a": {"type": "string"}}}"#,
    );
    registry
        .register_schema(&subject, &json_schema, false)
        .await
        .expect("register a JSON schema");
    let err = Generator::new()
        .generate_from_registry(&registry, &subject, Version::Latest)
        .await
        .expect_err("a JSON schema has no Avro types");
    assert!(
        err.to_string().contains("is a JSON schema, not Avro"),
        "{err}"
    );

    let missing = unique_name("codegen-missing") + "-value";
    let err = Generator::new()
        .generate_from_registry(&registry, &missing, Version::Latest)
        .await
        .expect_err("no such subject");
    assert!(err.is_not_found(), "{err}");
}
