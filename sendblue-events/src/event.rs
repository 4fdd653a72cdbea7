//! The forwarded event: the bus's envelope, the `detail`, and the receiver's metadata.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::payload::Payload;
use crate::webhook_type::WebhookType;

/// What the receiver adds to every body. Generic over the string type so that the receiver
/// writes it from borrowed strings and consumers read it into owned ones, from one definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata<S = String> {
    /// The webhook type, written by its name as in `detail-type`.
    pub webhook_type: WebhookType,
    /// With `webhook_type`, identifies the event: deduplicate on the pair.
    pub dedup_key: S,
    /// When the receiver took the event: RFC 3339, UTC, milliseconds.
    pub received_at: S,
    /// API Gateway's id of the request that delivered it (empty when there was none).
    pub request_id: S,
    /// How the event reached the receiver.
    #[serde(default)]
    pub origin: Origin,
}

/// How an event reached the receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Delivered by Sendblue's webhook.
    #[default]
    Webhook,
    /// Recovered from Sendblue's messages API after the webhook did not bring it.
    Reconciliation,
}

impl Origin {
    /// The name serde writes, for stores that keep it as a plain string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Webhook => "webhook",
            Origin::Reconciliation => "reconciliation",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Origin::Webhook, Origin::Reconciliation].into_iter().find(|o| o.as_str() == name)
    }
}

/// An event's `detail`: the metadata and the body exactly as Sendblue sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detail<T = Value> {
    pub metadata: Metadata,
    pub data: T,
}

/// A forwarded event as an EventBridge rule's Lambda target receives it (an SQS target gets
/// the same JSON as its message body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent<D = Detail> {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub region: String,
    pub detail: D,
}

impl BusEvent {
    /// The webhook type this event is.
    pub fn webhook_type(&self) -> WebhookType {
        self.detail.metadata.webhook_type
    }

    /// What identifies the event, `(webhook_type, dedup_key)`: the receiver forwards each pair
    /// once, but in one documented window twice. A consumer that must act once records the pair
    /// of what it did (a conditional write) and skips a pair it has seen.
    pub fn dedup_pair(&self) -> (WebhookType, &str) {
        (self.detail.metadata.webhook_type, &self.detail.metadata.dedup_key)
    }

    /// The pair as one string, `<webhook_type>#<dedup_key>`, for a key-value store's key.
    pub fn dedup_id(&self) -> String {
        let (webhook_type, dedup_key) = self.dedup_pair();
        format!("{webhook_type}#{dedup_key}")
    }

    /// `detail.data` read as the typed body of its type. It fails only when `data` is not a
    /// JSON object, which the receiver never forwards: fields of unexpected types read as
    /// `None` (see [`crate::payload`]).
    pub fn payload(&self) -> serde_json::Result<Payload> {
        Payload::from_value(self.webhook_type(), self.detail.data.clone())
    }

    /// The same, consuming the event: no copy of the body.
    pub fn into_payload(self) -> serde_json::Result<Payload> {
        Payload::from_value(self.detail.metadata.webhook_type, self.detail.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bus_event_reads_its_metadata_and_typed_payload() {
        let event: BusEvent = serde_json::from_value(json!({
            "version": "0", "id": "e-1", "detail-type": "outbound", "source": "sendblue",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [],
            "detail": {
                "metadata": {"webhook_type": "outbound", "dedup_key": "m-1#SENT",
                             "received_at": "2026-01-01T00:00:00.000Z", "request_id": "r",
                             "origin": "reconciliation"},
                "data": {"message_handle": "m-1", "status": "SENT", "future": 1}
            }
        }))
        .unwrap();
        assert_eq!(event.webhook_type(), WebhookType::Outbound);
        assert_eq!(event.detail.metadata.origin, Origin::Reconciliation);
        assert_eq!(event.dedup_pair(), (WebhookType::Outbound, "m-1#SENT"));
        assert_eq!(event.dedup_id(), "outbound#m-1#SENT");
        let Ok(Payload::Outbound(record)) = event.payload() else { panic!("{event:?}") };
        assert_eq!(record.message_handle.as_deref(), Some("m-1"));
        assert_eq!(record.extra["future"], 1, "unknown fields are kept");
        assert_eq!(event.into_payload().unwrap(), Payload::Outbound(record));
    }

    #[test]
    fn metadata_without_origin_came_by_webhook() {
        let metadata: Metadata = serde_json::from_value(json!({
            "webhook_type": "receive", "dedup_key": "k", "received_at": "t", "request_id": "r"
        }))
        .unwrap();
        assert_eq!(metadata.origin, Origin::Webhook);
        for origin in [Origin::Webhook, Origin::Reconciliation] {
            assert_eq!(serde_json::to_value(origin).unwrap(), origin.as_str());
            assert_eq!(Origin::from_name(origin.as_str()), Some(origin));
        }
        let written = Metadata {
            webhook_type: WebhookType::Receive,
            dedup_key: "k",
            received_at: "t",
            request_id: "r",
            origin: Origin::Webhook,
        };
        assert_eq!(serde_json::to_value(written).unwrap()["origin"], "webhook");
    }
}
