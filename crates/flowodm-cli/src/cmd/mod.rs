//! One module per command group.

pub mod consume;
pub mod generate;
pub mod groups;
pub mod produce;
pub mod registry;
pub mod schema;
pub mod topics;

use clap::CommandFactory;

use crate::{Cli, Outcome};

/// `flowodm completions <shell>`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<Outcome> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "flowodm", &mut std::io::stdout());
    Ok(Outcome::Ok)
}

/// Schemas from the registry, ready to encode and decode.
pub mod schemas {
    use flowodm::registry::{Schema, SchemaRegistryClient};

    use crate::avro_json::AvroJson;

    /// The codec of a registry schema, with the schemas it references (transitively).
    pub async fn codec(
        registry: &SchemaRegistryClient,
        schema: &Schema,
    ) -> anyhow::Result<AvroJson> {
        let texts = registry.referenced_schemas(&schema.references).await?;
        AvroJson::parse(&schema.text, &texts)
            .map_err(|e| anyhow::anyhow!("not an Avro schema this tool can read: {e}"))
    }
}
