//! The CI/CD recipe of docs/cli.md, end to end: the application's models export their schemas
//! (`ModelSchemas::export_dir`), and `flowodm validate --dir` checks them against the registry.
//! The application code between the markers is the page's ```rust block, word for word
//! (docs.rs checks that), so the page shows code that compiles and runs.

use std::path::{Path, PathBuf};

use predicates::prelude::*;
use serde_json::Value as Json;

use crate::common::*;

// docs/cli.md: begin
use chrono::{DateTime, Utc};
use flowodm::schema::ModelSchemas;

/// An order, as the application sends it.
#[derive(flowodm::Model)]
#[flowodm(topic = "orders", key = "customer_id", namespace = "com.example")]
pub struct Order {
    pub order_id: String,
    pub customer_id: String,
    pub status: Status,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub items: Vec<String>,
}

/// Where an order is.
#[derive(flowodm::Avro)]
#[flowodm(namespace = "com.example", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Paid,
}

/// Every model the application writes, listed once.
pub fn models() -> ModelSchemas {
    ModelSchemas::new().with::<Order>()
}

/// Writes `<subject>.avsc` for each model, for `flowodm validate --dir target/tmp/schemas`.
#[test]
fn export_model_schemas() -> flowodm::Result<()> {
    models().export_dir(concat!(env!("CARGO_TARGET_TMPDIR"), "/schemas"))?;
    Ok(())
}
// docs/cli.md: end

/// The next release of the application, which made `note` required: data already written
/// with `null` notes could no longer be read.
mod next_release {
    use super::{DateTime, ModelSchemas, Status, Utc};

    #[derive(flowodm::Model)]
    #[flowodm(topic = "orders", key = "customer_id", namespace = "com.example")]
    pub struct Order {
        pub order_id: String,
        pub customer_id: String,
        pub status: Status,
        pub note: String,
        pub created_at: DateTime<Utc>,
        pub items: Vec<String>,
    }

    pub fn models() -> ModelSchemas {
        ModelSchemas::new().with::<Order>()
    }
}

/// Exports `models` into `dir` with each subject made unique the way the docs test does it
/// (`orders` → `orders-<suffix>`), so runs do not share registry subjects; the files written.
pub fn export_localized(models: &ModelSchemas, dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let staging = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    std::fs::create_dir_all(dir).unwrap();
    for file in models.export_dir(staging.path()).unwrap() {
        let name = file.file_name().unwrap().to_string_lossy();
        let target = dir.join(name.replace("orders", &format!("orders-{suffix}")));
        std::fs::copy(&file, &target).unwrap();
        out.push(target);
    }
    out
}

#[test]
fn exported_models_pass_and_fail_validate_dir() {
    let suffix = unique_name("ci").to_lowercase();
    let subject = format!("orders-{suffix}-value");
    let root = tempfile::tempdir().unwrap();
    let release = root.path().join("release-1");
    let files = export_localized(&models(), &release, &suffix);
    assert_eq!(files, [release.join(format!("{subject}.avsc"))]);

    // Before the first registration there is nothing to be incompatible with.
    flowodm()
        .args(["validate", "--dir"])
        .arg(&release)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "[{subject}.avsc]\n{subject}: compatible: the subject has no versions yet"
        )))
        .stdout(predicate::str::ends_with(
            "1 schema file(s) checked: all fit the registry\n",
        ));

    // Release 1 registers its schema; the same export then passes, strictly too.
    flowodm()
        .args([
            "upload-schema",
            "--subject",
            &subject,
            "--compatibility",
            "BACKWARD",
        ])
        .arg("--avro")
        .arg(&files[0])
        .assert()
        .success();
    flowodm()
        .args(["validate", "--strict", "--dir"])
        .arg(&release)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "{subject}: local check at BACKWARD: compatible (compared with {subject} v1)"
        )))
        .stdout(predicate::str::contains(format!(
            "{subject}.avsc against {subject} v1: 0 error(s)"
        )))
        .stdout(predicate::str::contains("all fit the registry"));

    // The next release breaks old data: the CI job fails, and says where and why.
    let next = root.path().join("release-2");
    export_localized(&next_release::models(), &next, &suffix);
    flowodm()
        .args(["validate", "--dir"])
        .arg(&next)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "  - Order.note: {subject} v1 may write null here, and the new schema (string) \
             cannot read it (consumers using the new schema cannot read data written with \
             {subject} v1)"
        )))
        .stdout(predicate::str::contains(format!(
            "{subject}: registry at BACKWARD: NOT compatible"
        )))
        .stdout(predicate::str::ends_with(
            "1 schema file(s) checked: 1 incompatible\n",
        ));
    let out = flowodm()
        .args(["validate", "--output", "json", "--dir"])
        .arg(&next)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: Json = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["files"][0]["subject"], subject.as_str());
    assert_eq!(v["files"][0]["local"]["reasons"][0]["path"], "Order.note");
    // Forward compatibility alone holds: old readers can read a required string.
    flowodm()
        .args(["validate", "--level", "FORWARD", "--dir"])
        .arg(&next)
        .assert()
        .success();

    flowodm()
        .args(["delete-subject", "--permanent", "--subject", &subject])
        .assert()
        .success();
}
