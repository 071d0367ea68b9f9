//! Code generated from the corpus by `flowodm::codegen`, one module per case (written by
//! `FLOWODM_UPDATE_CORPUS=1 cargo test -p flowodm-codegen-corpus --test corpus`).

pub mod aliases;
pub mod arrays_maps;
pub mod camel_fields;
pub mod connect_props;
pub mod cross_file;
pub mod cross_file_any_order;
pub mod decimals;
pub mod deep_nesting;
pub mod defaults;
pub mod derive_locals;
pub mod docs;
pub mod empty_record;
pub mod enum_default;
pub mod enum_root_default;
pub mod enum_symbols;
pub mod fixed;
pub mod keyed_model;
pub mod keywords;
pub mod logical_micros;
pub mod logical_millis;
pub mod long_names;
pub mod mixed_names;
pub mod mutual_recursion;
pub mod name_collision;
pub mod namespaces;
pub mod no_namespace;
pub mod nullable_no_default;
pub mod optional_fields;
pub mod order_event;
pub mod primitives;
pub mod record_names;
pub mod recursive;
pub mod recursive_union;
pub mod root_union;
pub mod scale_absent;
pub mod union_logical;
pub mod union_primitives;
pub mod union_records;
pub mod variant_names;

/// One test per case: the schema derived from the generated main type is the input schema.
#[cfg(test)]
mod tests {
    fn check<T: flowodm::avro::Avro + 'static>(module: &str) {
        let derived = flowodm::avro::schema_of::<T>().unwrap_or_else(|e| panic!("{module}: {e}"));
        if let Err(e) = crate::check::check(crate::case_of(module), derived.json()) {
            panic!("{module}: {e}");
        }
    }

    #[test]
    fn order_event() {
        check::<super::order_event::OrderEvent>("order_event");
    }

    #[test]
    fn primitives() {
        check::<super::primitives::Primitives>("primitives");
    }

    #[test]
    fn logical_millis() {
        check::<super::logical_millis::LogicalMillis>("logical_millis");
    }

    #[test]
    fn logical_micros() {
        check::<super::logical_micros::LogicalMicros>("logical_micros");
    }

    #[test]
    fn decimals() {
        check::<super::decimals::Decimals>("decimals");
    }

    #[test]
    fn scale_absent() {
        check::<super::scale_absent::Amounts>("scale_absent");
    }

    #[test]
    fn enum_default() {
        check::<super::enum_default::Ticket>("enum_default");
    }

    #[test]
    fn enum_symbols() {
        check::<super::enum_symbols::Shape>("enum_symbols");
    }

    #[test]
    fn enum_root_default() {
        check::<super::enum_root_default::Weekday>("enum_root_default");
    }

    #[test]
    fn camel_fields() {
        check::<super::camel_fields::CustomerProfile>("camel_fields");
    }

    #[test]
    fn mixed_names() {
        check::<super::mixed_names::MixedNames>("mixed_names");
    }

    #[test]
    fn keywords() {
        check::<super::keywords::Keywords>("keywords");
    }

    #[test]
    fn record_names() {
        check::<super::record_names::OrderLine>("record_names");
    }

    #[test]
    fn aliases() {
        check::<super::aliases::Renamed>("aliases");
    }

    #[test]
    fn docs() {
        check::<super::docs::Documented>("docs");
    }

    #[test]
    fn defaults() {
        check::<super::defaults::Defaults>("defaults");
    }

    #[test]
    fn optional_fields() {
        check::<super::optional_fields::OptionalFields>("optional_fields");
    }

    #[test]
    fn nullable_no_default() {
        check::<super::nullable_no_default::Nullable>("nullable_no_default");
    }

    #[test]
    fn union_records() {
        check::<super::union_records::Payment>("union_records");
    }

    #[test]
    fn union_primitives() {
        check::<super::union_primitives::Cell>("union_primitives");
    }

    #[test]
    fn union_logical() {
        check::<super::union_logical::Observation>("union_logical");
    }

    #[test]
    fn root_union() {
        check::<super::root_union::OrderPlacedOrOrderCancelled>("root_union");
    }

    #[test]
    fn arrays_maps() {
        check::<super::arrays_maps::Collections>("arrays_maps");
    }

    #[test]
    fn fixed() {
        check::<super::fixed::Hashes>("fixed");
    }

    #[test]
    fn recursive() {
        check::<super::recursive::Tree>("recursive");
    }

    #[test]
    fn mutual_recursion() {
        check::<super::mutual_recursion::Person>("mutual_recursion");
    }

    #[test]
    fn recursive_union() {
        check::<super::recursive_union::Expr>("recursive_union");
    }

    #[test]
    fn cross_file() {
        check::<super::cross_file::Invoice>("cross_file");
    }

    #[test]
    fn cross_file_any_order() {
        check::<super::cross_file_any_order::Shipment>("cross_file_any_order");
    }

    #[test]
    fn namespaces() {
        check::<super::namespaces::Outer>("namespaces");
    }

    #[test]
    fn no_namespace() {
        check::<super::no_namespace::Plain>("no_namespace");
    }

    #[test]
    fn name_collision() {
        check::<super::name_collision::Collisions>("name_collision");
    }

    #[test]
    fn empty_record() {
        check::<super::empty_record::Heartbeat>("empty_record");
    }

    #[test]
    fn keyed_model() {
        check::<super::keyed_model::UserSignedUp>("keyed_model");
    }

    #[test]
    fn deep_nesting() {
        check::<super::deep_nesting::Deep>("deep_nesting");
    }

    #[test]
    fn long_names() {
        check::<super::long_names::AVeryLongRecordNameThatKeepsGoingForAWhile>("long_names");
    }

    #[test]
    fn connect_props() {
        check::<super::connect_props::ConnectRow>("connect_props");
    }

    #[test]
    fn variant_names() {
        check::<super::variant_names::OrderTracking>("variant_names");
    }

    #[test]
    fn derive_locals() {
        check::<super::derive_locals::Locals>("derive_locals");
    }
}
