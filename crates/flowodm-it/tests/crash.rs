//! A consumer-loop service killed with SIGKILL again and again during a 20k-message run: every
//! message is handled at least once, and the committed offsets never skip one.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use flowodm::registry::SchemaRegistryClient;
use flowodm::{Client, KafkaConfig};
use flowodm_it::Job;
use flowodm_test::{bootstrap_servers, new_topic, registry_url, unique_name};

const TOTAL: i64 = 20_000;

fn client() -> Client {
    Client::new(
        KafkaConfig::new(bootstrap_servers()),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    )
}

/// A worker process, killed if the test ends early (so no orphan keeps consuming).
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(topic: &str, group: &str, log: &std::path::Path) -> Worker {
    Worker(
        Command::new(env!("CARGO_BIN_EXE_loop-worker"))
            .args([topic, group, log.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("worker starts"),
    )
}

/// (partition, offset) pairs and seqs in the worker's log.
fn handled(log: &std::path::Path) -> (BTreeSet<(i32, i64)>, Vec<i64>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut at = BTreeSet::new();
    let mut seqs = Vec::new();
    // Only whole lines: the worker may be writing the last one.
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let f: Vec<i64> = line
            .trim_end()
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        at.insert((f[0] as i32, f[1]));
        seqs.push(f[2]);
    }
    (at, seqs)
}

async fn committed(group: &str, topic: &str) -> BTreeMap<i32, Option<i64>> {
    client()
        .admin()
        .unwrap()
        .group_lag(group, Some(vec![topic.into()]), Duration::from_secs(10))
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.partition, l.committed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_nothing_and_commits_skip_nothing() {
    let topic = new_topic("it-crash", 3).await;
    let producer = client().producer::<Job>().topic(&topic).build().unwrap();
    let jobs: Vec<Job> = (0..TOTAL)
        .map(|seq| Job {
            key: format!("k{}", seq % 31),
            seq,
        })
        .collect();
    for chunk in jobs.chunks(5000) {
        for r in producer.send_many(chunk).await {
            r.unwrap();
        }
    }
    let group = unique_name("it-crash-g");
    let dir = std::env::temp_dir().join(unique_name("it-crash"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("handled.log");

    let mut kills = 0;
    for round in 0..4 {
        let mut worker = spawn(&topic, &group, &log);
        tokio::time::sleep(Duration::from_millis(1500 + 700 * round)).await;
        worker.0.kill().unwrap(); // SIGKILL: no shutdown, no final commit
        worker.0.wait().unwrap();
        kills += 1;
        // Every offset below the committed position was handled: commits never skip.
        let (done, _) = handled(&log);
        for (partition, c) in committed(&group, &topic).await {
            for offset in 0..c.unwrap_or(0) {
                assert!(
                    done.contains(&(partition, offset)),
                    "round {round}: {partition}@{offset} committed but never handled"
                );
            }
        }
    }

    // A last worker runs until everything is handled, then stops gracefully.
    let mut worker = spawn(&topic, &group, &log);
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let (_, seqs) = handled(&log);
        if seqs.iter().collect::<BTreeSet<_>>().len() == TOTAL as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {TOTAL} handled",
            seqs.iter().collect::<BTreeSet<_>>().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = worker.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = worker.0.wait().unwrap();
    assert!(status.success(), "graceful stop: {status:?}");

    let (_, seqs) = handled(&log);
    let unique: BTreeSet<i64> = seqs.iter().copied().collect();
    assert_eq!(
        unique,
        (0..TOTAL).collect(),
        "every message handled at least once"
    );
    let ends: i64 = committed(&group, &topic)
        .await
        .values()
        .map(|c| c.unwrap_or(0))
        .sum();
    assert_eq!(ends, TOTAL, "everything committed after the graceful stop");
    eprintln!(
        "{kills} kills; {} handlings for {TOTAL} messages ({} repeated after kills)",
        seqs.len(),
        seqs.len() - TOTAL as usize
    );
    std::fs::remove_dir_all(&dir).ok();
}
