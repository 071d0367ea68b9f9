//! check-compatibility and validate: verdicts with reasons, strict validation, bad files, and
//! an unreachable registry.

use predicates::prelude::*;
use serde_json::Value as Json;

use crate::common::*;

const V1: &str = r#"{"type": "record", "name": "Ping", "namespace": "dev.flowodm.cli",
  "fields": [{"name": "at", "type": "long"}]}"#;

/// A field without default: reading v1 data with it fails (backward), v1 can read its data.
const FROM_NO_DEFAULT: &str = r#"{"type": "record", "name": "Ping", "namespace": "dev.flowodm.cli",
  "fields": [{"name": "at", "type": "long"}, {"name": "from", "type": "string"}]}"#;

const FROM_WITH_DEFAULT: &str = r#"{"type": "record", "name": "Ping", "namespace": "dev.flowodm.cli",
  "fields": [{"name": "at", "type": "long"}, {"name": "from", "type": "string", "default": ""}]}"#;

/// Registers `schema` as the next version of `subject`, setting the subject's level.
fn upload(subject: &str, level: &str, schema: &str) {
    let dir = tempfile::tempdir().unwrap();
    let avsc = write(dir.path(), "s.avsc", schema);
    flowodm()
        .args([
            "upload-schema",
            "--subject",
            subject,
            "--compatibility",
            level,
        ])
        .arg("--avro")
        .arg(&avsc)
        .assert()
        .success();
}

fn delete(subject: &str) {
    flowodm()
        .args(["delete-subject", "--permanent", "--subject", subject])
        .assert()
        .success();
}

#[test]
fn check_compatibility_gives_reasons_and_the_registrys_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let subject = unique_name("cli-cc") + "-value";
    let bad = write(dir.path(), "bad.avsc", FROM_NO_DEFAULT);
    let good = write(dir.path(), "good.avsc", FROM_WITH_DEFAULT);

    // No versions yet: compatible, and it says why.
    flowodm()
        .args(["check-compatibility", "--subject", &subject, "--avro"])
        .arg(&bad)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "compatible: the subject has no versions yet",
        ));

    upload(&subject, "BACKWARD", V1);
    flowodm()
        .args(["check-compatibility", "--subject", &subject, "--avro"])
        .arg(&good)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "{subject}: local check at BACKWARD: compatible (compared with {subject} v1)"
        )))
        .stdout(predicate::str::contains(format!(
            "{subject}: registry at BACKWARD: compatible"
        )))
        .stdout(predicate::str::contains(
            "the local check and the registry agree",
        ));

    // The reason: path, what changed, who breaks, against which version.
    flowodm()
        .args(["check-compatibility", "--subject", &subject, "--avro"])
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "  - Ping.from: field `from` is in the new schema without a default, and {subject} v1 \
             does not have it, so there is no value to read it from (consumers using the new \
             schema cannot read data written with {subject} v1)"
        )))
        .stdout(predicate::str::contains(format!(
            "{subject}: registry at BACKWARD: NOT compatible"
        )))
        .stdout(predicate::str::contains(
            "the local check and the registry agree",
        ));

    // FORWARD: v1 can read what the new schema writes.
    flowodm()
        .args(["check-compatibility", "--level", "forward"])
        .args(["--subject", &subject, "--avro"])
        .arg(&bad)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "local check at FORWARD: compatible",
        ))
        .stdout(predicate::str::contains(
            "the verdicts differ: the local check used FORWARD, the registry BACKWARD",
        ));

    // JSON for programs.
    let out = flowodm()
        .args(["check-compatibility", "--output", "json"])
        .args(["--subject", &subject, "--avro"])
        .arg(&bad)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: Json = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["compatible"], false);
    assert_eq!(v["agree"], true);
    assert_eq!(v["local"]["level"], "BACKWARD");
    assert_eq!(v["local"]["reasons"][0]["path"], "Ping.from");
    assert_eq!(v["local"]["reasons"][0]["breaks"], "new_readers");
    assert_eq!(v["local"]["reasons"][0]["against"], format!("{subject} v1"));
    assert_eq!(v["registry"]["compatible"], false);
    assert_eq!(v["registry"]["level"], "BACKWARD");
    delete(&subject);
}

#[test]
fn check_compatibility_honours_transitive_levels() {
    let dir = tempfile::tempdir().unwrap();
    let subject = unique_name("cli-cct") + "-value";
    // v1 without `from`, then v2 with it (allowed under NONE).
    upload(&subject, "NONE", V1);
    upload(&subject, "NONE", FROM_NO_DEFAULT);
    let same_as_v2 = write(dir.path(), "v3.avsc", FROM_NO_DEFAULT);
    // BACKWARD compares with v2 only ...
    flowodm()
        .args(["check-compatibility", "--level", "BACKWARD"])
        .args(["--subject", &subject, "--avro"])
        .arg(&same_as_v2)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "compatible (compared with {subject} v2)"
        )));
    // ... BACKWARD_TRANSITIVE with v1 too, whose data has no `from`.
    flowodm()
        .args(["check-compatibility", "--level", "BACKWARD_TRANSITIVE"])
        .args(["--subject", &subject, "--avro"])
        .arg(&same_as_v2)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "NOT compatible (compared with {subject} v2, {subject} v1)"
        )))
        .stdout(predicate::str::contains(format!(
            "Ping.from: field `from` is in the new schema without a default, and {subject} v1"
        )))
        // The registry answers for the subject's own level, NONE.
        .stdout(predicate::str::contains("registry at NONE: compatible"));
    delete(&subject);
}

#[test]
fn check_compatibility_says_when_the_verdicts_differ() {
    let dir = tempfile::tempdir().unwrap();
    let subject = unique_name("cli-ccd") + "-value";
    let millis = r#"{"type": "record", "name": "T", "fields": [
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;
    upload(&subject, "BACKWARD", millis);
    // The same long, read as microseconds: flowodm refuses, the registry does not look.
    let micros = write(
        dir.path(),
        "micros.avsc",
        &millis.replace("millis", "micros"),
    );
    flowodm()
        .args(["check-compatibility", "--subject", &subject, "--avro"])
        .arg(&micros)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "  - T.at: logical type changed: {subject} v1 has timestamp-millis, the new schema \
             has timestamp-micros, so the same bytes would mean another value"
        )))
        .stdout(predicate::str::contains(format!(
            "{subject}: registry at BACKWARD: compatible\nthe verdicts differ: the registry \
             accepts what the local check refuses for the reasons above\n"
        )));
    delete(&subject);
}

#[test]
fn validate_files_strictly_against_a_subject() {
    let dir = tempfile::tempdir().unwrap();
    let subject = unique_name("cli-val") + "-value";
    upload(&subject, "BACKWARD", V1);
    upload(&subject, "BACKWARD", FROM_WITH_DEFAULT);
    let v1 = write(dir.path(), "v1.avsc", V1);
    let v2 = write(dir.path(), "v2.avsc", FROM_WITH_DEFAULT);

    flowodm()
        .args(["validate", "--subject", &subject, "--avro"])
        .arg(&v2)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "v2.avsc against {subject} v2: 0 error(s), 0 warning(s)"
        )));
    // Compatible is not equal: v1 lacks `from`.
    flowodm()
        .args(["validate", "--subject", &subject, "--avro"])
        .arg(&v1)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "v1.avsc against {subject} v2: 1 error(s)"
        )))
        .stdout(predicate::str::contains("  error: Ping.from: "));
    // Both files against version 1, as JSON.
    let out = flowodm()
        .args(["validate", "--subject", &subject, "--version", "1"])
        .args(["--output", "json", "--avro"])
        .arg(&v1)
        .arg(&v2)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: Json = serde_json::from_slice(&out).unwrap();
    assert_eq!(v[0]["valid"], true, "{v}");
    assert_eq!(v[0]["against"], format!("{subject} v1"));
    assert_eq!(v[1]["valid"], false, "{v}");
    assert_eq!(v[1]["errors"][0]["path"], "Ping.from");

    // An unknown subject or version is an error (2) with a hint.
    flowodm()
        .args(["validate", "--subject"])
        .arg(unique_name("missing"))
        .arg("--avro")
        .arg(&v1)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("40401"))
        .stderr(predicate::str::contains(
            "hint: list the subjects with `flowodm list-subjects`",
        ));
    flowodm()
        .args([
            "validate",
            "--subject",
            &subject,
            "--version",
            "7",
            "--avro",
        ])
        .arg(&v1)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hint: leave out --version"));
    delete(&subject);
}

#[test]
fn validate_files_alone_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    // Files that use each other's named types are one set.
    let address = write(
        dir.path(),
        "address.avsc",
        r#"{"type": "record", "name": "Address", "namespace": "shop",
            "fields": [{"name": "city", "type": "string"}]}"#,
    );
    let customer = write(
        dir.path(),
        "customer.avsc",
        r#"{"type": "record", "name": "Customer", "namespace": "shop",
            "fields": [{"name": "home", "type": "shop.Address"}]}"#,
    );
    bare()
        .args(["validate", "--avro"])
        .arg(&address)
        .arg(&customer)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "address.avsc: a valid Avro schema (record shop.Address)",
        ))
        .stdout(predicate::str::contains(
            "customer.avsc: a valid Avro schema (record shop.Customer)",
        ));

    // Bad JSON: the place, as line and column; for validate a failed check (1).
    let broken = write(
        dir.path(),
        "broken.avsc",
        "{\n  \"type\": \"record\",\n  \"name\": oops\n}\n",
    );
    bare()
        .args(["validate", "--avro"])
        .arg(&broken)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "broken.avsc:3:11: invalid JSON: expected value at line 3 column 11",
        ))
        .stderr(predicate::str::contains(
            "hint: an .avsc file holds one Avro schema written as JSON",
        ));
    let out = bare()
        .args(["validate", "--output", "json", "--avro"])
        .arg(&broken)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: Json = serde_json::from_slice(&out).unwrap();
    assert_eq!((&v[0]["line"], &v[0]["column"]), (&3.into(), &11.into()));
    // check-compatibility cannot run on it: an error (2), before the registry is asked.
    bare()
        .args(["check-compatibility", "--subject", "any", "--avro"])
        .arg(&broken)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("broken.avsc:3:11: invalid JSON"))
        .stderr(predicate::str::contains("hint: an .avsc file holds"));

    // JSON, but not Avro.
    let not_avro = write(
        dir.path(),
        "enum.avsc",
        r#"{"type": "enum", "name": "E", "symbols": ["A", "A"]}"#,
    );
    bare()
        .args(["validate", "--avro"])
        .arg(&not_avro)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "enum.avsc: not a valid Avro schema",
        ))
        .stderr(predicate::str::contains("hint: see the Avro specification"));
}

#[test]
fn an_empty_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    flowodm()
        .args(["validate", "--dir"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds no .avsc files"))
        .stderr(predicate::str::contains("hint: export the models' schemas"));
    flowodm()
        .args(["validate", "--dir"])
        .arg(dir.path().join("missing"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read the directory"))
        .stderr(predicate::str::contains(
            "hint: check the path given to --avro or --dir",
        ));
}

#[test]
fn an_unreachable_registry_is_an_error_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let avsc = write(dir.path(), "orders-value.avsc", V1);
    let hint = "hint: check --registry-url (or SCHEMA_REGISTRY_URL): is the registry running";
    bare()
        .args([
            "--registry-url",
            "http://127.0.0.1:9",
            "check-compatibility",
        ])
        .args(["--subject", "orders-value", "--avro"])
        .arg(&avsc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("could not be reached"))
        .stderr(predicate::str::contains(hint));
    bare()
        .args(["--registry-url", "http://127.0.0.1:9", "validate", "--dir"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(hint));
    bare()
        .args(["--registry-url", "http://127.0.0.1:9", "validate"])
        .args(["--subject", "orders-value", "--avro"])
        .arg(&avsc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(hint));
}
