//! produce JSON lines, consume them back: the same JSON; and what goes wrong on the way.

use std::time::Duration;

use flowodm::rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use flowodm::rdkafka::ClientConfig;
use predicates::prelude::*;
use serde_json::{json, Value as Json};

use crate::common::*;

/// Every construct the round trip must keep: a nullable union, an enum, a nested record, an
/// array, a map, a logical timestamp, and a few more.
const ORDER: &str = r#"{
  "type": "record", "name": "Order", "namespace": "dev.flowodm.cli.rt",
  "fields": [
    {"name": "order_id", "type": "string"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["PENDING", "PAID", "SHIPPED"]}},
    {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
        {"name": "id", "type": "string"},
        {"name": "address", "type": ["null", {"type": "record", "name": "Address", "fields": [
            {"name": "city", "type": "string"},
            {"name": "zip", "type": ["null", "int"], "default": null}]}], "default": null}]}},
    {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
        {"name": "sku", "type": "string"},
        {"name": "quantity", "type": "int"},
        {"name": "price", "type": "double"}]}}},
    {"name": "metadata", "type": {"type": "map", "values": "string"}},
    {"name": "total", "type": ["null", "double"], "default": null},
    {"name": "paid", "type": "boolean"},
    {"name": "raw", "type": "bytes"},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "ref", "type": ["null", {"type": "string", "logicalType": "uuid"}], "default": null}
  ]}"#;

fn orders() -> Vec<Json> {
    (0..30)
        .map(|i| {
            json!({
                "order_id": format!("ORD-{i:05}"),
                "note": if i % 3 == 0 { Json::Null } else { json!(format!("note {i} – ünïcödé")) },
                "status": (["PENDING", "PAID", "SHIPPED"][i % 3]),
                "created_at": 1_763_800_000_000i64 + i as i64,
                "customer": {
                    "id": format!("CUST-{:05}", i % 7),
                    "address": if i % 2 == 0 { Json::Null } else {
                        json!({"city": "Lyon", "zip": if i % 4 == 1 { json!(69001) } else { Json::Null }})
                    },
                },
                "items": (0..(i % 4)).map(|n| json!({"sku": format!("ITEM-{n:03}"), "quantity": n + 1, "price": 2.5 * n as f64 + 0.1})).collect::<Vec<_>>(),
                "metadata": if i % 5 == 0 { json!({}) } else { json!({"channel": "web", "lang": "fr"}) },
                "total": if i % 2 == 0 { json!(12.75 + i as f64) } else { Json::Null },
                "paid": i % 2 == 0,
                "raw": "\u{0}\u{1}\u{ff}",
                "day": 20_000 + i,
                "ref": if i % 2 == 0 { json!("0e4c7f0a-7c3a-4b4e-9d7e-1f0f4f7b9a11") } else { Json::Null },
            })
        })
        .collect()
}

fn lines(values: &[Json]) -> String {
    values.iter().map(|v| v.to_string() + "\n").collect()
}

fn parse_lines(text: &str) -> Vec<Json> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn by_order_id(mut values: Vec<Json>) -> Vec<Json> {
    values.sort_by_key(|v| v["order_id"].as_str().unwrap_or_default().to_string());
    values
}

#[test]
fn produce_then_consume_gives_the_same_json() {
    let topic = topic("cli-rt", 3);
    let id = register(&format!("{topic}-value"), ORDER);
    let sent = orders();
    flowodm()
        .args(["produce", "--topic", &topic, "--key-field", "order_id"])
        .write_stdin(lines(&sent))
        .assert()
        .success()
        .stdout("")
        .stderr(format!(
            "produced 30 messages to {topic} with schema id {id} ({topic}-value v1)\n"
        ));

    let out = stdout_of(flowodm().args(["consume", "--topic", &topic, "--from-beginning"]));
    let got = parse_lines(&out);
    assert_eq!(got.len(), 30);
    assert_eq!(by_order_id(got), sent);

    // Each line is the record in the schema's field order.
    assert!(
        out.lines().all(|l| l.starts_with("{\"order_id\":\"ORD-")),
        "{out}"
    );

    // With metadata: where each message is, its key and schema id.
    let out = stdout_of(flowodm().args([
        "consume",
        "--topic",
        &topic,
        "--from-beginning",
        "--metadata",
    ]));
    let got = parse_lines(&out);
    assert_eq!(got.len(), 30);
    for m in &got {
        assert_eq!(m["topic"], topic.as_str());
        assert_eq!(m["key"], m["value"]["order_id"]);
        assert_eq!(m["schema_id"], id);
        assert!(m["partition"].as_i64().unwrap() < 3);
        assert!(m["offset"].as_i64().unwrap() >= 0);
        assert!(m["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    }
    let values: Vec<Json> = got.iter().map(|m| m["value"].clone()).collect();
    assert_eq!(by_order_id(values), sent);
    // Messages with the same key share a partition.
    let mut seen = std::collections::HashMap::new();
    for m in &got {
        let p = seen
            .entry(m["key"].to_string())
            .or_insert(m["partition"].clone());
        assert_eq!(*p, m["partition"]);
    }

    // --max stops early.
    let out = stdout_of(flowodm().args([
        "consume",
        "--topic",
        &topic,
        "--from-beginning",
        "--max",
        "4",
    ]));
    assert_eq!(out.lines().count(), 4);
}

#[test]
fn consume_stops_at_the_end_offsets_seen_at_start_and_follow_waits() {
    let topic = topic("cli-end", 1);
    register(
        &format!("{topic}-value"),
        r#"{"type":"record","name":"N","fields":[{"name":"n","type":"long"}]}"#,
    );
    // Nothing yet: stops at once, prints nothing.
    flowodm()
        .args(["consume", "--topic", &topic, "--from-beginning"])
        .timeout(Duration::from_secs(30))
        .assert()
        .success()
        .stdout("");
    flowodm()
        .args(["produce", "--topic", &topic, "--key", "same"])
        .write_stdin("{\"n\":1}\n\n{\"n\":2}\n")
        .assert()
        .success();
    // Without --from-beginning and without a group, reading starts at the end.
    flowodm()
        .args(["consume", "--topic", &topic])
        .timeout(Duration::from_secs(30))
        .assert()
        .success()
        .stdout("");

    // --follow keeps reading what comes after the start.
    let mut follower = std::process::Command::new(binary())
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
        .env("SCHEMA_REGISTRY_URL", registry_url())
        .args([
            "consume",
            "--topic",
            &topic,
            "--follow",
            "--max",
            "3",
            "--from-beginning",
            "--metadata",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    flowodm()
        .args(["produce", "--topic", &topic, "--key", "same"])
        .write_stdin("{\"n\":3}\n")
        .assert()
        .success();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = follower.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "--follow --max 3 did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut follower.stdout.take().unwrap(), &mut out).unwrap();
    let got = parse_lines(&out);
    let ns: Vec<i64> = got
        .iter()
        .map(|m| m["value"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, [1, 2, 3]);
    assert!(got.iter().all(|m| m["key"] == "same"));
}

#[test]
fn undecodable_messages_are_reported_and_counted() {
    let topic = topic("cli-bad", 1);
    register(
        &format!("{topic}-value"),
        r#"{"type":"record","name":"N","fields":[{"name":"n","type":"long"}]}"#,
    );
    flowodm()
        .args(["produce", "--topic", &topic])
        .write_stdin("{\"n\":1}\n")
        .assert()
        .success();
    // Two messages no Avro consumer can read, then a good one.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers())
        .create()
        .unwrap();
    for payload in [&b"plain text"[..], &[0, 0x7f, 0xff, 0xff, 0xfe, 2][..]] {
        producer
            .send(BaseRecord::<(), [u8]>::to(&topic).payload(payload))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    flowodm()
        .args(["produce", "--topic", &topic])
        .write_stdin("{\"n\":4}\n")
        .assert()
        .success();

    let assert = flowodm()
        .args(["consume", "--topic", &topic, "--from-beginning"])
        .assert()
        .code(1)
        .stdout("{\"n\":1}\n{\"n\":4}\n")
        .stderr(predicate::str::contains(
            "error: partition 0 offset 1: not a Confluent wire-format payload",
        ))
        .stderr(predicate::str::contains(
            "error: partition 0 offset 2: schema id 2147483646",
        ))
        .stderr(predicate::str::contains(
            "error: 2 of 4 message(s) could not be decoded",
        ));
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 3, "{stderr}");

    // An unreachable registry is not a per-message failure: the run stops, exit status 2.
    flowodm()
        .args(["consume", "--topic", &topic, "--from-beginning"])
        .args(["--registry-url", "http://127.0.0.1:9"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("error: schema id "))
        .stderr(predicate::str::contains("hint: check --registry-url"));
}

#[test]
fn lines_that_do_not_fit_are_reported_and_skipped() {
    let topic = topic("cli-lines", 1);
    register(&format!("{topic}-value"), ORDER);
    let mut good = orders()[1].clone();
    let mut input = lines(&[good.clone()]);
    input.push_str("not json\n");
    good["status"] = json!("LOST");
    input.push_str(&(good.to_string() + "\n"));
    good["status"] = json!("PAID");
    good["customer"]["address"] = json!({"town": "Lyon"});
    input.push_str(&(good.to_string() + "\n"));
    flowodm()
        .args(["produce", "--topic", &topic, "--key-field", "missing_field"])
        .write_stdin(lines(&orders()[..1]))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "error: line 1: has no field `missing_field` for the key",
        ));
    flowodm()
        .args(["produce", "--topic", &topic])
        .write_stdin(input)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: line 2: not JSON"))
        .stderr(predicate::str::contains("error: line 3: $.status: `LOST` is not a symbol of enum dev.flowodm.cli.rt.Status; expected one of PENDING, PAID, SHIPPED"))
        .stderr(predicate::str::contains("error: line 4: $.customer.address: "))
        .stderr(predicate::str::contains("produced 1 message to"))
        .stderr(predicate::str::contains("error: 3 line(s) did not fit the schema"));
    let out = stdout_of(flowodm().args(["consume", "--topic", &topic, "--from-beginning"]));
    assert_eq!(parse_lines(&out), vec![orders()[1].clone()]);
}

#[test]
fn produce_needs_a_schema_and_a_topic() {
    let topic = topic("cli-noschema", 1);
    flowodm()
        .args(["produce", "--topic", &topic])
        .write_stdin("{}\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "subject `{topic}-value` has no schema"
        )))
        .stderr(predicate::str::contains(format!(
            "hint: register one with `flowodm upload-schema --subject {topic}-value --avro FILE`"
        )));
    let subject = unique_name("cli-other") + "-value";
    register(
        &subject,
        r#"{"type":"record","name":"N","fields":[{"name":"n","type":"long"}]}"#,
    );
    let missing = unique_name("cli-notopic");
    flowodm()
        .args(["produce", "--topic", &missing, "--subject", &subject])
        .write_stdin("{\"n\":1}\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("topic {missing}")))
        .stderr(predicate::str::contains("hint: list the topics"));
    // --subject picks another subject's schema.
    flowodm()
        .args(["produce", "--topic", &topic, "--subject", &subject])
        .write_stdin("{\"n\":7}\n")
        .assert()
        .success();
    flowodm()
        .args(["consume", "--topic", &topic, "--from-beginning"])
        .assert()
        .success()
        .stdout("{\"n\":7}\n");
    flowodm()
        .args(["consume", "--topic", &missing])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hint: list the topics"));
}

#[test]
fn ctrl_c_stops_a_follower_and_commits_what_it_printed() {
    use std::io::BufRead;

    let topic = topic("cli-sigint", 2);
    let group = unique_name("cli-sigint");
    register(
        &format!("{topic}-value"),
        r#"{"type":"record","name":"N","fields":[{"name":"n","type":"long"}]}"#,
    );
    flowodm()
        .args(["produce", "--topic", &topic, "--key-field", "n"])
        .write_stdin("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n")
        .assert()
        .success();
    let mut follower = std::process::Command::new(binary())
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
        .env("SCHEMA_REGISTRY_URL", registry_url())
        .args([
            "consume",
            "--topic",
            &topic,
            "--group",
            &group,
            "--from-beginning",
            "--follow",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        lines.next().unwrap().unwrap();
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &follower.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = follower.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C is a normal end");
    let text = stdout_of(flowodm().args(["groups", "describe", &group, "--output", "json"]));
    let rows: Vec<Json> = serde_json::from_str(&text).unwrap();
    let sum = |key: &str| rows.iter().map(|r| r[key].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("committed"), 3, "{rows:?}");
    assert_eq!(sum("lag"), 0);
}

#[test]
fn tombstones_print_as_null() {
    let topic = topic("cli-tomb", 1);
    register(
        &format!("{topic}-value"),
        r#"{"type":"record","name":"N","fields":[{"name":"n","type":"long"}]}"#,
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers())
        .create()
        .unwrap();
    producer
        .send(BaseRecord::<str, ()>::to(&topic).key("gone"))
        .map_err(|(e, _)| e)
        .unwrap();
    // A key that is not UTF-8 prints as code points, one per byte.
    producer
        .send(BaseRecord::<[u8], ()>::to(&topic).key(&[0xff, 0x41][..]))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    flowodm()
        .args(["consume", "--topic", &topic, "--from-beginning"])
        .assert()
        .success()
        .stdout("null\nnull\n");
    let out = stdout_of(flowodm().args([
        "consume",
        "--topic",
        &topic,
        "--from-beginning",
        "--metadata",
    ]));
    let got = parse_lines(&out);
    assert_eq!(got[0]["key"], "gone");
    assert_eq!(got[0]["value"], Json::Null);
    assert_eq!(got[0]["schema_id"], Json::Null);
    assert_eq!(got[1]["key"], "\u{ff}A");
}
