use super::*;
use crate::registry::CompatibilityLevel as L;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

/// A record `shop.Order` with these fields (JSON, without the brackets).
fn rec(fields: &str) -> AvroSchema {
    AvroSchema::parse(&format!(
        r#"{{"type":"record","name":"Order","namespace":"shop","fields":[{fields}]}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}: {fields}"))
}

fn check(new: &AvroSchema, old: &[&AvroSchema], level: L) -> CompatibilityReport {
    let old: Vec<AvroSchema> = old.iter().map(|s| (*s).clone()).collect();
    check_compatibility(new, &old, level)
}

/// The single reason of a failed check.
fn only_reason(r: &CompatibilityReport) -> &Incompatibility {
    assert_eq!(r.incompatibilities.len(), 1, "{r}");
    &r.incompatibilities[0]
}

const A: &str = r#"{"name":"id","type":"string"}"#;

// ---------------------------------------------------------------------------------------------
// Records and fields
// ---------------------------------------------------------------------------------------------

#[test]
fn adding_a_field_with_a_default_is_fully_compatible() {
    let v1 = rec(A);
    let v2 = rec(&format!(
        r#"{A},{{"name":"note","type":"string","default":""}}"#
    ));
    assert!(check(&v2, &[&v1], L::Full).is_compatible());
}

#[test]
fn adding_a_field_without_default_breaks_new_readers() {
    let v1 = rec(A);
    let v2 = rec(&format!(r#"{A},{{"name":"total","type":"double"}}"#));
    let r = check(&v2, &[&v1], L::Backward);
    let i = only_reason(&r);
    assert_eq!(i.path, "Order.total");
    assert_eq!(i.breaks, Breaks::NewReaders);
    assert_eq!(
        i.kind,
        IncompatibilityKind::FieldWithoutDefault {
            field: "total".into()
        }
    );
    assert!(
        i.message
            .contains("`total` is in the new schema without a default, and the previous schema does not have it"),
        "{}",
        i.message
    );
    assert!(i.to_string().contains(
        "consumers using the new schema cannot read data written with the previous schema"
    ));
    // Forward is fine: old readers skip the new field.
    assert!(check(&v2, &[&v1], L::Forward).is_compatible());
}

#[test]
fn removing_a_field_without_default_breaks_old_readers() {
    let v1 = rec(&format!(r#"{A},{{"name":"total","type":"double"}}"#));
    let v2 = rec(A);
    assert!(check(&v2, &[&v1], L::Backward).is_compatible());
    let r = check(&v2, &[&v1], L::Forward);
    let i = only_reason(&r);
    assert_eq!(i.breaks, Breaks::OldReaders);
    assert!(i.message.contains("`total` is in the previous schema without a default, and the new schema does not have it"), "{}", i.message);
    assert!(i.to_string().contains(
        "consumers still using the previous schema cannot read data written with the new schema"
    ));
}

#[test]
fn removing_a_field_with_a_default_is_forward_compatible() {
    let v1 = rec(&format!(
        r#"{A},{{"name":"total","type":"double","default":0}}"#
    ));
    let v2 = rec(A);
    assert!(check(&v2, &[&v1], L::Full).is_compatible());
}

#[test]
fn a_reader_field_alias_matches_a_renamed_field() {
    let v1 = rec(r#"{"name":"amount","type":"double"}"#);
    let v2 = rec(r#"{"name":"total","type":"double","aliases":["amount"]}"#);
    assert!(check(&v2, &[&v1], L::Backward).is_compatible());
    // Writer aliases do not count: old readers look for `amount`.
    let r = check(&v2, &[&v1], L::Forward);
    assert!(only_reason(&r).message.contains("field `amount`"), "{r}");
}

#[test]
fn a_renamed_record_needs_an_alias() {
    let v1 = AvroSchema::parse(r#"{"type":"record","name":"Order","fields":[]}"#).unwrap();
    let v2 = AvroSchema::parse(r#"{"type":"record","name":"Purchase","fields":[]}"#).unwrap();
    let r = check(&v2, &[&v1], L::Backward);
    let i = only_reason(&r);
    assert!(
        i.message
            .contains("type renamed: the previous schema calls it `Order`, the new schema calls it `Purchase` and has no alias `Order`"),
        "{}",
        i.message
    );
    let v3 =
        AvroSchema::parse(r#"{"type":"record","name":"Purchase","aliases":["Order"],"fields":[]}"#)
            .unwrap();
    assert!(check(&v3, &[&v1], L::Backward).is_compatible());
}

#[test]
fn a_record_moved_to_another_namespace_keeps_its_unqualified_name() {
    let v1 = AvroSchema::parse(r#"{"type":"record","name":"Order","namespace":"a","fields":[]}"#)
        .unwrap();
    let v2 = AvroSchema::parse(r#"{"type":"record","name":"Order","namespace":"b","fields":[]}"#)
        .unwrap();
    assert!(check(&v2, &[&v1], L::Full).is_compatible());
}

#[test]
fn nested_record_fields_have_dotted_paths() {
    let v1 = AvroSchema::parse(
        r#"{"type":"record","name":"OrderEvent","fields":[{"name":"payload","type":
            {"type":"record","name":"OrderEventPayload","fields":[{"name":"status","type":
                ["null",{"type":"enum","name":"OrderStatus","symbols":["PENDING","PAID","SHIPPED"]}],
             "default":null}]}}]}"#,
    )
    .unwrap();
    let v2 = AvroSchema::parse(
        r#"{"type":"record","name":"OrderEvent","fields":[{"name":"payload","type":
            {"type":"record","name":"OrderEventPayload","fields":[{"name":"status","type":
                ["null",{"type":"enum","name":"OrderStatus","symbols":["PENDING","PAID"]}],
             "default":null}]}}]}"#,
    )
    .unwrap();
    let r = check(&v2, &[&v1], L::Backward);
    let i = only_reason(&r);
    assert_eq!(i.path, "OrderEvent.payload.status");
    assert!(i.message.contains("`SHIPPED`"), "{}", i.message);
    assert!(check(&v2, &[&v1], L::Forward).is_compatible());
}

#[test]
fn order_event_evolutions_are_explained() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/food-pipeline/schemas/order_event.avsc"
    );
    let v1 = AvroSchema::from_file(path).unwrap();
    let text = v1.json().to_string();
    // A new order status: old consumers do not know it.
    let v2 = AvroSchema::parse(&text.replace(r#""REFUNDED"]"#, r#""REFUNDED", "LOST"]"#)).unwrap();
    let r = check(&v2, &[&v1], L::FullTransitive);
    let i = only_reason(&r);
    assert_eq!(i.path, "OrderEvent.payload.status");
    assert_eq!(i.breaks, Breaks::OldReaders);
    assert!(
        i.to_string().contains(&format!(
            "enum symbol(s) `LOST` are in the new schema but not in {path}"
        )),
        "{i}"
    );
    // Dropping `version`, which has a default, is fine both ways.
    let v3 = AvroSchema::parse(&text.replace(
        r#"{"name": "version", "type": "string", "default": "1.0", "doc": "Version of the event's schema."},"#,
        "",
    ))
    .unwrap();
    assert_ne!(v3.json(), text);
    assert!(check(&v3, &[&v1], L::Full).is_compatible());
    // The timestamp in microseconds: same bytes, another meaning.
    let v4 = AvroSchema::parse(&text.replace("timestamp-millis", "timestamp-micros")).unwrap();
    let r = check(&v4, &[&v1], L::Backward);
    assert_eq!(only_reason(&r).path, "OrderEvent.timestamp");
}

#[test]
fn recursive_records_terminate() {
    let list = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},
        {"name":"next","type":["null","Node"],"default":null}]}"#;
    let v1 = AvroSchema::parse(list).unwrap();
    let v2 = AvroSchema::parse(&list.replace(r#""type":"int""#, r#""type":"long""#)).unwrap();
    assert!(check(&v2, &[&v1], L::Backward).is_compatible());
    let r = check(&v2, &[&v1], L::Forward);
    assert_eq!(only_reason(&r).path, "Node.v");
}

#[test]
fn a_record_read_as_a_string_is_a_type_change() {
    let v1 = rec(r#"{"name":"customer","type":{"type":"record","name":"Customer","fields":[]}}"#);
    let v2 = rec(r#"{"name":"customer","type":"string"}"#);
    let r = check(&v2, &[&v1], L::Backward);
    assert!(
        only_reason(&r)
            .message
            .contains("the previous schema has record shop.Customer, the new schema has string"),
        "{r}"
    );
}

// ---------------------------------------------------------------------------------------------
// Primitives and promotions
// ---------------------------------------------------------------------------------------------

fn field(t: &str) -> AvroSchema {
    rec(&format!(r#"{{"name":"x","type":{t}}}"#))
}

#[test]
fn int_widens_to_long_but_not_back() {
    let (v1, v2) = (field(r#""int""#), field(r#""long""#));
    assert!(check(&v2, &[&v1], L::Backward).is_compatible());
    let r = check(&v2, &[&v1], L::Forward);
    let i = only_reason(&r);
    assert_eq!(i.path, "Order.x");
    assert!(
        i.message.contains(
            "the new schema has long, the previous schema has int, and long cannot be read as int"
        ),
        "{}",
        i.message
    );
}

#[test]
fn every_promotion_of_the_specification_is_accepted() {
    for (w, r) in [
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    ] {
        let old = field(&format!("\"{w}\""));
        let new = field(&format!("\"{r}\""));
        assert!(
            check(&new, &[&old], L::Backward).is_compatible(),
            "{w} -> {r}"
        );
    }
}

#[test]
fn narrowing_is_refused() {
    for (w, r) in [
        ("long", "int"),
        ("double", "float"),
        ("double", "long"),
        ("float", "long"),
        ("boolean", "int"),
        ("string", "int"),
        ("null", "string"),
    ] {
        let old = field(&format!("\"{w}\""));
        let new = field(&format!("\"{r}\""));
        let report = check(&new, &[&old], L::Backward);
        assert!(
            only_reason(&report)
                .message
                .contains(&format!("{w} cannot be read as {r}")),
            "{report}"
        );
    }
}

#[test]
fn string_and_bytes_are_fully_compatible() {
    let (v1, v2) = (field(r#""string""#), field(r#""bytes""#));
    assert!(check(&v2, &[&v1], L::Full).is_compatible());
}

#[test]
fn a_top_level_primitive_has_the_root_path() {
    let v1 = AvroSchema::parse(r#""long""#).unwrap();
    let v2 = AvroSchema::parse(r#""int""#).unwrap();
    let r = check(&v2, &[&v1], L::Backward);
    assert_eq!(only_reason(&r).path, "<root>");
}

// ---------------------------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------------------------

fn status(symbols: &str, default: Option<&str>) -> AvroSchema {
    let default = default.map_or(String::new(), |d| format!(r#","default":"{d}""#));
    field(&format!(
        r#"{{"type":"enum","name":"Status","symbols":[{symbols}]{default}}}"#
    ))
}

#[test]
fn adding_an_enum_symbol_breaks_old_readers_without_default() {
    let v1 = status(r#""NEW","PAID""#, None);
    let v2 = status(r#""NEW","PAID","REFUNDED""#, None);
    assert!(check(&v2, &[&v1], L::Backward).is_compatible());
    let r = check(&v2, &[&v1], L::Forward);
    let i = only_reason(&r);
    assert_eq!(
        i.kind,
        IncompatibilityKind::EnumSymbolsMissing {
            symbols: vec!["REFUNDED".into()]
        }
    );
    assert!(
        i.message
            .contains("enum symbol(s) `REFUNDED` are in the new schema but not in the previous schema, whose enum has no default"),
        "{}",
        i.message
    );
}

#[test]
fn an_enum_default_in_the_reader_absorbs_unknown_symbols() {
    let v1 = status(r#""UNKNOWN","NEW","PAID""#, Some("UNKNOWN"));
    let v2 = status(r#""UNKNOWN","NEW","PAID","REFUNDED""#, Some("UNKNOWN"));
    assert!(check(&v2, &[&v1], L::Full).is_compatible());
}

#[test]
fn removing_an_enum_symbol_breaks_new_readers() {
    let v1 = status(r#""NEW","PAID","LOST""#, None);
    let v2 = status(r#""NEW","PAID""#, None);
    let r = check(&v2, &[&v1], L::Backward);
    assert!(only_reason(&r).message.contains("`LOST`"), "{r}");
}

#[test]
fn a_renamed_enum_is_a_name_change() {
    let v1 = field(r#"{"type":"enum","name":"Status","symbols":["A"]}"#);
    let v2 = field(r#"{"type":"enum","name":"State","symbols":["A"]}"#);
    let r = check(&v2, &[&v1], L::Backward);
    assert_eq!(
        only_reason(&r).kind,
        IncompatibilityKind::NameChanged {
            writer: "shop.Status".into(),
            reader: "shop.State".into()
        }
    );
    let v3 = field(r#"{"type":"enum","name":"State","aliases":["Status"],"symbols":["A"]}"#);
    assert!(check(&v3, &[&v1], L::Backward).is_compatible());
}

// ---------------------------------------------------------------------------------------------
// Unions
// ---------------------------------------------------------------------------------------------

#[test]
fn making_an_optional_field_required_breaks_new_readers() {
    let v1 = rec(r#"{"name":"note","type":["null","string"],"default":null}"#);
    let v2 = rec(r#"{"name":"note","type":"string"}"#);
    let r = check(&v2, &[&v1], L::Backward);
    let i = only_reason(&r);
    assert_eq!(i.path, "Order.note");
    assert!(
        i.message.contains(
            "the previous schema may write null here, and the new schema (string) cannot read it"
        ),
        "{}",
        i.message
    );
    assert!(check(&v2, &[&v1], L::Forward).is_compatible());
}

#[test]
fn making_a_required_field_optional_breaks_old_readers() {
    let v1 = rec(r#"{"name":"note","type":"string"}"#);
    let v2 = rec(r#"{"name":"note","type":["null","string"],"default":null}"#);
    assert!(check(&v2, &[&v1], L::Backward).is_compatible());
    let r = check(&v2, &[&v1], L::Forward);
    assert!(only_reason(&r).message.contains("may write null"), "{r}");
}

#[test]
fn a_new_union_branch_breaks_old_readers() {
    let v1 = field(r#"["null","string"]"#);
    let v2 = field(r#"["null","string","int"]"#);
    assert!(check(&v2, &[&v1], L::Backward).is_compatible());
    let r = check(&v2, &[&v1], L::Forward);
    assert!(
        only_reason(&r)
            .message
            .contains("the new schema may write int here, and the previous schema (union [null, string]) cannot read it"),
        "{r}"
    );
}

#[test]
fn union_branches_promote() {
    let v1 = field(r#"["null","int"]"#);
    let v2 = field(r#"["null","long"]"#);
    assert!(check(&v2, &[&v1], L::Backward).is_compatible());
    assert!(!check(&v2, &[&v1], L::Forward).is_compatible());
}

#[test]
fn a_plain_value_needs_a_branch_in_the_reader_union() {
    let v1 = field(r#""int""#);
    let v2 = field(r#"["null","string"]"#);
    let r = check(&v2, &[&v1], L::Backward);
    let i = only_reason(&r);
    assert!(
        matches!(i.kind, IncompatibilityKind::NoUnionBranch { .. }),
        "{i:?}"
    );
    assert!(
        i.message
            .contains("the previous schema writes int, and the new schema's union [null, string] has no branch that reads it"),
        "{}",
        i.message
    );
}

#[test]
fn a_record_inside_a_union_is_resolved_deeply() {
    let addr = |extra: &str| {
        field(&format!(
            r#"["null",{{"type":"record","name":"Address","fields":[{{"name":"city","type":"string"}}{extra}]}}]"#
        ))
    };
    let v1 = addr("");
    let v2 = addr(r#",{"name":"zip","type":"string"}"#);
    let r = check(&v2, &[&v1], L::Backward);
    assert_eq!(only_reason(&r).path, "Order.x.zip");
}

// ---------------------------------------------------------------------------------------------
// Fixed, arrays, maps, logical types
// ---------------------------------------------------------------------------------------------

#[test]
fn a_fixed_size_change_is_refused() {
    let v1 = field(r#"{"type":"fixed","name":"Hash","size":16}"#);
    let v2 = field(r#"{"type":"fixed","name":"Hash","size":32}"#);
    let r = check(&v2, &[&v1], L::Backward);
    assert!(
        only_reason(&r).message.contains(
            "fixed size changed: the previous schema has 16 bytes, the new schema has 32"
        ),
        "{r}"
    );
}

#[test]
fn a_renamed_fixed_is_a_name_change() {
    let v1 = field(r#"{"type":"fixed","name":"Hash","size":16}"#);
    let v2 = field(r#"{"type":"fixed","name":"Digest","size":16}"#);
    let r = check(&v2, &[&v1], L::Backward);
    assert!(only_reason(&r).message.contains("type renamed"), "{r}");
}

#[test]
fn array_items_resolve_with_a_bracket_path() {
    let v1 = field(r#"{"type":"array","items":"int"}"#);
    let v2 = field(r#"{"type":"array","items":"long"}"#);
    assert!(check(&v2, &[&v1], L::Backward).is_compatible());
    let v3 = field(r#"{"type":"array","items":"string"}"#);
    let r = check(&v3, &[&v1], L::Backward);
    assert_eq!(only_reason(&r).path, "Order.x[]");
}

#[test]
fn map_values_resolve_with_a_brace_path() {
    let v1 = field(r#"{"type":"map","values":"string"}"#);
    let v2 = field(r#"{"type":"map","values":"boolean"}"#);
    let r = check(&v2, &[&v1], L::Backward);
    let i = only_reason(&r);
    assert_eq!(i.path, "Order.x{}");
    assert!(i.message.contains("string cannot be read as boolean"));
}

#[test]
fn an_array_is_not_a_map() {
    let v1 = field(r#"{"type":"array","items":"string"}"#);
    let v2 = field(r#"{"type":"map","values":"string"}"#);
    let r = check(&v2, &[&v1], L::Backward);
    assert!(
        only_reason(&r)
            .message
            .contains("array of string cannot be read as map of string"),
        "{r}"
    );
}

#[test]
fn a_timestamp_precision_change_is_a_logical_type_change() {
    let v1 = field(r#"{"type":"long","logicalType":"timestamp-millis"}"#);
    let v2 = field(r#"{"type":"long","logicalType":"timestamp-micros"}"#);
    let r = check(&v2, &[&v1], L::Backward);
    let i = only_reason(&r);
    assert!(
        i.message
            .contains("logical type changed: the previous schema has timestamp-millis, the new schema has timestamp-micros"),
        "{}",
        i.message
    );
}

#[test]
fn a_decimal_scale_change_is_a_logical_type_change() {
    let v1 = field(r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}"#);
    let v2 = field(r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":3}"#);
    let r = check(&v2, &[&v1], L::Full);
    assert_eq!(r.incompatibilities.len(), 2, "{r}");
    assert!(r.incompatibilities[0].message.contains("decimal(10,2)"));
    assert!(r.incompatibilities[0].message.contains("decimal(10,3)"));
}

#[test]
fn adding_a_logical_type_to_its_physical_type_is_compatible() {
    let v1 = field(r#""long""#);
    let v2 = field(r#"{"type":"long","logicalType":"timestamp-millis"}"#);
    assert!(check(&v2, &[&v1], L::Full).is_compatible());
}

#[test]
fn a_uuid_string_is_not_a_uuid_fixed() {
    let v1 = field(r#"{"type":"string","logicalType":"uuid"}"#);
    let v2 = field(r#"{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}"#);
    let r = check(&v2, &[&v1], L::Backward);
    assert!(only_reason(&r).message.contains("type changed"), "{r}");
}

// ---------------------------------------------------------------------------------------------
// Levels
// ---------------------------------------------------------------------------------------------

#[test]
fn none_accepts_anything() {
    let v1 = field(r#""string""#);
    let v2 = field(r#""boolean""#);
    let r = check(&v2, &[&v1], L::None);
    assert!(r.is_compatible());
    assert!(r.checked.is_empty());
}

#[test]
fn without_earlier_versions_every_level_passes() {
    let v = field(r#""string""#);
    for level in L::ALL {
        let r = check(&v, &[], level);
        assert!(r.is_compatible(), "{level}");
        assert!(r.to_string().contains("no earlier schema"), "{r}");
    }
}

/// v1 lacks `b`; v2 adds it with a default; v3 drops the default.
fn backward_history() -> [AvroSchema; 3] {
    [
        rec(A),
        rec(&format!(
            r#"{A},{{"name":"b","type":"string","default":""}}"#
        )),
        rec(&format!(r#"{A},{{"name":"b","type":"string"}}"#)),
    ]
}

#[test]
fn backward_compares_with_the_latest_only() {
    let [v1, v2, v3] = backward_history();
    assert!(check(&v3, &[&v1, &v2], L::Backward).is_compatible());
}

#[test]
fn backward_transitive_compares_with_every_version() {
    let [v1, v2, v3] = backward_history();
    let r = check(&v3, &[&v1, &v2], L::BackwardTransitive);
    let i = only_reason(&r);
    assert_eq!(i.against, "earlier schema #1");
    assert!(
        i.to_string()
            .contains("data written with earlier schema #1"),
        "{i}"
    );
    assert_eq!(r.checked, ["earlier schema #2", "earlier schema #1"]);
}

/// v1 needs `c`; v2 gives it a default; v3 drops it.
fn forward_history() -> [AvroSchema; 3] {
    [
        rec(&format!(r#"{A},{{"name":"c","type":"int"}}"#)),
        rec(&format!(r#"{A},{{"name":"c","type":"int","default":0}}"#)),
        rec(A),
    ]
}

#[test]
fn forward_compares_with_the_latest_only() {
    let [v1, v2, v3] = forward_history();
    assert!(check(&v3, &[&v1, &v2], L::Forward).is_compatible());
}

#[test]
fn forward_transitive_compares_with_every_version() {
    let [v1, v2, v3] = forward_history();
    let r = check(&v3, &[&v1, &v2], L::ForwardTransitive);
    let i = only_reason(&r);
    assert_eq!(i.breaks, Breaks::OldReaders);
    assert!(
        i.to_string()
            .contains("consumers still using earlier schema #1"),
        "{i}"
    );
}

#[test]
fn full_needs_both_directions() {
    let v1 = field(r#""int""#);
    let v2 = field(r#""string""#);
    let r = check(&v2, &[&v1], L::Full);
    let breaks: Vec<Breaks> = r.incompatibilities.iter().map(|i| i.breaks).collect();
    assert_eq!(breaks, [Breaks::NewReaders, Breaks::OldReaders]);
    assert!(
        r.to_string()
            .starts_with("NOT compatible (FULL; compared with the previous schema)"),
        "{r}"
    );
}

#[test]
fn full_compares_with_the_latest_only_and_full_transitive_with_all() {
    let [v1, v2, v3] = backward_history();
    // v3 against v2: backward fine (v2 has b), forward fine (v2 has b with default).
    assert!(check(&v3, &[&v1, &v2], L::Full).is_compatible());
    let r = check(&v3, &[&v1, &v2], L::FullTransitive);
    let i = only_reason(&r);
    assert_eq!(i.breaks, Breaks::NewReaders);
    assert!(i.message.contains("field `b` is in the new schema without a default, and earlier schema #1 does not have it"), "{}", i.message);
}

#[test]
fn reports_name_files_and_registry_versions() {
    let v1 = field(r#""long""#).with_origin(Origin::Registry {
        subject: "orders-value".into(),
        version: 3,
        id: 17,
    });
    let v2 = field(r#""int""#).with_origin(Origin::File("order.avsc".into()));
    let r = check(&v2, &[&v1], L::Backward);
    assert!(
        only_reason(&r)
            .to_string()
            .contains("cannot read data written with orders-value v3"),
        "{r}"
    );
}

#[test]
fn can_read_speaks_of_reader_and_writer() {
    let w = field(r#""long""#);
    let r = field(r#""int""#);
    let why = can_read(&w, &r);
    assert_eq!(
        why,
        ["Order.x: type changed: the writer has long, the reader has int, and long cannot be read as int"]
    );
}

// ---------------------------------------------------------------------------------------------
// Agreement with apache-avro's checker
// ---------------------------------------------------------------------------------------------

/// (writer field type, reader field type) pairs on which both checkers must agree.
const AGREE: &[(&str, &str)] = &[
    (r#""int""#, r#""long""#),
    (r#""long""#, r#""int""#),
    (r#""float""#, r#""double""#),
    (r#""double""#, r#""float""#),
    (r#""string""#, r#""bytes""#),
    (r#""bytes""#, r#""string""#),
    (r#""boolean""#, r#""string""#),
    (r#"["null","string"]"#, r#""string""#),
    (r#""string""#, r#"["null","string"]"#),
    (r#"["null","int"]"#, r#"["null","long"]"#),
    (r#"["null","long"]"#, r#"["null","int"]"#),
    (r#"["null","string","int"]"#, r#"["null","string"]"#),
    (
        r#"{"type":"array","items":"int"}"#,
        r#"{"type":"array","items":"long"}"#,
    ),
    (
        r#"{"type":"array","items":"long"}"#,
        r#"{"type":"array","items":"int"}"#,
    ),
    (
        r#"{"type":"map","values":"int"}"#,
        r#"{"type":"map","values":"double"}"#,
    ),
    (
        r#"{"type":"map","values":"string"}"#,
        r#"{"type":"array","items":"string"}"#,
    ),
    (
        r#"{"type":"enum","name":"E","symbols":["A","B"]}"#,
        r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#,
    ),
    (
        r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#,
        r#"{"type":"enum","name":"E","symbols":["A","B"]}"#,
    ),
    (
        r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#,
        r#"{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}"#,
    ),
    (
        r#"{"type":"enum","name":"E","symbols":["A"]}"#,
        r#"{"type":"enum","name":"F","symbols":["A"]}"#,
    ),
    (
        r#"{"type":"fixed","name":"H","size":4}"#,
        r#"{"type":"fixed","name":"H","size":8}"#,
    ),
    (
        r#"{"type":"record","name":"In","fields":[{"name":"a","type":"int"}]}"#,
        r#"{"type":"record","name":"In","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#,
    ),
    (
        r#"{"type":"record","name":"In","fields":[{"name":"a","type":"int"}]}"#,
        r#"{"type":"record","name":"In","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":1}]}"#,
    ),
    (
        r#"{"type":"record","name":"In","fields":[{"name":"a","type":"int"}]}"#,
        r#"{"type":"record","name":"In","fields":[{"name":"z","aliases":["a"],"type":"int"}]}"#,
    ),
    (
        r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#,
        r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":4}"#,
    ),
    (
        r#""long""#,
        r#"{"type":"long","logicalType":"timestamp-millis"}"#,
    ),
];

/// Pairs on which this checker deliberately differs (see the module docs), with its verdict.
const DIFFER: &[(&str, &str, bool)] = &[
    // Different logical types: refused here.
    (
        r#"{"type":"long","logicalType":"timestamp-millis"}"#,
        r#"{"type":"long","logicalType":"timestamp-micros"}"#,
        false,
    ),
    // A reader alias for a renamed type: accepted here.
    (
        r#"{"type":"enum","name":"E","symbols":["A"]}"#,
        r#"{"type":"enum","name":"F","aliases":["shop.E"],"symbols":["A"]}"#,
        true,
    ),
    // uuid on string against uuid on fixed: refused here.
    (
        r#"{"type":"string","logicalType":"uuid"}"#,
        r#"{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}"#,
        false,
    ),
];

fn apache_full(w: &AvroSchema, r: &AvroSchema) -> bool {
    SchemaCompatibility::can_read(w.root(), r.root()) == Ok(Compatibility::Full)
}

#[test]
fn verdicts_agree_with_apache_avro() {
    for (w, r) in AGREE {
        let (w, r) = (field(w), field(r));
        let ours = can_read(&w, &r).is_empty();
        assert_eq!(ours, apache_full(&w, &r), "{} -> {}", w.json(), r.json());
    }
}

#[test]
fn deliberate_differences_from_apache_avro() {
    for (w, r, ours) in DIFFER {
        let (w, r) = (field(w), field(r));
        assert_eq!(can_read(&w, &r).is_empty(), *ours, "{}", r.json());
        assert_ne!(apache_full(&w, &r), *ours, "{}", r.json());
    }
}

mod levels {
    use super::agreement::record;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// FULL is BACKWARD plus FORWARD; a transitive level over one version is the plain one;
        /// every schema is fully compatible with itself.
        #[test]
        fn levels_compose(old in record(), new in record()) {
            let (old, new) = (AvroSchema::parse(&old).unwrap(), AvroSchema::parse(&new).unwrap());
            let prev = [old.clone()];
            let b = check_compatibility(&new, &prev, L::Backward);
            let f = check_compatibility(&new, &prev, L::Forward);
            let full = check_compatibility(&new, &prev, L::Full);
            prop_assert_eq!(
                full.incompatibilities.len(),
                b.incompatibilities.len() + f.incompatibilities.len()
            );
            prop_assert!(b.incompatibilities.iter().all(|i| i.breaks == Breaks::NewReaders));
            prop_assert!(f.incompatibilities.iter().all(|i| i.breaks == Breaks::OldReaders));
            for (plain, transitive) in [
                (L::Backward, L::BackwardTransitive),
                (L::Forward, L::ForwardTransitive),
                (L::Full, L::FullTransitive),
            ] {
                prop_assert_eq!(
                    check_compatibility(&new, &prev, plain).incompatibilities,
                    check_compatibility(&new, &prev, transitive).incompatibilities
                );
            }
            prop_assert!(check_compatibility(&old, &prev, L::FullTransitive).is_compatible());
        }
    }
}

mod agreement {
    use super::*;
    use proptest::prelude::*;

    /// A field type and a valid default for it.
    fn field_type() -> impl Strategy<Value = (String, String)> {
        let prim = prop_oneof![
            Just(("\"int\"", "0")),
            Just(("\"long\"", "0")),
            Just(("\"float\"", "0.5")),
            Just(("\"double\"", "0.5")),
            Just(("\"string\"", "\"\"")),
            Just(("\"bytes\"", "\"\"")),
            Just(("\"boolean\"", "false")),
        ]
        .prop_map(|(t, d)| (t.to_string(), d.to_string()));
        let symbols = proptest::sample::subsequence(vec!["A", "B", "C", "D"], 1..=4);
        let enumeration = (symbols, any::<bool>()).prop_map(|(s, with_default)| {
            let list = s
                .iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(",");
            let default = if with_default {
                format!(r#","default":"{}""#, s[0])
            } else {
                String::new()
            };
            (
                format!(r#"{{"type":"enum","name":"E","symbols":[{list}]{default}}}"#),
                format!("\"{}\"", s[0]),
            )
        });
        let leaf = prop_oneof![3 => prim, 1 => enumeration];
        leaf.prop_flat_map(|(t, d)| {
            prop_oneof![
                3 => Just((t.clone(), d.clone())),
                1 => Just((format!(r#"["null",{t}]"#), "null".to_string())),
                1 => Just((format!(r#"{{"type":"array","items":{t}}}"#), "[]".to_string())),
                1 => Just((format!(r#"{{"type":"map","values":{t}}}"#), "{}".to_string())),
            ]
        })
    }

    pub(super) fn record() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            (
                proptest::sample::select(vec!["a", "b", "c"]),
                field_type(),
                any::<bool>(),
            ),
            0..4,
        )
        .prop_map(|fields| {
            let mut seen = std::collections::HashSet::new();
            let mut enum_defined = false;
            let list: Vec<String> = fields
                .into_iter()
                .filter(|(n, _, _)| seen.insert(*n))
                .filter_map(|(n, (t, d), with_default)| {
                    // One enum definition per record: the name E may be defined only once.
                    if t.contains("\"enum\"") {
                        if enum_defined {
                            return None;
                        }
                        enum_defined = true;
                    }
                    let default = if with_default {
                        format!(r#","default":{d}"#)
                    } else {
                        String::new()
                    };
                    Some(format!(r#"{{"name":"{n}","type":{t}{default}}}"#))
                })
                .collect();
            format!(
                r#"{{"type":"record","name":"R","fields":[{}]}}"#,
                list.join(",")
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// On schemas without aliases, logical types or references, both checkers agree.
        #[test]
        fn same_verdict_as_apache_avro(w in record(), r in record()) {
            let (w, r) = (AvroSchema::parse(&w).unwrap(), AvroSchema::parse(&r).unwrap());
            let ours = can_read(&w, &r);
            prop_assert_eq!(ours.is_empty(), apache_full(&w, &r), "{:?}\n{}\n{}", ours, w.json(), r.json());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(name).tempdir().unwrap()
}

#[test]
fn invalid_json_in_a_file_reports_line_and_column() {
    let dir = temp_dir("json");
    let path = dir.path().join("bad.avsc");
    std::fs::write(&path, "{\n  \"type\": \"record\",\n  \"name\" \"X\"\n}\n").unwrap();
    let err = AvroSchema::from_file(&path).unwrap_err();
    let Error::SchemaFile { line, column, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*line, *column), (Some(3), Some(10)));
    assert!(
        err.to_string().contains("bad.avsc:3:10: invalid JSON"),
        "{err}"
    );
    assert_eq!(err.kind(), crate::ErrorKind::Schema);
}

#[test]
fn invalid_avro_in_a_file_names_the_file() {
    let dir = temp_dir("avro");
    let path = dir.path().join("typo.avsc");
    std::fs::write(
        &path,
        r#"{"type":"record","name":"X","fields":[{"name":"a","type":"strin"}]}"#,
    )
    .unwrap();
    let err = AvroSchema::from_file(&path).unwrap_err();
    assert!(
        matches!(err, Error::SchemaFile { line: None, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("typo.avsc: not a valid Avro schema"),
        "{text}"
    );
    assert!(text.contains("strin"), "{text}");
}

#[test]
fn a_missing_file_is_a_schema_file_error() {
    let err = AvroSchema::from_file("/nonexistent/x.avsc").unwrap_err();
    assert!(err.to_string().contains("cannot read the file"), "{err}");
}

const ADDRESS: &str = r#"{"type":"record","name":"Address","namespace":"shop",
    "fields":[{"name":"city","type":"string"}]}"#;
const CUSTOMER: &str = r#"{"type":"record","name":"Customer","namespace":"shop",
    "fields":[{"name":"name","type":"string"},{"name":"home","type":"shop.Address"},
              {"name":"work","type":["null","Address"],"default":null}]}"#;

#[test]
fn a_directory_of_files_resolves_references_across_files() {
    let dir = temp_dir("set");
    std::fs::write(dir.path().join("b_address.avsc"), ADDRESS).unwrap();
    std::fs::write(dir.path().join("a_customer.avsc"), CUSTOMER).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a schema").unwrap();
    let set = AvroSchema::from_dir(dir.path()).unwrap();
    let names: Vec<String> = set.iter().filter_map(AvroSchema::full_name).collect();
    assert_eq!(names, ["shop.Customer", "shop.Address"]);
    let canonical = set[0].canonical_form().unwrap();
    assert!(
        canonical.contains(r#""name":"shop.Address","type":"record""#),
        "{canonical}"
    );
    // A change in Address shows under Customer's fields.
    let new_address = ADDRESS.replace(r#""type":"string""#, r#""type":"int""#);
    std::fs::write(dir.path().join("b_address.avsc"), new_address).unwrap();
    let set2 = AvroSchema::from_dir(dir.path()).unwrap();
    let r = check_compatibility(&set2[0], &set[..1], L::Backward);
    let paths: Vec<&str> = r
        .incompatibilities
        .iter()
        .map(|i| i.path.as_str())
        .collect();
    assert_eq!(paths, ["Customer.home.city", "Customer.work.city"], "{r}");
    assert!(r.checked[0].ends_with("a_customer.avsc"), "{r}");
}

#[test]
fn files_may_use_each_other_in_a_cycle() {
    let dir = temp_dir("cycle");
    std::fs::write(
        dir.path().join("a.avsc"),
        r#"{"type":"record","name":"A","namespace":"c","fields":[{"name":"b","type":["null","c.B"],"default":null}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.avsc"),
        r#"{"type":"record","name":"B","namespace":"c","fields":[{"name":"a","type":["null","c.A"],"default":null}]}"#,
    )
    .unwrap();
    let set = AvroSchema::from_dir(dir.path()).unwrap();
    let canonical = set[0].canonical_form().unwrap();
    assert!(
        canonical.contains(r#""name":"c.B","type":"record""#),
        "{canonical}"
    );
    assert!(check_compatibility(&set[0], &set[..1], L::FullTransitive).is_compatible());
}

#[test]
fn self_contained_files_may_repeat_names() {
    // Exported model schemas each carry their nested types, and two versions of one record may
    // sit side by side.
    let dir = temp_dir("repeat");
    let with_address = |name: &str| {
        format!(
            r#"{{"type":"record","name":"{name}","namespace":"shop","fields":[{{"name":"home","type":{ADDRESS}}}]}}"#
        )
    };
    std::fs::write(dir.path().join("customers.avsc"), with_address("Customer")).unwrap();
    std::fs::write(dir.path().join("shops.avsc"), with_address("Shop")).unwrap();
    std::fs::write(dir.path().join("shops-v2.avsc"), with_address("Shop")).unwrap();
    let set = AvroSchema::from_dir(dir.path()).unwrap();
    assert_eq!(set.len(), 3);
    assert!(set[1].canonical_form().unwrap().contains("shop.Address"));
}

#[test]
fn a_non_record_file_may_use_the_others_types() {
    let dir = temp_dir("union");
    std::fs::write(dir.path().join("address.avsc"), ADDRESS).unwrap();
    std::fs::write(dir.path().join("maybe.avsc"), r#"["null","shop.Address"]"#).unwrap();
    let set = AvroSchema::from_dir(dir.path()).unwrap();
    assert_eq!(set.len(), 2);
    assert!(set[1].canonical_form().unwrap().contains("shop.Address"));
}

#[test]
fn an_undefined_reference_names_the_file() {
    let dir = temp_dir("missing");
    let path = dir.path().join("customer.avsc");
    std::fs::write(&path, CUSTOMER).unwrap();
    let err = AvroSchema::from_files([&path]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("customer.avsc"), "{text}");
    assert!(text.contains("Address"), "{text}");
}

#[test]
fn a_broken_file_in_a_set_is_the_one_blamed() {
    let dir = temp_dir("blame");
    std::fs::write(dir.path().join("customer.avsc"), CUSTOMER).unwrap();
    std::fs::write(
        dir.path().join("address.avsc"),
        ADDRESS.replace(r#""type":"string""#, r#""type":"strng""#),
    )
    .unwrap();
    let err = AvroSchema::from_dir(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("address.avsc: not a valid Avro schema"),
        "{text}"
    );
}

#[test]
fn invalid_json_text_reports_line_and_column() {
    let err = AvroSchema::parse("{\"type\":\n\"record\",,}").unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid JSON at line 2, column 10"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn file(fields: &str) -> AvroSchema {
    rec(fields).with_origin(Origin::File("order.avsc".into()))
}

fn model(fields: &str) -> AvroSchema {
    rec(fields).with_origin(Origin::Model("app::Order"))
}

/// The messages of a report's errors.
fn errors(r: &ValidationReport) -> Vec<String> {
    r.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn identical_schemas_validate_without_findings() {
    let f = r#"{"name":"id","type":"string","doc":"x"},{"name":"n","type":["null","long"],"default":null}"#;
    let r = validate(&model(f), &file(f));
    assert!(r.is_valid() && r.warnings.is_empty(), "{r}");
}

#[test]
fn union_branch_order_and_content_are_errors() {
    let r = validate(
        &model(r#"{"name":"n","type":["string","null"],"default":""}"#),
        &file(r#"{"name":"n","type":["null","string"],"default":null}"#),
    );
    assert!(
        errors(&r)[0].starts_with("Order.n: union branches are in another order"),
        "{r}"
    );
    let r = validate(
        &model(r#"{"name":"n","type":["null","int"],"default":null}"#),
        &file(r#"{"name":"n","type":["null","long"],"default":null}"#),
    );
    assert_eq!(
        errors(&r),
        ["Order.n: union differs: the model has union [null, int], order.avsc has union [null, long]"]
    );
}

#[test]
fn a_doc_difference_is_a_warning() {
    let r = validate(
        &model(r#"{"name":"id","type":"string"}"#),
        &file(r#"{"name":"id","type":"string","doc":"The id"}"#),
    );
    assert!(r.is_valid());
    assert_eq!(
        r.warnings[0].to_string(),
        r#"Order.id: doc differs: the model has none, order.avsc has "The id""#
    );
}

#[test]
fn an_alias_difference_is_a_warning() {
    let r = validate(
        &model(r#"{"name":"id","type":"string","aliases":["key"]}"#),
        &file(A),
    );
    assert!(r.is_valid());
    assert!(
        r.warnings[0]
            .message
            .contains("aliases differ: the model has [key]"),
        "{r}"
    );
}

#[test]
fn nullability_differences_are_errors() {
    let r = validate(
        &model(r#"{"name":"id","type":["null","string"],"default":null}"#),
        &file(A),
    );
    assert_eq!(
        errors(&r)[0],
        "Order.id: nullable in the model (union [null, string]) but not in order.avsc (string)"
    );
    let r = validate(
        &model(A),
        &file(r#"{"name":"id","type":["null","string"],"default":null}"#),
    );
    assert!(
        errors(&r)[0].contains(
            "nullable in order.avsc (union [null, string]) but not in the model (string)"
        ),
        "{r}"
    );
}

#[test]
fn type_differences_are_errors() {
    let r = validate(
        &model(r#"{"name":"n","type":"int"}"#),
        &file(r#"{"name":"n","type":"long"}"#),
    );
    assert_eq!(
        errors(&r),
        ["Order.n: type differs: the model has int, order.avsc has long"]
    );
}

#[test]
fn default_differences_are_errors() {
    let r = validate(
        &model(r#"{"name":"c","type":"string","default":"EUR"}"#),
        &file(r#"{"name":"c","type":"string","default":"USD"}"#),
    );
    assert_eq!(
        errors(&r),
        [r#"Order.c: default differs: the model has "EUR", order.avsc has "USD""#]
    );
    let r = validate(
        &model(r#"{"name":"c","type":"double"}"#),
        &file(r#"{"name":"c","type":"double","default":0}"#),
    );
    assert!(
        errors(&r)[0].contains("the model has none, order.avsc has 0"),
        "{r}"
    );
    // 0 and 0.0 are the same default.
    let r = validate(
        &model(r#"{"name":"c","type":"double","default":0.0}"#),
        &file(r#"{"name":"c","type":"double","default":0}"#),
    );
    assert!(r.is_valid(), "{r}");
}

#[test]
fn field_set_and_order_differences_are_errors() {
    let r = validate(
        &model(r#"{"name":"a","type":"int"},{"name":"extra","type":"int"}"#),
        &file(r#"{"name":"a","type":"int"},{"name":"gone","type":"int"}"#),
    );
    assert_eq!(
        errors(&r),
        [
            "Order.gone: field is in order.avsc but not in the model",
            "Order.extra: field is in the model but not in order.avsc"
        ]
    );
    let r = validate(
        &model(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#),
        &file(r#"{"name":"b","type":"int"},{"name":"a","type":"int"}"#),
    );
    assert!(errors(&r)[0].contains("fields are in another order"), "{r}");
}

#[test]
fn enum_symbol_and_default_differences_are_errors() {
    let e = |symbols: &str, default: &str| {
        format!(
            r#"{{"name":"s","type":{{"type":"enum","name":"S","symbols":[{symbols}]{default}}}}}"#
        )
    };
    let r = validate(&model(&e(r#""A","B""#, "")), &file(&e(r#""A","C""#, "")));
    assert_eq!(
        errors(&r),
        [
            "Order.s: enum symbol(s) `C` are in order.avsc but not in the model",
            "Order.s: enum symbol(s) `B` are in the model but not in order.avsc"
        ]
    );
    let r = validate(&model(&e(r#""B","A""#, "")), &file(&e(r#""A","B""#, "")));
    assert!(
        errors(&r)[0].contains("enum symbols are in another order"),
        "{r}"
    );
    let r = validate(
        &model(&e(r#""A","B""#, r#","default":"A""#)),
        &file(&e(r#""A","B""#, "")),
    );
    assert!(
        errors(&r)[0].contains("enum default differs: the model has A, order.avsc has none"),
        "{r}"
    );
}

#[test]
fn name_and_namespace_differences_are_errors() {
    let other = AvroSchema::parse(
        r#"{"type":"record","name":"Order","namespace":"billing","fields":[{"name":"id","type":"string"}]}"#,
    )
    .unwrap();
    let r = validate(&model(A), &other);
    assert!(
        errors(&r)[0].contains(
            "record name differs: the model has `shop.Order`, the schema text has `billing.Order`"
        ),
        "{r}"
    );
}

#[test]
fn logical_type_and_fixed_differences_are_errors() {
    let r = validate(
        &model(r#"{"name":"t","type":{"type":"long","logicalType":"timestamp-micros"}}"#),
        &file(r#"{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}"#),
    );
    assert_eq!(errors(&r), ["Order.t: logical type differs: the model has timestamp-micros, order.avsc has timestamp-millis"]);
    let r = validate(
        &model(r#"{"name":"t","type":"long"}"#),
        &file(r#"{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}"#),
    );
    assert!(
        errors(&r)[0].contains("the model has none, order.avsc has timestamp-millis"),
        "{r}"
    );
    let r = validate(
        &model(r#"{"name":"h","type":{"type":"fixed","name":"H","size":8}}"#),
        &file(r#"{"name":"h","type":{"type":"fixed","name":"H","size":16}}"#),
    );
    assert!(
        errors(&r)[0].contains("fixed size differs: the model has 8 bytes, order.avsc has 16"),
        "{r}"
    );
}

#[test]
fn nested_paths_go_through_arrays_maps_and_records() {
    let items = |t: &str| {
        format!(
            r#"{{"name":"items","type":{{"type":"array","items":{{"type":"record","name":"Item","fields":[{{"name":"sku","type":{t}}}]}}}}}},
                   {{"name":"meta","type":{{"type":"map","values":{t}}}}}"#
        )
    };
    let r = validate(&model(&items(r#""string""#)), &file(&items(r#""bytes""#)));
    let paths: Vec<&str> = r.errors.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["Order.items[].sku", "Order.meta{}"], "{r}");
}

#[test]
fn a_derived_model_validates_against_its_file() {
    /// An order.
    #[derive(crate::Avro)]
    #[flowodm(namespace = "shop")]
    #[allow(dead_code)]
    struct Order {
        id: String,
        note: Option<String>,
    }
    let f = AvroSchema::parse(
        r#"{"type":"record","name":"Order","namespace":"shop","doc":"An order.","fields":[
            {"name":"id","type":"string"},{"name":"note","type":["null","string"],"default":null}]}"#,
    )
    .unwrap();
    let r = validate_type::<Order>(&f).unwrap();
    assert!(r.is_valid() && r.warnings.is_empty(), "{r}");
    assert!(r.model.starts_with("model "), "{}", r.model);
}

#[test]
fn compare_schemas_lists_every_error() {
    let a = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#;
    let b = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"string"}]}"#;
    let err = crate::avro::compare_schemas(a, b).unwrap_err();
    assert!(
        err.contains("R.a: type differs") && err.contains("R.b: type differs"),
        "{err}"
    );
}

use crate::Error;
