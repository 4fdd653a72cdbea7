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
/// `"SMS_LIMIT_REACHED"`; typing timestamps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberOrText {
    Number(serde_json::Number),
    Text(String),
}

/// Declares an open string enum: known values as variants, anything else kept in `Other`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($variant,)*
            /// A value this version does not know, kept as sent.
            Other(String),
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
        assert_eq!(serde_json::to_value(unknown).unwrap(), json!("TEAL"));
    }

    #[test]
    fn number_or_text_takes_both() {
        let n: NumberOrText = serde_json::from_value(json!(5509)).unwrap();
        let t: NumberOrText = serde_json::from_value(json!("SMS_LIMIT_REACHED")).unwrap();
        assert_eq!(n, NumberOrText::Number(5509.into()));
        assert_eq!(t, NumberOrText::Text("SMS_LIMIT_REACHED".into()));
    }
}
