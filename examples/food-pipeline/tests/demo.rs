//! The quick-start demo against the stack: every order comes back, field for field.

use flowodm::registry::SchemaRegistryClient;
use flowodm::KafkaConfig;
use flowodm_test::{bootstrap_servers, registry_url};

#[tokio::test]
async fn demo_orders_come_back_intact() {
    let kafka = KafkaConfig::new(bootstrap_servers());
    let registry = SchemaRegistryClient::new(&registry_url()).unwrap();
    let report = food_pipeline::run_demo(&kafka, &registry, 12)
        .await
        .unwrap();
    assert_eq!(report.produced.len(), 12);
    assert_eq!(report.consumed.len(), 12);
    for order in &report.produced {
        assert_eq!(report.consumed.get(&order.order_id), Some(order));
    }
    // The registry holds the schema the messages were framed with.
    let latest = registry
        .latest_version("flowodm-demo-orders-value")
        .await
        .unwrap();
    assert_eq!(latest.id, report.schema_id);
}
