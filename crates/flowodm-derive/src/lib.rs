//! Derive macros for [flowodm](https://docs.rs/flowodm).
//!
//! Semver exempt: use the macros through the `flowodm` crate, which re-exports them next to the
//! traits they implement and documents their attributes there.

mod attr;
mod avro;
mod ctxt;
mod model;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `flowodm::Model` and `flowodm::avro::Avro`; see the `Model` trait for the attributes.
#[proc_macro_derive(Model, attributes(flowodm))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    model::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `flowodm::avro::Avro` for a struct (a record) or an enum of unit variants (an enum).
#[proc_macro_derive(Avro, attributes(flowodm))]
pub fn derive_avro(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    model::expand_avro(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
