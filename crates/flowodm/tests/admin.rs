//! Topic and group administration against the stack.

use std::time::Duration;

use flowodm::admin::TopicSpec;
use flowodm::registry::SchemaRegistryClient;
use flowodm::{Client, Error, KafkaConfig, Model};
use flowodm_test::{bootstrap_servers, registry_url, unique_name};

const T: Duration = Duration::from_secs(30);

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(topic = "admin-tests", namespace = "dev.flowodm.admin")]
struct Tick {
    n: i64,
}

fn client() -> Client {
    Client::new(
        KafkaConfig::new(bootstrap_servers()),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    )
}

#[tokio::test]
async fn topics_are_created_described_listed_and_deleted() {
    let admin = client().admin().unwrap();
    let name = unique_name("admin-topic");
    let spec = TopicSpec::new(&name, 3).config("cleanup.policy", "compact");
    admin.create_topic(&spec, T).await.unwrap();
    assert!(
        !admin.ensure_topic(&spec, T).await.unwrap(),
        "already there"
    );
    let err = admin.create_topic(&spec, T).await.unwrap_err();
    assert!(matches!(err, Error::Kafka(_)), "{err:?}");

    let info = admin.describe_topic(&name, T).await.unwrap();
    assert_eq!(
        info.partitions.iter().map(|p| p.id).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(info
        .partitions
        .iter()
        .all(|p| p.replicas.len() == 1 && p.in_sync.len() == 1));
    assert!(admin.list_topics(T).await.unwrap().contains(&name));

    admin.delete_topic(&name, T).await.unwrap();
    let deadline = std::time::Instant::now() + T;
    while admin.list_topics(T).await.unwrap().contains(&name) {
        assert!(std::time::Instant::now() < deadline, "topic still listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn group_lag_counts_what_is_not_yet_committed() {
    let c = client();
    let admin = c.admin().unwrap();
    let topic = unique_name("admin-lag");
    admin
        .create_topic(&TopicSpec::new(&topic, 1), T)
        .await
        .unwrap();
    let producer = c.producer::<Tick>().topic(&topic).build().unwrap();
    let values: Vec<Tick> = (0..10).map(|n| Tick { n }).collect();
    for r in producer.send_many(&values).await {
        r.unwrap();
    }
    let group = unique_name("admin-group");
    let consumer = c
        .consumer::<Tick>()
        .topics([&topic])
        .group(&group)
        .build()
        .unwrap();
    for _ in 0..4 {
        let r = consumer.consume_one(T).await.unwrap().record().unwrap();
        consumer.commit(&r).unwrap();
    }
    let lag = admin.group_lag(&group, None, T).await.unwrap();
    assert_eq!(lag.len(), 1, "{lag:?}");
    assert_eq!((lag[0].committed, lag[0].end, lag[0].lag), (Some(4), 10, 6));
    assert!(admin
        .list_groups(T)
        .await
        .unwrap()
        .iter()
        .any(|g| g.name == group));
}

#[tokio::test]
async fn topic_offsets_and_an_admin_without_a_registry() {
    // No registry needed for administration.
    let admin = flowodm::admin::Admin::new(KafkaConfig::new(bootstrap_servers())).unwrap();
    let topic = unique_name("admin-offsets");
    admin
        .create_topic(&TopicSpec::new(&topic, 2), T)
        .await
        .unwrap();
    let empty = admin.topic_offsets(&topic, T).await.unwrap();
    assert_eq!(
        empty
            .iter()
            .map(|p| (p.partition, p.start, p.end))
            .collect::<Vec<_>>(),
        [(0, 0, 0), (1, 0, 0)]
    );
    let producer = client().producer::<Tick>().topic(&topic).build().unwrap();
    let values: Vec<Tick> = (0..5).map(|n| Tick { n }).collect();
    for r in producer.send_many(&values).await {
        r.unwrap();
    }
    let offsets = admin.topic_offsets(&topic, T).await.unwrap();
    assert_eq!(offsets.iter().map(|p| p.end - p.start).sum::<i64>(), 5);
    let err = admin
        .topic_offsets(&unique_name("admin-none"), T)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Kafka(_)), "{err:?}");
}
