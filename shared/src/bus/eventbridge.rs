//! The EventBridge sink: one `PutEvents` call per batch.

use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use super::{EventSink, ForwardError, OutgoingEvent};

#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: Client,
    bus_name: String,
}

impl EventBridgeSink {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }
}

impl EventSink for EventBridgeSink {
    async fn put_batch(
        &self,
        events: &[OutgoingEvent<'_>],
    ) -> Result<Vec<Result<(), ForwardError>>, ForwardError> {
        let entries = events.iter().map(|event| {
            PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus_name)
                .source(event.source)
                .detail_type(event.detail_type)
                .detail(event.detail)
                .build()
        });
        let output = self
            .client
            .put_events()
            .set_entries(Some(entries.collect()))
            .send()
            .await
            .map_err(|err| ForwardError(DisplayErrorContext(err).to_string()))?;
        // PutEvents answers 200 even when entries were refused: each result entry says.
        let results = output.entries();
        if results.len() != events.len() {
            return Err(ForwardError(format!(
                "EventBridge answered {} entries for {} sent",
                results.len(),
                events.len()
            )));
        }
        Ok(results
            .iter()
            .map(|entry| match entry.error_code() {
                None => Ok(()),
                Some(code) => Err(ForwardError(format!(
                    "EventBridge refused the entry: {code} {}",
                    entry.error_message().unwrap_or_default()
                ))),
            })
            .collect())
    }
}
