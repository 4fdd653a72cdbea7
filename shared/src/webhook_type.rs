//! The seven webhook types Sendblue delivers.
//!
//! Sendblue's bodies carry no type field (only `call_log` names itself), so the type is decided
//! by which URL, and therefore which Lambda binary, received the delivery.

use std::fmt;

/// One webhook type, named as Sendblue's management API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookType {
    Receive,
    Outbound,
    TypingIndicator,
    CallLog,
    LineBlocked,
    LineAssigned,
    ContactCreated,
}

impl WebhookType {
    pub const ALL: [WebhookType; 7] = [
        WebhookType::Receive,
        WebhookType::Outbound,
        WebhookType::TypingIndicator,
        WebhookType::CallLog,
        WebhookType::LineBlocked,
        WebhookType::LineAssigned,
        WebhookType::ContactCreated,
    ];

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
        }
    }

    /// Looks a type up by either of its names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.sendblue_name() == name || t.binary_name() == name)
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
    }
}
