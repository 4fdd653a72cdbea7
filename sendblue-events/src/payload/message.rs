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
    pub account_email: Option<String>,
    pub content: Option<String>,
    pub is_outbound: Option<bool>,
    pub status: Option<MessageStatus>,
    pub error_code: Option<NumberOrText>,
    pub error_message: Option<String>,
    pub error_reason: Option<String>,
    pub error_detail: Option<String>,
    pub message_handle: Option<String>,
    pub date_sent: Option<String>,
    pub date_updated: Option<String>,
    pub from_number: Option<String>,
    pub number: Option<String>,
    pub to_number: Option<String>,
    pub was_downgraded: Option<bool>,
    pub plan: Option<String>,
    /// `""` when there is no media.
    pub media_url: Option<String>,
    pub message_type: Option<MessageType>,
    /// `""` outside groups.
    pub group_id: Option<String>,
    pub participants: Option<Vec<String>>,
    /// `""` when no expressive style was used.
    pub send_style: Option<String>,
    pub opted_out: Option<bool>,
    pub sendblue_number: Option<String>,
    pub service: Option<String>,
    pub group_display_name: Option<String>,
    /// Fields this version does not model (`reply_to`, `location`, `app_card`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
