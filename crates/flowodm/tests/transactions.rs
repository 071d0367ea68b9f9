//! Transactions against the stack: aborted messages stay invisible to `read_committed`
//! consumers, and consume-transform-produce commits output and input offsets together.

use std::time::Duration;

use flowodm::consumer::{Consumed, TopicPartition};
use flowodm::registry::SchemaRegistryClient;
use flowodm::{Client, KafkaConfig, Model};
use flowodm_test::{bootstrap_servers, new_topic, registry_url, unique_name};

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(topic = "txn-in", key = "id", namespace = "dev.flowodm.txn")]
struct Order {
    id: String,
    cents: i64,
}

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(topic = "txn-out", key = "id", namespace = "dev.flowodm.txn")]
struct Invoice {
    id: String,
    cents_with_tax: i64,
}

const T: Duration = Duration::from_secs(30);

fn client() -> Client {
    Client::new(
        KafkaConfig::new(bootstrap_servers()),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    )
}

async fn read_committed(topic: &str) -> Vec<Invoice> {
    let consumer = client()
        .consumer::<Invoice>()
        .topics([topic])
        .group(unique_name("txn-reader"))
        .set("isolation.level", "read_committed")
        .build()
        .unwrap();
    let mut out = Vec::new();
    loop {
        match consumer.consume_one(Duration::from_secs(5)).await.unwrap() {
            Consumed::Record(r) => out.push(r.value),
            Consumed::Timeout => return out,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn aborted_messages_are_invisible_and_committed_ones_visible() {
    let topic = new_topic("txn-visibility", 1).await;
    let producer = client()
        .producer::<Invoice>()
        .topic(&topic)
        .transactional(unique_name("txn-vis"))
        .build()
        .unwrap();
    producer.init_transactions(T).await.unwrap();

    producer.begin_transaction().await.unwrap();
    producer
        .send(&Invoice {
            id: "aborted".into(),
            cents_with_tax: 1,
        })
        .await
        .unwrap();
    producer.abort_transaction(T).await.unwrap();

    producer.begin_transaction().await.unwrap();
    producer
        .send(&Invoice {
            id: "kept".into(),
            cents_with_tax: 2,
        })
        .await
        .unwrap();
    producer.commit_transaction(T).await.unwrap();

    let seen = read_committed(&topic).await;
    assert_eq!(
        seen,
        [Invoice {
            id: "kept".into(),
            cents_with_tax: 2
        }]
    );
}

#[tokio::test]
async fn consume_transform_produce_exactly_once() {
    let input = new_topic("txn-input", 2).await;
    let output = new_topic("txn-output", 2).await;
    let orders: Vec<Order> = (0..10)
        .map(|i| Order {
            id: format!("o{i}"),
            cents: 100 * i,
        })
        .collect();
    let plain = client().producer::<Order>().topic(&input).build().unwrap();
    for r in plain.send_many(&orders).await {
        r.unwrap();
    }

    let group = unique_name("txn-group");
    let consumer = client()
        .consumer::<Order>()
        .topics([&input])
        .group(&group)
        .set("isolation.level", "read_committed")
        .build()
        .unwrap();
    let producer = client()
        .producer::<Invoice>()
        .topic(&output)
        .transactional(unique_name("txn-ctp"))
        .build()
        .unwrap();
    producer.init_transactions(T).await.unwrap();

    // Two transactions of five: the first aborted (as if the service crashed before commit),
    // then everything again and committed.
    let mut round = 0;
    let mut done = 0;
    while done < orders.len() {
        let batch: Vec<_> = consumer
            .consume_batch(Some(5), Duration::from_secs(10))
            .await
            .unwrap()
            .into_iter()
            .filter_map(Consumed::record)
            .collect();
        assert!(!batch.is_empty(), "input ran dry after {done}");
        producer.begin_transaction().await.unwrap();
        for r in &batch {
            let invoice = Invoice {
                id: r.value.id.clone(),
                cents_with_tax: r.value.cents * 119 / 100,
            };
            producer.send(&invoice).await.unwrap();
        }
        let refs: Vec<_> = batch.iter().collect();
        producer
            .send_consumer_offsets(&consumer, &refs, T)
            .await
            .unwrap();
        if round == 0 {
            producer.abort_transaction(T).await.unwrap();
            // Rewind to what the group has committed: nothing yet.
            for p in consumer.assignment().unwrap() {
                consumer.seek(&p, rdkafka::Offset::Beginning, T).unwrap();
            }
        } else {
            producer.commit_transaction(T).await.unwrap();
            done += batch.len();
        }
        round += 1;
    }

    let mut seen: Vec<String> = read_committed(&output)
        .await
        .into_iter()
        .map(|i| i.id)
        .collect();
    seen.sort();
    let mut expected: Vec<String> = orders.iter().map(|o| o.id.clone()).collect();
    expected.sort();
    assert_eq!(
        seen, expected,
        "every order once: the aborted round left nothing behind"
    );

    // The input offsets were committed by the transactions.
    let committed = consumer.committed(T).unwrap();
    let total: i64 = committed.iter().map(|(_, o)| o.unwrap_or(0)).sum();
    assert_eq!(total, 10, "{committed:?}");
    assert!(committed
        .iter()
        .all(|(TopicPartition { topic, .. }, _)| topic == &input));
}

#[tokio::test]
async fn send_and_forget_in_transactions_leaves_failures_to_the_commit() {
    let topic = new_topic("txn-forget", 1).await;
    let producer = client()
        .producer::<Invoice>()
        .topic(&topic)
        .transactional(unique_name("txn-forget"))
        .build()
        .unwrap();
    producer.init_transactions(T).await.unwrap();
    let invoice = |i: i64| Invoice {
        id: format!("inv-{i}"),
        cents_with_tax: i,
    };

    // Aborted at once: messages still queued are withdrawn on purpose, not lost.
    producer.begin_transaction().await.unwrap();
    for i in 0..50 {
        producer.send_and_forget(&invoice(i)).unwrap();
    }
    producer.abort_transaction(T).await.unwrap();
    producer.flush(T).unwrap();

    producer.begin_transaction().await.unwrap();
    for i in 100..103 {
        producer.send_and_forget(&invoice(i)).unwrap();
    }
    producer.commit_transaction(T).await.unwrap();
    producer.flush(T).unwrap();
    assert_eq!(
        read_committed(&topic).await,
        (100..103).map(invoice).collect::<Vec<_>>()
    );
}
