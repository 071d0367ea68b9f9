//! The pipeline against the stack: the producer in the test, `order-consumer` as a real
//! process, PostgreSQL checked row by row. Each test has its own topic, consumer group and
//! database schema.

mod common;

use std::time::Duration;

use common::Run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_is_stored_once_in_customer_order_and_a_replay_writes_nothing() {
    let run = Run::new("once");
    let consumer = run.consumer(1);
    let (producer, sent) = run.produce(1500.0, 2);
    let summary = producer.await.unwrap();
    assert_eq!(summary.sent, 3000);
    assert_eq!((summary.delivered, summary.failed), (3000, 0));
    // Keyed by customer, the orders spread over the 3 partitions.
    assert_eq!(summary.partitions.len(), 3, "{:?}", summary.partitions);
    assert!(
        summary.partitions.values().all(|&n| n > 500),
        "{:?}",
        summary.partitions
    );

    run.wait_for_rows(3000, Duration::from_secs(60)).await;
    let stats = consumer.terminate();
    assert_eq!(stats["inserted"], 3000);
    assert_eq!(stats["dead_lettered"], 0);
    let sent = sent.lock().unwrap().clone();
    run.assert_stored_exactly(&sent).await;

    // A second group reads the whole topic again: every order is already there.
    let replay = Run {
        group: format!("{}-replay", run.group),
        topic: run.topic.clone(),
        db: run.db.clone(),
        dir: run.dir.clone(),
    };
    let again = replay.consumer(2);
    let admin = Run::client().admin().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let lag = admin
            .group_lag(
                &replay.group,
                Some(vec![replay.topic.clone()]),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        if lag.len() == 3 && lag.iter().all(|p| p.committed.is_some() && p.lag == 0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "replay lag: {lag:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let stats = again.terminate();
    assert_eq!(
        (stats["inserted"].as_u64(), stats["duplicates"].as_u64()),
        (Some(0), Some(3000))
    );
    // Each writer connection's first batch went by COPY, met stored orders and was written again
    // with the INSERT, which the rest of the replay then kept.
    assert!(stats["copy_conflicts"].as_u64() >= Some(1), "{stats}");
    assert_eq!(stats["insert_batches"], stats["batches"], "{stats}");
    run.assert_stored_exactly(&sent).await;
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_again_and_again_still_stores_each_order_once() {
    let run = Run::new("kill");
    let total = 8000;
    let (producer, sent) = run.produce(800.0, 10);
    let mut consumer = run.consumer(0);
    run.wait_for_rows(1, Duration::from_secs(30)).await;
    let mut kills = Vec::new();
    for n in 1..=4 {
        tokio::time::sleep(Duration::from_millis(1000 + 300 * n as u64)).await;
        let rows = run.rows().await;
        consumer.kill();
        kills.push(rows);
        consumer = run.consumer(n);
    }
    let summary = producer.await.unwrap();
    assert_eq!((summary.sent, summary.delivered), (total, total));
    run.wait_for_rows(total, Duration::from_secs(60)).await;
    // The kills fell in the middle of the run, with work done and work left.
    assert!(
        kills.iter().all(|&r| r > 0 && r < total) && kills.windows(2).all(|w| w[0] <= w[1]),
        "rows at each kill: {kills:?}"
    );
    let stats = consumer.terminate();
    assert_eq!(stats["dead_lettered"], 0);
    let sent = sent.lock().unwrap().clone();
    run.assert_stored_exactly(&sent).await;
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_the_database_rejects_goes_alone_to_the_dead_letter_topic() {
    use flowodm::consumer::Consumed;
    use food_pipeline::order::MockOrders;

    let run = Run::new("reject");
    for topic in [run.topic.clone(), format!("{}.DLQ", run.topic)] {
        food_pipeline::topic::ensure_orders_topic(&Run::client(), &topic)
            .await
            .unwrap();
    }
    let mut mock = MockOrders::new(3);
    let mut orders: Vec<_> = (0..30).map(|_| mock.next_order()).collect();
    // Too long for VARCHAR(50): PostgreSQL refuses the row (SQLSTATE 22001) every time.
    orders[12].order_id = format!("ORD-{}", "9".repeat(60));
    let producer = Run::client()
        .producer::<food_pipeline::order::Order>()
        .topic(run.topic.clone())
        .build()
        .unwrap();
    for r in producer.send_many(&orders).await {
        r.unwrap();
    }
    let consumer = run.consumer(1);
    run.wait_for_rows(29, Duration::from_secs(60)).await;

    // The rejected order is on the dead-letter topic, with the database's reason.
    let dlq = Run::client()
        .consumer::<food_pipeline::order::Order>()
        .topics([format!("{}.DLQ", run.topic)])
        .group(format!("{}-dlq-reader", run.group))
        .build()
        .unwrap();
    let record = loop {
        match dlq.consume_one(Duration::from_secs(30)).await.unwrap() {
            Consumed::Record(r) => break r,
            Consumed::Timeout => panic!("nothing on the dead-letter topic"),
            _ => {}
        }
    };
    assert_eq!(record.value, orders[12]);
    let header = |k: &str| {
        record
            .headers
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.clone())
            .map(|v| String::from_utf8(v).unwrap())
    };
    assert!(
        header("flowodm.error.message").is_some_and(|m| m.contains("22001")),
        "{:?}",
        record.headers
    );
    let stats = consumer.terminate();
    assert_eq!(
        (stats["rejected"].as_u64(), stats["dead_lettered"].as_u64()),
        (Some(1), Some(1))
    );
    let mut stored = orders.clone();
    stored.remove(12);
    run.assert_stored_exactly(&stored).await;
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_flushes_everything_it_sent_on_sigterm() {
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let run = Run::new("sigterm");
    let summary_path = run.dir.join("producer.json");
    let mut producer = std::process::Command::new(env!("CARGO_BIN_EXE_order-producer"))
        .env("KAFKA_TOPIC_ORDERS", &run.topic)
        .env("PRODUCER_RATE", "500")
        .env("PRODUCER_DURATION", "0") // for ever
        .env("LOG_LEVEL", "warn")
        .arg("--summary")
        .arg(&summary_path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until it has produced for a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let end_offsets = |topic: &str| -> i64 {
        let c: BaseConsumer = flowodm_test::plaintext_config().create().unwrap();
        (0..3)
            .map(|p| {
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
                    .map(|w| w.1)
                    .unwrap_or(0)
            })
            .sum()
    };
    while end_offsets(&run.topic) < 500 {
        assert!(
            std::time::Instant::now() < deadline,
            "the producer did not get going"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &producer.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = producer.wait().unwrap();
    assert!(exit.success(), "{exit}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let sent = summary["sent"].as_i64().unwrap();
    assert_eq!(summary["delivered"].as_i64(), Some(sent), "{summary}");
    assert_eq!(summary["failed"].as_i64(), Some(0), "{summary}");
    // Everything it sent is in the topic, and nothing more.
    assert_eq!(end_offsets(&run.topic), sent);
    let _ = std::fs::remove_dir_all(&run.dir);
}

/// The README's main command: `dev/demo` builds `pipeline-demo` (release) and runs it on the
/// stack. Here the debug build runs it smaller; its report must pass every check.
#[test]
fn the_demo_passes_every_check() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline-demo"))
        .args(["--rate", "200", "--duration", "2", "--seed", "7"])
        .output()
        .expect("pipeline-demo starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{report}");
    for line in [
        "orders produced = rows stored            400 produced, 400 rows",
        "exactly the produced orders, each once   order numbers 1..=400: all there",
        "all checks passed",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{report}");
    }
}
