//! A corpus of Avro schemas and the Rust code `flowodm::codegen` writes for them.
//!
//! Each [`Case`] names its `.avsc` files (under `corpus/`) and the main type the generator
//! makes for it. `src/generated/` holds the generated code as ordinary modules, so it is compiled
//! with the derives, and one test per case checks that the derived schema of the main type
//! equals the input schema ([`check`]). The test `generated_code_is_current` regenerates every
//! case and fails when `src/generated/` differs; run it with `FLOWODM_UPDATE_CORPUS=1` to write
//! the new code instead.

pub mod check;
// Private, as generated code mostly is in an application: clippy then checks it with the lints
// it skips for a library's public API. Only the tests use the types.
#[allow(dead_code)]
mod generated;

/// One schema (or set of schemas) of the corpus.
#[derive(Debug)]
pub struct Case {
    /// The module of `src/generated/` that holds its code.
    pub module: &'static str,
    /// Its `.avsc` files, relative to `corpus/`; the last is the main schema.
    pub files: &'static [&'static str],
    /// The Rust name of the main type.
    pub main_type: &'static str,
    /// The topic, for a main type that derives `Model`.
    pub topic: Option<&'static str>,
    /// The key field (its Avro name), with a topic.
    pub key: Option<&'static str>,
}

const fn case(
    module: &'static str,
    files: &'static [&'static str],
    main_type: &'static str,
) -> Case {
    Case {
        module,
        files,
        main_type,
        topic: None,
        key: None,
    }
}

/// Every case of the corpus.
pub const CASES: &[Case] = &[
    Case {
        module: "order_event",
        files: &["../../../examples/food-pipeline/schemas/order_event.avsc"],
        main_type: "OrderEvent",
        topic: Some("order-events"),
        key: Some("order_id"),
    },
    case("primitives", &["primitives.avsc"], "Primitives"),
    case("logical_millis", &["logical_millis.avsc"], "LogicalMillis"),
    case("logical_micros", &["logical_micros.avsc"], "LogicalMicros"),
    case("decimals", &["decimals.avsc"], "Decimals"),
    case("scale_absent", &["scale_absent.avsc"], "Amounts"),
    case("enum_default", &["enum_default.avsc"], "Ticket"),
    case("enum_symbols", &["enum_symbols.avsc"], "Shape"),
    case("enum_root_default", &["enum_root_default.avsc"], "Weekday"),
    case("camel_fields", &["camel_fields.avsc"], "CustomerProfile"),
    case("mixed_names", &["mixed_names.avsc"], "MixedNames"),
    case("keywords", &["keywords.avsc"], "Keywords"),
    case("record_names", &["record_names.avsc"], "OrderLine"),
    case("aliases", &["aliases.avsc"], "Renamed"),
    case("docs", &["docs.avsc"], "Documented"),
    case("defaults", &["defaults.avsc"], "Defaults"),
    case(
        "optional_fields",
        &["optional_fields.avsc"],
        "OptionalFields",
    ),
    case(
        "nullable_no_default",
        &["nullable_no_default.avsc"],
        "Nullable",
    ),
    case("union_records", &["union_records.avsc"], "Payment"),
    case("union_primitives", &["union_primitives.avsc"], "Cell"),
    case("union_logical", &["union_logical.avsc"], "Observation"),
    Case {
        module: "root_union",
        files: &["root_union.avsc"],
        main_type: "OrderPlacedOrOrderCancelled",
        topic: Some("order-lifecycle"),
        key: None,
    },
    case("arrays_maps", &["arrays_maps.avsc"], "Collections"),
    case("fixed", &["fixed.avsc"], "Hashes"),
    case("recursive", &["recursive.avsc"], "Tree"),
    case("mutual_recursion", &["mutual_recursion.avsc"], "Person"),
    case("recursive_union", &["recursive_union.avsc"], "Expr"),
    case(
        "cross_file",
        &[
            "cross_file/1_currency.avsc",
            "cross_file/2_money.avsc",
            "cross_file/3_invoice.avsc",
        ],
        "Invoice",
    ),
    case(
        "cross_file_any_order",
        &[
            "cross_file_any_order/1_address.avsc",
            "cross_file_any_order/2_country.avsc",
            "cross_file_any_order/3_shipment.avsc",
        ],
        "Shipment",
    ),
    case("namespaces", &["namespaces.avsc"], "Outer"),
    case("no_namespace", &["no_namespace.avsc"], "Plain"),
    case("name_collision", &["name_collision.avsc"], "Collisions"),
    case("empty_record", &["empty_record.avsc"], "Heartbeat"),
    Case {
        module: "keyed_model",
        files: &["keyed_model.avsc"],
        main_type: "UserSignedUp",
        topic: Some("user-signups"),
        key: Some("userId"),
    },
    case("deep_nesting", &["deep_nesting.avsc"], "Deep"),
    case(
        "long_names",
        &["long_names.avsc"],
        "AVeryLongRecordNameThatKeepsGoingForAWhile",
    ),
    case("connect_props", &["connect_props.avsc"], "ConnectRow"),
    case("variant_names", &["variant_names.avsc"], "OrderTracking"),
    case("derive_locals", &["derive_locals.avsc"], "Locals"),
];

/// The directory of the corpus's `.avsc` files.
pub fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// The case whose code is in `module`.
pub fn case_of(module: &str) -> &'static Case {
    CASES
        .iter()
        .find(|c| c.module == module)
        .unwrap_or_else(|| panic!("no corpus case `{module}`"))
}
