//! AWS round trips per delivery, counted by an SDK interceptor on every request sent (retries
//! included): a new event costs 3 (claim, forward, complete), a duplicate 1, a refusal 0.

use sendblue_testkit::*;
use sendblue_webhooks::dedup::DynamoDbStore;
use sendblue_webhooks::forward::EventBridgeSink;
use sendblue_webhooks::{WebhookPipeline, WebhookType};

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_new_event_costs_three_round_trips_a_duplicate_one_a_refusal_none() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, _queue) = aws.create_bus().await;
    let (dynamodb_calls, eventbridge_calls) = (CaptureBodies::default(), CaptureBodies::default());
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws.dynamodb.config().to_builder().interceptor(dynamodb_calls.clone()).build(),
    );
    let eventbridge = aws_sdk_eventbridge::Client::from_conf(
        aws.eventbridge.config().to_builder().interceptor(eventbridge_calls.clone()).build(),
    );
    let backend = sendblue_webhooks::config::Backend::Aws {
        table_name: table.clone(),
        bus_name: bus.clone(),
    };
    for t in WebhookType::ALL {
        let receiver = WebhookPipeline::new(
            t,
            &config(t, backend.clone()),
            DynamoDbStore::new(dynamodb.clone(), &table),
            EventBridgeSink::new(eventbridge.clone(), &bus),
        );
        assert_eq!(answer(&receiver, fixture(t.binary_name())).await.0, 200);
        assert_eq!(
            (dynamodb_calls.count_since_last(), eventbridge_calls.count_since_last()),
            (2, 1),
            "{t}: new event"
        );
        assert_eq!(answer(&receiver, fixture(t.binary_name())).await.0, 200);
        assert_eq!(
            (dynamodb_calls.count_since_last(), eventbridge_calls.count_since_last()),
            (1, 0),
            "{t}: duplicate"
        );
    }
    let receiver = WebhookPipeline::new(
        WebhookType::Receive,
        &config(WebhookType::Receive, backend),
        DynamoDbStore::new(dynamodb, &table),
        EventBridgeSink::new(eventbridge, &bus),
    );
    for bad in ["bad/wrong-secret", "bad/get-method", "bad/not-json", "bad/missing-key-field"] {
        assert!(answer(&receiver, fixture(bad)).await.0 >= 400);
        assert_eq!(
            (dynamodb_calls.count_since_last(), eventbridge_calls.count_since_last()),
            (0, 0),
            "{bad}"
        );
    }
}
