//! The seven webhook types Sendblue delivers, and the per-message status callback.
//!
//! Sendblue's bodies carry no type field (only `call_log` names itself), so the type is decided
//! by which URL, and therefore which Lambda binary, received the delivery.

use std::fmt;

/// One kind of delivery, named as Sendblue's management API names it, which is also the
/// forwarded event's `detail-type`. (`status_callback` is ours: Sendblue has no name for it, as
/// its URL is given on each send-message request, not registered.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookType {
    Receive,
    Outbound,
    TypingIndicator,
    CallLog,
    LineBlocked,
    LineAssigned,
    ContactCreated,
    StatusCallback,
}

impl WebhookType {
    /// The types registered through Sendblue's webhook management API (all but
    /// `status_callback`, whose URL goes on each send-message request instead).
    pub const REGISTRABLE: [WebhookType; 7] = [
        WebhookType::Receive,
        WebhookType::Outbound,
        WebhookType::TypingIndicator,
        WebhookType::CallLog,
        WebhookType::LineBlocked,
        WebhookType::LineAssigned,
        WebhookType::ContactCreated,
    ];

    /// Every type, one Lambda function each: the registrable ones and the status callback.
    pub const ALL: [WebhookType; 8] = {
        let mut all = [WebhookType::StatusCallback; 8];
        let mut i = 0;
        while i < Self::REGISTRABLE.len() {
            all[i] = Self::REGISTRABLE[i];
            i += 1;
        }
        all
    };

    /// The name Sendblue uses (`typing_indicator`); also the forwarded event's `DetailType`.
    pub const fn sendblue_name(self) -> &'static str {
        match self {
            WebhookType::Receive => "receive",
            WebhookType::Outbound => "outbound",
            WebhookType::TypingIndicator => "typing_indicator",
            WebhookType::CallLog => "call_log",
            WebhookType::LineBlocked => "line_blocked",
            WebhookType::LineAssigned => "line_assigned",
            WebhookType::ContactCreated => "contact_created",
            WebhookType::StatusCallback => "status_callback",
        }
    }

    /// The Lambda binary (and URL path segment) that receives this type (`typing-indicator`).
    pub const fn binary_name(self) -> &'static str {
        match self {
            WebhookType::Receive => "receive",
            WebhookType::Outbound => "outbound",
            WebhookType::TypingIndicator => "typing-indicator",
            WebhookType::CallLog => "call-log",
            WebhookType::LineBlocked => "line-blocked",
            WebhookType::LineAssigned => "line-assigned",
            WebhookType::ContactCreated => "contact-created",
            WebhookType::StatusCallback => "status-callback",
        }
    }

    /// Looks a type up by either of its names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.sendblue_name() == name || t.binary_name() == name)
    }
}

/// Written as its Sendblue name (`typing_indicator`), as in `detail-type`.
impl serde::Serialize for WebhookType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.sendblue_name())
    }
}

/// Read from either name; a type this version does not know is an error naming it (update the
/// crate to read events of a newer type).
impl<'de> serde::Deserialize<'de> for WebhookType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(deserializer)?;
        Self::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "webhook type {name:?} is not known to this version of sendblue-events"
            ))
        })
    }
}

impl fmt::Display for WebhookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sendblue_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in WebhookType::ALL {
            assert_eq!(WebhookType::from_name(t.sendblue_name()), Some(t));
            assert_eq!(WebhookType::from_name(t.binary_name()), Some(t));
            assert_eq!(t.binary_name().replace('-', "_"), t.sendblue_name());
        }
        assert_eq!(WebhookType::from_name("status"), None);
        for t in WebhookType::ALL {
            let written = serde_json::to_value(t).unwrap();
            assert_eq!(written, t.sendblue_name());
            assert_eq!(serde_json::from_value::<WebhookType>(written).unwrap(), t);
        }
        let unknown = serde_json::from_value::<WebhookType>("line_moved".into()).unwrap_err();
        assert!(unknown.to_string().contains("line_moved"), "{unknown}");
        assert!(!WebhookType::REGISTRABLE.contains(&WebhookType::StatusCallback));
        assert_eq!(WebhookType::REGISTRABLE.len() + 1, WebhookType::ALL.len());
    }
}
