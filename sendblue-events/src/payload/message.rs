//! The message record shared by `receive`, `outbound` and status callbacks.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{open_enum, NumberOrText};

open_enum!(
    /// A message's status; an open set (these are the values seen so far).
    MessageStatus {
        Registered = "REGISTERED",
        Pending = "PENDING",
        Queued = "QUEUED",
        Accepted = "ACCEPTED",
        Sent = "SENT",
        Delivered = "DELIVERED",
        Read = "READ",
        Declined = "DECLINED",
        Error = "ERROR",
        Received = "RECEIVED",
        Success = "SUCCESS",
    }
);

impl MessageStatus {
    /// How far along its life an outbound message is, for keeping the furthest status seen
    /// (status events can arrive out of order): REGISTERED, PENDING, QUEUED, ACCEPTED, SENT,
    /// DELIVERED, READ, in that order, then DECLINED and ERROR last, as nothing follows a
    /// failure. SMS messages stop at SENT. `None` for RECEIVED and SUCCESS (no step of an
    /// outbound message) and for values this version does not know.
    pub fn progress(&self) -> Option<u8> {
        use MessageStatus::*;
        let step = match self {
            Registered => 0,
            Pending => 1,
            Queued => 2,
            Accepted => 3,
            Sent => 4,
            Delivered => 5,
            Read => 6,
            Declined | Error => 7,
            Received | Success | Other(_) => return None,
        };
        Some(step)
    }

    /// Whether this status is further along than `seen` (false when either has no place in the
    /// order): what a consumer keeping the latest status of each message stores.
    pub fn supersedes(&self, seen: &MessageStatus) -> bool {
        matches!((self.progress(), seen.progress()), (Some(new), Some(old)) if new > old)
    }
}

open_enum!(
    /// `message`, `group` or `location` so far.
    MessageType {
        Message = "message",
        Group = "group",
        Location = "location",
    }
);

/// One message as Sendblue reports it. Every field may be absent or `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    #[serde(rename = "accountEmail")]
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub account_email: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::flag")]
    pub is_outbound: Option<bool>,
    #[serde(default, deserialize_with = "crate::lenient::or_none")]
    pub status: Option<MessageStatus>,
    #[serde(default, deserialize_with = "crate::lenient::or_none")]
    pub error_code: Option<NumberOrText>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub error_reason: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub error_detail: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub message_handle: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub date_sent: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub date_updated: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub from_number: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub number: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub to_number: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::flag")]
    pub was_downgraded: Option<bool>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub plan: Option<String>,
    /// `""` when there is no media.
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub media_url: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::or_none")]
    pub message_type: Option<MessageType>,
    /// `""` outside groups.
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub group_id: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::or_none")]
    pub participants: Option<Vec<String>>,
    /// `""` when no expressive style was used.
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub send_style: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::flag")]
    pub opted_out: Option<bool>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub sendblue_number: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub service: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub group_display_name: Option<String>,
    /// Fields this version does not model (`reply_to`, `location`, `app_card`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_furthest_status_wins_whatever_order_they_arrive_in() {
        use MessageStatus::*;
        let life = [Registered, Pending, Queued, Accepted, Sent, Delivered, Read];
        for pair in life.windows(2) {
            assert!(pair[1].supersedes(&pair[0]) && !pair[0].supersedes(&pair[1]), "{pair:?}");
        }
        assert!(Error.supersedes(&Read) && Declined.supersedes(&Sent));
        assert!(!Received.supersedes(&Sent) && !Sent.supersedes(&Other("NEW".into())));
        let mut furthest = Queued;
        for arrived in [Delivered, Sent, Read, Accepted] {
            if arrived.supersedes(&furthest) {
                furthest = arrived;
            }
        }
        assert_eq!(furthest.to_string(), "READ");
    }

    #[test]
    fn key_fields_of_any_scalar_type_read_as_their_text_and_odd_fields_as_none() {
        let record: MessageRecord = serde_json::from_value(json!({
            "message_handle": 12345, "status": true, "content": {"odd": 1},
            "is_outbound": "true", "was_downgraded": 0, "participants": "not a list"
        }))
        .unwrap();
        assert_eq!(record.message_handle.as_deref(), Some("12345"));
        assert_eq!(record.status, Some(MessageStatus::Other("true".into())));
        assert_eq!((record.content, record.participants), (None, None));
        assert_eq!((record.is_outbound, record.was_downgraded), (Some(true), Some(false)));
    }
}
