//! `topics list|create|describe|delete`.

use anyhow::Context as _;
use flowodm::admin::TopicSpec;
use serde_json::json;

use crate::cli::{CreateTopicArgs, DeleteTopicArgs, DescribeTopicArgs, Format, ListArgs};
use crate::context::Context;
use crate::output::{line, Table};
use crate::Outcome;

/// `topics list`: one name per line, or a JSON array.
pub async fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<Outcome> {
    let topics = ctx.admin()?.list_topics(ctx.timeout()).await?;
    match args.output {
        Format::Table => {
            for t in topics {
                line(&t)?;
            }
        }
        Format::Json => line(&serde_json::to_string_pretty(&topics)?)?,
    }
    Ok(Outcome::Ok)
}

/// `topics create`.
pub async fn create(ctx: &Context, args: CreateTopicArgs) -> anyhow::Result<Outcome> {
    let mut spec = TopicSpec::new(&args.topic, args.partitions).replication(args.replication);
    for (k, v) in args.configs {
        spec = spec.config(k, v);
    }
    ctx.admin()?
        .create_topic(&spec, ctx.timeout())
        .await
        .with_context(|| format!("cannot create topic {}", args.topic))?;
    line(&format!(
        "created topic {} ({} partition{}, replication {})",
        args.topic,
        args.partitions,
        if args.partitions == 1 { "" } else { "s" },
        args.replication
    ))?;
    Ok(Outcome::Ok)
}

/// `topics describe`: per partition its leader, replicas, in-sync replicas and offsets.
pub async fn describe(ctx: &Context, args: DescribeTopicArgs) -> anyhow::Result<Outcome> {
    let admin = ctx.admin()?;
    let info = admin
        .describe_topic(&args.topic, ctx.timeout())
        .await
        .with_context(|| format!("cannot describe topic {}", args.topic))?;
    let offsets = admin.topic_offsets(&args.topic, ctx.timeout()).await?;
    let mut table = Table::new(&[
        "partition",
        "leader",
        "replicas",
        "in_sync",
        "start",
        "end",
        "messages",
    ]);
    for p in &info.partitions {
        let (low, high) = offsets
            .iter()
            .find(|o| o.partition == p.id)
            .map(|o| (o.start, o.end))
            .unwrap_or((0, 0));
        table.row(vec![
            json!(p.id),
            json!(p.leader),
            json!(p.replicas),
            json!(p.in_sync),
            json!(low),
            json!(high),
            json!(high - low),
        ]);
    }
    if args.output == Format::Table {
        line(&format!("topic {}", info.name))?;
    }
    table.print(args.output)?;
    Ok(Outcome::Ok)
}

/// `topics delete`.
pub async fn delete(ctx: &Context, args: DeleteTopicArgs) -> anyhow::Result<Outcome> {
    ctx.admin()?
        .delete_topic(&args.topic, ctx.timeout())
        .await
        .with_context(|| format!("cannot delete topic {}", args.topic))?;
    line(&format!("deleted topic {}", args.topic))?;
    Ok(Outcome::Ok)
}
