//! topics list|create|describe|delete and groups list|describe.

use predicates::prelude::*;
use serde_json::Value as Json;

use crate::common::*;

#[test]
fn topics_create_list_describe_delete() {
    let name = unique_name("cli-topic");
    flowodm()
        .args([
            "topics",
            "create",
            &name,
            "--partitions",
            "3",
            "--replication",
            "1",
        ])
        .args([
            "--config",
            "retention.ms=86400000",
            "--config",
            "cleanup.policy=delete",
        ])
        .assert()
        .success()
        .stdout(format!(
            "created topic {name} (3 partitions, replication 1)\n"
        ));

    let listed = stdout_of(flowodm().args(["topics", "list"]));
    assert!(listed.lines().any(|l| l == name), "{listed}");
    assert!(
        !listed.lines().any(|l| l.starts_with("__")),
        "internal topics are left out"
    );
    let json: Vec<String> = serde_json::from_str(&stdout_of(
        flowodm().args(["topics", "list", "--output", "json"]),
    ))
    .unwrap();
    assert!(json.contains(&name));

    let table = stdout_of(flowodm().args(["topics", "describe", &name]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], format!("topic {name}"));
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "IN_SYNC",
            "START",
            "END",
            "MESSAGES"
        ]
    );
    assert_eq!(lines.len(), 5, "{table}");
    assert!(!table.contains('\u{1b}'), "no colour when piped");

    let json: Json = serde_json::from_str(&stdout_of(
        flowodm().args(["topics", "describe", &name, "--output", "json"]),
    ))
    .unwrap();
    let partitions = json.as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    assert_eq!(partitions[2]["partition"], 2);
    assert_eq!(partitions[0]["messages"], 0);
    assert_eq!(partitions[0]["replicas"].as_array().unwrap().len(), 1);

    // Creating it again fails with a hint.
    flowodm()
        .args(["topics", "create", &name])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "cannot create topic {name}"
        )))
        .stderr(predicate::str::contains("TopicAlreadyExists"))
        .stderr(predicate::str::contains("hint: choose another name"));

    flowodm()
        .args(["topics", "delete", &name])
        .assert()
        .success()
        .stdout(format!("deleted topic {name}\n"));
}

#[test]
fn unknown_topics_are_errors_with_a_hint() {
    let name = unique_name("cli-nope");
    for args in [
        vec!["topics", "describe", &name],
        vec!["topics", "delete", &name],
    ] {
        flowodm()
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("UnknownTopicOrPartition"))
            .stderr(predicate::str::contains(
                "hint: list the topics with `flowodm topics list`",
            ));
    }
}

#[test]
fn bad_topic_settings_are_errors() {
    let name = unique_name("cli-bad");
    flowodm()
        .args(["topics", "create", &name, "--replication", "3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "hint: --replication cannot exceed the number of brokers",
        ));
    flowodm()
        .args(["topics", "create", &name, "--config", "retention.ms=soon"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("InvalidConfig"));
}

#[test]
fn groups_list_and_describe_show_lag() {
    let topic = topic("cli-lag", 2);
    let group = unique_name("cli-group");
    let subject = format!("{topic}-value");
    register(
        &subject,
        r#"{"type":"record","name":"N","fields":[{"name":"n","type":"int"}]}"#,
    );
    flowodm()
        .args(["produce", "--topic", &topic, "--key-field", "n"])
        .write_stdin("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n")
        .assert()
        .success();
    // Read two, commit them, and leave the rest as lag.
    flowodm()
        .args([
            "consume",
            "--topic",
            &topic,
            "--group",
            &group,
            "--from-beginning",
            "--max",
            "2",
        ])
        .assert()
        .success();

    let listed = stdout_of(flowodm().args(["groups", "list"]));
    let row = listed
        .lines()
        .find(|l| l.split_whitespace().next() == Some(group.as_str()))
        .unwrap_or_else(|| panic!("{group} not in {listed}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [group.as_str(), "Empty", "0"]
    );
    let json: Json = serde_json::from_str(&stdout_of(
        flowodm().args(["groups", "list", "--output", "json"]),
    ))
    .unwrap();
    assert!(json
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group"] == group.as_str() && g["members"] == 0));

    let lag = |g: &str| -> Vec<Json> {
        let text = stdout_of(flowodm().args(["groups", "describe", g, "--output", "json"]));
        serde_json::from_str::<Json>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let rows = lag(&group);
    let total = |rows: &[Json], key: &str| {
        rows.iter()
            .map(|r| r[key].as_i64().unwrap_or(0))
            .sum::<i64>()
    };
    assert!(
        rows.iter().all(|r| r["topic"] == topic.as_str()),
        "{rows:?}"
    );
    assert_eq!(total(&rows, "end"), 4);
    assert_eq!(total(&rows, "lag"), 2, "{rows:?}");

    let table = stdout_of(flowodm().args(["groups", "describe", &group]));
    assert_eq!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]
    );

    // The rest, then no lag.
    flowodm()
        .args(["consume", "--topic", &topic, "--group", &group])
        .assert()
        .success();
    let rows = lag(&group);
    assert_eq!(total(&rows, "lag"), 0, "{rows:?}");
    assert_eq!(total(&rows, "committed"), 4);

    // --topic lists every partition of that topic, committed or not.
    let other = topic_named("cli-lag-other");
    let text = stdout_of(flowodm().args([
        "groups", "describe", &group, "--output", "json", "--topic", &other,
    ]));
    let rows: Vec<Json> = serde_json::from_str(&text).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["committed"], Json::Null);
}

fn topic_named(prefix: &str) -> String {
    topic(prefix, 1)
}

#[test]
fn unknown_group_is_an_error_with_a_hint() {
    flowodm()
        .args(["groups", "describe"])
        .arg(unique_name("cli-nogroup"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no committed offsets"))
        .stderr(predicate::str::contains(
            "hint: list the groups with `flowodm groups list`",
        ));
}

#[test]
fn unreachable_kafka_exits_2_with_a_hint() {
    for args in [
        vec!["topics", "list"],
        vec!["topics", "describe", "t"],
        vec!["groups", "list"],
        vec!["groups", "describe", "g"],
    ] {
        let out = bare()
            .args(["--bootstrap-servers", "127.0.0.1:1", "--timeout", "2"])
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("hint: check --bootstrap-servers"))
            .get_output()
            .stderr
            .clone();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2, "{args:?}: {text}");
    }
}

#[test]
fn missing_bootstrap_servers_says_how_to_give_them() {
    bare()
        .args(["topics", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error: no Kafka cluster given"))
        .stderr(predicate::str::contains(
            "hint: pass --bootstrap-servers or set KAFKA_BOOTSTRAP_SERVERS",
        ));
}

#[test]
fn sasl_flags_reach_the_client() {
    // The stack's SASL_SSL listener, with the right and a wrong password.
    let sasl = flowodm_test::env("KAFKA_SASL_BOOTSTRAP_SERVERS");
    let ca = flowodm_test::env("KAFKA_SSL_CA_LOCATION");
    let user = flowodm_test::env("KAFKA_SASL_USERNAME");
    let password = flowodm_test::env("KAFKA_SASL_PASSWORD");
    let run = |password: &str| {
        let mut cmd = bare();
        cmd.env("KAFKA_SSL_CA_LOCATION", &ca)
            .args(["--bootstrap-servers", &sasl, "--timeout", "5"])
            .args([
                "--security-protocol",
                "sasl_ssl",
                "--sasl-mechanism",
                "SCRAM-SHA-512",
            ])
            .args(["--sasl-username", &user, "--sasl-password", password])
            .args(["topics", "list"]);
        cmd
    };
    run(&password).assert().success();
    run("wrong-password")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hint:"));
}
