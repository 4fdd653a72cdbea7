//! The team's event bus: where `forward` puts accepted events, in batches.

mod eventbridge;
mod json_lines;

use std::future::Future;

pub use eventbridge::EventBridgeSink;
pub use json_lines::JsonLinesSink;

/// `PutEvents` takes at most this many entries per call...
pub const MAX_BATCH_ENTRIES: usize = 10;
/// ...and at most this many bytes of entries in all, counted as `OutgoingEvent::size_bytes`.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// One event as EventBridge takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent<'a> {
    pub source: &'a str,
    pub detail_type: &'a str,
    /// A JSON object: see `envelope::detail`.
    pub detail: &'a str,
}

impl OutgoingEvent<'_> {
    /// The entry's size as EventBridge counts it against its limits (no `Time`, no `Resources`).
    pub fn size_bytes(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forwarding failed: {0}")]
pub struct ForwardError(pub String);

/// Where forwarded events go. Implemented for EventBridge and, for local runs and tests, for
/// any writer (one JSON line per event).
pub trait EventSink: Send + Sync {
    /// Puts up to `MAX_BATCH_ENTRIES` events (at most `MAX_BATCH_BYTES`) on the bus in one call.
    /// `Err` when the call failed as a whole; otherwise one result per event, in order: a bus
    /// may refuse some entries of a call and take the others.
    fn put_batch(
        &self,
        events: &[OutgoingEvent<'_>],
    ) -> impl Future<Output = Result<Vec<Result<(), ForwardError>>, ForwardError>> + Send;
}
