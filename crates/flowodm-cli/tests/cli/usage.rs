//! Wrong flags, --help, completions: exit status 2 for usage errors, never a panic.

use predicates::prelude::*;

use crate::common::*;

#[test]
fn wrong_flag_values_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "upload-schema",
                "--avro",
                "a.avsc",
                "--subject",
                "s",
                "--compatibility",
                "SIDEWAYS",
            ],
            "invalid value 'SIDEWAYS' for '--compatibility <LEVEL>'",
        ),
        (
            &["list-subjects", "--output", "xml"],
            "invalid value 'xml' for '--output <OUTPUT>'",
        ),
        (
            &["topics", "create", "t", "--partitions", "0"],
            "invalid value '0' for '--partitions <PARTITIONS>'",
        ),
        (
            &["topics", "create", "t", "--partitions", "three"],
            "invalid value 'three'",
        ),
        (
            &["topics", "create", "t", "--config", "retention.ms"],
            "`retention.ms` is not KEY=VALUE",
        ),
        (
            &["--security-protocol", "TLS", "topics", "list"],
            "invalid value 'TLS' for '--security-protocol",
        ),
        (
            &["--sasl-mechanism", "MD5", "topics", "list"],
            "invalid value 'MD5'",
        ),
        (
            &["--timeout", "0", "topics", "list"],
            "invalid value '0' for '--timeout <SECS>'",
        ),
        (
            &["produce", "--topic", "t", "--key", "k", "--key-field", "f"],
            "cannot be used with",
        ),
        (
            &["consume", "--topic", "t", "--max=-1"],
            "invalid value '-1'",
        ),
        (
            &["consume"],
            "the following required arguments were not provided",
        ),
        (
            &["groups", "describe"],
            "the following required arguments were not provided",
        ),
        (&["completions", "tcsh"], "invalid value 'tcsh'"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
    ];
    for (args, message) in cases {
        bare()
            .args(*args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*message))
            .stderr(predicate::str::contains("panicked").not())
            .stderr(predicate::function(|e: &str| {
                e.lines().count() == 2 && e.starts_with("error: ") && e.contains("\nhint: ")
            }));
    }
}

#[test]
fn bad_version_is_rejected_before_the_registry_is_asked() {
    for version in ["two", "0", "1.5"] {
        bare()
            .args([
                "--registry-url",
                "http://127.0.0.1:9",
                "get-schema",
                "--subject",
                "s",
                "--version",
                version,
            ])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "error: --version must be a number or `latest`, not `{version}`"
            )));
    }
}

#[test]
fn help_documents_the_exit_status_and_the_environment() {
    bare()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit status:"))
        .stdout(predicate::str::contains(
            "1  the command ran but a check failed",
        ))
        .stdout(predicate::str::contains("2  usage or runtime error"))
        .stdout(predicate::str::contains("[env: KAFKA_BOOTSTRAP_SERVERS"))
        .stdout(predicate::str::contains("[env: SCHEMA_REGISTRY_URL"));
    // Secrets from the environment are never shown.
    bare()
        .env("KAFKA_SASL_PASSWORD", "hunter2")
        .env("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "u:hunter3")
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("hunter").not());
    for sub in [
        &["topics", "--help"][..],
        &["groups", "describe", "--help"],
        &["consume", "--help"],
    ] {
        bare().args(sub).assert().success();
    }
    // Without a subcommand: the help, as a usage error.
    bare()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Commands:"))
        .stderr(predicate::str::contains("Exit status:"));
    bare()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("flowodm "));
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "_flowodm()"),
        ("zsh", "#compdef flowodm"),
        ("fish", "complete -c flowodm"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[flowodm]"),
    ] {
        let out = stdout_of(bare().args(["completions", shell]));
        assert!(out.contains(marker), "{shell}");
        assert!(
            out.contains("upload-schema") && out.contains("consume"),
            "{shell}"
        );
    }
}
