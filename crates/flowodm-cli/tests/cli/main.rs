//! The `flowodm` binary against the stack's Kafka and schema registry: every command, its
//! failure paths, a produce → consume round trip, and the examples of docs/cli.md.

mod ci;
mod common;
mod docs;
mod generate;
mod kafka;
mod registry;
mod roundtrip;
mod schema_checks;
mod terminal;
mod usage;
