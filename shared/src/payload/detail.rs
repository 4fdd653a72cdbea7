//! The forwarded event's `Detail`, for consumers reading it back from EventBridge.

use serde::{Deserialize, Serialize};

/// `{"metadata": ..., "data": ...}`; `T` is one of the payload types, or `serde_json::Value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardedDetail<T> {
    pub metadata: ForwardedMetadata,
    pub data: T,
}

/// The owned twin of `envelope::Metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedMetadata {
    pub webhook_type: String,
    /// With `webhook_type`, identifies the event: deduplicate on the pair.
    pub dedup_key: String,
    pub received_at: String,
    pub request_id: String,
}
