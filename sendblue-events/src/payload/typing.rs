//! `typing_indicator`: a contact started or stopped typing (iMessage only).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::NumberOrText;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TypingIndicator {
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub number: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::text")]
    pub from_number: Option<String>,
    #[serde(default, deserialize_with = "crate::lenient::flag")]
    pub is_typing: Option<bool>,
    #[serde(default, deserialize_with = "crate::lenient::or_none")]
    pub timestamp: Option<NumberOrText>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
