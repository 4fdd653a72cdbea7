//! AWS round trips, counted by an SDK interceptor on every request sent (retries included):
//! a receiver makes one DynamoDB call per delivery, new or duplicate, and none for a refusal;
//! `forward` makes one consistent read, one `PutEvents` and one mark per event for a batch.

use sendblue_testkit::*;
use sendblue_webhooks::bus::EventBridgeSink;
use sendblue_webhooks::dedup::DynamoDbStore;
use sendblue_webhooks::forward::Forwarder;
use sendblue_webhooks::pipeline::ByStream;
use sendblue_webhooks::{WebhookPipeline, WebhookType};

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_delivery_costs_one_write_and_a_batch_one_read_one_put_and_a_mark_each() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, queue) = aws.create_bus().await;
    let (dynamodb_calls, eventbridge_calls) = (CaptureBodies::default(), CaptureBodies::default());
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws.dynamodb.config().to_builder().interceptor(dynamodb_calls.clone()).build(),
    );
    let eventbridge = aws_sdk_eventbridge::Client::from_conf(
        aws.eventbridge.config().to_builder().interceptor(eventbridge_calls.clone()).build(),
    );
    let backend = sendblue_webhooks::config::Backend::Aws { table_name: table.clone() };
    let receiver = |t: WebhookType| {
        let store = DynamoDbStore::new(dynamodb.clone(), &table);
        WebhookPipeline::new(t, &config(t, backend.clone()), store, ByStream)
    };
    let mut pks = Vec::new();
    for t in WebhookType::ALL {
        assert_eq!(answer(&receiver(t), fixture(t.binary_name())).await.0, 200);
        assert_eq!(dynamodb_calls.count_since_last(), 1, "{t}: new event");
        assert_eq!(answer(&receiver(t), fixture(t.binary_name())).await.0, 200);
        assert_eq!(dynamodb_calls.count_since_last(), 1, "{t}: duplicate");
        let item = aws.scan(&table).await;
        pks = item.iter().map(|i| i["pk"].as_s().unwrap().clone()).collect();
    }
    for bad in ["bad/wrong-secret", "bad/get-method", "bad/not-json", "bad/missing-key-field"] {
        assert!(answer(&receiver(WebhookType::Receive), fixture(bad)).await.0 >= 400);
        assert_eq!(dynamodb_calls.count_since_last(), 0, "{bad}");
    }
    assert_eq!(eventbridge_calls.count_since_last(), 0, "receivers call no bus");

    let forwarder = Forwarder {
        store: DynamoDbStore::new(dynamodb.clone(), &table),
        sink: EventBridgeSink::new(eventbridge.clone(), &bus),
        event_source: "sendblue".into(),
        dedup_ttl_seconds: 3600,
    };
    let pks: Vec<&str> = pks.iter().map(String::as_str).collect();
    let report = forwarder.forward(&pks).await;
    assert_eq!((report.forwarded, report.failed_at), (8, None), "{report:?}");
    assert_eq!(eventbridge_calls.count_since_last(), 1, "eight events, one PutEvents");
    assert_eq!(dynamodb_calls.count_since_last(), 1 + 8, "one BatchGetItem, a mark each");
    assert_eq!(aws.drain(&queue).await.len(), 8);
}
