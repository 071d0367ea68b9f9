//! The generated code in `src/generated/` is what the generator writes today for the corpus, and
//! it is laid out as rustfmt lays it out. (The tests that its derived schemas equal the input
//! schemas are in `src/generated/mod.rs`, next to the code.)
//!
//! `FLOWODM_UPDATE_CORPUS=1 cargo test -p flowodm-codegen-corpus --test corpus` rewrites
//! `src/generated/` instead of failing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flowodm::codegen::Generator;
use flowodm_codegen_corpus::{corpus_dir, Case, CASES};

fn generated_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated")
}

fn generate(case: &Case) -> String {
    let mut generator = Generator::new();
    if let Some(topic) = case.topic {
        generator = generator.topic(topic);
    }
    if let Some(key) = case.key {
        generator = generator.key(key);
    }
    let paths: Vec<PathBuf> = case.files.iter().map(|f| corpus_dir().join(f)).collect();
    generator
        .generate_files(&paths)
        .unwrap_or_else(|e| panic!("{}: {e}", case.module))
}

/// `src/generated/mod.rs`: the modules, and a test per case.
fn index() -> String {
    let mut s = String::from(
        "//! Code generated from the corpus by `flowodm::codegen`, one module per case (written by\n\
         //! `FLOWODM_UPDATE_CORPUS=1 cargo test -p flowodm-codegen-corpus --test corpus`).\n\n",
    );
    for case in CASES {
        let _ = writeln!(s, "pub mod {};", case.module);
    }
    s.push_str(
        "\n/// One test per case: the schema derived from the generated main type is the input schema.\n\
         #[cfg(test)]\n\
         mod tests {\n\
         \x20   fn check<T: flowodm::avro::Avro + 'static>(module: &str) {\n\
         \x20       let derived =\n\
         \x20           flowodm::avro::schema_of::<T>().unwrap_or_else(|e| panic!(\"{module}: {e}\"));\n\
         \x20       if let Err(e) = crate::check::check(crate::case_of(module), derived.json()) {\n\
         \x20           panic!(\"{module}: {e}\");\n\
         \x20       }\n\
         \x20   }\n",
    );
    for case in CASES {
        let _ = write!(
            s,
            "\n    #[test]\n    fn {m}() {{\n        check::<super::{m}::{t}>(\"{m}\");\n    }}\n",
            m = case.module,
            t = case.main_type
        );
    }
    s.push_str("}\n");
    s
}

fn rustfmt(source: &str) -> String {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("rustfmt runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(source.as_bytes())
        .expect("write to rustfmt");
    let out = child.wait_with_output().expect("rustfmt finishes");
    assert!(out.status.success(), "rustfmt failed on:\n{source}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn generated_code_is_current() {
    let update = std::env::var_os("FLOWODM_UPDATE_CORPUS").is_some();
    // The index is test scaffolding, laid out by rustfmt; the generator's output must already
    // be laid out as rustfmt would.
    let mut files = vec![("mod".to_string(), rustfmt(&index()))];
    for case in CASES {
        files.push((case.module.to_string(), generate(case)));
    }
    let mut stale = Vec::new();
    for (module, source) in &files {
        assert_eq!(
            rustfmt(source),
            *source,
            "the generated code of `{module}` is not laid out as rustfmt lays it out"
        );
        let path = generated_dir().join(format!("{module}.rs"));
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != *source {
            if update {
                std::fs::write(&path, source).expect("write generated code");
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated code differs from what the generator writes now (set FLOWODM_UPDATE_CORPUS=1 to update): {stale:?}"
    );
}

#[test]
fn the_corpus_has_at_least_30_schemas_and_the_order_event() {
    assert!(CASES.len() >= 30, "{} cases", CASES.len());
    assert!(CASES.iter().any(|c| c
        .files
        .iter()
        .any(|f| f.ends_with("food-pipeline/schemas/order_event.avsc"))));
}
