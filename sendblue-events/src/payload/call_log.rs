//! `call_log`: a finished call, inbound or outbound.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallLog {
    /// Always `call_log`.
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub event_type: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub call_id: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub from_number: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub to_number: Option<String>,
    /// `inbound` or `outbound`.
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub direction: Option<String>,
    /// `COMPLETED`, `CANCELLED`, ...
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::or_none")]
    pub duration: Option<u64>,
    /// `twilio` or `facetime`.
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub provider: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub company_id: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub contact_id: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub recording_url: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub transcript: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::or_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub created_at: Option<String>,
    /// `connected`, `not_answered`, `voicemail`, ...
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub disposition: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub origin: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub sent_by: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
