//! An example consumer: a Lambda that an EventBridge rule on the stack's bus invokes with each
//! Sendblue event, reading it through `sendblue-events` alone (no AWS SDK needed to read).
//!
//! Deploy it with a rule such as `{"source": ["sendblue"], "detail-type": ["receive"]}`; an SQS
//! target gets the same JSON as each message body. Events can arrive twice and out of order:
//! a consumer that must act once keeps `(metadata.webhook_type, metadata.dedup_key)` of what it
//! has done (a conditional write, as the receiver does) and skips what it has seen.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use sendblue_events::{BusEvent, Payload};

/// What the example does with one event: a line saying what happened.
fn describe(event: &BusEvent) -> String {
    let key = &event.detail.metadata.dedup_key;
    match event.payload() {
        Some(Ok(Payload::Receive(message))) => format!(
            "message from {} ({key})",
            message.from_number.as_deref().unwrap_or("an unknown number")
        ),
        Some(Ok(Payload::Outbound(message) | Payload::StatusCallback(message))) => format!(
            "message to {} is now {} ({key})",
            message.number.as_deref().unwrap_or("an unknown number"),
            message.status.map(String::from).unwrap_or_default()
        ),
        Some(Ok(_)) => format!("{} event ({key})", event.detail_type),
        Some(Err(error)) => format!("unreadable {} body: {error}", event.detail_type),
        None => format!("a type this version does not know: {}", event.detail_type),
    }
}

async fn handle(event: LambdaEvent<BusEvent>) -> Result<(), Error> {
    tracing::info!(origin = ?event.payload.detail.metadata.origin, "{}", describe(&event.payload));
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().init();
    lambda_runtime::run(service_fn(handle)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_event_as_a_rule_delivers_it() {
        let event: BusEvent = serde_json::from_value(serde_json::json!({
            "version": "0", "id": "1", "detail-type": "receive", "source": "sendblue",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [],
            "detail": {
                "metadata": {"webhook_type": "receive", "dedup_key": "m-1",
                             "received_at": "2026-01-01T00:00:00.000Z", "request_id": "r",
                             "origin": "webhook"},
                "data": {"message_handle": "m-1", "from_number": "+15550001111", "content": "hi"}
            }
        }))
        .unwrap();
        assert_eq!(describe(&event), "message from +15550001111 (m-1)");
    }
}
