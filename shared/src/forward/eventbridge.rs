//! The EventBridge sink: one `PutEvents` call per event.

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
    async fn forward(&self, event: &OutgoingEvent<'_>) -> Result<(), ForwardError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(event.source)
            .detail_type(event.detail_type)
            .detail(event.detail)
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|err| ForwardError(DisplayErrorContext(err).to_string()))?;
        // PutEvents answers 200 even when an entry was refused: a partial failure is a failure.
        let failed_entry = output.entries().iter().find(|e| e.error_code().is_some());
        if output.failed_entry_count() > 0 || failed_entry.is_some() {
            let (code, message) = failed_entry
                .map(|e| {
                    (e.error_code().unwrap_or_default(), e.error_message().unwrap_or_default())
                })
                .unwrap_or_default();
            return Err(ForwardError(format!(
                "EventBridge refused the entry ({} failed): {code} {message}",
                output.failed_entry_count()
            )));
        }
        Ok(())
    }
}
