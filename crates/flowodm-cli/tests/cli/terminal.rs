//! On a terminal: coloured tables and progress lines. `script` (util-linux) gives the binary a
//! pseudo-terminal.

use std::process::Command;

use crate::common::*;

/// Runs `command` (a shell line) with stdout and stderr on a pseudo-terminal; what it printed.
fn on_terminal(command: &str, no_color: bool) -> String {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", command, "/dev/null"])
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
        .env("SCHEMA_REGISTRY_URL", registry_url())
        // Progress normally waits a second; a fast machine would finish before that.
        .env("FLOWODM_PROGRESS_AFTER_MS", "0");
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let out = cmd.output().expect("util-linux `script` is installed");
    assert!(out.status.success(), "{command}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn tables_are_coloured_on_a_terminal_unless_no_color() {
    let topic = topic("cli-tty", 1);
    let bin = binary();
    let line = format!("{} topics describe {topic}", bin.display());
    let coloured = on_terminal(&line, false);
    assert!(
        coloured.contains("\u{1b}[1m\u{1b}[4mPARTITION\u{1b}[0m"),
        "{coloured:?}"
    );
    let plain = on_terminal(&line, true);
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    assert!(plain.contains("PARTITION"));
}

#[test]
fn long_runs_show_progress_on_a_terminal() {
    let topic = topic("cli-progress", 1);
    register(
        &format!("{topic}-value"),
        r#"{"type":"record","name":"N","fields":[{"name":"n","type":"long"}]}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let input: String = (0..150_000).map(|n| format!("{{\"n\":{n}}}\n")).collect();
    let file = write(dir.path(), "in.jsonl", &input);
    let bin = binary();
    let produced = on_terminal(
        &format!(
            "{} produce --topic {topic} < {}",
            bin.display(),
            file.display()
        ),
        true,
    );
    assert!(produced.contains("\r\u{1b}[2Kproduced "), "{produced:?}");
    assert!(produced.contains(" messages ("), "{produced:?}");
    assert!(produced.contains(&format!("produced 150000 messages to {topic}")));
    let consumed = on_terminal(
        &format!(
            "{} consume --topic {topic} --from-beginning > {}",
            bin.display(),
            dir.path().join("out.jsonl").display()
        ),
        true,
    );
    assert!(consumed.contains("\r\u{1b}[2Kconsumed "), "{consumed:?}");
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(out.lines().count(), 150_000);
    assert_eq!(out.lines().last(), Some("{\"n\":149999}"));
}
