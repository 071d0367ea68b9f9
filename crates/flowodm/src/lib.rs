//! Typed, schema-first Kafka.
//!
//! flowodm turns a Rust struct into the messages of a Kafka topic: the struct carries its topic,
//! key and registry subject ([`Model`]), values travel in the Confluent wire format
//! ([`wire`]) with their schemas in a Confluent-compatible schema registry ([`registry`]), and
//! connections are configured from the environment or in code ([`config`]).
//!
//! ```
//! use flowodm::Model;
//!
//! #[derive(Model)]
//! #[flowodm(topic = "food-orders", key = "customer_id")]
//! struct Order {
//!     order_id: String,
//!     customer_id: String,
//! }
//!
//! assert_eq!(Order::SETTINGS.subject(), "food-orders-value");
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Lets the derives' `::flowodm::...` paths resolve inside this crate's own tests.
extern crate self as flowodm;

pub mod admin;
pub mod avro;
pub mod client;
pub mod codec;
pub mod codegen;
pub mod config;
pub mod consumer;
mod error;
mod fasthash;
#[cfg(doctest)]
mod guide;
pub mod model;
pub mod producer;
pub mod profiles;
mod reachability;
pub mod registry;
pub mod runner;
pub mod schema;
mod util;
pub mod wire;

pub use client::Client;
pub use config::{KafkaConfig, Secret};
pub use error::{Error, ErrorKind, FramingError, Result};
pub use model::{Model, ModelSettings, SchemaFile};

/// Derives [`Model`] and [`Avro`](avro::Avro); its attributes are documented on the trait.
pub use flowodm_derive::Model;

/// Derives [`Avro`](avro::Avro) for a struct (an Avro record) or an enum of unit variants (an
/// Avro enum); the attributes are those of [`Model`] without the Kafka settings.
pub use flowodm_derive::Avro;

/// Re-exported so users need not depend on rdkafka to reach its types.
pub use rdkafka;

#[doc(hidden)]
pub mod __private {
    pub use crate::avro::binary::{write_int, write_long};
    pub use crate::avro::logical::{decode_adapted, AvroAdapter, DecimalBytes, Micros};
    pub use crate::avro::resolve::{Plan, Resolution, Step};
    pub use crate::avro::support::*;
    pub use crate::avro::{decode_with, unexpected_plan, Avro, Reader, SchemaContext};
    pub use crate::error::Result;
    pub use crate::model::KeyField;
    pub use serde_json::Value as Json;
}

/// The README's examples, compiled and run as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
