//! PostgreSQL stopped for 10 s in the middle of a run and started again: the consumer waits it
//! out, then stores every order, once, in order, and dead-letters nothing.
//!
//! This test stops the stack's shared PostgreSQL (`dev/stack pg-stop`), so it is the only test
//! in its binary (cargo runs test binaries one after another) and it holds a lock file while
//! the database is down, so that two runs of it never overlap. It needs the `dev/stack`
//! PostgreSQL: it checks that the database really went away and fails otherwise.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Run;

fn stack(command: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dev/stack");
    let status = Command::new(script).arg(command).status().unwrap();
    assert!(status.success(), "dev/stack {command} failed: {status}");
}

/// An exclusive lock file; a lock left by a process that no longer runs is taken over.
struct Lock(PathBuf);

impl Lock {
    fn take(name: &str, timeout: Duration) -> Lock {
        // Next to the database it guards: the stack's state directory, one per user.
        let dir = std::env::var_os("FLOWODM_STACK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                use std::os::unix::fs::MetadataExt;
                let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
                PathBuf::from(format!("/var/tmp/flowodm-stack-{uid}"))
            });
        let path = dir.join(name);
        let deadline = Instant::now() + timeout;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id()).unwrap();
                    return Lock(path);
                }
                Err(_) => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = !holder.trim().is_empty()
                        && std::path::Path::new(&format!("/proc/{}", holder.trim())).exists();
                    if !alive {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{} is held by pid {holder}",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts PostgreSQL again however the test ends.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        stack("pg-start");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_loses_nothing_and_duplicates_nothing() {
    let run = Run::new("outage");
    let consumer = run.consumer(1);
    let (producer, sent) = run.produce(400.0, 20);
    run.wait_for_rows(400, Duration::from_secs(30)).await;

    let lock = Lock::take("flowodm-postgres-outage.lock", Duration::from_secs(120));
    let restart = Restart;
    stack("pg-stop");
    assert!(
        run.db.connect().await.is_err(),
        "PostgreSQL still answers after dev/stack pg-stop: this test needs the dev/stack database"
    );
    let rows_before = {
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(restart); // pg-start, waiting until it answers
        run.rows().await
    };
    drop(lock);

    let summary = producer.await.unwrap();
    assert_eq!((summary.sent, summary.delivered), (8000, 8000));
    // Orders kept arriving during the outage and were stored after it.
    assert!(rows_before < 8000, "{rows_before}");
    run.wait_for_rows(8000, Duration::from_secs(60)).await;
    let stats = consumer.terminate();
    assert!(
        stats["failed_attempts"].as_u64().unwrap() > 0,
        "the consumer never noticed the outage: {stats}"
    );
    assert_eq!(stats["dead_lettered"], 0, "{stats}");
    assert_eq!(stats["rejected"], 0, "{stats}");
    let sent = sent.lock().unwrap().clone();
    run.assert_stored_exactly(&sent).await;
    run.cleanup().await;
}
