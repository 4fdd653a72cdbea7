//! An example consumer: a Lambda that an EventBridge rule on the stack's bus invokes with each
//! Sendblue event, acting on each event once although the bus may bring it twice.
//!
//! Deploy it with a rule such as `{"source": ["sendblue"], "detail-type": ["receive"]}` and a
//! DynamoDB table of its own (`CONSUMER_TABLE`, partition key `pk`, a string). An SQS target
//! gets the same JSON as each message body.

use aws_sdk_dynamodb::{types::AttributeValue, Client};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sendblue_events::{BusEvent, Payload};

/// Claims the event's dedup id with a conditional write, does the work only when the claim is
/// new, and gives the claim back when the work fails, so that the retry does it.
pub async fn handle_once(dynamodb: &Client, table: &str, event: &BusEvent) -> Result<bool, Error> {
    let pk = AttributeValue::S(event.dedup_id());
    let claim = dynamodb.put_item().table_name(table).item("pk", pk.clone());
    match claim.condition_expression("attribute_not_exists(pk)").send().await {
        Err(e)
            if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            return Ok(false); // seen before: done already
        }
        claimed => claimed?,
    };
    if let Err(error) = work(event) {
        dynamodb.delete_item().table_name(table).key("pk", pk).send().await?;
        return Err(error);
    }
    Ok(true)
}

/// The work itself: here, a line saying what happened.
fn work(event: &BusEvent) -> Result<(), Error> {
    let what = match event.payload()? {
        Payload::Receive(message) => {
            format!("message from {}", message.from_number.as_deref().unwrap_or("?"))
        }
        Payload::Outbound(message) | Payload::StatusCallback(message) => {
            let status = message.status.map(|s| s.to_string()).unwrap_or_default();
            format!("message to {} is now {status}", message.number.as_deref().unwrap_or("?"))
        }
        _ => format!("{} event", event.webhook_type()),
    };
    tracing::info!(dedup_id = event.dedup_id(), origin = ?event.detail.metadata.origin, "{what}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().init();
    let dynamodb = Client::new(&aws_config::load_from_env().await);
    let table = std::env::var("CONSUMER_TABLE")?;
    let (dynamodb, table) = (&dynamodb, table.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<BusEvent>| async move {
        handle_once(dynamodb, table, &event.payload).await.map(|_| ())
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use sendblue_testkit::Emulators;

    fn event(dedup_key: &str, data: serde_json::Value) -> BusEvent {
        serde_json::from_value(serde_json::json!({
            "version": "0", "id": "1", "detail-type": "receive", "source": "sendblue",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [],
            "detail": {
                "metadata": {"webhook_type": "receive", "dedup_key": dedup_key,
                             "received_at": "2026-01-01T00:00:00.000Z", "request_id": "r",
                             "origin": "webhook"},
                "data": data
            }
        }))
        .unwrap()
    }

    #[tokio::test]
    #[ignore = "needs DynamoDB Local: run scripts/test.sh"]
    async fn each_event_is_acted_on_once_and_work_that_failed_is_done_on_the_retry() {
        let aws = Emulators::connect().await;
        let table = aws.create_table().await;
        let message =
            event("m-1", serde_json::json!({"message_handle": "m-1", "from_number": "+1"}));
        assert!(handle_once(&aws.dynamodb, &table, &message).await.unwrap(), "done");
        assert!(!handle_once(&aws.dynamodb, &table, &message).await.unwrap(), "again: skipped");
        // Work that fails (a body that is no object, which the receiver never forwards) gives
        // its claim back: each retry tries again instead of skipping it.
        let broken = event("m-2", serde_json::json!("not an object"));
        for _ in 0..2 {
            assert!(handle_once(&aws.dynamodb, &table, &broken).await.is_err());
        }
        let scanned = aws.scan(&table).await;
        let claimed: Vec<_> = scanned.iter().map(|item| item["pk"].as_s().unwrap()).collect();
        assert_eq!(claimed, ["receive#m-1"]);
    }
}
