//! `call_log`: a finished call, inbound or outbound.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallLog {
    /// Always `call_log`.
    pub event_type: Option<String>,
    pub call_id: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// `COMPLETED`, `CANCELLED`, ...
    pub status: Option<String>,
    pub duration: Option<u64>,
    /// `twilio` or `facetime`.
    pub provider: Option<String>,
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    pub recording_url: Option<String>,
    pub transcript: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub created_at: Option<String>,
    /// `connected`, `not_answered`, `voicemail`, ...
    pub disposition: Option<String>,
    pub origin: Option<String>,
    pub sent_by: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
