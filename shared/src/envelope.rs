//! The `Detail` of a forwarded event: `{"metadata": {...}, "data": <the body as received>}`.
//!
//! `data` is the raw body, spliced in rather than re-serialised, so every field Sendblue sent
//! (unknown and future ones, number formats, key order) reaches consumers untouched.

use serde::Serialize;

/// What the receiver adds to the payload. `(webhook_type, dedup_key)` identifies the event:
/// consumers deduplicate on it in the one case the receiver cannot (DESIGN.md's crash window).
#[derive(Debug, Clone, Serialize)]
pub struct Metadata<'a> {
    pub webhook_type: &'a str,
    pub dedup_key: &'a str,
    /// RFC 3339, UTC, milliseconds.
    pub received_at: &'a str,
    /// API Gateway's request id.
    pub request_id: &'a str,
}

/// Builds the detail. `body` must already be validated as one JSON object.
pub fn detail(metadata: &Metadata<'_>, body: &str) -> String {
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
            webhook_type: "receive",
            dedup_key: "k\"#1",
            received_at: "2026-01-01T00:00:00.000Z",
            request_id: "r-1",
        };
        let detail = detail(&metadata, body);
        assert!(detail.contains(body), "{detail}");
        let parsed: Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(parsed["metadata"]["dedup_key"], "k\"#1");
        assert_eq!(parsed["metadata"]["webhook_type"], "receive");
        assert_eq!(parsed["data"]["a"]["future_field"][0], true);
    }
}
