//! The natural deduplication key of each webhook type (see SENDBLUE.md).
//!
//! Sendblue sends no delivery id, so the key comes from the body: the fields that identify the
//! event for the types that have them, the SHA-256 of the raw body for those that have none.
//! Only the key fields are decoded; everything else is validated as JSON and left untouched.

use std::collections::HashMap;
use std::fmt;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::webhook_type::WebhookType;

/// A key field longer than this is refused: DynamoDB partition keys stop at 2048 bytes, and no
/// real Sendblue identifier comes near it.
pub const MAX_KEY_FIELD_BYTES: usize = 512;

/// The deepest nesting of arrays and objects accepted: serde_json's own default limit, so any
/// consumer using it can read every forwarded body.
pub const MAX_NESTING: usize = 128;

/// Separates the fields of a composite key; escaped inside fields so keys stay unambiguous.
const FIELD_SEPARATOR: char = '#';

/// Why a body cannot be accepted. Each message names the problem without echoing the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is empty")]
    Empty,
    #[error("body is not valid UTF-8")]
    NotUtf8,
    #[error("body must be a JSON object")]
    NotAnObject,
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body nests arrays and objects deeper than {MAX_NESTING} levels")]
    TooDeep,
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("field {0} must be a string, number or boolean")]
    NotAScalar(&'static str),
    #[error("field {field} is longer than {max} bytes", max = MAX_KEY_FIELD_BYTES)]
    FieldTooLong { field: &'static str },
}

/// The key one event is deduplicated by, unique within its webhook type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupKey(String);

impl DedupKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DedupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a type's key is made.
enum KeySource {
    /// These fields, in this order, each required.
    Fields(&'static [&'static str]),
    /// This field when present, else the body's hash.
    FieldOrBodyHash(&'static str),
    /// The body's SHA-256: the type has no published identifier.
    BodyHash,
}

fn key_source(webhook_type: WebhookType) -> KeySource {
    match webhook_type {
        WebhookType::Receive => KeySource::Fields(&["message_handle"]),
        // One message passes through QUEUED, SENT, DELIVERED...: each status is its own event.
        WebhookType::Outbound | WebhookType::StatusCallback => {
            KeySource::Fields(&["message_handle", "status"])
        }
        WebhookType::TypingIndicator => {
            KeySource::Fields(&["number", "from_number", "is_typing", "timestamp"])
        }
        WebhookType::CallLog => KeySource::Fields(&["call_id"]),
        WebhookType::LineBlocked | WebhookType::LineAssigned => KeySource::BodyHash,
        WebhookType::ContactCreated => KeySource::FieldOrBodyHash("contact_id"),
    }
}

/// Checks that `body` is one JSON object and derives its key.
///
/// `body_sha256_hex` is the hash of the raw bytes, computed once by the caller because the
/// dedup store keeps it too.
pub fn derive(
    webhook_type: WebhookType,
    body: &str,
    body_sha256_hex: &str,
) -> Result<DedupKey, BodyError> {
    let object = parse_object(body)?;
    let key = match key_source(webhook_type) {
        KeySource::Fields(fields) => {
            let mut key = String::new();
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    key.push(FIELD_SEPARATOR);
                }
                let value = scalar_field(&object, field)?.ok_or(BodyError::MissingField(field))?;
                push_escaped(&mut key, &value);
            }
            key
        }
        KeySource::FieldOrBodyHash(field) => match scalar_field(&object, field)? {
            Some(value) => value,
            None => body_sha256_hex.to_owned(),
        },
        KeySource::BodyHash => body_sha256_hex.to_owned(),
    };
    Ok(DedupKey(key))
}

/// The body's top-level members, values left as raw (validated, not decoded) JSON.
fn parse_object(body: &str) -> Result<HashMap<String, &RawValue>, BodyError> {
    match body.trim_start().as_bytes().first() {
        None => return Err(BodyError::Empty),
        Some(b'{') => {}
        // Checked before parsing so that serde's "invalid type" messages, which quote the
        // input, never reach the answer.
        Some(_) => return Err(BodyError::NotAnObject),
    }
    // serde_json skips raw values without a depth limit; consumers' parsers have one.
    if exceeds_nesting(body, MAX_NESTING) {
        return Err(BodyError::TooDeep);
    }
    serde_json::from_str(body).map_err(|e| BodyError::InvalidJson(e.to_string()))
}

/// Whether arrays and objects nest deeper than `max` (brackets inside strings do not count).
fn exceeds_nesting(json: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A key field as text: strings as they are, numbers and booleans as their JSON text.
/// Absent, `null` and `""` all count as missing.
fn scalar_field(
    object: &HashMap<String, &RawValue>,
    field: &'static str,
) -> Result<Option<String>, BodyError> {
    let Some(raw) = object.get(field) else {
        return Ok(None);
    };
    let value: Value =
        serde_json::from_str(raw.get()).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) if s.is_empty() => return Ok(None),
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) | Value::Object(_) => return Err(BodyError::NotAScalar(field)),
    };
    if text.len() > MAX_KEY_FIELD_BYTES {
        return Err(BodyError::FieldTooLong { field });
    }
    Ok(Some(text))
}

/// Percent-escapes the separator (and `%` itself) so that `a#b`+`c` and `a`+`b#c` differ.
fn push_escaped(key: &mut String, field: &str) {
    for c in field.chars() {
        match c {
            '%' => key.push_str("%25"),
            FIELD_SEPARATOR => key.push_str("%23"),
            c => key.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HASH: &str = "00ff";

    fn key(t: WebhookType, body: &str) -> Result<String, BodyError> {
        derive(t, body, HASH).map(|k| k.0)
    }

    #[test]
    fn each_type_uses_its_documented_fields() {
        use WebhookType::*;
        assert_eq!(key(Receive, r#"{"message_handle":"m-1","status":"RECEIVED"}"#).unwrap(), "m-1");
        assert_eq!(
            key(Outbound, r#"{"status":"SENT","message_handle":"m-1"}"#).unwrap(),
            "m-1#SENT"
        );
        assert_eq!(
            key(
                TypingIndicator,
                r#"{"number":"+1","from_number":"+2","is_typing":true,"timestamp":"2025-01-01T00:00:00Z"}"#
            )
            .unwrap(),
            "+1#+2#true#2025-01-01T00:00:00Z"
        );
        assert_eq!(key(CallLog, r#"{"call_id":"cs_1","status":"COMPLETED"}"#).unwrap(), "cs_1");
        assert_eq!(key(LineBlocked, r#"{"anything":1}"#).unwrap(), HASH);
        assert_eq!(key(LineAssigned, "{}").unwrap(), HASH);
        assert_eq!(key(ContactCreated, r#"{"contact_id":"c-9"}"#).unwrap(), "c-9");
        assert_eq!(key(ContactCreated, r#"{"phone":"+1"}"#).unwrap(), HASH);
        assert_eq!(key(ContactCreated, r#"{"contact_id":null}"#).unwrap(), HASH);
    }

    #[test]
    fn missing_null_and_empty_key_fields_are_missing() {
        for body in [r#"{}"#, r#"{"message_handle":null}"#, r#"{"message_handle":""}"#] {
            assert_eq!(
                key(WebhookType::Receive, body),
                Err(BodyError::MissingField("message_handle"))
            );
        }
        assert_eq!(
            key(WebhookType::Outbound, r#"{"message_handle":"m"}"#),
            Err(BodyError::MissingField("status"))
        );
    }

    #[test]
    fn malformed_bodies_are_named() {
        let t = WebhookType::Receive;
        assert_eq!(key(t, ""), Err(BodyError::Empty));
        assert_eq!(key(t, "  \n"), Err(BodyError::Empty));
        assert_eq!(key(t, "[1]"), Err(BodyError::NotAnObject));
        assert_eq!(key(t, r#""a secret string""#), Err(BodyError::NotAnObject));
        assert!(matches!(key(t, r#"{"message_handle":"m""#), Err(BodyError::InvalidJson(_))));
        assert!(matches!(key(t, r#"{"message_handle":"m"} x"#), Err(BodyError::InvalidJson(_))));
        assert_eq!(
            key(t, r#"{"message_handle":{"a":1}}"#),
            Err(BodyError::NotAScalar("message_handle"))
        );
        let long = format!(r#"{{"message_handle":"{}"}}"#, "x".repeat(MAX_KEY_FIELD_BYTES + 1));
        assert_eq!(key(t, &long), Err(BodyError::FieldTooLong { field: "message_handle" }));
        for depth in [200, 200_000] {
            let deep = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(key(t, &deep), Err(BodyError::TooDeep));
        }
        let nested_ok = format!(
            "{{\"message_handle\":\"m\",\"a\":{}\"[{{\"{}}}",
            "[".repeat(MAX_NESTING - 1),
            "]".repeat(MAX_NESTING - 1)
        );
        assert_eq!(key(t, &nested_ok).unwrap(), "m");
    }

    #[test]
    fn errors_never_quote_the_body() {
        let secret = "do-not-echo-me";
        for body in [format!("\"{secret}\""), format!("{{\"x\":\"{secret}\""), secret.to_string()] {
            let message = key(WebhookType::Receive, &body).unwrap_err().to_string();
            assert!(!message.contains(secret), "{message}");
        }
    }

    #[test]
    fn separators_inside_fields_cannot_collide() {
        let a = key(WebhookType::Outbound, r##"{"message_handle":"a#b","status":"c"}"##).unwrap();
        let b = key(WebhookType::Outbound, r##"{"message_handle":"a","status":"b#c"}"##).unwrap();
        assert_ne!(a, b);
    }

    fn typing_body(fields: &[(&str, Value)], pretty: bool) -> String {
        let object: serde_json::Map<String, Value> =
            fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        if pretty {
            serde_json::to_string_pretty(&object).unwrap()
        } else {
            serde_json::to_string(&object).unwrap()
        }
    }

    proptest! {
        #[test]
        fn keys_ignore_member_order_and_whitespace(
            number in "\\PC{1,20}", from in "\\PC{1,20}", typing: bool, ts in 0u64..u64::MAX,
            extra in "\\PC{0,20}", rotate in 0usize..5, pretty: bool,
        ) {
            let mut fields = vec![
                ("number", Value::from(number)), ("from_number", Value::from(from)),
                ("is_typing", Value::from(typing)), ("timestamp", Value::from(ts)),
                ("extra", Value::from(extra)),
            ];
            let reference = key(WebhookType::TypingIndicator, &typing_body(&fields, false)).unwrap();
            fields.rotate_left(rotate);
            let shuffled = key(WebhookType::TypingIndicator, &typing_body(&fields, pretty)).unwrap();
            prop_assert_eq!(reference, shuffled);
        }

        #[test]
        fn distinct_field_values_never_share_a_key(
            a in ("\\PC{1,12}", "[A-Z#%]{1,6}"), b in ("\\PC{1,12}", "[A-Z#%]{1,6}"),
        ) {
            prop_assume!(a != b);
            let body = |(handle, status): &(String, String)| {
                serde_json::json!({"message_handle": handle, "status": status}).to_string()
            };
            prop_assert_ne!(
                key(WebhookType::Outbound, &body(&a)).unwrap(),
                key(WebhookType::Outbound, &body(&b)).unwrap()
            );
        }
    }
}
