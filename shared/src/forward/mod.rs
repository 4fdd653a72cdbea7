//! Forwarding: hand each new event to the team's event bus.

mod eventbridge;
mod json_lines;

use std::future::Future;

pub use eventbridge::EventBridgeSink;
pub use json_lines::JsonLinesSink;

/// One event as EventBridge takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent<'a> {
    pub source: &'a str,
    pub detail_type: &'a str,
    /// A JSON object: see `envelope::detail`.
    pub detail: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[error("forwarding failed: {0}")]
pub struct ForwardError(pub String);

/// Where forwarded events go. Implemented for EventBridge and, for local runs and tests, for
/// any writer (one JSON line per event).
pub trait EventSink: Send + Sync {
    fn forward(
        &self,
        event: &OutgoingEvent<'_>,
    ) -> impl Future<Output = Result<(), ForwardError>> + Send;
}
