//! docs/cli.md, run: every ```sh block in order in one shell, each ```text block after it
//! checked against what that block printed. A ```rust block is application code: it must be
//! the code between the `docs/cli.md` markers of ci.rs, which compiles and runs it.

use crate::common::*;

/// A `sh` block and the output expected of it, if the page shows any.
#[derive(Debug)]
struct Example {
    script: String,
    expected: Option<String>,
}

/// The ```rust blocks of the page.
fn rust_blocks(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        if line == "```rust" {
            let mut body = String::new();
            for l in lines.by_ref().take_while(|l| !l.starts_with("```")) {
                body.push_str(l);
                body.push('\n');
            }
            out.push(body);
        }
    }
    out
}

fn examples(page: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        match lang {
            "sh" => out.push(Example {
                script: body,
                expected: None,
            }),
            "text" => {
                let last = out.last_mut().expect("a text block follows a sh block");
                assert!(
                    last.expected.is_none(),
                    "two text blocks after one sh block"
                );
                last.expected = Some(body);
            }
            "rust" => {}
            other => panic!("docs/cli.md has a ```{other} block, which no test runs"),
        }
    }
    out
}

/// `line` matches `pattern`, where `…` stands for any text and runs of spaces count as one.
fn matches(pattern: &str, line: &str) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (pattern, line) = (squash(pattern), squash(line));
    let parts: Vec<&str> = pattern.split('…').collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let mut rest = line.as_str();
    for (i, part) in parts.iter().enumerate() {
        let part = part.trim();
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.trim_end().ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[test]
fn every_example_in_docs_cli_md_runs_as_shown() {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let examples = examples(&page);
    assert!(examples.len() >= 15, "found {} examples", examples.len());

    // Unique names, and the stack's addresses for the page's.
    let suffix = unique_name("doc").trim_start_matches("doc-").to_lowercase();
    let localize = |s: &str| {
        s.replace("orders", &format!("orders-{suffix}"))
            .replace("billing", &format!("billing-{suffix}"))
            .replace("127.0.0.1:9092", &bootstrap_servers())
            .replace("http://127.0.0.1:8081", &registry_url())
    };
    let mut script = String::from("set -e\nexec 2>&1\n");
    for (i, e) in examples.iter().enumerate() {
        script.push_str(&format!("echo '@@example {i}'\n"));
        script.push_str(&localize(&e.script));
    }
    script.push_str("echo '@@end'\n");

    let home = tempfile::tempdir().unwrap();
    // What the application's `cargo test` does in the CI/CD section: export its models.
    crate::ci::export_localized(
        &crate::ci::models(),
        &home.path().join("target/tmp/schemas"),
        &suffix,
    );
    let bin_dir = binary().parent().unwrap().to_path_buf();
    // coreutils' timeout: a hung example fails the test instead of hanging it.
    let mut bash = std::process::Command::new("timeout");
    bash.args(["300", "bash", "-c"]).arg(&script);
    for var in [
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "SCHEMA_REGISTRY_URL",
    ] {
        bash.env_remove(var);
    }
    let output = bash
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        .current_dir(home.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success() && text.contains("@@end"),
        "the page's examples stopped early:\n{text}"
    );

    let mut outputs = text.split("@@example ").skip(1);
    for (i, e) in examples.iter().enumerate() {
        let got = outputs.next().unwrap();
        let got: Vec<&str> = got.lines().skip(1).filter(|l| *l != "@@end").collect();
        let Some(expected) = &e.expected else {
            continue;
        };
        // Every expected line, in order, among the lines printed.
        let mut at = 0;
        for want in localize(expected).lines() {
            match got[at..].iter().position(|l| matches(want, l)) {
                Some(p) => at += p + 1,
                None => panic!(
                    "example {i}:\n{}\nexpected a line like\n  {want}\nafter line {at} of what it printed:\n{}",
                    e.script,
                    got.join("\n")
                ),
            }
        }
    }
}

#[test]
fn the_rust_code_in_docs_cli_md_is_the_code_ci_rs_runs() {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let source = include_str!("ci.rs");
    let begin = source.find("// docs/cli.md: begin\n").unwrap() + "// docs/cli.md: begin\n".len();
    let end = source.find("// docs/cli.md: end\n").unwrap();
    assert_eq!(rust_blocks(&page), [&source[begin..end]]);
}

#[test]
fn the_pattern_matcher() {
    assert!(matches("a … c", "a b c"));
    assert!(matches("x  1   2", "x 1 2"));
    assert!(matches("{\"id\":…,\"v\":1}", "{\"id\":7,\"v\":1}"));
    assert!(!matches("a … c", "a b d"));
    assert!(!matches("abc", "abcd"));
    assert!(matches("…", "anything"));
}
