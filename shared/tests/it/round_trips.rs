//! AWS round trips per delivery, counted by an SDK interceptor on every request sent (retries
//! included): a new event costs 3 (claim, forward, complete), a duplicate 1, a refusal 0.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use sendblue_testkit::*;
use sendblue_webhooks::dedup::DynamoDbStore;
use sendblue_webhooks::forward::EventBridgeSink;
use sendblue_webhooks::{WebhookPipeline, WebhookType};

#[derive(Debug, Clone, Default)]
struct CountRequests(Arc<AtomicUsize>);

impl CountRequests {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
#[ignore = "needs DynamoDB Local and moto: run scripts/test.sh"]
async fn a_new_event_costs_three_round_trips_a_duplicate_one_a_refusal_none() {
    let aws = Emulators::connect().await;
    let table = aws.create_table().await;
    let (bus, _queue) = aws.create_bus().await;
    let (dynamodb_calls, eventbridge_calls) = (CountRequests::default(), CountRequests::default());
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
        assert_eq!((dynamodb_calls.take(), eventbridge_calls.take()), (2, 1), "{t}: new event");
        assert_eq!(answer(&receiver, fixture(t.binary_name())).await.0, 200);
        assert_eq!((dynamodb_calls.take(), eventbridge_calls.take()), (1, 0), "{t}: duplicate");
    }
    let receiver = WebhookPipeline::new(
        WebhookType::Receive,
        &config(WebhookType::Receive, backend),
        DynamoDbStore::new(dynamodb, &table),
        EventBridgeSink::new(eventbridge, &bus),
    );
    for bad in ["bad/wrong-secret", "bad/get-method", "bad/not-json", "bad/missing-key-field"] {
        assert!(answer(&receiver, fixture(bad)).await.0 >= 400);
        assert_eq!((dynamodb_calls.take(), eventbridge_calls.take()), (0, 0), "{bad}");
    }
}
