//! `consume`: a topic's Avro messages, decoded by their schema ids, as JSON lines.
//!
//! The consumer assigns itself every partition of the topic (it does not join the group as a
//! member). With `--group` it starts at the group's committed offsets and commits what it
//! printed; without, it commits nothing. Without `--follow` it stops at the end offsets the
//! partitions had when it started.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufWriter, ErrorKind, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use flowodm::rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use flowodm::rdkafka::error::KafkaError;
use flowodm::rdkafka::message::{BorrowedMessage, Message as _};
use flowodm::rdkafka::{Offset, TopicPartitionList};
use flowodm::registry::SchemaRegistryClient;

use super::schemas;
use crate::avro_json::AvroJson;
use crate::cli::ConsumeArgs;
use crate::context::Context;
use crate::progress::Progress;
use crate::Outcome;

/// How often `--follow --group` commits what it printed.
const COMMIT_EVERY: Duration = Duration::from_secs(5);

/// Prints the messages; decode failures are reported on stderr and make the exit status 1.
pub async fn run(ctx: &Context, args: ConsumeArgs) -> anyhow::Result<Outcome> {
    let registry = ctx.registry()?;
    let kafka = ctx.kafka()?;
    let admin = flowodm::admin::Admin::new(kafka.clone())?;
    let offsets = admin.topic_offsets(&args.topic, ctx.timeout()).await?;
    let ends: BTreeMap<i32, i64> = offsets.iter().map(|p| (p.partition, p.end)).collect();
    let starts: BTreeMap<i32, i64> = offsets.iter().map(|p| (p.partition, p.start)).collect();

    let mut config = kafka.client_config();
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set(
            "auto.offset.reset",
            if args.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        );
    // librdkafka wants a group id even to assign partitions; without --group this one only
    // names the client: nothing is committed under it.
    config.set(
        "group.id",
        args.group.as_deref().unwrap_or("flowodm-cli-no-commit"),
    );
    let consumer: StreamConsumer = config.create()?;

    // Where each partition starts, and which are already at their end.
    let mut committed = HashMap::new();
    if args.group.is_some() {
        let mut tpl = TopicPartitionList::new();
        for p in ends.keys() {
            tpl.add_partition(&args.topic, *p);
        }
        for e in consumer.committed_offsets(tpl, ctx.timeout())?.elements() {
            if let Offset::Offset(o) = e.offset() {
                committed.insert(e.partition(), o);
            }
        }
    }
    let mut assignment = TopicPartitionList::new();
    let mut done = HashSet::new();
    for (&p, &end) in &ends {
        let start = match committed.get(&p) {
            Some(&o) => o,
            None if args.from_beginning => starts[&p],
            None => end,
        };
        assignment.add_partition_offset(&args.topic, p, Offset::Offset(start))?;
        if start >= end {
            done.insert(p);
        }
    }
    consumer.assign(&assignment)?;

    let mut out = BufWriter::new(std::io::stdout());
    let mut decoder = Decoder::new(registry);
    let mut progress = Progress::new("consumed");
    let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    let (mut count, mut failed) = (0u64, 0u64);
    let mut last_commit = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut closed = false;
    loop {
        if !args.follow && done.len() == ends.len() {
            break;
        }
        if args.max.is_some_and(|max| count >= max) {
            break;
        }
        if args.follow && last_commit.elapsed() > COMMIT_EVERY {
            commit(&consumer, &args, &next_offsets, CommitMode::Async)?;
            last_commit = Instant::now();
        }
        let received = tokio::select! {
            m = consumer.recv() => Some(m),
            _ = tokio::time::sleep(Duration::from_millis(200)) => None,
            _ = &mut ctrl_c => break,
        };
        let message = match received {
            None => {
                if out.flush().is_err() {
                    closed = true;
                    break;
                }
                continue;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                done.insert(p);
                continue;
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => m,
        };
        let (p, offset) = (message.partition(), message.offset());
        let end = ends.get(&p).copied().unwrap_or(i64::MAX);
        if !args.follow && offset >= end {
            done.insert(p);
            continue;
        }
        if offset + 1 >= end {
            done.insert(p);
        }
        next_offsets.insert(p, offset + 1);
        count += 1;
        match decoder.line(&message, args.metadata).await {
            Ok(text) => {
                if let Err(e) =
                    writeln!(out, "{text}").and_then(
                        |_| {
                            if args.follow {
                                out.flush()
                            } else {
                                Ok(())
                            }
                        },
                    )
                {
                    if e.kind() == ErrorKind::BrokenPipe {
                        closed = true;
                        break;
                    }
                    return Err(e.into());
                }
            }
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Message(reason)) => {
                failed += 1;
                let _ = out.flush();
                progress.finish();
                eprintln!("error: partition {p} offset {offset}: {reason}");
            }
        }
        progress.update(count, failed);
    }
    if !closed {
        match out.flush() {
            Err(e) if e.kind() != ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
    }
    commit(&consumer, &args, &next_offsets, CommitMode::Sync)?;
    progress.finish();
    if failed > 0 {
        eprintln!("error: {failed} of {count} message(s) could not be decoded");
        return Ok(Outcome::CheckFailed);
    }
    Ok(Outcome::Ok)
}

fn commit(
    consumer: &StreamConsumer,
    args: &ConsumeArgs,
    next_offsets: &BTreeMap<i32, i64>,
    mode: CommitMode,
) -> anyhow::Result<()> {
    if args.group.is_none() || next_offsets.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in next_offsets {
        tpl.add_partition_offset(&args.topic, p, Offset::Offset(o))?;
    }
    consumer.commit(&tpl, mode)?;
    Ok(())
}

/// Why a message was not printed.
enum Failure {
    /// This message cannot be decoded; the next may.
    Message(String),
    /// No message can be: stop.
    Fatal(anyhow::Error),
}

/// Decodes values by schema id, fetching each schema from the registry once.
struct Decoder {
    registry: SchemaRegistryClient,
    codecs: HashMap<u32, Rc<AvroJson>>,
}

impl Decoder {
    fn new(registry: SchemaRegistryClient) -> Self {
        Decoder {
            registry,
            codecs: HashMap::new(),
        }
    }

    /// The message as a JSON line, or why it cannot be decoded.
    async fn line(&mut self, m: &BorrowedMessage<'_>, metadata: bool) -> Result<String, Failure> {
        let (value, schema_id) = match m.payload() {
            None => ("null".to_string(), None),
            Some(payload) => {
                let framed =
                    flowodm::wire::parse(payload).map_err(|e| Failure::Message(e.to_string()))?;
                let codec = self.codec(framed.schema_id).await?;
                let value = codec.decode(framed.datum).map_err(|e| {
                    Failure::Message(format!("schema id {}: {e}", framed.schema_id))
                })?;
                (value, Some(framed.schema_id))
            }
        };
        if !metadata {
            return Ok(value);
        }
        let key = match m.key() {
            None => "null".to_string(),
            Some(k) => match std::str::from_utf8(k) {
                Ok(s) => serde_json::to_string(s).unwrap_or_default(),
                Err(_) => {
                    serde_json::to_string(&k.iter().map(|&b| char::from(b)).collect::<String>())
                        .unwrap_or_default()
                }
            },
        };
        let timestamp = m
            .timestamp()
            .to_millis()
            .map_or("null".to_string(), |t| t.to_string());
        let schema_id = schema_id.map_or("null".to_string(), |id| id.to_string());
        Ok(format!(
            r#"{{"topic":{},"partition":{},"offset":{},"key":{key},"timestamp":{timestamp},"schema_id":{schema_id},"value":{value}}}"#,
            serde_json::to_string(m.topic()).unwrap_or_default(),
            m.partition(),
            m.offset(),
        ))
    }

    async fn codec(&mut self, id: u32) -> Result<Rc<AvroJson>, Failure> {
        if let Some(c) = self.codecs.get(&id) {
            return Ok(c.clone());
        }
        let schema = self.registry.schema(id).await.map_err(|e| {
            // An unreachable registry fails every message alike: stop, as for any runtime
            // error, rather than report each one.
            if matches!(e, flowodm::Error::RegistryTransport { .. }) {
                Failure::Fatal(anyhow::Error::new(e).context(format!("schema id {id}")))
            } else {
                Failure::Message(format!("schema id {id}: {e}"))
            }
        })?;
        let codec = Rc::new(
            schemas::codec(&self.registry, &schema)
                .await
                .map_err(|e| Failure::Message(format!("schema id {id}: {e:#}")))?,
        );
        self.codecs.insert(id, codec.clone());
        Ok(codec)
    }
}
