//! list-subjects, get-schema, upload-schema, delete-subject.

use predicates::prelude::*;

use crate::common::*;

const PING: &str = r#"{
  "type": "record",
  "name": "Ping",
  "namespace": "dev.flowodm.cli",
  "fields": [{"name": "at", "type": "long"}]
}"#;

const PING_V2_COMPATIBLE: &str = r#"{"type": "record", "name": "Ping", "namespace": "dev.flowodm.cli",
  "fields": [{"name": "at", "type": "long"}, {"name": "from", "type": "string", "default": ""}]}"#;

const PING_V2_INCOMPATIBLE: &str = r#"{"type": "record", "name": "Ping", "namespace": "dev.flowodm.cli",
  "fields": [{"name": "at", "type": "long"}, {"name": "from", "type": "string"}]}"#;

#[test]
fn upload_then_get_then_list_then_delete() {
    let dir = tempfile::tempdir().unwrap();
    let avsc = write(dir.path(), "ping.avsc", PING);
    let subject = unique_name("cli") + "-value";

    // The registry URL from a flag.
    let id: u32 = stdout_of(
        bare()
            .args(["--registry-url", &registry_url(), "upload-schema"])
            .args(["--subject", &subject, "--avro"])
            .arg(&avsc),
    )
    .trim()
    .parse()
    .expect("prints the id");

    // ... or from the environment; --output writes a file.
    let out_file = dir.path().join("fetched.avsc");
    flowodm()
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
        .success()
        .stdout("");
    let fetched: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    let original: serde_json::Value = serde_json::from_str(PING).unwrap();
    assert_eq!(fetched, original);

    flowodm()
        .args(["get-schema", "--subject", &subject])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"name\": \"Ping\""));

    flowodm().arg("list-subjects").assert().success().stdout(
        predicate::str::contains(format!("\n{subject}\n"))
            .or(predicate::str::starts_with(format!("{subject}\n"))),
    );
    let json = stdout_of(flowodm().args(["list-subjects", "--output", "json"]));
    let subjects: Vec<String> = serde_json::from_str(&json).unwrap();
    assert!(subjects.contains(&subject));

    // Uploading the same schema again gives the same id.
    flowodm()
        .args(["upload-schema", "--subject", &subject, "--avro"])
        .arg(&avsc)
        .assert()
        .success()
        .stdout(format!("{id}\n"));

    // A compatible second version under BACKWARD.
    let v2 = write(dir.path(), "v2.avsc", PING_V2_COMPATIBLE);
    flowodm()
        .args([
            "upload-schema",
            "--subject",
            &subject,
            "--compatibility",
            "BACKWARD",
            "--avro",
        ])
        .arg(&v2)
        .assert()
        .success();
    flowodm()
        .args(["get-schema", "--subject", &subject, "--version", "latest"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"from\""));

    flowodm()
        .args(["delete-subject", "--subject", &subject])
        .assert()
        .success()
        .stdout(format!("deleted {subject} (versions 1, 2)\n"));
    flowodm()
        .args(["get-schema", "--subject", &subject])
        .assert()
        .code(2);
    // Soft-deleted already: a second soft delete says how to finish the job.
    flowodm()
        .args(["delete-subject", "--subject", &subject])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "hint: it is soft-deleted already; add --permanent",
        ));
    flowodm()
        .args(["delete-subject", "--subject", &subject, "--permanent"])
        .assert()
        .success()
        .stdout(format!("permanently deleted {subject} (versions 1, 2)\n"));
}

#[test]
fn permanent_delete_does_the_soft_delete_first() {
    let subject = unique_name("cli-perm") + "-value";
    register(&subject, PING);
    flowodm()
        .args(["delete-subject", "--permanent", "--subject", &subject])
        .assert()
        .success()
        .stdout(format!("permanently deleted {subject} (versions 1)\n"));
    let subjects = stdout_of(flowodm().arg("list-subjects"));
    assert!(!subjects.lines().any(|s| s == subject));
}

#[test]
fn an_incompatible_schema_exits_1_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let subject = unique_name("cli-compat") + "-value";
    register(&subject, PING);
    let v2 = write(dir.path(), "v2.avsc", PING_V2_INCOMPATIBLE);
    flowodm()
        .args([
            "upload-schema",
            "--subject",
            &subject,
            "--compatibility",
            "backward",
            "--avro",
        ])
        .arg(&v2)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("v2.avsc was not registered"))
        .stderr(predicate::str::contains(
            "hint: the schema breaks the subject's compatibility level",
        ));
    // With NONE the same file goes in.
    flowodm()
        .args([
            "upload-schema",
            "--subject",
            &subject,
            "--compatibility",
            "NONE",
            "--avro",
        ])
        .arg(&v2)
        .assert()
        .success();
}

#[test]
fn unknown_subject_is_an_error_with_a_hint() {
    flowodm()
        .args(["get-schema", "--subject"])
        .arg(unique_name("missing"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error: schema registry:"))
        .stderr(predicate::str::contains("40401"))
        .stderr(predicate::str::contains(
            "hint: list the subjects with `flowodm list-subjects`",
        ));
    flowodm()
        .args(["delete-subject", "--subject"])
        .arg(unique_name("missing"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hint: list the subjects"));
}

#[test]
fn unknown_version_is_an_error_with_a_hint() {
    let subject = unique_name("cli-ver") + "-value";
    register(&subject, PING);
    flowodm()
        .args(["get-schema", "--subject", &subject, "--version", "9"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("40402"))
        .stderr(predicate::str::contains("hint: leave out --version"));
}

#[test]
fn unreachable_registry_exits_2_with_a_hint() {
    for args in [
        vec!["list-subjects"],
        vec!["get-schema", "--subject", "x-value"],
        vec!["delete-subject", "--subject", "x-value"],
    ] {
        let out = bare()
            .args(["--registry-url", "http://127.0.0.1:9"])
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("could not be reached"))
            .stderr(predicate::str::contains("hint: check --registry-url"))
            .get_output()
            .stderr
            .clone();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2, "one line plus a hint: {text}");
        assert!(!text.contains("panicked") && !text.contains("backtrace"));
    }
}

#[test]
fn invalid_avsc_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let avsc = write(
        dir.path(),
        "broken.avsc",
        "{\n  \"type\": \"record\",\n  \"name\": oops\n}",
    );
    flowodm()
        .args(["upload-schema", "--subject", "x-value", "--avro"])
        .arg(&avsc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "broken.avsc is not valid JSON at line 3, column 11",
        ))
        .stderr(predicate::str::contains(
            "hint: an .avsc file holds one Avro schema",
        ));

    // JSON, but not Avro: checked before the registry is asked.
    let avsc = write(
        dir.path(),
        "bad-type.avsc",
        r#"{"type": "record", "name": "R", "fields": [{"name": "a", "type": "strng"}]}"#,
    );
    bare()
        .args([
            "--registry-url",
            "http://127.0.0.1:9",
            "upload-schema",
            "--subject",
            "x-value",
            "--avro",
        ])
        .arg(&avsc)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad-type.avsc is not a valid Avro schema",
        ));

    bare()
        .args([
            "--registry-url",
            "http://127.0.0.1:9",
            "upload-schema",
            "--subject",
            "x-value",
            "--avro",
        ])
        .arg(dir.path().join("absent.avsc"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read"))
        .stderr(predicate::str::contains(
            "hint: check the path given to --avro",
        ));
}

#[test]
fn a_missing_config_file_is_named_with_a_hint_about_the_flag() {
    // The registry's commands and Kafka's read the file the same way.
    for command in [&["list-subjects"][..], &["topics", "list"][..]] {
        bare()
            .args(["--config", "/nonexistent/flowodm.toml"])
            .args(command)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("/nonexistent/flowodm.toml"))
            .stderr(predicate::str::contains(
                "hint: check the file given to --config",
            ));
    }
}

#[test]
fn missing_registry_url_says_how_to_give_one() {
    bare()
        .arg("list-subjects")
        .assert()
        .code(2)
        .stderr("error: no schema registry given\nhint: pass --registry-url or set SCHEMA_REGISTRY_URL (or [registry] url in --config)\n");
}

#[test]
fn the_registry_can_come_from_a_config_file_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.toml",
        &format!("[registry]\nurl = \"{}\"\n", registry_url()),
    );
    bare()
        .arg("--config")
        .arg(&good)
        .arg("list-subjects")
        .assert()
        .success();
    let yaml = write(
        dir.path(),
        "bad.yaml",
        "registry:\n  url: http://127.0.0.1:9\n",
    );
    bare()
        .arg("--config")
        .arg(&yaml)
        .arg("list-subjects")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("127.0.0.1:9"));
    bare()
        .arg("--config")
        .arg(&yaml)
        .args(["--registry-url", &registry_url(), "list-subjects"])
        .assert()
        .success();
    let typo = write(dir.path(), "typo.toml", "[registry]\nuri = \"x\"\n");
    bare()
        .arg("--config")
        .arg(&typo)
        .arg("list-subjects")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("typo.toml"))
        .stderr(predicate::str::contains("uri"));
}

#[test]
fn registry_user_info_is_checked_and_sent() {
    // The stack's registry does not ask for credentials, so good ones pass through.
    flowodm()
        .args(["--registry-user-info", "alice:secret", "list-subjects"])
        .assert()
        .success();
    // Connection flags also go after the subcommand.
    bare()
        .args([
            "list-subjects",
            "--registry-url",
            &registry_url(),
            "--registry-user-info",
            "a:b",
        ])
        .assert()
        .success();
    flowodm()
        .args(["--registry-user-info", "no-colon", "list-subjects"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        ))
        .stderr(predicate::str::contains("must have the form user:password"))
        .stderr(predicate::str::contains(
            "hint: check SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO (or --registry-user-info)",
        ))
        .stderr(predicate::str::contains("no-colon").not());
}
