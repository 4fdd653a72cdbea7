//! How the typed payloads read fields whose JSON type drifts. The receiver accepts any JSON
//! object whose key fields are strings, numbers or booleans, and forwards it as sent; the typed
//! view must read every body the receiver forwarded, never fail on one.
//!
//! - A text field reads a number or a boolean as its text (`"call_id": 12345` is `"12345"`,
//!   as the receiver writes it into the dedup key).
//! - Any other field of an unexpected type (an object where a string was documented) reads as
//!   `None`: the body exactly as sent stays in `Detail::data`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string, number or boolean, as text (`None` for `null`, an array or an object).
pub(crate) fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(scalar_text(Value::deserialize(deserializer)?))
}

/// The value as `T`, or `None` when it is not one.
pub(crate) fn or_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(serde_json::from_value(Value::deserialize(deserializer)?).ok())
}

/// A yes or no sent as a boolean, `"true"`/`"false"`, or `1`/`0` (either as text); anything else
/// is `None`.
pub(crate) fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Bool(flag) => Some(flag),
        other => match scalar_text(other).as_deref() {
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            _ => None,
        },
    })
}

pub(crate) fn scalar_text(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Text for an open enum: a string, number or boolean as text.
#[derive(Debug)]
pub(crate) struct ScalarText(pub(crate) String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        scalar_text(value)
            .map(ScalarText)
            .ok_or_else(|| serde::de::Error::custom("expected a string, number or boolean"))
    }
}
