//! The natural deduplication key of each webhook type (docs/sendblue.md, "The types and their keys").
//!
//! Sendblue sends no delivery id, so the key comes from the body: the fields that identify the
//! event for the types that have them, the SHA-256 of the raw body for those that have none.
//! Only the key fields are decoded; everything else is validated as JSON and left untouched.

use std::collections::HashMap;
use std::fmt;

use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use sendblue_events::WebhookType;

/// The longest key kept as it is. A longer one (escaped fields and separators counted) is
/// replaced by [`HASHED_KEY_PREFIX`] and its SHA-256, so that `<type>#<key>` always fits
/// DynamoDB's 2048-byte partition key: a key's length is never a reason to refuse an event.
pub const MAX_KEY_BYTES: usize = 1024;

/// Starts every hashed key. A natural key could only equal a hashed one by being the SHA-256
/// of another key, which nobody can arrange.
pub const HASHED_KEY_PREFIX: &str = "sha256:";

/// The deepest nesting of arrays and objects accepted in a body. serde_json, the parser most
/// Rust consumers use, refuses documents nested 128 deep (it allows 127), and the event a rule's
/// target receives wraps the body in two more objects (the event, then its `detail`), so a
/// body nested this deep is still readable by every such consumer.
pub const MAX_NESTING: usize = SERDE_JSON_MAX_DEPTH - 2;

/// The deepest nesting serde_json's default parser accepts.
const SERDE_JSON_MAX_DEPTH: usize = 127;

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
    Ok(DedupKey(bounded(key)))
}

/// The key itself, or its hash when it is too long to store.
fn bounded(key: String) -> String {
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    format!("{HASHED_KEY_PREFIX}{}", hex::encode(Sha256::digest(key.as_bytes())))
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

    /// The key as the pipeline derives it, with the body's real hash.
    fn real_key(t: WebhookType, body: &str) -> String {
        derive(t, body, &hex::encode(Sha256::digest(body.as_bytes()))).unwrap().0
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
        for depth in [MAX_NESTING + 1, 200, 200_000] {
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

    /// A body `depth` deep, wrapped as a rule's target receives it (event, then detail).
    fn as_delivered(depth: usize) -> String {
        let body = format!("{{\"a\":{}{}}}", "[".repeat(depth - 1), "]".repeat(depth - 1));
        format!("{{\"detail-type\":\"receive\",\"detail\":{{\"metadata\":{{}},\"data\":{body}}}}}")
    }

    #[test]
    fn the_deepest_accepted_body_is_still_readable_by_serde_json_consumers() {
        let t = WebhookType::LineBlocked;
        let deepest =
            format!("{{\"a\":{}{}}}", "[".repeat(MAX_NESTING - 1), "]".repeat(MAX_NESTING - 1));
        assert!(key(t, &deepest).is_ok());
        assert!(serde_json::from_str::<Value>(&as_delivered(MAX_NESTING)).is_ok());
        // The bound is exact: one level more would break those consumers.
        assert!(serde_json::from_str::<Value>(&as_delivered(MAX_NESTING + 1)).is_err());
    }

    #[test]
    fn long_keys_are_hashed_to_fit_dynamodb() {
        let field = |n: usize, c: char| std::iter::repeat_n(c, n).collect::<String>();
        // `%` and `#` escape to three bytes each: short fields can still make a long key.
        let body = |handle: &str, status: &str| {
            serde_json::json!({"message_handle": handle, "status": status}).to_string()
        };
        let long = key(WebhookType::Outbound, &body(&field(400, '%'), &field(400, '#'))).unwrap();
        assert!(long.starts_with(HASHED_KEY_PREFIX), "{long}");
        assert_eq!(long.len(), HASHED_KEY_PREFIX.len() + 64);
        let other = key(WebhookType::Outbound, &body(&field(400, '%'), &field(401, '#'))).unwrap();
        assert_ne!(long, other, "distinct long keys stay distinct");
        // At the bound the key is kept as it is.
        let at_bound = key(WebhookType::Receive, &body(&field(MAX_KEY_BYTES, 'x'), "")).unwrap();
        assert_eq!(at_bound, field(MAX_KEY_BYTES, 'x'));
        let over = key(WebhookType::Receive, &body(&field(MAX_KEY_BYTES + 1, 'x'), "")).unwrap();
        assert!(over.starts_with(HASHED_KEY_PREFIX));
        let longest_type = WebhookType::ALL.iter().map(|t| t.sendblue_name().len()).max().unwrap();
        assert!(longest_type + 1 + MAX_KEY_BYTES <= 2048, "every partition key fits");
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

    /// The members in the given order, written as text: a `serde_json::Map` would sort them.
    fn typing_body(fields: &[(&str, Value)], pretty: bool) -> String {
        let (open, separator, colon) =
            if pretty { ("{\n  ", ",\n  ", ": ") } else { ("{", ",", ":") };
        let members: Vec<String> =
            fields.iter().map(|(k, v)| format!("{}{colon}{v}", Value::from(*k))).collect();
        format!("{open}{}{}}}", members.join(separator), if pretty { "\n" } else { "" })
    }

    proptest! {
        #[test]
        fn keys_ignore_member_order_and_whitespace(
            number in "\\PC{1,20}", from in "\\PC{1,20}", typing: bool, ts in 0u64..u64::MAX,
            extra in "\\PC{0,20}", rotate in 1usize..5, pretty: bool,
        ) {
            let mut fields = vec![
                ("number", Value::from(number)), ("from_number", Value::from(from)),
                ("is_typing", Value::from(typing)), ("timestamp", Value::from(ts)),
                ("extra", Value::from(extra)),
            ];
            let reference_body = typing_body(&fields, false);
            let reference = real_key(WebhookType::TypingIndicator, &reference_body);
            fields.rotate_left(rotate);
            let shuffled_body = typing_body(&fields, pretty);
            // The case this property is about: the same members, in another order or spacing.
            prop_assert_ne!(&shuffled_body, &reference_body);
            let shuffled = real_key(WebhookType::TypingIndicator, &shuffled_body);
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
