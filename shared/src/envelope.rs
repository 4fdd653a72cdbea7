//! The `Detail` of a forwarded event: `{"metadata": {...}, "data": <the body as received>}`.
//!
//! `data` is the raw body, spliced in rather than re-serialised, so every field Sendblue sent
//! (unknown and future ones, number formats, key order) reaches consumers untouched. The
//! metadata is `sendblue_events::Metadata`, the type consumers read it back into.

pub use sendblue_events::{Metadata, Origin};

/// Builds the detail. `body` must already be validated as one JSON object.
pub fn detail(metadata: &Metadata<&str>, body: &str) -> String {
    let metadata = serde_json::to_string(metadata).expect("metadata is plain strings");
    let mut detail = String::with_capacity(metadata.len() + body.len() + 24);
    detail.push_str("{\"metadata\":");
    detail.push_str(&metadata);
    detail.push_str(",\"data\":");
    detail.push_str(body);
    detail.push('}');
    detail
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn data_is_the_body_untouched() {
        let body = "{ \"b\": 1.50, \"a\": {\"future_field\": [true, null]} }\n";
        let metadata = Metadata {
            webhook_type: sendblue_events::WebhookType::Receive,
            dedup_key: "k\"#1",
            received_at: "2026-01-01T00:00:00.000Z",
            request_id: "r-1",
            origin: Origin::Webhook,
        };
        let detail = detail(&metadata, body);
        assert!(detail.contains(body), "{detail}");
        let parsed: Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(parsed["metadata"]["dedup_key"], "k\"#1");
        assert_eq!(parsed["metadata"]["webhook_type"], "receive");
        assert_eq!(parsed["data"]["a"]["future_field"][0], true);
        let read: sendblue_events::Detail = serde_json::from_str(&detail).unwrap();
        assert_eq!(read.metadata.dedup_key, "k\"#1", "consumers read what was written");
    }
}
