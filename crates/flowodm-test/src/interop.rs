//! The interop tier: confluent-kafka for Python (`interop/peer.py`) as a second, independent
//! producer and consumer of the Confluent wire format.
//!
//! The peer runs from the venv that `interop/setup` makes; `FLOWODM_INTEROP_PYTHON` names its
//! python (`dev/test` sets it). Values cross between Rust and Python as JSON lines in the
//! convention that the peer's module docs define; [`json`] writes Rust values in it.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value as Json;

use crate::{bootstrap_servers, plaintext_config, registry_url, unique_name};

/// How long a peer command or a Rust consumer waits at most.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The python of the peer's venv (`FLOWODM_INTEROP_PYTHON`); panics with a hint when unset.
pub fn python() -> String {
    match std::env::var("FLOWODM_INTEROP_PYTHON") {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "FLOWODM_INTEROP_PYTHON is not set. The interop tests run confluent-kafka for Python \
             as a peer: make its venv with `export FLOWODM_INTEROP_PYTHON=$(interop/setup)`, or \
             run the whole suite with `dev/test` (see docs/TESTING.md)"
        ),
    }
}

/// `interop/peer.py` of this repository.
pub fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/peer.py")
}

/// Runs the peer with `args`; panics with its stderr when it fails. Returns its stdout.
///
/// The peer gives up by itself after [`TIMEOUT`]; should it hang anyway (its Kafka or registry
/// client stuck in a call), it is killed a little later. A consuming run (which reads from the
/// beginning and commits nothing) is then tried once more; anything else fails the test.
fn run_peer(args: &[&str]) -> String {
    match run_peer_once(args) {
        Some(out) => out,
        None if args.first() == Some(&"consume") => {
            eprintln!("peer.py {args:?} hung; killed it and trying once more");
            run_peer_once(args).unwrap_or_else(|| {
                panic!(
                    "peer.py {args:?} hung twice (killed after {:?})",
                    TIMEOUT * 2
                )
            })
        }
        None => panic!("peer.py {args:?} hung (killed after {:?})", TIMEOUT * 2),
    }
}

/// One run of the peer; `None` when it had to be killed.
fn run_peer_once(args: &[&str]) -> Option<String> {
    use std::io::Read;
    use std::process::Stdio;
    let python = python();
    let mut child = Command::new(&python)
        .arg(peer_script())
        .args(["--bootstrap-servers", &bootstrap_servers()])
        .args(["--registry-url", &registry_url()])
        .args(["--timeout", &TIMEOUT.as_secs().to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run the peer with {python} (FLOWODM_INTEROP_PYTHON): {e}")
        });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + TIMEOUT * 2;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the peer") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "peer.py {args:?} failed ({status}):\n{stderr}\nstdout:\n{stdout}"
    );
    Some(stdout)
}

/// The peer consumes `count` messages of `topic` with `AvroDeserializer` and returns each value
/// in the JSON convention.
pub fn peer_consume(topic: &str, count: usize) -> Vec<Json> {
    let group = unique_name("interop-peer");
    let stdout = run_peer(&[
        "consume",
        "--topic",
        topic,
        "--count",
        &count.to_string(),
        "--group",
        &group,
    ]);
    let values: Vec<Json> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("peer printed {l:?}: {e}")))
        .collect();
    assert_eq!(values.len(), count, "the peer printed:\n{stdout}");
    values
}

/// The peer registers `schema` under `subject` and produces `records` (JSON convention) to
/// `topic` with `AvroSerializer`.
pub fn peer_produce(topic: &str, subject: &str, schema: &str, records: &[Json]) {
    let mut schema_file = tempfile::NamedTempFile::new().expect("temp file");
    schema_file
        .write_all(schema.as_bytes())
        .expect("write schema");
    let mut records_file = tempfile::NamedTempFile::new().expect("temp file");
    for r in records {
        writeln!(records_file, "{r}").expect("write records");
    }
    records_file.flush().expect("flush records");
    run_peer(&[
        "produce",
        "--topic",
        topic,
        "--subject",
        subject,
        "--schema",
        path(&schema_file),
        "--records",
        path(&records_file),
    ]);
}

fn path(f: &tempfile::NamedTempFile) -> &str {
    f.path().to_str().expect("temp paths are UTF-8")
}

/// Produces each payload to partition 0 of `topic` with a `FutureProducer`, in order.
pub async fn produce_payloads(topic: &str, payloads: &[Vec<u8>]) {
    produce_payloads_to(topic, 0, payloads).await
}

/// Produces each payload to `partition` of `topic` with a `FutureProducer`, in order.
pub async fn produce_payloads_to(topic: &str, partition: i32, payloads: &[Vec<u8>]) {
    let producer: FutureProducer = plaintext_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer for the stack's broker");
    for (i, p) in payloads.iter().enumerate() {
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .payload(p)
                    .partition(partition),
                TIMEOUT,
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("delivering message {i} to {topic}: {e}"));
    }
}

/// Consumes `count` payloads of `topic` from the beginning, in order.
pub fn consume_payloads(topic: &str, count: usize) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = plaintext_config()
        .set("group.id", unique_name("interop-rust"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer for the stack's broker");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "{} of {count} messages from {topic} within {TIMEOUT:?}",
            out.len()
        );
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            Some(Ok(m)) => out.push(m.payload().unwrap_or_default().to_vec()),
        }
    }
    out
}

/// Asserts that two JSON values are equal, naming the first path where they differ (so a
/// record is compared field by field, and every field of `want` must be in `got` and the
/// reverse).
#[track_caller]
pub fn assert_json_eq(got: &Json, want: &Json, path: &str) {
    match (got, want) {
        (Json::Object(g), Json::Object(w)) => {
            let mut gk: Vec<_> = g.keys().collect();
            let mut wk: Vec<_> = w.keys().collect();
            gk.sort();
            wk.sort();
            assert_eq!(gk, wk, "fields of {path}");
            for (k, wv) in w {
                assert_json_eq(&g[k], wv, &format!("{path}.{k}"));
            }
        }
        (Json::Array(g), Json::Array(w)) => {
            assert_eq!(g.len(), w.len(), "length of {path}: got {got}, want {want}");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                assert_json_eq(gv, wv, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// Rust values in the peer's JSON convention (see `interop/peer.py`).
pub mod json {
    use base64::Engine;
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
    use rust_decimal::Decimal;
    use serde_json::{json, Value as Json};

    /// `bytes` and `fixed`: standard padded base64.
    pub fn bytes(b: &[u8]) -> Json {
        Json::from(base64::engine::general_purpose::STANDARD.encode(b))
    }

    /// `float` and `double`: a number; NaN and the infinities as strings.
    pub fn float(v: f64) -> Json {
        if v.is_nan() {
            json!("NaN")
        } else if v.is_infinite() {
            json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            json!(v)
        }
    }

    /// `timestamp-millis` / `timestamp-micros`: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub fn timestamp(t: &DateTime<Utc>) -> Json {
        Json::from(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
    }

    /// `local-timestamp-millis` / `-micros`: `YYYY-MM-DDTHH:MM:SS.ffffff`.
    pub fn local_timestamp(t: &NaiveDateTime) -> Json {
        Json::from(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
    }

    /// `date`: `YYYY-MM-DD`.
    pub fn date(d: &NaiveDate) -> Json {
        Json::from(d.format("%Y-%m-%d").to_string())
    }

    /// `time-millis` / `time-micros`: `HH:MM:SS.ffffff`.
    pub fn time(t: &NaiveTime) -> Json {
        Json::from(t.format("%H:%M:%S%.6f").to_string())
    }

    /// `uuid`: lower-case hyphenated.
    pub fn uuid(u: &uuid::Uuid) -> Json {
        Json::from(u.hyphenated().to_string())
    }

    /// `decimal` with `scale`: a plain decimal string with exactly `scale` fractional digits.
    pub fn decimal(d: &Decimal, scale: u32) -> Json {
        let mut d = *d;
        d.rescale(scale);
        Json::from(d.to_string())
    }

    /// An optional value: `null` or the value.
    pub fn opt<T>(v: &Option<T>, f: impl FnOnce(&T) -> Json) -> Json {
        v.as_ref().map_or(Json::Null, f)
    }

    /// A branch of a union of more than null and one type: `{"BRANCH": value}`.
    pub fn branch(name: &str, value: Json) -> Json {
        Json::Object(serde_json::Map::from_iter([(name.to_string(), value)]))
    }
}
