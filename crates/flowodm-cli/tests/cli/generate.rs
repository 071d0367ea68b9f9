//! generate: Rust source from .avsc files and registry subjects, to stdout, a file or a
//! directory; refusals and bad files.

use flowodm::codegen::Generator;
use predicates::prelude::*;

use crate::common::*;

const ORDER: &str = r#"{"type": "record", "name": "Order", "namespace": "com.example",
  "fields": [
    {"name": "order_id", "type": "string"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["PENDING", "PAID"]}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}
  ]}"#;

const PAYMENT: &str = r#"{"type": "record", "name": "Payment", "namespace": "com.example",
  "fields": [{"name": "order_id", "type": "string"}, {"name": "cents", "type": "long"}]}"#;

#[test]
fn generate_from_files_to_stdout_a_file_or_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let avsc = write(dir.path(), "order.avsc", ORDER);
    let expected = Generator::new()
        .topic("orders")
        .key("order_id")
        .generate_files(&[&avsc])
        .unwrap();
    assert!(expected.contains("pub struct Order {"), "{expected}");
    assert!(expected.contains("#[flowodm(topic = \"orders\", key = \"order_id\""));

    // No registry needed.
    let printed = stdout_of(
        bare()
            .args([
                "generate", "--topic", "orders", "--key", "order_id", "--avro",
            ])
            .arg(&avsc),
    );
    assert_eq!(printed, expected);

    let file = dir.path().join("src/orders.rs");
    bare()
        .args([
            "generate", "--topic", "orders", "--key", "order_id", "--avro",
        ])
        .arg(&avsc)
        .arg("--out")
        .arg(&file)
        .assert()
        .success()
        .stdout(format!("wrote {}\n", file.display()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);

    // Into a directory: named after the main type. Without --topic, plain Avro types.
    let out = dir.path().join("src");
    bare()
        .args(["generate", "--avro"])
        .arg(&avsc)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(format!("wrote {}\n", out.join("order.rs").display()));
    let plain = std::fs::read_to_string(out.join("order.rs")).unwrap();
    assert!(
        plain.contains(
            "flowodm::Avro)]\n#[flowodm(namespace = \"com.example\")]\npub struct Order {"
        ),
        "{plain}"
    );
}

#[test]
fn generate_from_registry_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let orders = unique_name("cli-gen-orders") + "-value";
    let payments = unique_name("cli-gen-payments") + "-value";
    register(&orders, ORDER);
    register(&payments, PAYMENT);
    let avsc = write(dir.path(), "order.avsc", ORDER);

    // The same code as from the file.
    let from_file = Generator::new()
        .topic("orders")
        .generate_files(&[&avsc])
        .unwrap();
    let printed = stdout_of(flowodm().args([
        "generate",
        "--subject",
        &orders,
        "--version",
        "1",
        "--topic",
        "orders",
    ]));
    assert_eq!(printed, from_file);

    // Several subjects: one file each, in a directory.
    let out = dir.path().join("generated");
    flowodm()
        .args(["generate", "--subject", &orders, &payments, "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("order.rs\n"))
        .stdout(predicate::str::contains("payment.rs\n"));
    assert!(std::fs::read_to_string(out.join("payment.rs"))
        .unwrap()
        .contains("pub struct Payment {"));
    flowodm()
        .args(["generate", "--subject", &orders, "--subject", &payments])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hint: pass --out DIR"));
    // Two subjects whose types share a name would share a file: refused, nothing written.
    let again = unique_name("cli-gen-orders-again") + "-value";
    register(&again, ORDER);
    let shared = dir.path().join("shared");
    flowodm()
        .args(["generate", "--subject", &orders, &again, "--out"])
        .arg(&shared)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "subjects {orders} and {again} would both be written to"
        )))
        .stderr(predicate::str::contains(
            "hint: their main types share a name",
        ));
    assert!(!shared.join("order.rs").exists());

    flowodm()
        .args(["generate", "--subject"])
        .arg(unique_name("missing"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("40401"))
        .stderr(predicate::str::contains("hint: list the subjects"));
    for subject in [&orders, &payments, &again] {
        flowodm()
            .args(["delete-subject", "--permanent", "--subject", subject])
            .assert()
            .success();
    }
}

#[test]
fn generate_refusals_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed the derive cannot write under that name: refused, with the schema path.
    let fixed = write(
        dir.path(),
        "file.avsc",
        r#"{"type": "record", "name": "File", "namespace": "fs",
            "fields": [{"name": "digest", "type": {"type": "fixed", "name": "MD5", "size": 16}}]}"#,
    );
    bare()
        .args(["generate", "--avro"])
        .arg(&fixed)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "error: cannot generate Rust types: invalid schema: fs.File.digest: cannot express the fixed `fs.MD5`",
        ))
        .stderr(predicate::str::contains("hint: docs/codegen.md lists"));

    let broken = write(
        dir.path(),
        "broken.avsc",
        "{\n  \"type\": \"record\",\n  \"name\": oops\n}\n",
    );
    bare()
        .args(["generate", "--avro"])
        .arg(&broken)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "broken.avsc:3:11: invalid JSON: expected value at line 3 column 11",
        ))
        .stderr(predicate::str::contains("hint: an .avsc file holds"));

    // A key names a field of a topic's model.
    bare()
        .args(["generate", "--key", "id", "--avro"])
        .arg(&fixed)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--topic <TOPIC>"));
}
