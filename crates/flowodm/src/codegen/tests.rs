use super::names::{self, Rule};
use super::*;

/// A record `R` in namespace `t` with the given fields (JSON text).
fn record(fields: &str) -> String {
    format!(r#"{{"type": "record", "name": "R", "namespace": "t", "fields": [{fields}]}}"#)
}

fn generate(schema: &str) -> String {
    Generator::new()
        .generate(&[schema])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn error(schema: &str) -> String {
    match Generator::new().generate(&[schema]) {
        Ok(source) => panic!("expected an error, got:\n{source}"),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected `{needle}` in:\n{haystack}"
    );
}

#[test]
fn field_identifiers_are_snake_case_with_keywords_escaped() {
    assert_eq!(
        names::field_ident("orderId"),
        ("order_id".into(), "order_id".into())
    );
    assert_eq!(names::field_ident("type"), ("r#type".into(), "type".into()));
    assert_eq!(names::field_ident("gen"), ("r#gen".into(), "gen".into()));
    // Keywords that cannot be raw identifiers take a trailing underscore.
    assert_eq!(names::field_ident("self"), ("self_".into(), "self_".into()));
    assert_eq!(
        names::field_ident("crate"),
        ("crate_".into(), "crate_".into())
    );
    assert_eq!(names::field_ident("_"), ("field".into(), "field".into()));
}

#[test]
fn type_identifiers_are_upper_camel_case_and_never_self() {
    assert_eq!(names::type_ident("order_line"), "OrderLine");
    assert_eq!(names::type_ident("HTTPRequest"), "HttpRequest");
    assert_eq!(names::type_ident("ORDER_CREATED"), "OrderCreated");
    assert_eq!(names::type_ident("Self"), "SelfValue");
    assert_eq!(names::type_ident("self"), "SelfValue");
}

#[test]
fn rename_all_is_chosen_only_when_it_covers_most_names() {
    let pairs = |names: &[(&str, &str)]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let camel = pairs(&[
        ("order_id", "orderId"),
        ("user_id", "userId"),
        ("age", "age"),
    ]);
    assert_eq!(names::best_rule(&camel), Some(Rule::Camel));
    let plain = pairs(&[("order_id", "order_id"), ("user_id", "userId")]);
    assert_eq!(names::best_rule(&plain), None);
    let mixed = pairs(&[
        ("a_b", "aB"),
        ("c_d", "C_D"),
        ("e_f", "x_EF"),
        ("h_i", "HI_z"),
    ]);
    assert_eq!(names::best_rule(&mixed), None);
    let screaming = pairs(&[("Low", "LOW"), ("InProgress", "IN_PROGRESS")]);
    assert_eq!(names::best_rule(&screaming), Some(Rule::ScreamingSnake));
}

#[test]
fn names_that_differ_from_the_rust_names_are_kept_with_attributes() {
    let source = generate(&record(
        r#"{"name": "type", "type": "string"},
           {"name": "self", "type": "int"},
           {"name": "HTTPCode", "type": "int"},
           {"name": "inner", "type": {"type": "record", "name": "inner_rec", "fields": []}}"#,
    ));
    assert_contains(&source, "    pub r#type: String,\n");
    assert_contains(
        &source,
        "    #[flowodm(rename = \"self\")]\n    pub self_: i32,\n",
    );
    assert_contains(
        &source,
        "    #[flowodm(rename = \"HTTPCode\")]\n    pub http_code: i32,\n",
    );
    assert_contains(
        &source,
        "#[flowodm(name = \"inner_rec\", namespace = \"t\")]\npub struct InnerRec {}\n",
    );
}

#[test]
fn null_unions_become_options_only_with_a_null_default() {
    let source = generate(&record(
        r#"{"name": "a", "type": ["null", "string"], "default": null},
           {"name": "b", "type": ["null", "string"]},
           {"name": "c", "type": {"type": "array", "items": ["null", "long"]}}"#,
    ));
    assert_contains(&source, "    pub a: Option<String>,\n");
    // Without a default, an Option would add `"default": null` to the schema.
    assert_contains(&source, "    pub b: RB,\n");
    assert_contains(
        &source,
        "pub enum RB {\n    Null,\n    String(String),\n}\n",
    );
    assert_contains(&source, "    pub c: Vec<Option<i64>>,\n");
}

#[test]
fn a_record_that_contains_itself_goes_through_a_box() {
    let source = generate(&record(
        r#"{"name": "next", "type": ["null", "R"], "default": null},
           {"name": "all", "type": {"type": "array", "items": "R"}}"#,
    ));
    assert_contains(&source, "    pub next: Option<Box<R>>,\n");
    assert_contains(&source, "    pub all: Vec<R>,\n");
}

#[test]
fn logical_types_get_their_chrono_uuid_and_decimal_types_and_imports() {
    let source = generate(&record(
        r#"{"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
           {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
           {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}}"#,
    ));
    assert_contains(
        &source,
        "use chrono::{DateTime, Utc};\nuse rust_decimal::Decimal;\nuse uuid::Uuid;\n",
    );
    assert_contains(
        &source,
        "    #[flowodm(micros)]\n    pub at: DateTime<Utc>,\n",
    );
    assert_contains(&source, "    pub id: Uuid,\n");
    assert_contains(
        &source,
        "    #[flowodm(decimal(precision = 9, scale = 2))]\n    pub price: Decimal,\n",
    );
}

#[test]
fn a_topic_and_key_make_the_main_record_a_model() {
    let schema = record(r#"{"name": "orderId", "type": "string"}"#);
    let source = Generator::new()
        .topic("orders")
        .key("orderId")
        .generate(&[&schema])
        .expect("generates");
    assert_contains(
        &source,
        "#[derive(Debug, Clone, PartialEq, flowodm::Model)]\n",
    );
    assert_contains(
        &source,
        "#[flowodm(\n    topic = \"orders\",\n    key = \"order_id\",\n    namespace = \"t\",\n    rename_all = \"camelCase\"\n)]\n",
    );

    let err = Generator::new()
        .topic("orders")
        .key("missing")
        .generate(&[&schema])
        .unwrap_err();
    assert_contains(
        &err.to_string(),
        "the key `missing` is not a field of `R`; its fields are: orderId",
    );
    let err = Generator::new()
        .topic("orders")
        .key("id")
        .generate(&[record(
            r#"{"name": "id", "type": {"type": "string", "logicalType": "uuid"}}"#,
        )])
        .unwrap_err();
    assert_contains(
        &err.to_string(),
        "the key `id` is a `Uuid`, which cannot key messages",
    );
    let optional = Generator::new()
        .topic("orders")
        .key("id")
        .generate(&[record(
            r#"{"name": "id", "type": ["null", "long"], "default": null}"#,
        )])
        .expect("an optional long is a key");
    assert_contains(&optional, "key = \"id\"");
    let err = Generator::new()
        .key("orderId")
        .generate(&[&schema])
        .unwrap_err();
    assert_contains(&err.to_string(), "a key field needs a topic");
    let err = Generator::new()
        .topic("colors")
        .generate(&[r#"{"type": "enum", "name": "Color", "symbols": ["RED"]}"#])
        .unwrap_err();
    assert_contains(
        &err.to_string(),
        "a model for a topic is a record or a union of records",
    );
}

#[test]
fn a_named_fixed_the_derive_cannot_name_is_refused_with_its_path() {
    let err = error(&record(
        r#"{"name": "digest", "type": {"type": "fixed", "name": "MD5", "size": 16}}"#,
    ));
    assert_contains(&err, "t.R.digest: cannot express the fixed `t.MD5`");
    assert_contains(&err, "`t.fixed_16`");
    let err = error(&record(
        r#"{"name": "d", "type": {"type": "fixed", "name": "fixed_12", "size": 12, "logicalType": "duration"}}"#,
    ));
    assert_contains(
        &err,
        "t.R.d: cannot express the fixed `t.fixed_12`: the logical type `duration`",
    );
}

#[test]
fn logical_types_without_a_mapping_are_refused() {
    let err = error(&record(
        r#"{"name": "at", "type": {"type": "long", "logicalType": "timestamp-nanos"}}"#,
    ));
    assert_contains(
        &err,
        "t.R.at: the logical type `timestamp-nanos` on `long` has no Rust mapping",
    );
    let err = error(&record(
        r#"{"name": "p", "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 30}}"#,
    ));
    assert_contains(
        &err,
        "t.R.p: decimal(38, 30) does not fit rust_decimal::Decimal",
    );
}

#[test]
fn adapted_values_inside_maps_and_union_branches_are_refused() {
    let err = error(&record(
        r#"{"name": "m", "type": {"type": "map", "values": {"type": "long", "logicalType": "timestamp-micros"}}}"#,
    ));
    assert_contains(
        &err,
        "t.R.m[values]: the values of a map cannot carry #[flowodm(micros)]",
    );
    let err = error(&record(
        r#"{"name": "u", "type": ["string", {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 1}]}"#,
    ));
    assert_contains(&err, "t.R.u[branch 1]: a union branch cannot carry #[flowodm(decimal(precision = 4, scale = 1))]");
}

#[test]
fn defaults_the_derive_cannot_write_are_refused() {
    let err = error(&record(
        r#"{"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}"#,
    ));
    assert_contains(&err, "t.R.tags: cannot express the default []");
    let err = error(&record(
        r#"{"name": "v", "type": ["null", "string", "long"], "default": null}"#,
    ));
    assert_contains(&err, "t.R.v: cannot express the default null");
    let err = error(&record(
        r#"{"name": "v", "type": "int", "order": "descending"}"#,
    ));
    assert_contains(
        &err,
        "t.R.v: the derive cannot express the sort order `descending`",
    );
}

#[test]
fn invalid_input_is_reported_with_its_position() {
    let err = error("{\"type\": \"record\",\n \"name\": }");
    assert_contains(&err, "schema 1 is not valid JSON");
    assert_contains(&err, "line 2 column 10");
    let err = error(&record(r#"{"name": "x", "type": "Nowhere"}"#));
    assert_contains(&err, "schema 1: not a valid Avro schema");
    let err = error(r#""string""#);
    assert_contains(
        &err,
        "the main schema: its root is `string`, which has no type to generate",
    );
    let err = Generator::new().generate::<&str>(&[]).unwrap_err();
    assert_contains(&err.to_string(), "no schema to generate code from");
}

#[test]
fn files_are_named_in_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.avsc");
    std::fs::write(&path, r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": "int", "order": "ignore"}]}"#)
        .expect("write");
    let err = Generator::new().generate_files(&[&path]).unwrap_err();
    assert_contains(
        &err.to_string(),
        "R.x: the derive cannot express the sort order `ignore`",
    );
    let err = Generator::new()
        .generate_files(&[dir.path().join("missing.avsc")])
        .unwrap_err();
    assert_contains(&err.to_string(), "cannot read ");
    assert_contains(&err.to_string(), "missing.avsc");

    std::fs::write(
        &path,
        "{\n  \"type\": \"record\",\n  \"name\": \"R\"\n  \"fields\": []\n}",
    )
    .expect("write");
    let err = Generator::new().generate_files(&[&path]).unwrap_err();
    assert_contains(&err.to_string(), "broken.avsc is not valid JSON");
    assert_contains(&err.to_string(), "line 4 column 3");
}

#[test]
fn named_types_may_come_from_other_schemas_in_any_order() {
    let uses = r#"{"type": "record", "name": "Uses", "namespace": "t",
                   "fields": [{"name": "a", "type": "A"}]}"#;
    let a = r#"{"type": "record", "name": "A", "namespace": "t",
                "fields": [{"name": "b", "type": "t.B"}]}"#;
    let b = r#"{"type": "enum", "name": "B", "namespace": "t", "symbols": ["X"]}"#;
    let source = Generator::new().generate(&[a, b, uses]).expect("generates");
    assert_contains(&source, "pub struct A {\n    pub b: B,\n}\n");
    assert_contains(&source, "pub enum B {\n    X,\n}\n");
    assert_contains(&source, "pub struct Uses {\n    pub a: A,\n}\n");
}

#[test]
fn long_attributes_are_laid_out_one_argument_per_line() {
    let source = generate(&record(
        r#"{"name": "a", "type": "string", "default": "a default that is long enough to go past the seventy characters rustfmt allows"}"#,
    ));
    assert_contains(
        &source,
        "    #[flowodm(\n        default = \"a default that is long enough to go past the seventy characters rustfmt allows\"\n    )]\n",
    );
}

#[test]
fn a_type_without_namespace_cannot_be_used_again_inside_a_namespace() {
    let schema = r#"{"type": "record", "name": "Outer", "fields": [
        {"name": "first", "type": {"type": "record", "name": "Plain", "fields": []}},
        {"name": "inner", "type": {"type": "record", "name": "Inner", "namespace": "ns",
            "fields": [{"name": "again", "type": "Plain"}]}}]}"#;
    // Avro cannot refer to it there (a short name means a type of the enclosing namespace), so
    // no derived schema could have it either.
    let err = error(schema);
    assert_contains(
        &err,
        "not a valid Avro schema: Unknown primitive type: ns.Plain",
    );
    // Used again outside any namespace, it is fine.
    let fine = r#"{"type": "record", "name": "Outer", "fields": [
        {"name": "first", "type": {"type": "record", "name": "Plain", "fields": []}},
        {"name": "again", "type": "Plain"}]}"#;
    assert_contains(&generate(fine), "pub again: Plain,");
}

#[test]
fn enums_that_clippy_would_flag_for_their_names_or_sizes_allow_those_lints() {
    assert!(names::shared_word(
        "Stage",
        &["OrderCreated", "OrderShipped", "OrderLost"]
    ));
    assert!(names::shared_word(
        "Kind",
        &["FirstKind", "SecondKind", "ThirdKind"]
    ));
    assert!(names::shared_word("Kind", &["KindA", "B"]));
    assert!(!names::shared_word(
        "Stage",
        &["OrderCreated", "OrderShipped"]
    ));
    assert!(!names::shared_word("Method", &["Card", "Cash", "Other"]));
    assert!(!names::shared_word("E", &["Order", "Order2", "Order3"]));

    let source = generate(&record(
        r#"{"name": "s", "type": {"type": "enum", "name": "S", "symbols": ["ORDER_A", "ORDER_B", "ORDER_C"]}},
           {"name": "u", "type": ["null", {"type": "record", "name": "Big", "fields": []}]}"#,
    ));
    assert_contains(&source, "#[allow(clippy::enum_variant_names)]\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, flowodm::Avro)]\n");
    assert_contains(&source, "#[allow(clippy::large_enum_variant)]\n#[derive(Debug, Clone, PartialEq, flowodm::Avro)]\npub enum RU {\n");
}

#[test]
fn the_main_type_leads_the_file_and_names_it() {
    let shared = r#"{"type": "record", "name": "Shared", "namespace": "t", "fields": []}"#;
    let main = r#"[{"type": "record", "name": "Created", "namespace": "t",
                    "fields": [{"name": "s", "type": "Shared"}]},
                   {"type": "record", "name": "Deleted", "namespace": "t", "fields": []}]"#;
    let source = Generator::new()
        .generate(&[shared, main])
        .expect("generates");
    assert_eq!(emit::main_type(&source), Some("CreatedOrDeleted"));
    let positions: Vec<usize> = [
        "pub enum CreatedOrDeleted",
        "pub struct Created",
        "pub struct Shared",
        "pub struct Deleted",
    ]
    .iter()
    .map(|item| {
        source
            .find(item)
            .unwrap_or_else(|| panic!("{item} in:\n{source}"))
    })
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{source}");

    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(&source, dir.path()).expect("writes");
    assert_eq!(path, dir.path().join("created_or_deleted.rs"));
    let err = write("// nothing\n", dir.path()).unwrap_err();
    assert_contains(&err.to_string(), "no generated type to name its file after");
}

#[test]
fn a_main_union_with_a_fixed_branch_does_not_panic() {
    // It either generates or says why; it never panics (a fixed has no Rust type name of its
    // own).
    for schema in [
        r#"["null", {"type": "fixed", "name": "fixed_4", "size": 4}]"#,
        r#"["int", {"type": "fixed", "name": "fixed_4", "size": 4}]"#,
    ] {
        let outcome = std::panic::catch_unwind(|| Generator::new().generate(&[schema]));
        assert!(outcome.is_ok(), "generating {schema} panicked");
    }
}
