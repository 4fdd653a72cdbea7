//! Typed, lenient views of Sendblue's webhook bodies.
//!
//! Sendblue's payloads drift: fields turn `null`, `error_code` arrives as a number or a string,
//! `status` grows new values. So every field is optional, open sets keep unknown values, and
//! every type keeps the fields it does not know in `extra`. The receiver itself never reads
//! bodies through these types: it forwards each body as received.

mod call_log;
mod contact;
mod line;
mod message;
mod typing;

use serde::{Deserialize, Serialize};

pub use call_log::CallLog;
pub use contact::ContactCreated;
pub use line::LineEvent;
pub use message::{MessageRecord, MessageStatus, MessageType};
pub use typing::TypingIndicator;

use crate::webhook_type::WebhookType;

/// Any one webhook body, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Receive(MessageRecord),
    Outbound(MessageRecord),
    TypingIndicator(TypingIndicator),
    CallLog(CallLog),
    LineBlocked(LineEvent),
    LineAssigned(LineEvent),
    ContactCreated(ContactCreated),
    StatusCallback(MessageRecord),
}

impl Payload {
    /// Reads a body of the given type (the type comes from the URL or the `detail-type`).
    pub fn parse(webhook_type: WebhookType, body: &str) -> serde_json::Result<Self> {
        Self::from_value(webhook_type, serde_json::from_str(body)?)
    }

    /// The same, from a body already parsed.
    pub fn from_value(
        webhook_type: WebhookType,
        body: serde_json::Value,
    ) -> serde_json::Result<Self> {
        use serde_json::from_value;
        Ok(match webhook_type {
            WebhookType::Receive => Payload::Receive(from_value(body)?),
            WebhookType::Outbound => Payload::Outbound(from_value(body)?),
            WebhookType::TypingIndicator => Payload::TypingIndicator(from_value(body)?),
            WebhookType::CallLog => Payload::CallLog(from_value(body)?),
            WebhookType::LineBlocked => Payload::LineBlocked(from_value(body)?),
            WebhookType::LineAssigned => Payload::LineAssigned(from_value(body)?),
            WebhookType::ContactCreated => Payload::ContactCreated(from_value(body)?),
            WebhookType::StatusCallback => Payload::StatusCallback(from_value(body)?),
        })
    }
}

/// A value Sendblue sends as a number or as a string (`error_code`: `5509` or `"5509"` or
/// `"SMS_LIMIT_REACHED"`; typing timestamps). A boolean reads as its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum NumberOrText {
    Number(serde_json::Number),
    Text(String),
}

impl<'de> Deserialize<'de> for NumberOrText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(number) => Ok(NumberOrText::Number(number)),
            other => crate::lenient::scalar_text(other)
                .map(NumberOrText::Text)
                .ok_or_else(|| serde::de::Error::custom("expected a number or a string")),
        }
    }
}

impl std::fmt::Display for NumberOrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumberOrText::Number(number) => number.fmt(f),
            NumberOrText::Text(text) => f.write_str(text),
        }
    }
}

/// Declares an open string enum: known values as variants, anything else kept in `Other`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "crate::lenient::ScalarText", into = "String")]
        pub enum $name {
            $($variant,)*
            /// A value this version does not know, kept as sent (a number or boolean as its
            /// text).
            Other(String),
        }

        impl $name {
            /// The value as Sendblue writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(text) => text,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<crate::lenient::ScalarText> for $name {
            fn from(text: crate::lenient::ScalarText) -> Self {
                Self::from(text.0)
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                match text.as_str() {
                    $($text => $name::$variant,)*
                    _ => $name::Other(text),
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                match value {
                    $($name::$variant => $text.to_owned(),)*
                    $name::Other(text) => text,
                }
            }
        }
    };
}
pub(crate) use open_enum;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    open_enum!(Colour { Red = "RED" });

    #[test]
    fn open_enums_keep_unknown_values() {
        let known: Colour = serde_json::from_value(json!("RED")).unwrap();
        let unknown: Colour = serde_json::from_value(json!("TEAL")).unwrap();
        assert_eq!(known, Colour::Red);
        assert_eq!(unknown, Colour::Other("TEAL".into()));
        assert_eq!(serde_json::to_value(&unknown).unwrap(), json!("TEAL"));
        assert_eq!((known.as_str(), unknown.to_string().as_str()), ("RED", "TEAL"));
        let number: Colour = serde_json::from_value(json!(7)).unwrap();
        assert_eq!(number, Colour::Other("7".into()), "a number as its text");
    }

    #[test]
    fn number_or_text_takes_both() {
        let n: NumberOrText = serde_json::from_value(json!(5509)).unwrap();
        let t: NumberOrText = serde_json::from_value(json!("SMS_LIMIT_REACHED")).unwrap();
        assert_eq!(n, NumberOrText::Number(5509.into()));
        assert_eq!(t, NumberOrText::Text("SMS_LIMIT_REACHED".into()));
        let b: NumberOrText = serde_json::from_value(json!(true)).unwrap();
        assert_eq!((b.to_string(), n.to_string()), ("true".into(), "5509".into()));
    }
}
