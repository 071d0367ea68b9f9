//! `produce`: JSON lines on stdin → Avro values in the Confluent wire format.

use std::collections::VecDeque;
use std::io::BufRead;
use std::time::Duration;

use anyhow::Context as _;
use flowodm::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use flowodm::rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use flowodm::registry::error_code;
use serde_json::Value as Json;

use super::schemas;
use crate::cli::ProduceArgs;
use crate::context::Context;
use crate::error::Hinted;
use crate::progress::Progress;
use crate::Outcome;

/// Deliveries awaited at most at once before reading more input.
const MAX_IN_FLIGHT: usize = 50_000;

struct Pending {
    line: u64,
    delivery: DeliveryFuture,
}

/// Sends every non-empty stdin line; lines that do not fit the schema are reported and skipped.
pub async fn run(ctx: &Context, args: ProduceArgs) -> anyhow::Result<Outcome> {
    let subject = args
        .subject
        .clone()
        .unwrap_or_else(|| format!("{}-value", args.topic));
    let registry = ctx.registry()?;
    let latest = registry.latest_version(&subject).await.map_err(|e| {
        if e.registry_error_code() == Some(error_code::SUBJECT_NOT_FOUND) {
            Hinted::new(
                format!("subject `{subject}` has no schema: {e}"),
                format!(
                    "register one with `flowodm upload-schema --subject {subject} --avro FILE`, \
                     or name another with --subject"
                ),
            )
            .into()
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let codec = schemas::codec(&registry, &latest.to_schema())
        .await
        .with_context(|| format!("the schema of {subject} v{}", latest.version))?;

    let kafka = ctx.kafka()?;
    // A missing topic is a clear error now rather than a delivery timeout later.
    flowodm::admin::Admin::new(kafka.clone())?
        .describe_topic(&args.topic, ctx.timeout())
        .await
        .with_context(|| format!("topic {}", args.topic))?;
    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;

    let mut progress = Progress::new("produced");
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let (mut sent, mut invalid, mut undelivered) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    let stdin = std::io::stdin();
    for (index, text) in stdin.lock().lines().enumerate() {
        let number = index as u64 + 1;
        let text = text.context("cannot read stdin")?;
        if text.trim().is_empty() {
            continue;
        }
        let prepared = serde_json::from_str::<Json>(&text)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|value| {
                let key = key_of(&args, &value)?;
                buf.clear();
                flowodm::wire::write_header(&mut buf, latest.id);
                codec.encode(&value, &mut buf)?;
                Ok(key)
            });
        let key = match prepared {
            Ok(key) => key,
            Err(reason) => {
                progress.finish();
                eprintln!("error: line {number}: {reason}");
                invalid += 1;
                continue;
            }
        };
        let mut record = FutureRecord::<[u8], [u8]>::to(&args.topic).payload(&buf[..]);
        if let Some(k) = &key {
            record = record.key(k.as_bytes());
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push_back(Pending {
                        line: number,
                        delivery,
                    });
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    match pending.pop_front() {
                        Some(p) => undelivered += settle(p).await,
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => return Err(e).context(format!("line {number}")),
            }
        }
        sent += 1;
        while pending.len() > MAX_IN_FLIGHT {
            if let Some(p) = pending.pop_front() {
                undelivered += settle(p).await;
            }
        }
        progress.update(sent, invalid);
    }
    while let Some(p) = pending.pop_front() {
        undelivered += settle(p).await;
    }
    producer.flush(ctx.timeout())?;
    progress.finish();
    eprintln!(
        "produced {} message{} to {} with schema id {} ({subject} v{})",
        sent - undelivered,
        if sent - undelivered == 1 { "" } else { "s" },
        args.topic,
        latest.id,
        latest.version
    );
    if undelivered > 0 {
        return Err(Hinted::new(
            format!("{undelivered} message(s) were not delivered"),
            "check --bootstrap-servers and the broker's logs; the errors are above",
        )
        .into());
    }
    if invalid > 0 {
        eprintln!("error: {invalid} line(s) did not fit the schema and were not sent");
        return Ok(Outcome::CheckFailed);
    }
    Ok(Outcome::Ok)
}

/// Waits for one delivery; 1 if it failed (and says so on stderr).
async fn settle(p: Pending) -> u64 {
    match p.delivery.await {
        Ok(Ok(_)) => 0,
        Ok(Err((e, _))) => {
            eprintln!("error: line {}: not delivered: {e}", p.line);
            1
        }
        Err(_) => {
            eprintln!(
                "error: line {}: not delivered: the producer went away",
                p.line
            );
            1
        }
    }
}

/// The message key for a line: `--key`, or the `--key-field`'s value (a string as is, other
/// values as JSON text, null as no key).
fn key_of(args: &ProduceArgs, value: &Json) -> Result<Option<String>, String> {
    if let Some(k) = &args.key {
        return Ok(Some(k.clone()));
    }
    let Some(field) = &args.key_field else {
        return Ok(None);
    };
    match value.get(field) {
        None => Err(format!("has no field `{field}` for the key (--key-field)")),
        Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Ok(Some(other.to_string())),
    }
}
