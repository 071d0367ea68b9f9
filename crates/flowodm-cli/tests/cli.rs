//! The `flowodm` binary against the stack's schema registry, success and failure paths.

use assert_cmd::Command;
use flowodm_test::{registry_url, unique_name};
use predicates::prelude::*;

fn flowodm() -> Command {
    let mut cmd = Command::cargo_bin("flowodm").unwrap();
    cmd.env_remove("SCHEMA_REGISTRY_URL");
    cmd
}

const SCHEMA: &str = r#"{
  "type": "record",
  "name": "Ping",
  "namespace": "dev.flowodm.cli",
  "fields": [{"name": "at", "type": "long"}]
}"#;

#[test]
fn upload_then_get_then_list() {
    let dir = tempfile::tempdir().unwrap();
    let avsc = dir.path().join("ping.avsc");
    std::fs::write(&avsc, SCHEMA).unwrap();
    let subject = unique_name("cli") + "-value";

    let out = flowodm()
        .args([
            "--registry-url",
            &registry_url(),
            "upload-schema",
            "--subject",
            &subject,
        ])
        .arg("--avro")
        .arg(&avsc)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let id: u32 = String::from_utf8(out)
        .unwrap()
        .trim()
        .parse()
        .expect("prints the id");

    // The registry URL also comes from the environment.
    let out_file = dir.path().join("fetched.avsc");
    flowodm()
        .env("SCHEMA_REGISTRY_URL", registry_url())
        .args([
            "get-schema",
            "--subject",
            &subject,
            "--version",
            "1",
            "--output",
        ])
        .arg(&out_file)
        .assert()
        .success();
    let fetched: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    let original: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
    assert_eq!(fetched, original);

    flowodm()
        .args([
            "--registry-url",
            &registry_url(),
            "get-schema",
            "--subject",
            &subject,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"name\": \"Ping\""));

    flowodm()
        .args(["--registry-url", &registry_url(), "list-subjects"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("{subject}\n")));

    // Uploading the same schema again gives the same id.
    flowodm()
        .args([
            "--registry-url",
            &registry_url(),
            "upload-schema",
            "--subject",
            &subject,
        ])
        .arg("--avro")
        .arg(&avsc)
        .assert()
        .success()
        .stdout(format!("{id}\n"));
}

#[test]
fn unknown_subject_is_an_error_with_a_hint() {
    flowodm()
        .args(["--registry-url", &registry_url(), "get-schema", "--subject"])
        .arg(unique_name("missing"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error: schema registry:"))
        .stderr(predicate::str::contains("40401"))
        .stderr(predicate::str::contains("hint: list the subjects"));
}

#[test]
fn unreachable_registry_is_an_error_with_a_hint() {
    flowodm()
        .args(["--registry-url", "http://127.0.0.1:9", "list-subjects"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("could not be reached"))
        .stderr(predicate::str::contains("hint: is the registry running"));
}

#[test]
fn invalid_avsc_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let avsc = dir.path().join("broken.avsc");
    std::fs::write(&avsc, "{\n  \"type\": \"record\",\n  \"name\": oops\n}").unwrap();
    flowodm()
        .args([
            "--registry-url",
            &registry_url(),
            "upload-schema",
            "--subject",
            "x-value",
        ])
        .arg("--avro")
        .arg(&avsc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "is not valid JSON at line 3, column",
        ));
}

#[test]
fn missing_registry_url_says_how_to_give_one() {
    flowodm()
        .arg("list-subjects")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--registry-url or set SCHEMA_REGISTRY_URL",
        ));
}

#[test]
fn bad_version_is_rejected() {
    flowodm()
        .args([
            "--registry-url",
            &registry_url(),
            "get-schema",
            "--subject",
            "s",
            "--version",
            "two",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--version must be a number or `latest`",
        ));
}
