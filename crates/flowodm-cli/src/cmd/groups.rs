//! `groups list|describe`.

use serde_json::json;

use crate::cli::{DescribeGroupArgs, ListArgs};
use crate::context::Context;
use crate::error::Hinted;
use crate::output::Table;
use crate::Outcome;

/// `groups list`: name, state and member count.
pub async fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<Outcome> {
    let groups = ctx.admin()?.list_groups(ctx.timeout()).await?;
    let mut table = Table::new(&["group", "state", "members"]);
    for g in groups {
        table.row(vec![json!(g.name), json!(g.state), json!(g.members)]);
    }
    table.print(args.output)?;
    Ok(Outcome::Ok)
}

/// `groups describe GROUP`: per partition the committed offset, the end offset and the lag.
pub async fn describe(ctx: &Context, args: DescribeGroupArgs) -> anyhow::Result<Outcome> {
    let topics = (!args.topic.is_empty()).then_some(args.topic);
    let lags = ctx
        .admin()?
        .group_lag(&args.group, topics, ctx.timeout())
        .await?;
    if lags.is_empty() {
        return Err(Hinted::new(
            format!("group `{}` has no committed offsets", args.group),
            "list the groups with `flowodm groups list`",
        )
        .into());
    }
    let mut table = Table::new(&["topic", "partition", "committed", "end", "lag"]);
    for l in lags {
        table.row(vec![
            json!(l.topic),
            json!(l.partition),
            json!(l.committed),
            json!(l.end),
            json!(l.lag),
        ]);
    }
    table.print(args.output)?;
    Ok(Outcome::Ok)
}
